#!/usr/bin/env bash
# Config push: how long a change takes to reach every instance. N = 10 and 100 instances on real
# sockets (bench/config/config_fanout: each a settings::ConfigClient following the config server
# as the SDK does, reporting each version it applies) watch one application; a writer changes it
# 50 times, one change at a time; per change, the time from the write until the last instance has
# applied it. For the config server on SQLite and (when this build has it) on etcd, and side by
# side, in the same run, the peer: N plain etcd watches of one key, a put per change. Then what a
# Spring-style poll at the common 30 s interval would give (arithmetic). Target: p99 <= 100 ms at
# N = 100.
#
#   bench/config/run.sh
#   CHANGES=200 bench/config/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

CHANGES="${CHANGES:-50}"
BUILD_DIR="${BUILD_DIR:-build/bench}"

source bench/gateway/common.sh
bench_setup
command -v etcd >/dev/null || { echo "bench/config: etcd is missing (apt-get install etcd-server)" >&2; exit 1; }
cmake --preset bench -B "$BUILD_DIR" >/dev/null
cmake --build "$BUILD_DIR" --target config_fanout >/dev/null
FANOUT="$BUILD_DIR/bench/config/config_fanout"

ETCD_PORT=$(free_port); ETCD_PEER=$(free_port)
etcd --name bench --data-dir "$work/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
  --initial-cluster "bench=http://127.0.0.1:$ETCD_PEER" --log-level error > "$work/etcd.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -sf -X POST -d '{}' "http://127.0.0.1:$ETCD_PORT/v3/maintenance/status" >/dev/null && break
  sleep 0.1
done

SQLITE_PORT=$(free_port)
"$PLEXUS" config serve --anonymous --listen "127.0.0.1:$SQLITE_PORT" --data-dir "$work/config-sqlite" \
  --log-level warn > "$work/config-sqlite.log" 2>&1 &
pids+=($!)
wait_http "$SQLITE_PORT"
servers=("sqlite $SQLITE_PORT")
if "$PLEXUS" config serve --help 2>/dev/null | grep -q -- "--store"; then
  ETCD_STORE_PORT=$(free_port)
  "$PLEXUS" config serve --anonymous --listen "127.0.0.1:$ETCD_STORE_PORT" --data-dir "$work/config-etcd" \
    --store etcd --etcd "http://127.0.0.1:$ETCD_PORT" --log-level warn > "$work/config-etcd.log" 2>&1 &
  pids+=($!)
  wait_http "$ETCD_STORE_PORT"
  servers+=("etcd $ETCD_STORE_PORT")
else
  echo "(this build's config server has no etcd store: that row is left out)"
fi

echo "One change, until the last of N instances has applied it ($CHANGES changes each):"
header=--header
declare -A p99
for n in 10 100; do
  for s in "${servers[@]}"; do
    read -r store port <<<"$s"
    line=$("$FANOUT" --config "http://127.0.0.1:$port" --watchers "$n" --changes "$CHANGES" \
      --label "config server ($store)" $header)
    header=""
    echo "$line"
    p99["$store/$n"]=$(echo "$line" | tail -1 | awk '{print $(NF-2)}')
  done
  line=$("$FANOUT" --etcd "http://127.0.0.1:$ETCD_PORT" --watchers "$n" --changes "$CHANGES")
  echo "$line"
  p99["peer/$n"]=$(echo "$line" | awk '{print $(NF-2)}')
done

echo
echo "p99 of the config server against the plain etcd watch (lower is better; 1.00 = the same):"
for n in 10 100; do
  for s in "${servers[@]}"; do
    read -r store _ <<<"$s"
    awk -v a="${p99[$store/$n]}" -v b="${p99[peer/$n]}" -v n="$n" -v s="$store" \
      'BEGIN { printf "  N=%-4d %-7s %8.2f ms vs %8.2f ms  = %5.2fx\n", n, s, a, b, (b > 0 ? a / b : 0) }'
  done
done

echo
echo "A Spring-style poll every 30 s instead (arithmetic): each instance sees a change at its next"
echo "poll, uniformly 0-30 s later; the last of N instances is the largest of N such waits:"
for n in 10 100; do
  awk -v n="$n" 'BEGIN { printf "  N=%-4d p50 %6.2f s   p99 %6.2f s   (one instance: p50 15.00 s, p99 29.70 s)\n",
                         n, 30 * 0.5 ^ (1 / n), 30 * 0.99 ^ (1 / n) }'
done
