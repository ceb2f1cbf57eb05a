#!/usr/bin/env bash
# A whole scale-out Stowage on one machine, for tests, benchmarks and trying it out: Ceph RGW
# (blobs), PostgreSQL (the index), three registry nodes over them and HAProxy in front, round
# robin per request, every port a free loopback one and every byte of state under DIR.
#
#   scripts/cluster.sh up DIR        # prints URL=http://127.0.0.1:PORT (the balancer) and
#                                    # NODES=<url>,<url>,<url> once all of them answer
#   scripts/cluster.sh down DIR      # stops exactly what `up` started there
#   scripts/cluster.sh kill-node DIR I       # SIGKILL node I (1-based): a crash
#   scripts/cluster.sh start-node DIR I      # starts node I again on its port
#
# STOWAGE_CLUSTER_NODES (default 3) sets the node count; STOWAGE_NODE_ENV_* variables are passed
# to every node without the prefix (STOWAGE_NODE_ENV_STOWAGE_LOG_LEVEL=debug), and
# STOWAGE_NODE_ARGS to node itself (STOWAGE_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"). Needs Node 20,
# postgresql-15, ceph-mon ceph-osd radosgw ceph-common and haproxy (Debian packages).
set -euo pipefail

die() { echo "cluster.sh: $*" >&2; exit 1; }
HERE="$(cd "$(dirname "$0")" && pwd)"
PROJECT="$(dirname "$HERE")"
cmd="${1:-}"; DIR="${2:-}"
[[ -n "$cmd" && -n "$DIR" ]] || die "usage: cluster.sh up|down|kill-node|start-node DIR [I]"
mkdir -p "$DIR"; DIR="$(cd "$DIR" && pwd)"

free_port() { node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }

stop_pid_file() { # file, signal
  [[ -f "$1" ]] || return 0
  local pid; pid=$(cat "$1")
  kill "-${2:-TERM}" "$pid" 2>/dev/null || true
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || { rm -f "$1"; return 0; }; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$1"
}

start_node() { # index: runs node I in the background with the cluster's environment
  local i=$1 port; port=$(cat "$DIR/node-$i/port")
  (
    set -a
    # shellcheck disable=SC1091
    . "$DIR/postgres.env"; . "$DIR/rgw.env"; . "$DIR/cluster.env"
    set +a
    export STOWAGE_STORAGE_BLOBS_DRIVER=s3 STOWAGE_STORAGE_INDEX_DRIVER=postgres
    export STOWAGE_STORAGE_BLOBS_S3_ENDPOINT="$STOWAGE_S3_ENDPOINT" STOWAGE_STORAGE_BLOBS_S3_REGION="$STOWAGE_S3_REGION"
    export STOWAGE_STORAGE_BLOBS_S3_ACCESS_KEY_ID="$STOWAGE_S3_ACCESS_KEY" STOWAGE_STORAGE_BLOBS_S3_SECRET_ACCESS_KEY="$STOWAGE_S3_SECRET_KEY"
    export STOWAGE_STORAGE_BLOBS_S3_BUCKET=stowage STOWAGE_STORAGE_INDEX_POSTGRES_URL="$STOWAGE_POSTGRES_URL"
    export STOWAGE_LISTEN="127.0.0.1:$port" STOWAGE_ROOT="$DIR/node-$i/root" STOWAGE_CONFIG=""
    while IFS='=' read -r name value; do
      [[ "$name" == STOWAGE_NODE_ENV_* ]] && export "${name#STOWAGE_NODE_ENV_}=$value"
    done < <(env)
    cd "$DIR/node-$i"
    # STOWAGE_NODE_ARGS: options of node itself, which NODE_OPTIONS refuses in part (--cpu-prof).
    # shellcheck disable=SC2086
    exec node ${STOWAGE_NODE_ARGS:-} "$PROJECT/dist/src/cli.js" serve >>"$DIR/node-$i/node.log" 2>&1
  ) &
  echo $! > "$DIR/node-$i/pid"
}

wait_http() { # url, seconds
  local end=$(( $(date +%s) + $2 ))
  until curl -s -o /dev/null -w '%{http_code}' "$1" | grep -q '^[24]'; do
    [[ $(date +%s) -lt $end ]] || return 1
    sleep 0.2
  done
}

case "$cmd" in
  down)
    stop_pid_file "$DIR/haproxy.pid"
    for node in "$DIR"/node-*; do [[ -d "$node" ]] && stop_pid_file "$node/pid"; done
    "$HERE/engines/rgw.sh" down "$DIR" 2>/dev/null || true
    "$HERE/engines/postgres.sh" down "$DIR" 2>/dev/null || true
    echo "cluster.sh: down ($DIR)" >&2
    exit 0 ;;
  kill-node) stop_pid_file "$DIR/node-${3:?node}/pid" KILL; exit 0 ;;
  start-node)
    start_node "${3:?node}"
    wait_http "http://127.0.0.1:$(cat "$DIR/node-$3/port")/v2/" 60 || die "node $3 did not answer (log: $DIR/node-$3/node.log)"
    exit 0 ;;
  up) ;;
  *) die "unknown command $cmd" ;;
esac

command -v haproxy >/dev/null || die "haproxy is missing (apt-get install -y haproxy)"
# `down` keeps DIR (the logs and the data are there to read), and the engines refuse to start
# over state of their own: a second `up` needs a fresh DIR, said here before anything starts.
[[ -e "$DIR/postgres" || -e "$DIR/node-1" ]] && die "$DIR holds a cluster's state from an earlier up; use a fresh DIR (or remove this one after: $0 down $DIR)"
[[ -f "$PROJECT/dist/src/cli.js" ]] || (cd "$PROJECT" && npm run build >/dev/null) || die "npm run build failed"
T0=$(date +%s)
trap '[[ ${up_ok:-0} == 1 ]] || { echo "cluster.sh: bring-up failed; stopping what started (logs in $DIR)" >&2; "$0" down "$DIR" >/dev/null 2>&1; }' EXIT

"$HERE/engines/postgres.sh" up "$DIR" >/dev/null &
pg=$!
"$HERE/engines/rgw.sh" up "$DIR" >/dev/null &
rgw=$!
wait "$pg" || die "PostgreSQL did not start"
wait "$rgw" || die "RGW did not start"
: > "$DIR/cluster.env"

NODES="${STOWAGE_CLUSTER_NODES:-3}"
urls=()
for i in $(seq 1 "$NODES"); do
  mkdir -p "$DIR/node-$i/root"
  free_port > "$DIR/node-$i/port"
  start_node "$i"
  urls+=("http://127.0.0.1:$(cat "$DIR/node-$i/port")")
done

LB_PORT=$(free_port)
sed -e "s|@BIND@|127.0.0.1:$LB_PORT|" -e "s|@CHECK@|/readyz|" -e '/^@SERVERS@$/d' "$PROJECT/scripts/haproxy.cfg.in" > "$DIR/haproxy.cfg"
for i in $(seq 1 "$NODES"); do echo "  server node$i 127.0.0.1:$(cat "$DIR/node-$i/port")" >> "$DIR/haproxy.cfg"; done

for url in "${urls[@]}"; do wait_http "$url/v2/" 90 || die "a node did not answer at $url (logs: $DIR/node-*/node.log)"; done
haproxy -f "$DIR/haproxy.cfg" -D -p "$DIR/haproxy.pid" || die "haproxy did not start"
wait_http "http://127.0.0.1:$LB_PORT/v2/" 30 || die "haproxy did not answer"
up_ok=1
echo "URL=http://127.0.0.1:$LB_PORT"
echo "NODES=$(IFS=,; echo "${urls[*]}")"
echo "cluster.sh: up in $(( $(date +%s) - T0 )) s; state in $DIR; stop with: $0 down $DIR" >&2
