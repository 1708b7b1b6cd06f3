#!/usr/bin/env bash
# Gateway benchmark: wrk against (a) the backend directly, (b) the Plexus gateway, (c) the gateway
# on a route behind a JWT check (auth filter; a repeated token, as clients send) and a rate limit,
# and (d) nginx as a keep-alive reverse proxy, all proxies in front of the same backend, in one
# run. Prints requests/s, p50 and p99 for each and the Plexus/nginx ratios.
#
#   bench/gateway/run.sh                      # 64 connections, 10 s per target
#   CONNECTIONS=256 DURATION=20s bench/gateway/run.sh
#   ROUNDS=5 bench/gateway/run.sh             # rounds per target (medians are reported)
#   PERF=1 bench/gateway/run.sh               # also records a perf profile of the gateway
#   TLS=1 bench/gateway/run.sh                # also the gateway and nginx behind HTTPS (keep-alive)
set -euo pipefail
cd "$(dirname "$0")/../.."

CONNECTIONS="${CONNECTIONS:-64}"
DURATION="${DURATION:-10s}"
WRK_THREADS="${WRK_THREADS:-2}"
PROXY_THREADS="${PROXY_THREADS:-2}"

source bench/gateway/common.sh
bench_setup wrk nginx-light

BACKEND_PORT=$(free_port); NGINX_PORT=$(free_port); GATEWAY_PORT=$(free_port)
write_backend_conf "$BACKEND_PORT"
# As many nginx workers as the gateway has threads.
write_proxy_conf "$NGINX_PORT" "$BACKEND_PORT" "worker_processes $PROXY_THREADS;"
write_routes "$BACKEND_PORT"

"$NGINX" -c "$work/backend.conf" -e "$work/backend.err"
"$NGINX" -c "$work/proxy.conf" -e "$work/proxy.err"
# Access logs off on both proxies: the gateway's are info-level lines. nginx daemonises into a
# session of its own; the gateway gets one too (setsid), so that with the kernel's autogroup
# scheduling neither proxy shares its CPU share with wrk and the other doesn't.
setsid "$PLEXUS" gateway --listen "127.0.0.1:$GATEWAY_PORT" --admin-listen "127.0.0.1:$(free_port)" --routes "$work/routes.yaml" \
  --threads "$PROXY_THREADS" --log-level warn > "$work/gateway.log" 2>&1 < /dev/null &
pids+=($!)
GATEWAY_PID=$!
start_identity
JWT_PORT=$(free_port)
setsid "$PLEXUS" gateway --listen "127.0.0.1:$JWT_PORT" --admin-listen "127.0.0.1:$(free_port)" --routes "$work/routes-jwt.yaml" \
  --threads "$PROXY_THREADS" --log-level warn "${JWT_FLAGS[@]}" > "$work/gateway-jwt.log" 2>&1 < /dev/null &
pids+=($!)
wait_http "$BACKEND_PORT"; wait_http "$NGINX_PORT"; wait_http "$GATEWAY_PORT"; wait_http "$JWT_PORT"
targets=(backend:$BACKEND_PORT plexus:$GATEWAY_PORT plexus-jwt:$JWT_PORT nginx:$NGINX_PORT)
if [ "${TLS:-0}" = 1 ]; then
  # The same proxies, each with a listener of its own behind TLS (one handshake per wrk connection).
  write_tls_cert
  NGINX_TLS_PORT=$(free_port); GATEWAY_TLS_PORT=$(free_port)
  write_proxy_tls_conf "$NGINX_TLS_PORT" "$BACKEND_PORT" "worker_processes $PROXY_THREADS;"
  "$NGINX" -c "$work/proxy-tls.conf" -e "$work/proxy-tls.err"
  setsid "$PLEXUS" gateway --listen "127.0.0.1:$GATEWAY_TLS_PORT" --admin-listen "127.0.0.1:$(free_port)" \
    --routes "$work/routes.yaml" --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" \
    --threads "$PROXY_THREADS" --log-level warn > "$work/gateway-tls.log" 2>&1 < /dev/null &
  pids+=($!)
  wait_http "$NGINX_TLS_PORT" https; wait_http "$GATEWAY_TLS_PORT" https
  targets+=(plexus-https:$GATEWAY_TLS_PORT nginx-https:$NGINX_TLS_PORT)
fi
url_of() {  # name:port → URL
  local scheme=http
  [[ ${1%%:*} == *-https ]] && scheme=https
  echo "$scheme://127.0.0.1:${1##*:}/"
}

header_of() {  # name:port → wrk's header arguments (the bearer token for the JWT route)
  [[ ${1%%:*} == plexus-jwt ]] && echo "Authorization: Bearer $TOKEN"
  return 0
}
run_wrk() {  # url [header] → "rps p50_ms p99_ms"
  local out
  out=$(wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency ${2:+-H "$2"} "$1")
  echo "$out" > "$work/last-wrk.txt"
  local rps p50 p99 errors
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx or 3xx responses:/ {print $5} /Socket errors:/ {print "socket-errors"}' <<<"$out" | head -1)
  echo "$rps $(to_ms "$p50") $(to_ms "$p99") ${errors:-0}"
}
to_ms() {  # wrk prints 1.23ms, 456.00us, 1.02s
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
    else printf "%s", v }'
}

for target in "${targets[@]}"; do
  h=$(header_of "$target")
  wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d2s ${h:+-H "$h"} "$(url_of "$target")" >/dev/null  # warm-up
done

if [ "${PERF:-0}" = 1 ] && command -v perf >/dev/null; then
  # Covers every round; the gateway is idle while the other targets run.
  perf record -F 999 -g -p "$GATEWAY_PID" -o "$work/perf.data" >/dev/null 2>&1 &
  perf_pid=$!
fi

# Rounds alternate and rotate the targets so that drift on a shared machine hits all of them
# alike; the median round of each target is reported.
ROUNDS="${ROUNDS:-3}"
: > "$work/results"
for round in $(seq 1 "$ROUNDS"); do
  # Each round starts with a different target, so no target always follows the same one.
  for ((k = 0; k < ${#targets[@]}; k++)); do
    target=${targets[$(((round + k) % ${#targets[@]}))]}
    echo "${target%%:*} $(run_wrk "$(url_of "$target")" "$(header_of "$target")")" >> "$work/results"
  done
done
median() {  # target field → median value over the rounds
  awk -v t="$1" -v f="$2" '$1 == t {print $f}' "$work/results" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}
errors() { awk -v t="$1" '$1 == t {s += $5} END {print s + 0}' "$work/results"; }
b_rps=$(median backend 2); b_p50=$(median backend 3); b_p99=$(median backend 4); b_err=$(errors backend)
g_rps=$(median plexus 2); g_p50=$(median plexus 3); g_p99=$(median plexus 4); g_err=$(errors plexus)
j_rps=$(median plexus-jwt 2); j_p50=$(median plexus-jwt 3); j_p99=$(median plexus-jwt 4); j_err=$(errors plexus-jwt)
n_rps=$(median nginx 2); n_p50=$(median nginx 3); n_p99=$(median nginx 4); n_err=$(errors nginx)
if [ -n "${perf_pid:-}" ]; then
  kill -INT "$perf_pid"; wait "$perf_pid" || true
  perf report -i "$work/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null \
    | grep -E '^ +[0-9]+\.[0-9]+%' | head -30 > "${PERF_OUT:-bench/gateway/profile.txt}"
  echo "profile of the gateway: ${PERF_OUT:-bench/gateway/profile.txt}"
fi

echo
echo "gateway benchmark: wrk -t$WRK_THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS rounds (medians), proxies with $PROXY_THREADS threads/workers, $(nproc) cores"
printf '%-22s %12s %10s %10s %8s\n' target "req/s" "p50 ms" "p99 ms" errors
printf '%-22s %12.0f %10s %10s %8s\n' "backend (direct)" "$b_rps" "$b_p50" "$b_p99" "$b_err"
printf '%-22s %12.0f %10s %10s %8s\n' "plexus gateway" "$g_rps" "$g_p50" "$g_p99" "$g_err"
printf '%-22s %12.0f %10s %10s %8s\n' "plexus jwt+ratelimit" "$j_rps" "$j_p50" "$j_p99" "$j_err"
printf '%-22s %12.0f %10s %10s %8s\n' "nginx proxy" "$n_rps" "$n_p50" "$n_p99" "$n_err"
if [ "${TLS:-0}" = 1 ]; then
  gt_rps=$(median plexus-https 2); gt_p50=$(median plexus-https 3); gt_p99=$(median plexus-https 4)
  nt_rps=$(median nginx-https 2); nt_p50=$(median nginx-https 3); nt_p99=$(median nginx-https 4)
  printf '%-22s %12.0f %10s %10s %8s\n' "plexus gateway https" "$gt_rps" "$gt_p50" "$gt_p99" "$(errors plexus-https)"
  printf '%-22s %12.0f %10s %10s %8s\n' "nginx proxy https" "$nt_rps" "$nt_p50" "$nt_p99" "$(errors nginx-https)"
fi
echo "rounds (target req/s p50 p99 errors):"
sed 's/^/  /' "$work/results"
awk -v g="$g_rps" -v n="$n_rps" -v gp="$g_p99" -v np="$n_p99" 'BEGIN {
  printf "plexus/nginx throughput: %.2fx   p99: %.2fx (lower is better)\n", g / n, gp / np }'
awk -v g="$j_rps" -v n="$n_rps" -v gp="$j_p99" -v np="$n_p99" 'BEGIN {
  printf "plexus jwt+ratelimit / nginx plain throughput: %.2fx   p99: %.2fx\n", g / n, gp / np }'
if [ "${TLS:-0}" = 1 ]; then
  awk -v g="$gt_rps" -v n="$nt_rps" -v gp="$gt_p99" -v np="$nt_p99" 'BEGIN {
    printf "https plexus/nginx throughput: %.2fx   p99: %.2fx (lower is better)\n", g / n, gp / np }'
fi
