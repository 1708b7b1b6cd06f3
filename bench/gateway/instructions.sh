#!/usr/bin/env bash
# Instructions per proxied request: the Plexus gateway and nginx as a keep-alive reverse proxy,
# each run under callgrind (one thread/worker each) in front of the same nginx backend. Unlike
# req/s and latency on a shared 2-core machine, the count repeats to within a fraction of a
# percent from run to run, so it shows what a change to the request path costs. The gateway is
# counted four times: plain, with its access log on, behind a rate_limit filter, and behind a JWT
# check (auth filter; the token's verification cached, as for any repeated token) plus the rate
# limit, with tokens from a `plexus identity` of its own. User-space
# instructions only: the kernel's TCP work, the same for both, is not in it.
#
#   bench/gateway/instructions.sh              # 10 s of load per proxy
#   DURATION=20s bench/gateway/instructions.sh
#   PLEXUS_BIN=/other/build/cli/plexus bench/gateway/instructions.sh   # another build (DWARF 4)
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION="${DURATION:-10s}"

source bench/gateway/common.sh
bench_setup wrk nginx-light valgrind

BACKEND_PORT=$(free_port); NGINX_PORT=$(free_port); GATEWAY_PORT=$(free_port)
write_backend_conf "$BACKEND_PORT"
# The proxy in the foreground, one process: what callgrind counts is all its work.
write_proxy_conf "$NGINX_PORT" "$BACKEND_PORT" "daemon off; master_process off; worker_processes 1;"
write_routes "$BACKEND_PORT"

"$NGINX" -c "$work/backend.conf" -e "$work/backend.err"

count() {  # name port command... → "name requests instructions"; $AUTH: a bearer token to send
  local name=$1 port=$2; shift 2
  local header=()
  if [ -n "${AUTH:-}" ]; then header=(-H "Authorization: Bearer $AUTH"); fi
  valgrind --tool=callgrind --callgrind-out-file="$work/$name.cg" "$@" > "$work/$name.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  wait_http "$port"
  wrk -t1 -c8 -d2s "${header[@]}" "http://127.0.0.1:$port/" > /dev/null  # warm-up, not counted
  callgrind_control -z "$pid" > /dev/null
  local out
  out=$(wrk -t1 -c8 -d"$DURATION" "${header[@]}" "http://127.0.0.1:$port/")
  if grep -q "Non-2xx" <<<"$out"; then
    echo "$name answered errors: $(grep Non-2xx <<<"$out")" >&2
    kill "$pid"  # this runs in a subshell: the exit trap does not know the pid
    exit 1
  fi
  callgrind_control -d "$pid" > /dev/null
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local requests instructions
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  instructions=$(awk '/^summary:/ {print $2}' "$work/$name.cg.1")
  echo "$name $requests $instructions"
}

g=$(count plexus "$GATEWAY_PORT" "$PLEXUS" gateway --listen "127.0.0.1:$GATEWAY_PORT" --admin-listen "127.0.0.1:$(free_port)" \
      --routes "$work/routes.yaml" --threads 1 --log-level warn)
# The same with its access log on (one JSON line per request, written to a file).
LOGGED_PORT=$(free_port)
gl=$(count plexus+log "$LOGGED_PORT" "$PLEXUS" gateway --listen "127.0.0.1:$LOGGED_PORT" --admin-listen "127.0.0.1:$(free_port)" \
      --routes "$work/routes.yaml" --threads 1 --log-level info)
# The same route behind a rate_limit filter (token bucket by client address, never empty).
LIMITED_PORT=$(free_port)
glim=$(count plexus+ratelimit "$LIMITED_PORT" "$PLEXUS" gateway --listen "127.0.0.1:$LIMITED_PORT" --admin-listen "127.0.0.1:$(free_port)" \
      --routes "$work/routes-limited.yaml" --threads 1 --log-level warn)
# The same behind a JWT check and the rate limit: an identity server issues the token.
start_identity
JWT_PORT=$(free_port)
gjwt=$(AUTH="$TOKEN" count plexus+jwt+ratelimit "$JWT_PORT" "$PLEXUS" gateway --listen "127.0.0.1:$JWT_PORT" --admin-listen "127.0.0.1:$(free_port)" \
      --routes "$work/routes-jwt.yaml" --threads 1 --log-level warn "${JWT_FLAGS[@]}")
n=$(count nginx "$NGINX_PORT" "$NGINX" -c "$work/proxy.conf" -e "$work/proxy.err")

echo "instructions per proxied request (callgrind, user space, wrk -t1 -c8 -d$DURATION, one thread each)"
printf '%-20s %10s %16s %14s\n' proxy requests instructions "per request"
for row in "$g" "$gl" "$glim" "$gjwt" "$n"; do
  read -r name requests instructions <<<"$row"
  awk -v n="$name" -v r="$requests" -v i="$instructions" 'BEGIN { printf "%-20s %10d %16.0f %14.0f\n", n, r, i, i / r }'
done
read -r _ gr gi <<<"$g"; read -r _ nr ni <<<"$n"
awk -v gr="$gr" -v gi="$gi" -v nr="$nr" -v ni="$ni" 'BEGIN {
  printf "plexus/nginx instructions per request: %.2fx (lower is better)\n", (gi / gr) / (ni / nr) }'
