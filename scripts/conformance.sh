#!/usr/bin/env bash
# Conformance: runs Schemathesis against the served contract on a freshly seeded service, per
# backend and per identity. See docs/CONFORMANCE.md.
#
#   bash scripts/conformance.sh               # both backends
#   bash scripts/conformance.sh sqlite        # one backend
#   MINSHENG_BIN=target/debug/minsheng bash scripts/conformance.sh sqlite
#
# Exits non-zero if any run has a failure, if an identity lost its credentials for good, or if the
# service died.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

SCHEMATHESIS_VERSION=4.32.5
SCHEMATHESIS=${SCHEMATHESIS:-schemathesis}
MAX_EXAMPLES=${CONFORMANCE_MAX_EXAMPLES:-30}
IDENTITIES=${CONFORMANCE_IDENTITIES:-"client caseworker admin"}
PG_SERVER=${MINSHENG_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}
PG_SERVER=${PG_SERVER%/*}   # the server, without the database name

backends=("$@")
[ ${#backends[@]} -gt 0 ] || backends=(sqlite postgres)
for b in "${backends[@]}"; do
  case "$b" in sqlite | postgres) ;; *) echo "unknown backend: $b (sqlite, postgres)" >&2; exit 2 ;; esac
done

for tool in curl jq python3 "$SCHEMATHESIS"; do
  command -v "$tool" >/dev/null 2>&1 || { echo "conformance: $tool is needed" >&2; exit 2; }
done
have=$("$SCHEMATHESIS" --version | awk '{print $NF}')
if [ "$have" != "$SCHEMATHESIS_VERSION" ]; then
  echo "conformance: Schemathesis $SCHEMATHESIS_VERSION is pinned, found $have" >&2
  echo "  pip install schemathesis==$SCHEMATHESIS_VERSION" >&2
  exit 2
fi

if [ -z "${MINSHENG_BIN:-}" ]; then
  cargo build --release --locked --quiet
  MINSHENG_BIN="${CARGO_TARGET_DIR:-target}/release/minsheng"
fi
BIN=$(realpath "$MINSHENG_BIN")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/minsheng-conformance.XXXXXX")
SERVER_PID=""
PG_DB=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  if [ -n "$PG_DB" ]; then psql "$PG_SERVER/postgres" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true; fi
  if [ -z "${CONFORMANCE_KEEP:-}" ]; then rm -rf "$WORK"; else echo "kept $WORK"; fi
}
trap cleanup EXIT

ADMIN_PASSWORD='Conformance-Admin-2026'
CASEWORKER_PASSWORD='Water-Bureau-2026'

# ---------------------------------------------------------------- the service
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The service's environment for the run (see docs/CONFORMANCE.md for each setting).
export MINSHENG_JWT_SECRET=conformance-secret-0123456789abcdef
export MINSHENG_ACCESS_TOKEN_TTL_SECS=86400
export MINSHENG_ARGON2_MEMORY_KIB=1024
export MINSHENG_ARGON2_ITERATIONS=1
export MINSHENG_SESSION_CHECK_SECS=0
export MINSHENG_API_KEY_CACHE_SECS=0
# Schemathesis guesses the current password (POST /me/password) and fuzzes sign-ins from one
# address; with the production limits that locks the run's own identities out of signing in again.
export MINSHENG_LOGIN_MAX_FAILURES=1000000
export MINSHENG_LOGIN_MAX_FAILURES_PER_ADDRESS=1000000
# Per-client rate limits (when the service has them) would answer the fuzzer 429 after its first
# burst and leave most operations untested; `0` turns them off. They are tested in tests/api.
export MINSHENG_RATE_LIMIT_PER_SEC=0
# The body limit, stated so that conformance/hooks.py holds every 413 to the same number.
export MINSHENG_MAX_BODY_BYTES=65536
export RUST_LOG=${RUST_LOG:-info}

start_server() { # start_server BACKEND — fresh database, server on a free port; sets BASE
  local backend=$1 dir="$WORK/$1"
  mkdir -p "$dir"
  if [ "$backend" = sqlite ]; then
    export DATABASE_URL="$dir/minsheng.db"
  else
    PG_DB="minsheng_conformance_$$_$RANDOM"
    psql "$PG_SERVER/postgres" -qc "CREATE DATABASE $PG_DB" >/dev/null
    export DATABASE_URL="$PG_SERVER/$PG_DB"
  fi
  local port
  port=$(free_port)
  export MINSHENG_LISTEN="127.0.0.1:$port"
  BASE="http://127.0.0.1:$port"
  "$BIN" migrate >/dev/null
  "$BIN" create-admin --username conf.admin --password "$ADMIN_PASSWORD" >/dev/null
  "$BIN" serve >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    curl -sf "$BASE/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "conformance: the service did not start; its log:" >&2
  tail -n 50 "$dir/server.log" >&2
  exit 1
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  if [ -n "$PG_DB" ]; then
    psql "$PG_SERVER/postgres" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null
    PG_DB=""
  fi
}

# ---------------------------------------------------------------- seeding
JSON='Content-Type: application/json'
api() { # api METHOD PATH TOKEN [BODY] — fails loudly on anything but 2xx, prints the body
  local method=$1 path=$2 token=$3 body=${4:-} out status
  out=$(mktemp -p "$WORK")
  if [ -n "$body" ]; then
    status=$(curl -s -o "$out" -w '%{http_code}' -X "$method" "$BASE$path" \
      -H "Authorization: Bearer $token" -H "$JSON" -d "$body")
  else
    status=$(curl -s -o "$out" -w '%{http_code}' -X "$method" "$BASE$path" -H "Authorization: Bearer $token")
  fi
  if [ "${status:0:1}" != 2 ]; then
    echo "conformance: seeding failed: $method $path answered $status: $(cat "$out")" >&2
    exit 1
  fi
  cat "$out"
  rm -f "$out"
}
login() { # login USER PASSWORD — a new session's access token
  curl -sf "$BASE/api/v1/auth/login" -H "$JSON" -d "{\"username\":\"$1\",\"password\":\"$2\"}" | jq -er .access_token
}
act() { # act TOKEN CASE ACTION BODY
  api POST "/api/v1/cases/$2/actions/$3" "$1" "$4" >/dev/null
}
new_case() { # new_case TOKEN TITLE [EXTRA_JSON] — prints the id
  local extra=${3:-} id
  id=$(api POST /api/v1/cases "$1" "{
    \"kind\": \"complaint\", \"channel\": \"hotline\", \"title\": \"$2\",
    \"description\": \"$2。来电人反映情况属实，请尽快处理。\",
    \"category_code\": \"drinking_water\", \"jurisdiction_code\": \"530602\",
    \"complainant\": {\"name\": \"张三丰\", \"phone\": \"13812345678\"},
    \"location\": {\"address\": \"云南省昭通市昭阳区凤凰街道某村\", \"lat\": 27.3382, \"lon\": 103.7172}
    $extra}" | jq -er .id)
  remember cases "$id"
  echo "$id"
}

IDS=""
remember() { # remember DICTIONARY VALUE — a seeded id for Schemathesis to draw from
  printf '"%s"\n' "$2" >>"$IDS/$1.dict"
}

seed() {
  local admin sup worker water housing education programme client
  IDS="$WORK/$1/ids"
  mkdir -p "$IDS"
  admin=$(login conf.admin "$ADMIN_PASSWORD")
  for j in '{"code":"530000","name":"云南省"}' \
           '{"code":"530600","name":"昭通市","parent_code":"530000"}' \
           '{"code":"530602","name":"昭阳区","parent_code":"530600"}' \
           '{"code":"530621","name":"鲁甸县","parent_code":"530600"}'; do
    remember jurisdictions "$(api POST /api/v1/jurisdictions "$admin" "$j" | jq -er .code)"
  done
  water=$(api POST /api/v1/departments "$admin" '{"name":"区水务局","jurisdiction_code":"530602"}' | jq -er .id)
  housing=$(api POST /api/v1/departments "$admin" '{"name":"区住建局","jurisdiction_code":"530602"}' | jq -er .id)
  education=$(api POST /api/v1/departments "$admin" '{"name":"县教育局","jurisdiction_code":"530621"}' | jq -er .id)
  for d in "$water" "$housing" "$education"; do remember departments "$d"; done
  for c in '{"code":"drinking_water","name":"饮水安全","deadline_days":15}' \
           '{"code":"housing","name":"住房保障","deadline_days":30}' \
           '{"code":"education","name":"教育","deadline_days":20}'; do
    remember categories "$(api POST /api/v1/categories "$admin" "$c" | jq -er .code)"
  done
  programme=$(api POST /api/v1/programmes "$admin" \
    '{"name":"2026年昭阳区为民办实事项目清单","year":2026,"jurisdiction_code":"530602","description":"区政府2026年承诺办理的民生实事。"}' \
    | jq -er .id)
  remember programmes "$programme"
  local u
  for u in \
    '{"username":"li.duban","password":"Duban-Office-2026","role":"supervisor","jurisdiction_code":"530602","display_name":"李督办"}' \
    "{\"username\":\"wang.shuiwu\",\"password\":\"$CASEWORKER_PASSWORD\",\"role\":\"caseworker\",\"jurisdiction_code\":\"530602\",\"department_id\":\"$water\",\"display_name\":\"王水务\"}" \
    "{\"username\":\"wangjian.swj\",\"password\":\"Zhaoyang-2026-water\",\"role\":\"caseworker\",\"jurisdiction_code\":\"530602\",\"department_id\":\"$water\",\"display_name\":\"王健\"}" \
    '{"username":"zhao.chakan","password":"Viewer-Only-2026","role":"viewer","jurisdiction_code":"530602"}'; do
    # (wangjian.swj is the contract's own sign-in example, so that example signs in.)
    remember users "$(api POST /api/v1/users "$admin" "$u" | jq -er .id)"
  done
  client=$(api POST /api/v1/api-clients "$admin" \
    '{"name":"云南省12345政务服务便民热线平台","jurisdiction_code":"530602","scopes":["cases:create","cases:read_own","cases:comment","webhooks:manage"]}')
  sup=$(login li.duban 'Duban-Office-2026')
  worker=$(login wang.shuiwu "$CASEWORKER_PASSWORD")
  local key
  key=$(jq -er .key <<<"$client")
  remember api_clients "$(jq -er .id <<<"$client")"

  # Cases in every state, three of each (a successful action moves a case on): received,
  # assigned, acknowledged, resolved, verified, closed, dismissed; one under the programme; and
  # two pushed in by the client.
  local c n
  for n in 1 2 3; do
    new_case "$worker" "村里自来水停水三天（$n）" >/dev/null
    c=$(new_case "$sup" "小区二次供水水压不足（$n）")
    act "$sup" "$c" assign "{\"department_id\":\"$water\",\"note\":\"请三日内处理\"}"
    c=$(new_case "$sup" "水表漏水无人维修（$n）")
    act "$sup" "$c" assign "{\"department_id\":\"$water\"}"
    act "$worker" "$c" acknowledge '{}'
    c=$(new_case "$sup" "自来水管道破裂漏水（$n）")
    act "$sup" "$c" assign "{\"department_id\":\"$water\"}"
    act "$worker" "$c" resolve '{"resolution":"已抢修管道，恢复供水"}'
    c=$(new_case "$sup" "饮用水浑浊有异味（$n）")
    act "$sup" "$c" assign "{\"department_id\":\"$water\"}"
    act "$worker" "$c" resolve '{"resolution":"已清洗蓄水池并检测合格"}'
    act "$sup" "$c" verify '{"satisfaction":"satisfied","note":"电话回访，群众满意"}'
    c=$(new_case "$sup" "村组饮水工程未完工（$n）")
    act "$sup" "$c" assign "{\"department_id\":\"$water\"}"
    act "$worker" "$c" resolve '{"resolution":"工程已完工并通水"}'
    act "$sup" "$c" verify '{"satisfaction":"basically_satisfied"}'
    act "$sup" "$c" close '{"note":"同意销号"}'
    c=$(new_case "$sup" "重复来电反映停水（$n）")
    act "$sup" "$c" dismiss '{"outcome":"withdrawn","reason":"来电人撤回诉求"}'
  done
  c=$(new_case "$sup" "危房改造进度缓慢" ", \"kind\": \"project\", \"programme_id\": \"$programme\", \"category_code\": \"housing\"")
  act "$sup" "$c" assign "{\"department_id\":\"$housing\"}"
  c=$(new_case "$key" "省12345平台转办：停水" ", \"channel\": \"integration\", \"external\": {\"source\": \"yn12345\", \"id\": \"YN-2026-0001\"}")
  act "$key" "$c" comment '{"text":"省平台已告知来电人受理情况"}'
  new_case "$key" "省12345平台转办：水费争议" ", \"channel\": \"integration\", \"external\": {\"source\": \"yn12345\", \"id\": \"YN-2026-0002\"}" >/dev/null

  # Refresh tokens of live sessions (of the contract's example user, who is none of the run's
  # identities) for POST /auth/refresh to draw from: each works once, then reads as a reuse.
  for n in 1 2 3 4 5 6 7 8; do
    curl -sf "$BASE/api/v1/auth/login" -H "$JSON" -d '{"username":"wangjian.swj","password":"Zhaoyang-2026-water"}' \
      | jq -er .refresh_token | while read -r t; do remember refresh_tokens "$t"; done
  done

  # A session of each person's own for `POST /auth/logout`, so logging out does not end the
  # session the run signs in with.
  ADMIN_LOGOUT_TOKEN=$(login conf.admin "$ADMIN_PASSWORD")
  CASEWORKER_LOGOUT_TOKEN=$(login wang.shuiwu "$CASEWORKER_PASSWORD")
  CLIENT_KEY=$key
}

# ---------------------------------------------------------------- the runs
declare -a SUMMARY=()
failed=0

run_schemathesis() { # run_schemathesis BACKEND IDENTITY
  local backend=$1 identity=$2 config out report rc=0 started
  config="$WORK/$backend/$identity.toml"
  cp "$ROOT/conformance/schemathesis.toml" "$config"
  local -a auth=()
  case "$identity" in
    admin | caseworker)
      # People sign in through the API, and sign in again whenever a legitimate operation ends
      # the session under test (see docs/CONFORMANCE.md, "Sessions").
      cat >>"$config" <<'TOML'

[auth.dynamic.openapi.bearerAuth]
path = "/api/v1/auth/login"
payload = { username = "${CONFORMANCE_USERNAME}", password = "${CONFORMANCE_PASSWORD}" }
extract_selector = "/access_token"
TOML
      ;;
    client) auth=(--header "Authorization: Bearer $CLIENT_KEY") ;;
  esac
  case "$identity" in
    admin) export CONFORMANCE_USERNAME=conf.admin CONFORMANCE_PASSWORD=$ADMIN_PASSWORD MINSHENG_LOGOUT_TOKEN=$ADMIN_LOGOUT_TOKEN ;;
    caseworker) export CONFORMANCE_USERNAME=wang.shuiwu CONFORMANCE_PASSWORD=$CASEWORKER_PASSWORD MINSHENG_LOGOUT_TOKEN=$CASEWORKER_LOGOUT_TOKEN ;;
    client) export CONFORMANCE_USERNAME= CONFORMANCE_PASSWORD= MINSHENG_LOGOUT_TOKEN=$CLIENT_KEY ;;
  esac
  out="$WORK/$backend/schemathesis-$identity.txt"
  report="$WORK/$backend/report-$identity"
  echo "==> $backend / $identity: schemathesis run ($MAX_EXAMPLES examples per operation)"
  started=$(date +%s)
  SCHEMATHESIS_HOOKS="$ROOT/conformance/hooks.py" "$SCHEMATHESIS" --config-file "$config" run \
    "$BASE/api/v1/openapi.json" --url "$BASE" \
    --checks all \
    --max-examples "$MAX_EXAMPLES" \
    "${auth[@]}" \
    --seed "${CONFORMANCE_SEED:-$RANDOM}" \
    --no-color \
    --report junit,json --report-dir "$report" \
    ${CONFORMANCE_EXTRA_ARGS:-} 2>&1 | tee "$out" || rc=$?
  local elapsed=$(($(date +%s) - started))
  # A run whose identity lost its credentials for good has tested little after that point.
  local broke
  broke=$(jq -r '[.. | objects | select(has("reauth_broke")) | .reauth_broke] | any' "$report"/*.json 2>/dev/null || echo unknown)
  local line alive=yes
  line=$(grep -E '^=+ .* in [0-9.]+s =+$' "$out" | tail -n 1 | tr -s '=' | sed 's/^= //; s/ =$//' || true)
  kill -0 "$SERVER_PID" 2>/dev/null || alive=no
  # For the record: operations that accepted no generated request (2xx) in the examples, coverage
  # and fuzzing phases (the report does not count the stateful phase here).
  local unaccepted
  unaccepted=$(jq -r '.valid_rates // {} | to_entries[]
      | select([.value[] | .accepted] | add == 0) | .key' "$report"/json-*.json 2>/dev/null | paste -sd, - || true)
  [ -z "$unaccepted" ] || echo "    no 2xx as $identity outside the stateful phase: $unaccepted"
  if [ "$rc" -ne 0 ] || [ "$broke" != false ] || [ "$alive" != yes ]; then
    failed=1
    SUMMARY+=("FAIL $backend/$identity (${elapsed}s, exit $rc, credentials lost: $broke, service up: $alive): $line")
    echo "--- errors in the service log ($WORK/$backend/server.log):"
    grep '"level":"ERROR"' "$WORK/$backend/server.log" | tail -n 10 || true
  else
    SUMMARY+=("ok   $backend/$identity (${elapsed}s): $line")
  fi
}

for backend in "${backends[@]}"; do
  start_server "$backend"
  seed "$backend"
  for identity in $IDENTITIES; do
    run_schemathesis "$backend" "$identity"
  done
  stop_server
done

echo
echo "==> conformance summary (Schemathesis $SCHEMATHESIS_VERSION, $MAX_EXAMPLES examples per operation)"
printf '  %s\n' "${SUMMARY[@]}"
exit "$failed"
