#!/usr/bin/env bash
# Global rate limits: how many requests G gateways admit together under a limit they share
# (rate_limit with scope: global, through `plexus limits`), against what the limit allows and the
# design's worst-case overshoot, and the same limit kept by each gateway alone (scope: local).
# Every gateway is driven by its own wrk as hard as it goes, all at once.
#
#   bench/ratelimit/run.sh                                  # 3 gateways, 200/s, burst 200, batch 20, 10 s
#   GATEWAYS=4 RATE=500 BATCH=50 DURATION=20 bench/ratelimit/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

GATEWAYS="${GATEWAYS:-3}"
RATE="${RATE:-200}"          # requests per second the limit allows
BURST="${BURST:-$RATE}"
BATCH="${BATCH:-20}"         # tokens leased at a time
DURATION="${DURATION:-10}"   # seconds
CONNECTIONS="${CONNECTIONS:-16}"

source bench/gateway/common.sh
bench_setup wrk nginx-light

BACKEND_PORT=$(free_port); LIMITS_PORT=$(free_port)
write_backend_conf "$BACKEND_PORT"
"$NGINX" -c "$work/backend.conf" -e "$work/backend.err"
setsid "$PLEXUS" limits --listen "127.0.0.1:$LIMITS_PORT" --log-level warn > "$work/limits.log" 2>&1 < /dev/null &
pids+=($!)
wait_http "$BACKEND_PORT"
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$LIMITS_PORT/health/ready" && break; sleep 0.1; done

leases() {  # the limit service's lease requests so far
  curl -s "http://127.0.0.1:$LIMITS_PORT/metrics" | awk '/^plexus_limits_leases_total /{print $2}'
}

run_scope() {  # scope → "admitted seconds lease_requests"
  local scope=$1 g port ports=() gw_pids=()
  cat > "$work/routes-$scope.yaml" <<CONF
routes:
  - name: bench-$scope
    match: {prefix: /}
    upstreams: ["127.0.0.1:$BACKEND_PORT"]
    filters:
      - name: rate_limit
        requests: $RATE
        per: 1s
        burst: $BURST
        key: route
        scope: $scope
        batch: $BATCH
CONF
  for g in $(seq 1 "$GATEWAYS"); do
    port=$(free_port)
    setsid "$PLEXUS" gateway --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$(free_port)" \
      --routes "$work/routes-$scope.yaml" --limits-uri "http://127.0.0.1:$LIMITS_PORT" --threads 1 \
      --log-level warn > "$work/gateway-$scope-$g.log" 2>&1 < /dev/null &
    pids+=($!); gw_pids+=($!); ports+=("$port")
  done
  for port in "${ports[@]}"; do  # /health/ready is not a route: no token is spent
    for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/health/ready" && break; sleep 0.1; done
  done
  local before; before=$(leases)
  for g in "${!ports[@]}"; do
    wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "http://127.0.0.1:${ports[$g]}/" > "$work/wrk-$scope-$g.txt" 2>&1 &
  done
  wait $(jobs -p | grep -v -F -x -f <(printf '%s\n' "${pids[@]}")) 2>/dev/null || true
  local after; after=$(leases)
  kill "${gw_pids[@]}" 2>/dev/null || true
  local admitted=0 seconds=0 total non2xx s
  for g in "${!ports[@]}"; do
    total=$(awk '/requests in/{print $1}' "$work/wrk-$scope-$g.txt")
    non2xx=$(awk '/Non-2xx or 3xx responses/{print $5}' "$work/wrk-$scope-$g.txt")
    s=$(awk '/requests in/{gsub("s,","",$4); print $4}' "$work/wrk-$scope-$g.txt")
    admitted=$((admitted + total - ${non2xx:-0}))
    seconds=$(awk -v a="$seconds" -v b="$s" 'BEGIN{print (b>a)?b:a}')
  done
  echo "$admitted $seconds $(awk -v a="$before" -v b="$after" 'BEGIN{print b-a}')"
}

read -r g_admitted g_seconds g_leases < <(run_scope global)
read -r l_admitted l_seconds _ < <(run_scope local)
allowed() { awk -v b="$BURST" -v r="$RATE" -v t="$1" 'BEGIN{printf "%d", b + r*t}'; }
g_allowed=$(allowed "$g_seconds"); l_allowed=$(allowed "$l_seconds")
bound=$((GATEWAYS * BATCH * 3 / 2))

echo "$GATEWAYS gateways, one limit of $RATE/s (burst $BURST), batch $BATCH, ${DURATION} s, $CONNECTIONS connections per gateway"
printf '%-8s %10s %10s %12s %16s %14s\n' scope admitted allowed overshoot "bound (G*1.5b)" "leases/s"
printf '%-8s %10d %10d %12d %16d %14.1f\n' global "$g_admitted" "$g_allowed" $((g_admitted - g_allowed)) "$bound" \
  "$(awk -v n="$g_leases" -v t="$g_seconds" 'BEGIN{print n/t}')"
printf '%-8s %10d %10d %12d %16s %14s\n' local "$l_admitted" "$l_allowed" $((l_admitted - l_allowed)) \
  "$((GATEWAYS - 1))x limit" -
