#!/usr/bin/env bash
# Identity server throughput: client-credentials access tokens per second (wrk POSTing to
# /token with HTTP Basic client authentication), JWT (ES256) and opaque tokens, the server on
# all cores of this machine. Target: 5,000 tokens/s or more on 2 cores. Then the cost of signing
# and verifying one JWT per algorithm (Google Benchmark, the `bench` preset).
#
#   bench/identity/run.sh                  # 10 s of load per token kind
#   DURATION=20s CONNECTIONS=64 bench/identity/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"

source bench/gateway/common.sh
bench_setup wrk

PORT=$(free_port)
"$PLEXUS" identity --listen "127.0.0.1:$PORT" --data-dir "$work/identity" --log-level warn \
  > "$work/identity.log" 2>&1 &
pids+=($!)
wait_http "$PORT"

creds="$work/identity/admin-credentials.json"
id=$(python3 -c "import json;print(json.load(open('$creds'))['client_id'])")
secret=$(python3 -c "import json;print(json.load(open('$creds'))['client_secret'])")
admin=$(curl -s -u "$id:$secret" -d grant_type=client_credentials "http://127.0.0.1:$PORT/token" |
        python3 -c "import json,sys;print(json.load(sys.stdin)['access_token'])")

# One client per token kind, each allowed scope "bench".
client() {  # kind → "client_id client_secret"
  curl -s -X POST -H "Authorization: Bearer $admin" "http://127.0.0.1:$PORT/admin/clients" \
    -d "{\"name\":\"bench $1\",\"scopes\":[\"bench\"],\"token_kind\":\"$1\"}" |
    python3 -c "import json,sys;d=json.load(sys.stdin);print(d['client_id'], d['client_secret'])"
}

printf '%-8s %12s %12s %10s\n' kind "tokens/s" "p99" "non-2xx"
for kind in jwt opaque; do
  read -r cid csecret <<<"$(client "$kind")"
  basic=$(printf '%s:%s' "$cid" "$csecret" | base64 -w0)
  cat > "$work/token.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=bench"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $basic"
LUA
  out=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$work/token.lua" "http://127.0.0.1:$PORT/token")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  printf '%-8s %12.0f %12s %10s\n' "$kind" "$rps" "$p99" "${errors:-0}"
done
echo "(wrk -t2 -c$CONNECTIONS -d$DURATION on the same 2 cores as the server; target >= 5000 tokens/s)"

BUILD_DIR="${BUILD_DIR:-build/bench}"
cmake --preset bench -B "$BUILD_DIR" >/dev/null
cmake --build "$BUILD_DIR" --target jwt_bench >/dev/null
"$BUILD_DIR/bench/identity/jwt_bench" --benchmark_counters_tabular=true
