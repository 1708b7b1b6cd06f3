#!/usr/bin/env bash
# The registry at scale, BEFORE and AFTER a change, with a plain etcd watch measured in the same
# run as the peer. Every registry runs as `plexus registry` with its database, as deployed (AFTER
# on its default of one I/O thread per core; BEFORE on whatever its own default was).
#
#   push 1 / 100      N blocking watches on a small service; one registration per round; time
#                     from sending it until the last watcher has the answer (p50/p99 in ms)
#   heartbeats/s      16 keep-alive connections heartbeating back to back for 5 s
#   fan-out 10k/100   10,000 instances in one service, 100 watchers on it, 1,000 heartbeats/s;
#                     one registration per round: time until the last watcher has the answer,
#                     and the heartbeats' p99 while the rounds ran. "full" watchers ask for the
#                     whole list each time (all a BEFORE registry can answer); "delta" watchers
#                     ask for the changes only (delta=true, what libs/discovery does now).
#   etcd              the same fan-out on etcd: 10,000 keys under a prefix, 100 watches on the
#                     prefix, one put per round, time until the last watch has the event (etcd
#                     as packaged: it fsyncs every put; the registry's SQLite commits do not).
#
#   bench/registry/run.sh                        # BEFORE = the commit before the registry work
#   BEFORE_REF=<commit> bench/registry/run.sh    # or BEFORE_BIN=path/to/old/plexus
#   ROUNDS=30 FANOUT_ROUNDS=20 bench/registry/run.sh
#
# BEFORE is built from a git worktree in a temporary folder (removed at the end) with the bench
# preset; AFTER and the load tool (bench/registry/registry_load.cpp) in BUILD_DIR (build/bench-registry).
# Prints a table; ratios are after/before (and after/etcd): below 1 is better for times, above 1
# for heartbeats/s.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"

BEFORE_REF="${BEFORE_REF:-beb2344}"
BUILD_DIR="${BUILD_DIR:-build/bench-registry}"
ROUNDS="${ROUNDS:-30}"
FANOUT_ROUNDS="${FANOUT_ROUNDS:-30}"
INSTANCES="${INSTANCES:-10000}"
WATCHERS="${WATCHERS:-100}"

source bench/gateway/common.sh
for cmd in cmake ninja curl etcd; do
  command -v "$cmd" >/dev/null || { echo "run scripts/setup first (missing $cmd)" >&2; exit 1; }
done
# Builds of two trees share the compiler cache when paths are relative to each tree.
export CCACHE_NOHASHDIR=1

echo "building AFTER (this tree) and the load tool in $BUILD_DIR" >&2
CCACHE_BASEDIR="$root" cmake --preset bench -B "$BUILD_DIR" >/dev/null
CCACHE_BASEDIR="$root" cmake --build "$BUILD_DIR" --target plexus_cli registry_load >/dev/null
AFTER="$root/$BUILD_DIR/cli/plexus"
LOAD="$root/$BUILD_DIR/bench/registry/registry_load"

before_tree=""
remove_before_tree() {
  if [ -n "$before_tree" ]; then git -C "$root" worktree remove --force "$before_tree" 2>/dev/null || true; fi
  bench_cleanup
}
trap remove_before_tree EXIT
if [ -n "${BEFORE_BIN:-}" ]; then
  BEFORE="$BEFORE_BIN"
else
  before_tree="$(mktemp -d /tmp/registry-before.XXXXXX)"
  rmdir "$before_tree"
  echo "building BEFORE ($BEFORE_REF) in $before_tree" >&2
  git -C "$root" worktree add --detach "$before_tree" "$BEFORE_REF" >/dev/null 2>&1
  (cd "$before_tree" && CCACHE_BASEDIR="$before_tree" cmake --preset bench -B "$BUILD_DIR" >/dev/null &&
     CCACHE_BASEDIR="$before_tree" cmake --build "$BUILD_DIR" --target plexus_cli >/dev/null)
  BEFORE="$before_tree/$BUILD_DIR/cli/plexus"
fi

registry_pid=""
# Starts a fresh registry (binary $1) with its own database; sets REG_PORT.
start_registry() {
  stop_registry
  REG_PORT=$(free_port)
  local data="$work/data-$REG_PORT"
  "$1" registry --listen "127.0.0.1:$REG_PORT" --data-dir "$data" --log-level warn > "$work/registry-$REG_PORT.log" 2>&1 &
  registry_pid=$!
  pids+=("$registry_pid")
  wait_http "$REG_PORT"
}
stop_registry() {
  if [ -n "$registry_pid" ]; then
    kill "$registry_pid" 2>/dev/null || true
    wait "$registry_pid" 2>/dev/null || true
    registry_pid=""
  fi
}

# One measurement: `measure NAME BIN MODE ARGS...` writes NAME's key=value lines to $work/NAME.
measure() {
  local name=$1 bin=$2 mode=$3
  shift 3
  start_registry "$bin"
  echo "  $name" >&2
  "$LOAD" "$mode" --port "$REG_PORT" "$@" > "$work/$name"
  stop_registry
}
value() { awk -F= -v k="$2" '$1 == k {print $2}' "$work/$1" 2>/dev/null; }

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for side in before after; do
  bin=$BEFORE
  [ "$side" = after ] && bin=$AFTER
  echo "measuring $side" >&2
  measure "$side-push1" "$bin" push --watchers 1 --rounds "$ROUNDS"
  measure "$side-push100" "$bin" push --watchers "$WATCHERS" --rounds "$ROUNDS"
  measure "$side-beats" "$bin" heartbeats --connections 16 --seconds 5
  measure "$side-fanout" "$bin" fanout --instances "$INSTANCES" --watchers "$WATCHERS" --rounds "$FANOUT_ROUNDS"
done
measure after-fanout-delta "$AFTER" fanout --instances "$INSTANCES" --watchers "$WATCHERS" --rounds "$FANOUT_ROUNDS" --delta

echo "measuring etcd" >&2
ETCD_PORT=$(free_port)
ETCD_PEER=$(free_port)
etcd --name bench --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" \
  --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
  --initial-cluster "bench=http://127.0.0.1:$ETCD_PEER" --log-level error > "$work/etcd.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$ETCD_PORT/health" >/dev/null && break
  sleep 0.1
done
"$LOAD" etcd --endpoints "http://127.0.0.1:$ETCD_PORT" --keys 10 --watchers 1 --rounds "$ROUNDS" > "$work/etcd-push1"
"$LOAD" etcd --endpoints "http://127.0.0.1:$ETCD_PORT" --keys 10 --watchers "$WATCHERS" --rounds "$ROUNDS" > "$work/etcd-push100"
"$LOAD" etcd --endpoints "http://127.0.0.1:$ETCD_PORT" --keys "$INSTANCES" --watchers "$WATCHERS" \
  --rounds "$FANOUT_ROUNDS" > "$work/etcd-fanout"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
row() {  # label before after etcd
  printf '%-44s %10s %10s %10s %9s %9s\n' "$1" "${2:--}" "${3:--}" "${4:--}" "$(ratio "$3" "$2")" "$(ratio "$3" "$4")"
}
echo
echo "registry at scale: $(nproc) cores, loopback; BEFORE $BEFORE_REF, AFTER $(git -C "$root" rev-parse --short HEAD)+worktree"
printf '%-44s %10s %10s %10s %9s %9s\n' metric before after etcd after/bef after/etcd
row "push, 1 watcher: p50 ms" "$(value before-push1 last_p50)" "$(value after-push1 last_p50)" "$(value etcd-push1 last_p50)"
row "push, 1 watcher: p99 ms" "$(value before-push1 last_p99)" "$(value after-push1 last_p99)" "$(value etcd-push1 last_p99)"
row "push, $WATCHERS watchers, last one: p50 ms" "$(value before-push100 last_p50)" "$(value after-push100 last_p50)" "$(value etcd-push100 last_p50)"
row "push, $WATCHERS watchers, last one: p99 ms" "$(value before-push100 last_p99)" "$(value after-push100 last_p99)" "$(value etcd-push100 last_p99)"
row "heartbeats/s (16 connections)" "$(value before-beats heartbeats_per_s)" "$(value after-beats heartbeats_per_s)" ""
row "heartbeat p99 ms at that rate" "$(value before-beats heartbeat_p99)" "$(value after-beats heartbeat_p99)" ""
row "fan-out $INSTANCES/$WATCHERS full, last: p50 ms" "$(value before-fanout last_p50)" "$(value after-fanout last_p50)" "$(value etcd-fanout last_p50)"
row "fan-out $INSTANCES/$WATCHERS full, last: p99 ms" "$(value before-fanout last_p99)" "$(value after-fanout last_p99)" "$(value etcd-fanout last_p99)"
row "  heartbeat p99 ms during it" "$(value before-fanout heartbeat_p99)" "$(value after-fanout heartbeat_p99)" ""
row "  heartbeat max ms during it" "$(value before-fanout heartbeat_max)" "$(value after-fanout heartbeat_max)" ""
row "fan-out $INSTANCES/$WATCHERS delta, last: p50 ms" "$(value before-fanout last_p50)" "$(value after-fanout-delta last_p50)" "$(value etcd-fanout last_p50)"
row "fan-out $INSTANCES/$WATCHERS delta, last: p99 ms" "$(value before-fanout last_p99)" "$(value after-fanout-delta last_p99)" "$(value etcd-fanout last_p99)"
row "  heartbeat p99 ms during it" "$(value before-fanout heartbeat_p99)" "$(value after-fanout-delta heartbeat_p99)" ""
row "  heartbeat max ms during it" "$(value before-fanout heartbeat_max)" "$(value after-fanout-delta heartbeat_max)" ""
row "registering $INSTANCES instances, s" "$(value before-fanout register_s)" "$(value after-fanout register_s)" ""
echo "(delta rows compare with BEFORE's full fan-out: the only kind it has; targets: last watcher"
echo " within 50 ms p99, no heartbeat over 10 ms. The client shares the cores with the servers;"
echo " load average at the start $load_start, at the end $(cut -d' ' -f1-3 /proc/loadavg): anything"
echo " else running on this machine shows in every number.)"
