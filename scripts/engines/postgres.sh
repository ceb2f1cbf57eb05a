#!/usr/bin/env bash
# A throwaway PostgreSQL 15 (Debian's postgresql-15) for tests, benchmarks and scripts/cluster.sh:
# initdb and pg_ctl by hand, no systemd, all state in DIR, listening on 127.0.0.1 only.
#
#   scripts/engines/postgres.sh up DIR [PORT]   # prints STOWAGE_POSTGRES_URL=... and writes DIR/postgres.env
#   scripts/engines/postgres.sh down DIR        # stops the server it started there, keeps DIR
#   scripts/engines/postgres.sh restart DIR     # stop then start the same cluster (fault tests)
#
# initdb refuses to run as root, so as root the server runs as the `postgres` system user.
set -euo pipefail

die() { echo "postgres.sh: $*" >&2; exit 1; }
BIN="${STOWAGE_PG_BIN:-/usr/lib/postgresql/15/bin}"
as_owner() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

cmd="${1:-}"; DIR="${2:-}"
[[ -n "$cmd" && -n "$DIR" ]] || die "usage: postgres.sh up|down|restart DIR [PORT]"
PGD="$DIR/postgres"

stop() {
  [[ -f "$PGD/data/postmaster.pid" ]] || return 0
  local pid; pid=$(head -1 "$PGD/data/postmaster.pid")
  as_owner "$BIN/pg_ctl" -D "$PGD/data" -m fast -w -t 30 stop >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

start() {
  as_owner "$BIN/pg_ctl" -D "$PGD/data" -l "$PGD/server.log" -w -t 60 start >/dev/null \
    || { tail -20 "$PGD/server.log" >&2; die "pg_ctl start failed (port busy?)"; }
}

case "$cmd" in
  down) stop; echo "postgres.sh: down ($PGD)" >&2; exit 0 ;;
  restart) stop; start; echo "postgres.sh: restarted ($PGD)" >&2; exit 0 ;;
  up) ;;
  *) die "unknown command $cmd" ;;
esac

[[ -x "$BIN/initdb" ]] || die "PostgreSQL 15 is not installed (apt-get install -y postgresql-15)"
PORT="${3:-$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")}"
USER_NAME=stowage; PASSWORD=stowage; DB=stowage

mkdir -p "$PGD"
# The server runs as postgres: it must be able to reach DIR (mkdtemp makes it 0700).
[[ $(id -u) == 0 ]] && chmod a+x "$DIR" && chown postgres: "$PGD"
chmod 700 "$PGD"
printf '%s\n' "$PASSWORD" > "$PGD/pwfile"
[[ $(id -u) == 0 ]] && chown postgres: "$PGD/pwfile"
as_owner "$BIN/initdb" -D "$PGD/data" -U "$USER_NAME" --pwfile="$PGD/pwfile" -E UTF8 --locale=C.UTF-8 \
  --auth-local=trust --auth-host=scram-sha-256 >"$PGD/initdb.log" 2>&1 || { cat "$PGD/initdb.log" >&2; die "initdb failed"; }
rm -f "$PGD/pwfile"
# fsync stays on: the fault tests restart the database and expect what it acknowledged.
cat >> "$PGD/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$PGD'
max_connections = 300
shared_buffers = 128MB
EOF
start
as_owner "$BIN/psql" -h "$PGD" -p "$PORT" -U "$USER_NAME" -d postgres -v ON_ERROR_STOP=1 -qc "CREATE DATABASE $DB OWNER $USER_NAME" >/dev/null

URL="postgres://$USER_NAME:$PASSWORD@127.0.0.1:$PORT/$DB"
echo "STOWAGE_POSTGRES_URL=$URL" > "$DIR/postgres.env"
cat "$DIR/postgres.env"
