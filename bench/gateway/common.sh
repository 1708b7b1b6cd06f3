# What the gateway benchmarks share: packages, a work folder cleaned up on exit, free ports and
# the nginx backend, nginx proxy and gateway route configurations. Sourced, not run.
#
#   source bench/gateway/common.sh
#   bench_setup wrk nginx-light         # packages (by command) and the release build
#   BACKEND_PORT=$(free_port) ...

# Installs the packages whose command is missing (nginx-light → nginx) and builds the release
# preset unless PLEXUS_BIN names another build. Sets PLEXUS and NGINX.
bench_setup() {
  local need=() p
  for p in "$@"; do
    if ! command -v "${p%-light}" >/dev/null 2>&1; then need+=("$p"); fi
  done
  if ((${#need[@]})); then
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
  fi
  if [ -n "${PLEXUS_BIN:-}" ]; then
    PLEXUS="$PLEXUS_BIN"  # another build of plexus, to compare a change before and after
  else
    scripts/setup release >/dev/null
    PLEXUS="$PWD/build/release/cli/plexus"
  fi
  NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
}

work="$(mktemp -d)"
mkdir -p "$work/tmp"
pids=()
bench_cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  local f
  for f in "$work"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  sleep 0.3
  if [ -n "${KEEP_WORK:-}" ]; then
    echo "kept the work directory (logs, callgrind files): $work" >&2
  else
    rm -rf "$work"
  fi
}
trap bench_cleanup EXIT

free_port() {
  # Below the kernel's ephemeral range: a port there may be held by a client socket (in
  # TIME_WAIT after a run with many connections) that a connect probe cannot see.
  local p low
  low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  while :; do
    p=$((10000 + RANDOM % (low - 10000)))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
}

# Waits until something answers HTTP on the port (up to 30 s: under callgrind a start takes
# seconds); with "https" as the second argument, HTTPS (certificate not checked).
wait_http() {
  local scheme="${2:-http}"
  for _ in $(seq 1 300); do
    if curl -sk -o /dev/null "$scheme://127.0.0.1:$1/"; then return 0; fi
    sleep 0.1
  done
  echo "nothing answers $scheme on port $1" >&2
  return 1
}

# nginx configuration around one server block: name (files in $work), head directives, server.
write_nginx_conf() {
  local name=$1 head=$2 server=$3
  cat > "$work/$name.conf" <<CONF
$head
pid $work/$name.pid;
error_log $work/$name.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/tmp; proxy_temp_path $work/tmp; fastcgi_temp_path $work/tmp;
  uwsgi_temp_path $work/tmp; scgi_temp_path $work/tmp;
  keepalive_requests 10000000;
$server
}
CONF
}

# The backend: nginx answering a fixed 64-byte body, one worker. $work/backend.conf
write_backend_conf() {
  local port=$1
  write_nginx_conf backend "worker_processes 1;" "  server {
    listen 127.0.0.1:$port reuseport;
    location / { default_type text/plain; return 200 \"0123456789012345678901234567890123456789012345678901234567890\n\"; }
  }"
}

# nginx as a keep-alive reverse proxy to the backend. $work/proxy.conf
write_proxy_conf() {
  local port=$1 backend_port=$2 head=$3
  write_nginx_conf proxy "$head" "  upstream backend { server 127.0.0.1:$backend_port; keepalive 256; }
  server {
    listen 127.0.0.1:$port reuseport;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }"
}

# The same proxy behind HTTPS: TLS 1.2/1.3 with the gateway's cipher policy, a session cache.
# $work/proxy-tls.conf, with the certificate of write_tls_cert.
write_proxy_tls_conf() {
  local port=$1 backend_port=$2 head=$3
  write_nginx_conf proxy-tls "$head" "  upstream backend { server 127.0.0.1:$backend_port; keepalive 256; }
  server {
    listen 127.0.0.1:$port ssl reuseport;
    ssl_certificate $work/cert.pem;
    ssl_certificate_key $work/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
    ssl_prefer_server_ciphers on;
    ssl_session_cache shared:TLS:10m;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }"
}

# A self-signed ECDSA P-256 certificate for 127.0.0.1, for both HTTPS proxies. $work/cert.pem, key.pem
write_tls_cert() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
}

# The gateway's one route, to the backend. $work/routes.yaml
write_routes() {
  # routes.yaml: the plain route; routes-limited.yaml: the same behind a rate limit by client
  # address that the load never reaches; routes-jwt.yaml: a JWT check (auth filter) and the
  # rate limit.
  local file filters limit=$'      - name: rate_limit\n        requests: 100000000\n        per: 1s'
  for file in routes routes-limited routes-jwt; do
    filters=""
    if [ "$file" = routes-limited ]; then filters=$'    filters:\n'"$limit"; fi
    if [ "$file" = routes-jwt ]; then filters=$'    filters:\n      - name: auth\n'"$limit"; fi
    cat > "$work/$file.yaml" <<CONF
routes:
  - name: bench
    match:
      prefix: /
    upstreams: ["127.0.0.1:$1"]
    timeout: 5s
$filters
CONF
  done
}

# Starts a `plexus identity` (audience bench) for routes behind the auth filter. Sets ID_PORT,
# TOKEN (a client-credentials JWT of its first admin client, valid 10 minutes) and JWT_FLAGS (the
# gateway flags that check its tokens).
start_identity() {
  ID_PORT=$(free_port)
  "$PLEXUS" identity --listen "127.0.0.1:$ID_PORT" --data-dir "$work/identity" --audience bench --log-level warn \
    > "$work/identity.log" 2>&1 &
  pids+=($!)
  wait_http "$ID_PORT"
  local creds="$work/identity/admin-credentials.json"
  TOKEN=$(curl -s -u "$(python3 -c "import json;c=json.load(open('$creds'));print(c['client_id']+':'+c['client_secret'])")" \
    -d grant_type=client_credentials "http://127.0.0.1:$ID_PORT/token" |
    python3 -c "import json,sys;print(json.load(sys.stdin)['access_token'])")
  JWT_FLAGS=(--issuer "http://127.0.0.1:$ID_PORT" --jwks-uri "http://127.0.0.1:$ID_PORT/jwks" --audience bench
             --revocations-uri "http://127.0.0.1:$ID_PORT/revocations")
}
