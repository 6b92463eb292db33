#!/usr/bin/env bash
# bench/run.sh — Minsheng's bench harness, one command (docs/BENCHMARKS.md explains every figure).
#
#   bench/run.sh [--quick] [--backend sqlite|postgres|both] [--duration S] [--warmup S]
#                [--connections N] [--cases N] [--out DIR]
#
# Builds the release binary and the two bench tools, then for each backend:
#   A. a fresh database seeded with `minsheng seed-demo` (100k cases; --quick 20k), the service
#      started on a free loopback port, a supervisor of the whole province signed in; then, each
#      API figure immediately followed by its limit (the same SQL work without the service):
#        create  POST /api/v1/cases (own Idempotency-Key)   | limit: pgbench create.sql / sqlite-limit create
#        act     POST …/actions/assign with If-Match       | limit: pgbench act.sql    / sqlite-limit act
#        get     GET /api/v1/cases/{id} over the seeded ids | limit: pgbench get.sql    / sqlite-limit get
#      beside them, SQLite's create limit without the kept sums, and the floor under get (/healthz:
#      HTTP alone; /readyz: HTTP and one trivial unit of work), each as a share of get's limit;
#      and the statistics (summary, breakdown by jurisdiction) at this size;
#   B. a second fresh database seeded with --cases (1,000,000; --quick 100k), timed; the list
#      (first page and a page deep in, two filters) and the statistics again at this size.
#   Cold start to ready on an empty SQLite database; the service's peak RSS; load average, CPU
#   steal and the whole machine's busy time beside every figure.
#
# Pinning (2 cores): the service runs on CPU $BENCH_CPU_SERVICE (0), the load generator and
# pgbench on CPU $BENCH_CPU_LOAD (1); sqlite-limit, which does the service's database work
# in-process, runs where the service runs (CPU 0). PostgreSQL is shared with other users of the
# machine and is not pinned (the harness never touches the server's processes or settings).
#
# Needs: cargo, python3 (a free port), curl, jq, sqlite3, and for PostgreSQL psql, createdb,
# dropdb, pgbench and a server at $MINSHENG_BENCH_PG (postgres://postgres@127.0.0.1:5432).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUICK=0
BACKENDS="sqlite postgres"
DURATION=""
WARMUP=""
CONNECTIONS=8
CASES=""
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --backend) BACKENDS=$2; [ "$BACKENDS" = both ] && BACKENDS="sqlite postgres"; shift ;;
    --duration) DURATION=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --connections) CONNECTIONS=$2; shift ;;
    --cases) CASES=$2; shift ;;
    --out) OUT=$2; shift ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ "$QUICK" = 1 ]; then
  SMALL=${BENCH_SMALL:-20000}; CASES=${CASES:-100000}; DURATION=${DURATION:-5}; WARMUP=${WARMUP:-1}; STATS_DURATION=3
else
  SMALL=${BENCH_SMALL:-100000}; CASES=${CASES:-1000000}; DURATION=${DURATION:-15}; WARMUP=${WARMUP:-3}; STATS_DURATION=8
fi
CPU_SERVICE=${BENCH_CPU_SERVICE:-0}
CPU_LOAD=${BENCH_CPU_LOAD:-1}
PG_BASE=${MINSHENG_BENCH_PG:-postgres://postgres@127.0.0.1:5432}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${OUT:-$ROOT/target/bench/$STAMP}
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/minsheng-bench.XXXXXX")
PG_DBS=()
SERVICE_PID=""
PORT=0

cleanup() {
  [ -n "$SERVICE_PID" ] && kill "$SERVICE_PID" 2>/dev/null && wait "$SERVICE_PID" 2>/dev/null
  for db in "${PG_DBS[@]}"; do dropdb --if-exists --force -d "$PG_BASE/postgres" "$db" 2>/dev/null || \
    psql -q "$PG_BASE/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

log() { echo "[bench $(date -u +%H:%M:%S)] $*" >&2; }

# ---------------------------------------------------------------------------------------------
# Build (reuses target/; the bench tools have their own workspaces, built into target/bench-tools).
# Both from the root, so that `.cargo/config.toml` (the bundled SQLite's compile options) applies
# to the service and to sqlite-limit alike.
log "building (release)"
(cd "$ROOT" && cargo build --release --quiet --bin minsheng)
for tool in loadgen sqlite-limit; do
  (cd "$ROOT" && cargo build --release --quiet --manifest-path "bench/$tool/Cargo.toml" --target-dir target/bench-tools)
done
BIN=$ROOT/target/release/minsheng
LOADGEN=$ROOT/target/bench-tools/release/loadgen
SQLITE_LIMIT=$ROOT/target/bench-tools/release/sqlite-limit
COMMIT=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(cd "$ROOT" && git status --porcelain 2>/dev/null | grep -qv '^??' && echo "+dirty" || true)

# ---------------------------------------------------------------------------------------------
# The machine beside every figure: load average, and over the stage the whole machine's busy
# share and CPU steal, from /proc.
cpu_sample() { awk '/^cpu /{t=0; for(i=2;i<=NF;i++) t+=$i; print t, $5+$6, $9; exit}' /proc/stat; }
STAGE_CPU0=""
stage_begin() { STAGE_CPU0=$(cpu_sample); }
# record BACKEND STAGE KIND JSON — adds the machine's figures and appends to results.jsonl.
record() {
  local backend=$1 stage=$2 kind=$3 json=$4 t0 i0 s0 t1 i1 s1
  read -r t0 i0 s0 <<<"$STAGE_CPU0"
  read -r t1 i1 s1 <<<"$(cpu_sample)"
  local busy steal load
  busy=$(awk -v t="$((t1 - t0))" -v i="$((i1 - i0))" 'BEGIN{printf "%.1f", (t > 0 ? 100 * (t - i) / t : 0)}')
  steal=$(awk -v t="$((t1 - t0))" -v s="$((s1 - s0))" 'BEGIN{printf "%.1f", (t > 0 ? 100 * s / t : 0)}')
  load=$(cut -d' ' -f1 /proc/loadavg)
  jq -c --arg b "$backend" --arg s "$stage" --arg k "$kind" --arg c "$COMMIT$DIRTY" \
    --argjson busy "$busy" --argjson steal "$steal" --argjson load "$load" \
    '. + {backend: $b, name: $s, kind: $k, commit: $c, machine_busy_pct: $busy, steal_pct: $steal, load1: $load,
          at: (now | todate)}' <<<"$json" | tee -a "$RESULTS" >&2
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Service environment: rate limits off, a token that outlives the run, logs to a file.
service_env() {
  export DATABASE_URL=$1 MINSHENG_LISTEN=127.0.0.1:$PORT MINSHENG_RATE_LIMIT_PER_SEC=0
  export MINSHENG_ACCESS_TOKEN_TTL_SECS=7200 RUST_LOG=${BENCH_RUST_LOG:-info}
}

start_service() { # start_service URL LOGFILE
  PORT=$(free_port)
  service_env "$1"
  taskset -c "$CPU_SERVICE" "$BIN" serve >"$2" 2>&1 &
  SERVICE_PID=$!
  for _ in $(seq 1 300); do
    curl -sf "http://$MINSHENG_LISTEN/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "the service did not become ready; see $2" >&2
  exit 1
}

stop_service() { # stop_service BACKEND DATASET — records the peak RSS first, and what is resident now:
  # anonymous memory (heap, stacks, SQLite's page caches) and file-backed pages (the binary, and
  # on SQLite the mapped WAL index, which grows with the log while writes never pause)
  local status
  status=$(cat "/proc/$SERVICE_PID/status")
  stage_begin
  record "$1" "peak_rss_$2" rss "$(echo "$status" | awk '/^(VmHWM|RssAnon|RssFile|RssShmem):/{v[$1]=$2/1024}
    END{printf "{\"peak_rss_mib\": %.1f, \"rss_anon_mib\": %.1f, \"rss_file_mib\": %.1f, \"rss_shmem_mib\": %.1f}",
        v["VmHWM:"], v["RssAnon:"], v["RssFile:"], v["RssShmem:"]}')"
  kill "$SERVICE_PID"
  wait "$SERVICE_PID" 2>/dev/null || true
  SERVICE_PID=""
}

api() { # api METHOD PATH TOKEN [BODY]
  curl -sf -X "$1" "http://$MINSHENG_LISTEN$2" -H "Authorization: Bearer $3" -H 'Content-Type: application/json' \
    ${4:+-d "$4"}
}

ADMIN_PASSWORD='Bench-Admin-Password-2026'
SUP_PASSWORD='Bench-Supervisor-2026'
# sign_in — the admin (made by create-admin before the service starts) makes a supervisor of the
# whole province; exports SUP (its token), SUP_ID, SUP_NAME.
sign_in() {
  local admin
  admin=$(curl -sf "http://$MINSHENG_LISTEN/api/v1/auth/login" -H 'Content-Type: application/json' \
    -d "{\"username\":\"bench.admin\",\"password\":\"$ADMIN_PASSWORD\"}" | jq -r .access_token)
  api POST /api/v1/users "$admin" \
    "{\"username\":\"bench.duban\",\"password\":\"$SUP_PASSWORD\",\"role\":\"supervisor\",\"jurisdiction_code\":\"530000\"}" \
    >"$WORK/sup.json"
  SUP_ID=$(jq -r .id "$WORK/sup.json")
  SUP_NAME=$(jq -r '.display_name // .username' "$WORK/sup.json")
  SUP=$(curl -sf "http://$MINSHENG_LISTEN/api/v1/auth/login" -H 'Content-Type: application/json' \
    -d "{\"username\":\"bench.duban\",\"password\":\"$SUP_PASSWORD\"}" | jq -r .access_token)
}

CATEGORIES=education,healthcare,elderly_childcare,drinking_water,transport,housing,employment,environment,petitions,other

# loadgen with the service's and PostgreSQL's CPU watched, pinned beside the service.
loadgen() { taskset -c "$CPU_LOAD" "$LOADGEN" run --addr "$MINSHENG_LISTEN" --token "$SUP" \
  --connections "$CONNECTIONS" --duration "$DURATION" --warmup "$WARMUP" --watch "service=$SERVICE_PID" \
  --watch-comm postgres "$@"; }

# sqlite-limit at the API figures' concurrency and durations, pinned where the service runs.
sqlite_limit() { taskset -c "$CPU_SERVICE" "$SQLITE_LIMIT" --db "$DB_PATH" --connections "$CONNECTIONS" \
  --duration "$DURATION" --warmup "$WARMUP" "$@"; }

# The query the harness runs on the bench database: sqlite3 or psql.
sql() { if [ "$BACKEND" = sqlite ]; then sqlite3 -batch -separator " " "$DB_PATH" "$1"; else psql -qAt -F ' ' "$DB_URL" -c "$1"; fi; }

# seed BACKEND URL CASES LABEL — a fresh database with the demo province; timed.
seed() {
  local started elapsed
  service_env "$2"
  stage_begin
  started=$(date +%s.%N)
  taskset -c "$CPU_SERVICE" "$BIN" seed-demo --cases "$3" >"$OUT/$1-seed-$4.log" 2>&1
  elapsed=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}')
  MINSHENG_ARGON2_MEMORY_KIB=8192 MINSHENG_ARGON2_ITERATIONS=1 \
    "$BIN" create-admin --username bench.admin --password "$ADMIN_PASSWORD" >/dev/null
  record "$1" "seed_$4" seed "{\"cases\": $3, \"seconds\": $elapsed, \"cases_per_s\": $(awk -v n="$3" -v s="$elapsed" 'BEGIN{printf "%.0f", n / s}')}"
}

# stats BACKEND LABEL — the province-wide summary and breakdown, one connection (latency).
stats_stages() {
  local path name
  for name in summary breakdown_jurisdiction breakdown_category; do
    case $name in
      summary) path=/api/v1/stats/summary ;;
      breakdown_jurisdiction) path='/api/v1/stats/breakdown?by=jurisdiction' ;;
      breakdown_category) path='/api/v1/stats/breakdown?by=category' ;;
    esac
    api GET "$path" "$SUP" >"$OUT/$1-$name-$2.json"
    stage_begin
    record "$1" "stats_${name}_$2" api "$(loadgen --stage path --path "$path" --connections 1 --duration "$STATS_DURATION")"
  done
}

# ---------------------------------------------------------------------------------------------
run_backend() {
  BACKEND=$1
  local url_a url_b
  if [ "$BACKEND" = sqlite ]; then
    url_a=$WORK/bench-a.db; url_b=$WORK/bench-b.db
    # Cold start to ready on an empty database (a new file each run).
    PORT=$(free_port)
    service_env "$WORK/cold.db"
    stage_begin
    record sqlite coldstart coldstart "$("$LOADGEN" coldstart --addr "$MINSHENG_LISTEN" --runs 5 --fresh "$WORK/cold.db" \
      -- taskset -c "$CPU_SERVICE" "$BIN" serve)"
  else
    local a=minsheng_bench_${STAMP,,}_a b=minsheng_bench_${STAMP,,}_b
    for db in "$a" "$b"; do
      psql -q "$PG_BASE/postgres" -c "CREATE DATABASE $db" >/dev/null
      PG_DBS+=("$db")
    done
    url_a=$PG_BASE/$a; url_b=$PG_BASE/$b
  fi

  # --- A: writes and reads beside their limits, statistics at the small size.
  log "$BACKEND: seeding $SMALL cases"
  seed "$BACKEND" "$url_a" "$SMALL" small
  DB_PATH=$url_a; DB_URL=$url_a
  start_service "$url_a" "$OUT/$BACKEND-service-a.log"
  sign_in
  sql "SELECT code FROM jurisdictions WHERE depth = 3 ORDER BY code" >"$WORK/townships.txt"
  sql "SELECT id FROM cases ORDER BY id" >"$WORK/ids.txt"

  log "$BACKEND: create"
  stage_begin
  record "$BACKEND" create api "$(loadgen --stage create --input "$WORK/townships.txt" --categories "$CATEGORIES")"
  stage_begin
  if [ "$BACKEND" = sqlite ]; then
    record sqlite create limit "$(sqlite_limit --stage create --user-id "$SUP_ID" --user-name "$SUP_NAME")"
    # The same creates without the kept sums (the statistics' 24 rows): how much of the SQLite
    # limit the kept sums take, so the report shows what the 3,000 /s target is up against.
    stage_begin
    record sqlite create_without_kept_sums limit "$(sqlite_limit --stage create-nostats --user-id "$SUP_ID" \
      --user-name "$SUP_NAME")"
  else
    record postgres create limit "$(pgbench_run create)"
  fi

  # Received cases, each assigned once, to the first department of their county.
  local received
  received="SELECT c.id, (SELECT d.id FROM departments d WHERE d.jurisdiction_code = substr(c.jurisdiction_code, 1, 6)
              ORDER BY d.id LIMIT 1) FROM cases c WHERE c.status = 'received' AND c.version = 1
              AND c.created_by = '$SUP_ID'"
  sql "$received ORDER BY c.id" >"$WORK/received.txt"
  # Enough for either side at twice the faster create rate; topped up (unmeasured) if short.
  local need have
  need=$(jq -s --argjson t "$((DURATION + WARMUP))" --arg b "$BACKEND" \
    '[.[] | select(.backend == $b and .name == "create") | .rps] | max * 2 * $t | ceil' "$RESULTS")
  have=$(wc -l <"$WORK/received.txt")
  if [ "$have" -lt $((2 * need)) ]; then
    log "$BACKEND: $have received cases, $((2 * need)) wanted: topping up"
    if [ "$BACKEND" = sqlite ]; then
      "$SQLITE_LIMIT" --db "$DB_PATH" --stage create --user-id "$SUP_ID" --user-name "$SUP_NAME" \
        --connections "$CONNECTIONS" --warmup 0 \
        --duration "$(jq -s --argjson n "$((2 * need - have))" '[.[] | select(.backend == "sqlite" and .name == "create" and .kind == "limit") | .rps] | first | $n / . * 1.3 + 1 | ceil' "$RESULTS")" >/dev/null
    else
      pgbench -n -M prepared -c "$CONNECTIONS" -t $(((2 * need - have) / CONNECTIONS + 1)) -D user="$SUP_ID" \
        -D username="$SUP_NAME" -f "$ROOT/bench/pgbench/create.sql" "$DB_URL" >/dev/null 2>&1
    fi
    sql "$received ORDER BY c.id" >"$WORK/received.txt"
  fi
  have=$(wc -l <"$WORK/received.txt")
  head -n $((have / 2)) "$WORK/received.txt" >"$WORK/act-api.txt"
  tail -n +$((have / 2 + 1)) "$WORK/received.txt" >"$WORK/act-limit.txt"
  log "$BACKEND: act ($have received cases, half each)"
  stage_begin
  record "$BACKEND" act api "$(loadgen --stage act --input "$WORK/act-api.txt")"
  stage_begin
  if [ "$BACKEND" = sqlite ]; then
    record sqlite act limit "$(sqlite_limit --stage act --input "$WORK/act-limit.txt" --user-id "$SUP_ID" \
      --user-name "$SUP_NAME")"
  else
    psql -q "$DB_URL" -c "CREATE TABLE bench_act (n bigint PRIMARY KEY, case_id text NOT NULL, dept_id text NOT NULL)"
    awk '{print NR "\t" $1 "\t" $2}' "$WORK/act-limit.txt" | psql -q "$DB_URL" -c "COPY bench_act FROM STDIN"
    psql -q "$DB_URL" -c "ANALYZE bench_act"
    record postgres act limit "$(pgbench_run act)"
  fi

  log "$BACKEND: get"
  stage_begin
  record "$BACKEND" get api "$(loadgen --stage get --input "$WORK/ids.txt")"
  stage_begin
  if [ "$BACKEND" = sqlite ]; then
    record sqlite get limit "$(sqlite_limit --stage get --input "$WORK/ids.txt")"
  else
    record postgres get limit "$(pgbench_run get)"
  fi
  # The floor under get, as shares of get's limit: the same HTTP stack and middleware with no
  # database work (`/healthz`), and with one trivial unit of work (`/readyz`: the hop to the
  # blocking pool, a pooled connection, `SELECT 1`, the hop back): no read of the database costs less.
  log "$BACKEND: the floor under get"
  stage_begin
  record "$BACKEND" get_floor_http api "$(loadgen --stage path --path /healthz)"
  stage_begin
  record "$BACKEND" get_floor_unit_of_work api "$(loadgen --stage path --path /readyz)"
  log "$BACKEND: statistics over $SMALL cases"
  stats_stages "$BACKEND" small
  stop_service "$BACKEND" small

  # --- B: the big data set: seeding time, list pages, statistics.
  log "$BACKEND: seeding $CASES cases"
  seed "$BACKEND" "$url_b" "$CASES" big
  DB_PATH=$url_b; DB_URL=$url_b
  start_service "$url_b" "$OUT/$BACKEND-service-b.log"
  sign_in
  # Two filters; a page half-way down the filtered list, reached by its keyset cursor.
  local filter="status = 'closed' AND category_code = 'transport'" qs="status=closed&category_code=transport&limit=50"
  local matching deep micros key cursor
  matching=$(sql "SELECT count(*) FROM cases WHERE $filter")
  if [ "$BACKEND" = sqlite ]; then
    micros="CAST(strftime('%s', created_at) AS INTEGER) * 1000000 + CAST(substr(created_at, 21, 6) AS INTEGER)"
  else
    micros="(extract(epoch FROM created_at) * 1000000)::bigint"
  fi
  deep=$((matching / 2))
  key=$(sql "SELECT ($micros) || '|' || id FROM cases WHERE $filter ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET $deep")
  cursor=$(printf '%s' "$key" | base64 -w0 | tr '+/' '-_' | tr -d '=')
  api GET "/api/v1/cases?$qs&cursor=$cursor" "$SUP" | jq -e '.items | length == 50' >/dev/null
  log "$BACKEND: list ($matching matching cases, deep page at $deep)"
  stage_begin
  record "$BACKEND" list_first api "$(loadgen --stage path --path "/api/v1/cases?$qs")"
  stage_begin
  record "$BACKEND" list_deep api "$(loadgen --stage path --path "/api/v1/cases?$qs&cursor=$cursor")"
  log "$BACKEND: statistics over $CASES cases"
  stats_stages "$BACKEND" big
  stop_service "$BACKEND" big
}

# pgbench_run SCRIPT — the limit on PostgreSQL: the script at the same concurrency, pinned
# where the load generator runs, warm-up cut from its per-transaction log.
pgbench_run() {
  local script=$1 logs=$WORK/pgbench-$1
  rm -rf "$logs"; mkdir -p "$logs"
  (cd "$logs" && taskset -c "$CPU_LOAD" pgbench -n -M prepared -c "$CONNECTIONS" -j 1 \
    -T "$(awk -v d="$DURATION" -v w="$WARMUP" 'BEGIN{printf "%d", d + w + 0.999}')" \
    -D user="$SUP_ID" -D username="$SUP_NAME" -D seq=0 -D nclients="$CONNECTIONS" \
    --log --log-prefix="$logs/tx" -f "$ROOT/bench/pgbench/$script.sql" "$DB_URL" >"$logs/out.txt" 2>&1) || {
    cat "$logs/out.txt" >&2; echo '{"errors": 1, "rps": 0}'; return 0; }
  local failed
  failed=$(awk '/number of failed transactions/{print $5; exit}' "$logs/out.txt")
  "$LOADGEN" pgbench-log --warmup "$WARMUP" "$logs"/tx* | jq -c --argjson f "${failed:-0}" --arg s "$script" \
    '{stage: $s, rps: .tps, p50_ms, p99_ms, requests: .transactions, duration_s, errors: $f}'
}

log "results in $OUT (commit $COMMIT$DIRTY; $(nproc) CPUs; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
for b in $BACKENDS; do run_backend "$b"; done

# ---------------------------------------------------------------------------------------------
# The report: every figure, and each API figure as a share of its limit measured right after it.
jq -rs --arg commit "$COMMIT$DIRTY" '
  def f: if . == null then "-" else (. * 10 | round / 10 | tostring) end;
  "commit \($commit)",
  "backend  stage                          rps      p50ms   p99ms   errors  limit-rps  ratio   gen-cpu%  busy%  steal%  load",
  (group_by(.backend)[] as $b | $b[] | select(.kind == "api") as $a
    | ($b | map(select(.kind == "limit" and .name == ($a.name | sub("_floor_.*$"; "")))) | first) as $l
    | "\($a.backend | .[0:8] | . + " " * (8 - length)) \($a.name | . + " " * (30 - length)) \($a.rps | f)\t\($a.p50_ms | f)\t\($a.p99_ms | f)\t\($a.errors)\t\(if $l then ($l.rps | f) else "-" end)\t\(if $l then ($a.rps / $l.rps * 100 | round | tostring) + "%" else "" end)\t\($a.gen_cpu_pct | f)\t\($a.machine_busy_pct)\t\($a.steal_pct)\t\($a.load1)"),
  (.[] | select(.kind == "limit" and .name == "create_without_kept_sums")
    | "\(.backend) limit of create without the kept sums: \(.rps | f) /s"),
  (.[] | select(.kind == "seed") | "\(.backend) seed \(.name): \(.cases) cases in \(.seconds) s (\(.cases_per_s)/s)"),
  (.[] | select(.kind == "rss") | "\(.backend) \(.name): \(.peak_rss_mib) MiB (at the end: anonymous \(.rss_anon_mib), file \(.rss_file_mib), shared \(.rss_shmem_mib))"),
  (.[] | select(.kind == "coldstart") | "sqlite cold start to ready: median \(.median_ms) ms, max \(.max_ms) ms"),
  (.[] | select(.kind == "limit" and .errors != 0) | "LIMIT ERRORS \(.backend) \(.name): \(.errors)"),
  (.[] | select(.kind == "api" and .errors != 0) | "API ERRORS \(.backend) \(.name): \(.errors) \(.error_samples)")
' "$RESULTS" | tee "$OUT/report.txt"
