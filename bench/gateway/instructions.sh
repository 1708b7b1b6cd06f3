#!/usr/bin/env bash
# Instructions per proxied request: the Plexus gateway and nginx as a keep-alive reverse proxy,
# each run under callgrind (one thread/worker each) in front of the same nginx backend. Unlike
# req/s and latency on a shared 2-core machine, the count is repeatable to within a fraction of a
# percent, so it shows what a change to the request path costs. User-space instructions only: the
# kernel's TCP work, the same for both, is not in it.
#
#   bench/gateway/instructions.sh              # 10 s of load per proxy
#   DURATION=20s bench/gateway/instructions.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION="${DURATION:-10s}"

need=()
for p in wrk nginx-light valgrind; do
  if ! command -v "${p%-light}" >/dev/null 2>&1; then need+=("$p"); fi
done
if ((${#need[@]})); then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
scripts/setup release >/dev/null
PLEXUS="$PWD/build/release/cli/plexus"
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$work/backend.pid" ] && kill "$(cat "$work/backend.pid")" 2>/dev/null || true
  sleep 0.3
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
}
wait_http() {  # callgrind makes a start take seconds
  for _ in $(seq 1 300); do
    if curl -s -o /dev/null "http://127.0.0.1:$1/"; then return 0; fi
    sleep 0.1
  done
  echo "nothing answers on port $1" >&2
  return 1
}

BACKEND_PORT=$(free_port); NGINX_PORT=$(free_port); GATEWAY_PORT=$(free_port)
mkdir -p "$work/tmp"
temp_paths="client_body_temp_path $work/tmp; proxy_temp_path $work/tmp; fastcgi_temp_path $work/tmp;
  uwsgi_temp_path $work/tmp; scgi_temp_path $work/tmp;"

cat > "$work/backend.conf" <<CONF
worker_processes 1;
pid $work/backend.pid;
error_log $work/backend.err warn;
events { worker_connections 4096; }
http {
  access_log off; $temp_paths
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$BACKEND_PORT;
    location / { default_type text/plain; return 200 "0123456789012345678901234567890123456789012345678901234567890\n"; }
  }
}
CONF
# The proxy in the foreground, one process: what callgrind counts is all its work.
cat > "$work/proxy.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $work/proxy.pid;
error_log $work/proxy.err warn;
events { worker_connections 4096; }
http {
  access_log off; $temp_paths
  keepalive_requests 10000000;
  upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 256; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
CONF
cat > "$work/routes.yaml" <<CONF
routes:
  - name: bench
    match:
      prefix: /
    upstreams: ["127.0.0.1:$BACKEND_PORT"]
    timeout: 5s
CONF

"$NGINX" -c "$work/backend.conf" -e "$work/backend.err"

count() {  # name port command... → "name requests instructions"
  local name=$1 port=$2; shift 2
  valgrind --tool=callgrind --callgrind-out-file="$work/$name.cg" "$@" > "$work/$name.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  wait_http "$port"
  wrk -t1 -c8 -d2s "http://127.0.0.1:$port/" > /dev/null  # warm-up, not counted
  callgrind_control -z "$pid" > /dev/null
  local out
  out=$(wrk -t1 -c8 -d"$DURATION" "http://127.0.0.1:$port/")
  if grep -q "Non-2xx" <<<"$out"; then
    echo "$name answered errors: $(grep Non-2xx <<<"$out")" >&2
    exit 1
  fi
  callgrind_control -d "$pid" > /dev/null
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local requests instructions
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  instructions=$(awk '/^summary:/ {print $2}' "$work/$name.cg.1")
  echo "$name $requests $instructions"
}

g=$(count plexus "$GATEWAY_PORT" "$PLEXUS" gateway --listen "127.0.0.1:$GATEWAY_PORT" \
      --routes "$work/routes.yaml" --threads 1 --log-level warn)
n=$(count nginx "$NGINX_PORT" "$NGINX" -c "$work/proxy.conf" -e "$work/proxy.err")

echo "instructions per proxied request (callgrind, user space, wrk -t1 -c8 -d$DURATION, one thread each)"
printf '%-16s %10s %16s %14s\n' proxy requests instructions "per request"
for row in "$g" "$n"; do
  read -r name requests instructions <<<"$row"
  awk -v n="$name" -v r="$requests" -v i="$instructions" 'BEGIN { printf "%-16s %10d %16.0f %14.0f\n", n, r, i, i / r }'
done
read -r _ gr gi <<<"$g"; read -r _ nr ni <<<"$n"
awk -v gr="$gr" -v gi="$gi" -v nr="$nr" -v ni="$ni" 'BEGIN {
  printf "plexus/nginx instructions per request: %.2fx (lower is better)\n", (gi / gr) / (ni / nr) }'
