#!/usr/bin/env bash
# Soak test (issue 9, item 4): a bounded mixed load on loopback against the release binary for a
# few minutes, sampling the service's resident memory; fails if memory grows beyond a bound after
# warm-up. Not part of `cargo test` (it takes minutes and needs the release build).
#
#   bash scripts/soak.sh                      # 180 s of load after 30 s of warm-up, SQLite
#   SOAK_SECS=600 bash scripts/soak.sh        # longer
#   SOAK_DATABASE_URL=postgres://postgres@127.0.0.1:5432/soak bash scripts/soak.sh   # an empty PG database
#
# The load, all at once: case creation (2 connections), case lists and the statistics summary
# (1 each), liveness probes (1), anonymous requests far beyond the rate limit (2, answered 401 and
# then 429), and a /metrics scrape per sample. Memory is read from /proc/PID/status (VmRSS).
#
# Variables: MINSHENG_BIN (default target/release/minsheng, built if missing), SOAK_SECS (180),
# SOAK_WARMUP_SECS (30), SOAK_SAMPLE_SECS (5), SOAK_MAX_GROWTH_MIB (32: allowed growth over the
# RSS at the end of warm-up), SOAK_DATABASE_URL (default a fresh SQLite file), SOAK_PORT (18480).
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${SOAK_SECS:-180}
WARMUP=${SOAK_WARMUP_SECS:-30}
SAMPLE=${SOAK_SAMPLE_SECS:-5}
MAX_GROWTH_MIB=${SOAK_MAX_GROWTH_MIB:-32}
PORT=${SOAK_PORT:-18480}
BIN=${MINSHENG_BIN:-target/release/minsheng}
LOADGEN=bench/loadgen/target/release/loadgen

command -v curl >/dev/null && command -v jq >/dev/null || { echo "soak: needs curl and jq" >&2; exit 2; }
[ -x "$BIN" ] || cargo build --release --bin minsheng
[ -x "$LOADGEN" ] || (cd bench/loadgen && cargo build --release -q)
BIN=$(realpath "$BIN")

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "${server:-}" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

export DATABASE_URL=${SOAK_DATABASE_URL:-$work/soak.db}
export MINSHENG_LISTEN=127.0.0.1:$PORT
export MINSHENG_JWT_SECRET=soak-secret-0123456789abcdef0123456789
export MINSHENG_ACCESS_TOKEN_TTL_SECS=86400
export MINSHENG_ARGON2_MEMORY_KIB=1024 MINSHENG_ARGON2_ITERATIONS=1
# The signed-in load stays under its own limit; the anonymous stage is far beyond it.
export MINSHENG_RATE_LIMIT_PER_SEC=${MINSHENG_RATE_LIMIT_PER_SEC:-1000}
export MINSHENG_RATE_LIMIT_BURST=${MINSHENG_RATE_LIMIT_BURST:-2000}
export RUST_LOG=${RUST_LOG:-warn}

"$BIN" create-admin --username soak.admin --password 'Soak-Admin-2026!' >/dev/null
"$BIN" serve 2>"$work/server.log" &
server=$!
BASE=http://$MINSHENG_LISTEN
for _ in $(seq 1 100); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.1; done
JSON='Content-Type: application/json'
TOKEN=$(curl -sf "$BASE/api/v1/auth/login" -H "$JSON" \
  -d '{"username":"soak.admin","password":"Soak-Admin-2026!"}' | jq -r .access_token)
for j in '{"code":"530000","name":"云南省"}' '{"code":"530600","name":"昭通市","parent_code":"530000"}' \
         '{"code":"530602","name":"昭阳区","parent_code":"530600"}'; do
  curl -sf "$BASE/api/v1/jurisdictions" -H "Authorization: Bearer $TOKEN" -H "$JSON" -d "$j" >/dev/null
done
curl -sf "$BASE/api/v1/categories" -H "Authorization: Bearer $TOKEN" -H "$JSON" \
  -d '{"code":"drinking_water","name":"饮水安全","deadline_days":15}' >/dev/null
echo 530602 >"$work/jurisdictions"

total=$((WARMUP + SECS))
run() { # name, loadgen args…
  local name=$1; shift
  "$LOADGEN" run --addr "$MINSHENG_LISTEN" --warmup 0 --duration "$total" "$@" >"$work/$name.json" 2>&1 &
  pids+=($!)
}
run create --stage create --token "$TOKEN" --connections 2 --input "$work/jurisdictions" --categories drinking_water
run list --stage path --token "$TOKEN" --connections 1 --path '/api/v1/cases?limit=50'
run stats --stage path --token "$TOKEN" --connections 1 --path '/api/v1/stats/summary'
run healthz --stage healthz --connections 1
run abuse --stage path --connections 2 --path '/api/v1/me'

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$server/status"; }
echo "soak: $SECS s of load after $WARMUP s of warm-up, sampling every $SAMPLE s (pid $server, $DATABASE_URL)"
printf '%8s %10s %10s %12s\n' elapsed rss_mib in_flight requests
start=$(date +%s)
baseline=""
peak=0
samples=()
while :; do
  sleep "$SAMPLE"
  now=$(( $(date +%s) - start ))
  rss=$(rss_kib)
  metrics=$(curl -sf "$BASE/metrics" || true)
  inflight=$(awk '/^minsheng_http_requests_in_flight / {print $2}' <<<"$metrics")
  requests=$(awk '/^minsheng_http_requests_total/ {s += $2} END {print s+0}' <<<"$metrics")
  printf '%8s %10.1f %10s %12s\n' "$now" "$(awk -v k="$rss" 'BEGIN {print k/1024}')" "${inflight:-?}" "$requests"
  if [ "$now" -ge "$WARMUP" ]; then
    if [ -z "$baseline" ]; then baseline=$rss; fi
    samples+=("$rss")
    [ "$rss" -gt "$peak" ] && peak=$rss
  fi
  [ "$now" -ge "$total" ] && break
done
for p in "${pids[@]}"; do wait "$p" || true; done
pids=()

echo "loadgen results:"
for name in create list stats healthz abuse; do
  # The abuse stage's "errors" are its expected 401 and 429 answers.
  filter='{rps, p50_ms, p99_ms, errors, error_samples: (.error_samples // [] | map(.[0:120]))}'
  [ "$name" = abuse ] && filter='{answered_401_or_429: .errors}'
  printf '  %-8s ' "$name"; jq -c "$filter" "$work/$name.json" 2>/dev/null || head -c 300 "$work/$name.json"
done
rejected=$(curl -sf "$BASE/metrics" | grep '^minsheng_http_rejected_total' | tr '\n' ' ')
echo "refusals: $rejected"
n=${#samples[@]}
third=$(( n / 3 > 0 ? n / 3 : 1 ))
first=$(printf '%s\n' "${samples[@]:0:$third}" | awk '{s+=$1} END {print s/NR}')
last=$(printf '%s\n' "${samples[@]: -$third}" | awk '{s+=$1} END {print s/NR}')
growth=$(( (peak - baseline) / 1024 ))
echo "rss after warm-up: $((baseline / 1024)) MiB; peak $((peak / 1024)) MiB (+$growth MiB);" \
     "mean of first third $(awk -v k="$first" 'BEGIN {printf "%.1f", k/1024}') MiB, last third $(awk -v k="$last" 'BEGIN {printf "%.1f", k/1024}') MiB"
if grep -q '"level":"ERROR"' "$work/server.log"; then
  echo "soak: the server logged errors:"; grep '"level":"ERROR"' "$work/server.log" | head -5
  exit 1
fi
if [ "$growth" -gt "$MAX_GROWTH_MIB" ]; then
  echo "soak: FAILED — memory grew by $growth MiB after warm-up (bound $MAX_GROWTH_MIB MiB)"
  exit 1
fi
echo "soak: ok — memory stayed within $MAX_GROWTH_MIB MiB of its post-warm-up level"
