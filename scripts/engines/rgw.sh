#!/usr/bin/env bash
# A throwaway Ceph RGW (the S3 API) for tests, benchmarks and scripts/cluster.sh, from Debian's
# packages (ceph-mon ceph-osd radosgw ceph-common): one monitor, one OSD and radosgw on
# 127.0.0.1, no systemd, no cephx, all state in DIR.
#
#   scripts/engines/rgw.sh up DIR        # prints STOWAGE_S3_* lines and writes DIR/rgw.env
#   scripts/engines/rgw.sh down DIR      # stops what it started there (by pid), keeps DIR
#   scripts/engines/rgw.sh restart-rgw DIR   # restarts radosgw only (fault tests); data stays in the OSD
#
# STOWAGE_RGW_STORE=memstore (default; data in the OSD's memory, up to STOWAGE_RGW_BYTES) or
# bluestore (a sparse file in DIR, for benchmarks that should touch a disk).
set -euo pipefail

die() { echo "rgw.sh: $*" >&2; exit 1; }
cmd="${1:-}"; DIR="${2:-}"
[[ -n "$cmd" && -n "$DIR" ]] || die "usage: rgw.sh up|down|restart-rgw DIR"
D="$DIR/rgw"
CONF="$D/ceph.conf"

kill_pids() { # file: stop each pid in reverse order of start, then make sure
  [[ -f "$1" ]] || return 0
  for pid in $(tac "$1"); do kill "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 100); do
    local alive=0; for pid in $(cat "$1"); do kill -0 "$pid" 2>/dev/null && alive=1; done
    [[ $alive == 0 ]] && return 0; sleep 0.1
  done
  for pid in $(cat "$1"); do kill -9 "$pid" 2>/dev/null || true; done
}

wait_for() { # seconds, what, command...
  local s=$1 what=$2; shift 2
  local end=$(( $(date +%s) + s ))
  until "$@" >/dev/null 2>&1; do
    [[ $(date +%s) -lt $end ]] || { tail -n 30 "$D"/log/*.log >&2 || true; die "timed out waiting for $what (logs in $D/log)"; }
    sleep 0.3
  done
}

start_rgw() {
  radosgw -c "$CONF" -f -n client.rgw.a >>"$D/log/rgw.out" 2>&1 &
  echo $! > "$D/rgw.pid"
  local port; port=$(cat "$D/port")
  wait_for 120 "radosgw on port $port" bash -c "curl -s -o /dev/null -w %{http_code} http://127.0.0.1:$port/ | grep -q '^[234]'"
}

case "$cmd" in
  down) kill_pids "$D/rgw.pid"; kill_pids "$D/pids"; echo "rgw.sh: down ($D)" >&2; exit 0 ;;
  restart-rgw) kill_pids "$D/rgw.pid"; start_rgw; echo "rgw.sh: radosgw restarted" >&2; exit 0 ;;
  up) ;;
  *) die "unknown command $cmd" ;;
esac

for b in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool curl; do
  command -v "$b" >/dev/null || die "$b is missing (apt-get install -y ceph-mon ceph-osd radosgw ceph-common curl)"
done
free_port() { node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
MON_PORT=$(free_port); RGW_PORT=$(free_port)
# The OSD binds a few ports of a range; a random block of 100 above the usual ephemeral start.
OSD_MIN=$(( 20000 + (RANDOM % 300) * 100 )); OSD_MAX=$(( OSD_MIN + 99 ))
STORE="${STOWAGE_RGW_STORE:-memstore}"
ACCESS_KEY=STOWAGETESTACCESS01; SECRET_KEY=stowagetestsecretkey000000000000000001
mkdir -p "$D"/{mon,osd,rgw,run,log}
echo "$RGW_PORT" > "$D/port"
: > "$D/pids"
trap '[[ ${up_ok:-0} == 1 ]] || { kill_pids "$D/rgw.pid"; kill_pids "$D/pids"; echo "rgw.sh: failed; logs in $D/log" >&2; }' EXIT

if [[ "$STORE" == memstore ]]; then
  STORE_CONF="osd_objectstore = memstore
memstore_device_bytes = ${STOWAGE_RGW_BYTES:-8589934592}"
else
  STORE_CONF="osd_objectstore = bluestore
bluestore_block_create = true
bluestore_block_size = ${STOWAGE_RGW_BYTES:-21474836480}
bluestore_fsck_on_mkfs = false
bluestore_fsck_on_mount = false"
fi

# tcp_nodelay=1: without it every small reply on a kept-alive connection waits for the
# client's delayed ACK (about 40 ms), which made a 50-layer push take 54 s instead of 7.
cat > "$CONF" <<EOF
[global]
fsid = $(cat /proc/sys/kernel/random/uuid)
mon_host = [v2:127.0.0.1:$MON_PORT]
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_ipv6 = false
ms_bind_msgr1 = false
ms_bind_port_min = $OSD_MIN
ms_bind_port_max = $OSD_MAX
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
run_dir = $D/run
admin_socket = $D/run/\$name.asok
pid_file = $D/run/\$name.pid
log_file = $D/log/\$name.log
log_to_stderr = false
err_to_stderr = true
crash_dir = $D/log/crash
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_max_pg_per_osd = 1000
mon_warn_on_pool_no_redundancy = false
mon_data_avail_warn = 2
mon_data_avail_crit = 1
[mon]
mon_data = $D/mon/\$cluster-\$id
[osd]
osd_data = $D/osd/\$cluster-\$id
osd_memory_target = 1073741824
$STORE_CONF
[client.rgw.a]
auth_client_required = none
ms_mon_client_mode = crc
ms_client_mode = crc
rgw_data = $D/rgw/\$cluster-\$id
rgw_frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw_dns_name = localhost
rgw_enable_usage_log = false
# RGW frees the data of deleted and overwritten objects in its garbage collector, by default
# two hours later. A memstore OSD fills up first in a long run of pushes (every upload's
# segments and parts are deleted at commit), and a full OSD blocks writes without an error.
rgw_gc_obj_min_wait = 60
rgw_gc_processor_period = 60
EOF

monmaptool --create --fsid "$(awk '/^fsid/ {print $3}' "$CONF")" --addv a "[v2:127.0.0.1:$MON_PORT]" "$D/monmap" >/dev/null
ceph-mon -c "$CONF" --mkfs -i a --monmap "$D/monmap" >>"$D/log/mkfs.out" 2>&1
ceph-mon -c "$CONF" -f -i a >>"$D/log/mon.out" 2>&1 &
echo $! >> "$D/pids"
wait_for 60 "the monitor" timeout 5 ceph -c "$CONF" mon stat

OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
OSD_ID=$(timeout 30 ceph -c "$CONF" osd new "$OSD_UUID")
mkdir -p "$D/osd/ceph-$OSD_ID"
ceph-osd -c "$CONF" -i "$OSD_ID" --mkfs --osd-uuid "$OSD_UUID" >>"$D/log/mkfs.out" 2>&1
ceph-osd -c "$CONF" -f -i "$OSD_ID" >>"$D/log/osd.out" 2>&1 &
echo $! >> "$D/pids"
wait_for 90 "the OSD" bash -c "timeout 5 ceph -c '$CONF' osd dump | grep -q '^osd.$OSD_ID up'"

mkdir -p "$D/rgw/ceph-rgw.a"
start_rgw
timeout 60 radosgw-admin -c "$CONF" user create --uid=stowage --display-name=stowage \
  --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >>"$D/log/user.out" 2>&1 || die "radosgw-admin user create failed ($D/log/user.out)"
up_ok=1

cat > "$DIR/rgw.env" <<EOF
STOWAGE_S3_ENDPOINT=http://127.0.0.1:$RGW_PORT
STOWAGE_S3_REGION=us-east-1
STOWAGE_S3_ACCESS_KEY=$ACCESS_KEY
STOWAGE_S3_SECRET_KEY=$SECRET_KEY
EOF
cat "$DIR/rgw.env"
