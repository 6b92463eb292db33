#!/usr/bin/env bash
# bench/stats-probe.sh DATABASE_URL LABEL — single-request latency of the statistics endpoints on an
# already seeded database (`minsheng seed-demo --cases 1000000`): each path 25 times, one at a
# time, median and 90th percentile of curl's time_total; then the service's peak RSS. Uses the
# release binary (cargo build --release), makes an admin `probe.admin` and a supervisor of the
# province `probe.supervisor` (530000) if there are none, and asks as the supervisor.
# docs/BENCHMARKS.md, runs 4 (as an admin of the whole tree) and 6, were taken with it.
set -euo pipefail
BIN=$(cd "$(dirname "$0")/.." && pwd)/target/release/minsheng
export DATABASE_URL=$1 RUST_LOG=warn MINSHENG_RATE_LIMIT_PER_SEC=0 MINSHENG_ARGON2_MEMORY_KIB=64
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export MINSHENG_LISTEN=127.0.0.1:$PORT
$BIN create-admin --username probe.admin --password 'Probe-Admin-Password-2026' >/dev/null 2>&1 || true
taskset -c 0 $BIN serve > ${TMPDIR:-/tmp}/stats-probe-$2.log 2>&1 &
PID=$!
trap 'kill $PID' EXIT
for _ in $(seq 1 300); do curl -sf http://$MINSHENG_LISTEN/readyz >/dev/null 2>&1 && break; sleep 0.1; done
ADMIN=$(curl -sf http://$MINSHENG_LISTEN/api/v1/auth/login -H 'Content-Type: application/json' \
  -d '{"username":"probe.admin","password":"Probe-Admin-Password-2026"}' | jq -r .access_token)
# As the harness does: a supervisor of the province (530000), so every query carries the scope.
curl -s http://$MINSHENG_LISTEN/api/v1/users -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
  -d '{"username":"probe.supervisor","password":"Probe-Supervisor-2026","role":"supervisor","jurisdiction_code":"530000"}' >/dev/null
TOKEN=$(curl -sf http://$MINSHENG_LISTEN/api/v1/auth/login -H 'Content-Type: application/json' \
  -d '{"username":"probe.supervisor","password":"Probe-Supervisor-2026"}' | jq -r .access_token)
for path in /api/v1/stats/summary '/api/v1/stats/breakdown?by=jurisdiction' '/api/v1/stats/breakdown?by=category' \
    '/api/v1/stats/breakdown?by=month' '/api/v1/stats/breakdown?by=department' '/api/v1/stats/breakdown?by=programme' '/api/v1/stats/summary?from=2026-06&to=2026-09' \
    '/api/v1/stats/summary?category_code=drinking_water' '/api/v1/stats/breakdown?by=jurisdiction&jurisdiction_code=530100'; do
  curl -sf "http://$MINSHENG_LISTEN$path" -H "Authorization: Bearer $TOKEN" -o ${TMPDIR:-/tmp}/stats-probe-body.json || { echo "FAIL $path"; continue; }
  ts=$(for i in $(seq 1 25); do curl -s -o /dev/null -w '%{time_total}\n' "http://$MINSHENG_LISTEN$path" -H "Authorization: Bearer $TOKEN"; done | sort -n)
  med=$(echo "$ts" | sed -n 13p); p90=$(echo "$ts" | sed -n 23p)
  echo "$2 $path median_ms=$(awk -v t=$med 'BEGIN{printf "%.1f", t*1000}') p90_ms=$(awk -v t=$p90 'BEGIN{printf "%.1f", t*1000}') bytes=$(wc -c < ${TMPDIR:-/tmp}/stats-probe-body.json)"
done
echo "$2 rss_kib=$(awk '/VmHWM/{print $2}' /proc/$PID/status)"
