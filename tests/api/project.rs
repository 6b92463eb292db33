//! Checks on the project itself: migrations in step, the compose file, the contract, the CLI and
//! the README walkthrough (run for real against the built binary).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::support::{fresh_database, Backend};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn migration_names(backend: &str) -> BTreeSet<String> {
    std::fs::read_dir(root().join("migrations").join(backend))
        .expect("migrations dir")
        .map(|e| e.expect("entry"))
        .filter(|e| e.path().is_dir())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            for f in ["up.sql", "down.sql"] {
                assert!(e.path().join(f).is_file(), "{backend}/{name} lacks {f}");
            }
            name
        })
        .collect()
}

/// The tables a migration creates, less those it rebuilds: SQLite cannot change a table's storage
/// in place, so such a migration renames the table away and creates it anew under its name, where
/// PostgreSQL alters the table (or has nothing to change).
fn created_tables(sql: &str) -> BTreeSet<String> {
    // The first word after `prefix` on each line that has it and passes `keep`.
    let first_words = |prefix: &str, keep: fn(&str) -> bool| -> BTreeSet<String> {
        sql.lines()
            .filter_map(|l| l.trim().strip_prefix(prefix))
            .filter(|rest| keep(rest))
            .map(|rest| rest.split_whitespace().next().unwrap_or("").to_owned())
            .collect()
    };
    let renamed_away = first_words("ALTER TABLE ", |rest| rest.contains(" RENAME TO "));
    first_words("CREATE TABLE ", |_| true).difference(&renamed_away).cloned().collect()
}

#[test]
fn migrations_have_the_same_names_and_tables_on_both_backends() {
    let sqlite = migration_names("sqlite");
    let postgres = migration_names("postgres");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, postgres, "migrations/sqlite and migrations/postgres have drifted");
    for name in &sqlite {
        let read = |b: &str| {
            std::fs::read_to_string(root().join("migrations").join(b).join(name).join("up.sql")).expect("up.sql")
        };
        assert_eq!(
            created_tables(&read("sqlite")),
            created_tables(&read("postgres")),
            "{name} creates different tables"
        );
    }
}

#[test]
fn docker_compose_runs_the_service_against_postgres() {
    let text = std::fs::read_to_string(root().join("docker-compose.yml")).expect("docker-compose.yml");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("valid YAML");
    let services = doc["services"].as_mapping().expect("services");
    let (db_name, db) = services
        .iter()
        .find(|(_, s)| s["image"].as_str().is_some_and(|i| i.starts_with("postgres")))
        .expect("a postgres service");
    let db_name = db_name.as_str().expect("name");
    let app = &doc["services"]["minsheng"];
    assert!(app["build"].is_mapping() || app["build"].is_string(), "the service builds from the Dockerfile");
    assert!(root().join("Dockerfile").is_file());
    let env = &app["environment"];
    let url = env["DATABASE_URL"].as_str().expect("DATABASE_URL in the service's environment");
    assert!(url.starts_with("postgres://"), "{url}");
    let host = url.split('@').nth(1).and_then(|h| h.split([':', '/']).next()).expect("host");
    assert_eq!(host, db_name, "DATABASE_URL must point at the database service");
    let user = db["environment"]["POSTGRES_USER"].as_str().expect("POSTGRES_USER");
    let database = db["environment"]["POSTGRES_DB"].as_str().expect("POSTGRES_DB");
    assert!(url.contains(&format!("//{user}:")) && url.ends_with(&format!("/{database}")), "{url}");
    assert!(env["MINSHENG_LISTEN"].as_str().is_some_and(|l| l.starts_with("0.0.0.0:")));
    let depends = format!("{:?}", app["depends_on"]);
    assert!(depends.contains(db_name), "the service waits for the database");
}

/// `(METHOD, path)` pairs registered in `src/routes/mod.rs`, read token by token in source order
/// (a method belongs to the nearest `resource("…")` before it), whatever the line breaks.
fn registered_routes() -> BTreeSet<(String, String)> {
    let src = std::fs::read_to_string(root().join("src/routes/mod.rs")).expect("routes");
    let body = &src[src.find("pub fn configure").expect("configure")..];
    let mut tokens: Vec<(usize, String)> = Vec::new();
    for (needle, kind) in [("web::scope(\"", "scope"), ("resource(\"", "resource")] {
        for (at, _) in body.match_indices(needle) {
            let rest = &body[at + needle.len()..];
            tokens.push((at, format!("{kind} {}", rest.split('"').next().unwrap_or(""))));
        }
    }
    for (needle, method) in [
        ("web::get()", "GET"),
        ("web::post()", "POST"),
        ("web::patch()", "PATCH"),
        ("web::put()", "PUT"),
        ("web::delete()", "DELETE"),
    ] {
        for (at, _) in body.match_indices(needle) {
            tokens.push((at, format!("method {method}")));
        }
    }
    tokens.sort();
    let (mut scope, mut current, mut routes) = (String::new(), None::<String>, BTreeSet::new());
    for (_, token) in tokens {
        let (kind, value) = token.split_once(' ').expect("token");
        match kind {
            "scope" => scope = value.to_owned(),
            "resource" => {
                current = Some(if ["/healthz", "/readyz", "/docs"].contains(&value) {
                    value.to_owned()
                } else {
                    format!("{scope}{value}")
                })
            }
            _ => {
                routes.insert((value.to_owned(), current.clone().expect("a method before any resource")));
            }
        }
    }
    routes
}

#[test]
fn openapi_describes_exactly_the_registered_routes() {
    let text = std::fs::read_to_string(root().join("openapi/openapi.yaml")).expect("openapi/openapi.yaml");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("valid YAML");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")));
    let mut spec = BTreeSet::new();
    for (path, item) in doc["paths"].as_mapping().expect("paths") {
        for (method, _) in item.as_mapping().expect("path item") {
            let m = method.as_str().expect("method").to_ascii_uppercase();
            if ["GET", "POST", "PATCH", "PUT", "DELETE"].contains(&m.as_str()) {
                spec.insert((m, path.as_str().expect("path").to_owned()));
            }
        }
    }
    let routes = registered_routes();
    assert!(routes.len() > 20);
    let undocumented: Vec<_> = routes.difference(&spec).collect();
    let phantom: Vec<_> = spec.difference(&routes).collect();
    assert!(undocumented.is_empty(), "routes missing from openapi.yaml: {undocumented:?}");
    assert!(phantom.is_empty(), "openapi.yaml describes routes the service lacks: {phantom:?}");
}

/// Every operation of the spec, its path parameters filled with well-formed placeholders, reaches
/// a handler of the running service: neither the "no route" 404 nor a 405. Catches a spec route
/// the service lacks even where the source-reading check above could be fooled.
fn every_spec_operation_is_served(b: Backend) {
    let app = crate::support::TestApp::start(b);
    let doc: serde_json::Value =
        serde_json::from_str(&app.call("GET", "/api/v1/openapi.json", None, None, &[]).text).expect("json");
    let fill = |path: &str| {
        path.replace("{id}", "0192f7a0-0000-7000-8000-000000000000")
            .replace("{code}", "530602")
            .replace("{action}", "comment")
            .replace("{format}", "json")
            .replace("{service_code}", "drinking_water")
            .replace("{service_request_id}", "530602-2026-000001")
    };
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item
            .as_object()
            .expect("item")
            .keys()
            .filter(|m| ["get", "post", "patch", "put", "delete"].contains(&m.as_str()))
        {
            let r = app.call(&method.to_ascii_uppercase(), &fill(path), None, None, &[]);
            let unrouted = r.status == 405
                || (r.status == 404 && r.body["detail"].as_str().is_some_and(|d| d.starts_with("no route")));
            assert!(!unrouted, "{method} {path} is in the spec but not served: {} {}", r.status, r.text);
            checked += 1;
        }
    }
    assert!(checked > 40, "{checked}");
}

/// A method a path does not have answers 405 with `Allow` naming exactly the methods the contract
/// lists for it (RFC 9110 requires the header).
fn methods_a_path_lacks_answer_405_with_allow(b: Backend) {
    let app = crate::support::TestApp::start(b);
    let doc: serde_json::Value =
        serde_json::from_str(&app.call("GET", "/api/v1/openapi.json", None, None, &[]).text).expect("json");
    let fill = |path: &str| path.replace("{id}", "0192f7a0-0000-7000-8000-000000000000").replace("{code}", "530602");
    let mut checked = 0;
    // Open311 answers wrong methods in its own error format, which has only 400, 403 and 404.
    for (path, item) in doc["paths"].as_object().expect("paths").iter().filter(|(p, _)| !p.starts_with("/open311/")) {
        let mut methods: Vec<String> = item
            .as_object()
            .expect("item")
            .keys()
            .filter(|m| ["get", "post", "patch", "put", "delete"].contains(&m.as_str()))
            .map(|m| m.to_ascii_uppercase())
            .collect();
        methods.sort();
        for probe in ["TRACE", "PUT", "DELETE", "OPTIONS", "HEAD"] {
            if methods.iter().any(|m| m == probe) {
                continue;
            }
            let r = app.call(probe, &fill(path), None, None, &[]);
            assert_eq!(r.status, 405, "{probe} {path}: {}", r.text);
            let mut allow: Vec<String> = r.header("allow").unwrap_or_default().split(", ").map(str::to_owned).collect();
            allow.sort();
            assert_eq!(allow, methods, "Allow of {path}");
            checked += 1;
        }
    }
    assert!(checked > 150, "{checked}");
}

fn the_served_contract_is_the_committed_file(b: Backend) {
    let app = crate::support::TestApp::start(b);
    let committed = std::fs::read_to_string(root().join("openapi/openapi.yaml")).expect("spec");
    let yaml = app.call("GET", "/api/v1/openapi.yaml", None, None, &[]);
    assert_eq!(yaml.status, 200);
    assert_eq!(yaml.text, committed, "the served YAML differs from openapi/openapi.yaml");
    let json = app.call("GET", "/api/v1/openapi.json", None, None, &[]);
    assert_eq!(json.header("content-type"), Some("application/json"));
    let as_yaml: serde_json::Value = serde_yaml::from_str(&committed).expect("yaml");
    assert_eq!(json.body, as_yaml, "the served JSON is not the committed YAML");
    // The reference page and its assets come from the binary, not from a CDN.
    let page = app.call("GET", "/docs", None, None, &[]);
    assert_eq!(page.status, 200);
    assert!(page.text.contains("/api/v1/openapi.json"));
    assert!(!page.text.contains("://"), "the page must not load anything from another host: {}", page.text);
    for asset in ["/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"] {
        let r = app.call("GET", asset, None, None, &[]);
        assert_eq!(r.status, 200, "{asset}");
        assert!(r.text.len() > 10_000, "{asset} is embedded whole");
    }
}

both!(
    readme_walkthrough_works_as_written,
    open311_walkthrough_works_as_written,
    every_spec_operation_is_served,
    methods_a_path_lacks_answer_405_with_allow,
    the_served_contract_is_the_committed_file,
    histogram_migration_keeps_the_histograms_both_ways,
    all_time_rows_migration_agrees_with_the_upkeep,
    histogram_medians_migration_agrees_with_the_upkeep,
    kept_sums_clustered_migration_keeps_the_sums_both_ways,
    a_failing_command_exits_with_1_not_a_signal
);

#[test]
fn create_admin_refuses_weak_passwords() {
    let dir = tempfile::tempdir().expect("dir");
    let run = |password: &str| {
        Command::new(env!("CARGO_BIN_EXE_minsheng"))
            .args(["create-admin", "--username", "chief", "--password", password])
            .current_dir(dir.path())
            .env_remove("DATABASE_URL")
            .env("MINSHENG_ARGON2_MEMORY_KIB", "64")
            .output()
            .expect("run")
    };
    for weak in ["short", "password123", "chief-is-me-2026", "aaaaaaaaaaaa"] {
        let out = run(weak);
        assert!(!out.status.success(), "{weak} was accepted");
        assert!(String::from_utf8_lossy(&out.stderr).contains("weak password"));
    }
    let out = run("Strong-Enough-2026");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // With no configuration the database is ./minsheng.db, created and migrated.
    assert!(dir.path().join("minsheng.db").is_file());
    let again = run("Strong-Enough-2026");
    assert!(!again.status.success(), "duplicate username accepted");
    let migrate =
        Command::new(env!("CARGO_BIN_EXE_minsheng")).arg("migrate").current_dir(dir.path()).output().expect("run");
    assert!(migrate.status.success());
}

/// The fenced `sh` blocks between the walkthrough markers of the README.
fn walkthrough_script() -> String {
    script_between("README.md", "walkthrough")
}

/// The fenced `sh` blocks between `<!-- {marker}:start -->` and `<!-- {marker}:end -->` of a
/// document of the repository.
fn script_between(document: &str, marker: &str) -> String {
    let text = std::fs::read_to_string(root().join(document)).expect(document);
    let start = text.find(&format!("<!-- {marker}:start -->")).expect("start marker");
    let end = text.find(&format!("<!-- {marker}:end -->")).expect("end marker");
    let mut script = String::new();
    let mut in_block = false;
    for line in text[start..end].lines() {
        if line.starts_with("```sh") {
            in_block = true;
        } else if line.starts_with("```") {
            in_block = false;
        } else if in_block {
            script.push_str(line);
            script.push('\n');
        }
    }
    script
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn readme_walkthrough_works_as_written(b: Backend) {
    let stdout = run_walkthrough(b, &walkthrough_script());
    assert!(stdout.contains("\"closed\""), "the walkthrough ends with a closed case:\n{stdout}");
}

/// docs/OPEN311.md's walkthrough, run after the README's on the same service.
fn open311_walkthrough_works_as_written(b: Backend) {
    let script = format!("{}\n{}", walkthrough_script(), script_between("docs/OPEN311.md", "open311"));
    let stdout = run_walkthrough(b, &script);
    for expected in [
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<services>",
        "\"agency_responsible\":\"区水务局\"",
        "\"detailed_status\":\"assigned\"",
        "[{\"code\":403,",
        "</errors>\n 404",
    ] {
        assert!(stdout.contains(expected), "{expected:?} missing from the walkthrough's output:\n{stdout}");
    }
    assert!(!stdout.contains("13812345678"), "the complainant's phone was printed:\n{stdout}");
}

/// Runs a walkthrough script with bash against the built binary on a fresh database; returns
/// what it printed.
fn run_walkthrough(b: Backend, script: &str) -> String {
    assert!(script.contains("curl"), "the walkthrough has commands");
    let dir = tempfile::tempdir().expect("dir");
    let (database_url, _schema) = fresh_database(b, dir.path());
    let port = free_port();
    let bin = env!("CARGO_BIN_EXE_minsheng");
    let mut envs: Vec<(&str, String)> = vec![
        ("MINSHENG_LISTEN", format!("127.0.0.1:{port}")),
        ("MINSHENG_ARGON2_MEMORY_KIB", "64".to_owned()),
        ("MINSHENG_WORKERS", "2".to_owned()),
    ];
    if b == Backend::Postgres {
        envs.push(("DATABASE_URL", database_url.clone()));
    }
    let mut server = Command::new(bin);
    server.arg("serve").current_dir(dir.path()).env_remove("DATABASE_URL").stdout(Stdio::null()).stderr(Stdio::null());
    for (k, v) in &envs {
        server.env(k, v);
    }
    let mut server = server.spawn().expect("start server");
    let ready = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(ready, "server did not come up");
    // `cargo run -q -- ARGS` in the README runs the binary this test was built with.
    let shim = format!("cargo() {{ if [ \"$1 $2 $3\" = \"run -q --\" ]; then shift 3; \"{bin}\" \"$@\"; else command cargo \"$@\"; fi; }}\n");
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(format!("set -euo pipefail\n{shim}{script}"))
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env("BASE", format!("http://127.0.0.1:{port}"));
    for (k, v) in &envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("bash");
    let _ = server.kill();
    let _ = server.wait();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "walkthrough failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(schema) = _schema {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        if let Ok(mut c) = diesel::PgConnection::establish(&crate::support::pg_base_url()) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        }
    }
    stdout
}

diesel::table! {
    /// The per-hour histogram table as it was before `2026-12-01-000001_compact_hour_histogram`.
    case_stats_hours (node, dim, dim_value, basis, month, hours) {
        node -> Text,
        dim -> Text,
        dim_value -> Text,
        basis -> Text,
        month -> Text,
        hours -> BigInt,
        cases -> BigInt,
    }
}

/// The newest migrations' versions, newest first.
const NEWEST_MIGRATIONS: [&str; 5] =
    [KEPT_SUMS_CLUSTERED, HISTOGRAM_MEDIANS, "20261205000002", ALL_TIME_ROWS, COMPACT_HISTOGRAM];
/// `2026-12-05-000004_kept_sums_clustered`.
const KEPT_SUMS_CLUSTERED: &str = "20261205000004";
/// `2026-12-05-000003_histogram_medians`.
const HISTOGRAM_MEDIANS: &str = "20261205000003";
/// `2026-12-05-000001_all_time_rows`.
const ALL_TIME_ROWS: &str = "20261205000001";
/// `2026-12-01-000001_compact_hour_histogram`.
const COMPACT_HISTOGRAM: &str = "20261201000001";

/// Reverts the newest migrations down to and including `version` (digits only), checking that
/// they are the ones [`NEWEST_MIGRATIONS`] names.
fn revert_through(conn: &mut minsheng::db::DbConn, version: &str) {
    use diesel_migrations::MigrationHarness;
    use minsheng::db::{DbConn, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};
    for expected in NEWEST_MIGRATIONS {
        let done = match conn {
            DbConn::Pg(c) => c.revert_last_migration(POSTGRES_MIGRATIONS).map(|v| v.to_string()),
            DbConn::Sqlite(c) => c.revert_last_migration(SQLITE_MIGRATIONS).map(|v| v.to_string()),
        };
        assert_eq!(done.expect("revert").replace('-', ""), expected, "the newest migrations, newest first");
        if expected == version {
            return;
        }
    }
    panic!("{version} is not among the newest migrations");
}

/// A fresh database (kept while the directory lives) with a small seeded province, and the
/// service's state on it.
fn seeded_province(backend: Backend, seed: u64) -> (tempfile::TempDir, minsheng::state::AppState) {
    let dir = tempfile::tempdir().expect("dir");
    let (url, _schema) = fresh_database(backend, dir.path());
    let state = minsheng::init_state(crate::support::test_config(&url)).expect("state");
    let plan = minsheng::seed::SeedPlan { cases: 400, cities: 2, counties_per_city: 2, townships_per_county: 3, seed };
    minsheng::seed::seed(&mut state.pool.get().expect("conn"), &plan, |_| {}).expect("seed");
    (dir, state)
}

/// The all-time rows that `2026-12-05-000001_all_time_rows` sums from the monthly rows of an
/// existing database are exactly those the service keeps from then on: a province seeded with
/// the upkeep's own code has its all-time rows dropped (down) and summed again (up).
fn all_time_rows_migration_agrees_with_the_upkeep(backend: Backend) {
    use diesel::prelude::*;
    use minsheng::db::schema::{case_stats as s, case_stats_histogram as h};

    let (_dir, state) = seeded_province(backend, 9);
    let mut conn = state.pool.get().expect("conn");

    type Sums = Vec<((String, String, String, String), (i64, i64, i64, i64, i64, i64, i64, i64, i64, i64))>;
    let all_time = |conn: &mut minsheng::db::DbConn| -> (Sums, Vec<(String, String, String, String)>) {
        let sums: Sums = s::table
            .filter(s::basis.eq("a"))
            .filter(s::total.ne(0))
            .select((
                (s::node, s::dim, s::dim_value, s::month),
                (
                    s::total,
                    s::dismissed,
                    s::resolved,
                    s::completed,
                    s::on_time,
                    s::assigned,
                    s::responded,
                    s::rated,
                    s::satisfied,
                    s::resolution_secs,
                ),
            ))
            .order((s::node, s::dim, s::dim_value))
            .load(conn)
            .expect("sums");
        let hours = h::table
            .filter(h::basis.eq("a"))
            .filter(h::counts.ne(""))
            .select((h::node, h::dim, h::dim_value, h::counts))
            .order((h::node, h::dim, h::dim_value))
            .load(conn)
            .expect("histograms");
        (sums, hours)
    };
    let kept = all_time(&mut conn);
    let (sums, hours) = &kept;
    // Departments and programmes at the province (seeded cases sit in townships), and a histogram
    // of every dimension.
    assert!(sums.iter().any(|(k, _)| k.0 == "530000" && k.1 == "department"), "{sums:?}");
    assert!(sums.iter().any(|(k, _)| k.0 == "530000" && k.1 == "programme"), "{sums:?}");
    assert!(sums.iter().all(|(k, _)| k.1 == "department" || k.1 == "programme"), "no all-time counters of the rest");
    for d in ["", "category", "kind", "department", "programme"] {
        assert!(hours.iter().any(|r| r.0 == "530000" && r.1 == d), "a province histogram of {d:?}");
    }

    revert_through(&mut conn, ALL_TIME_ROWS);
    assert_eq!(all_time(&mut conn), (Vec::new(), Vec::new()), "down removes the all-time rows");
    minsheng::db::run_migrations(&mut conn).expect("migrate again");
    assert_eq!(all_time(&mut conn), kept, "up sums the same rows as the upkeep keeps");
}

/// The medians `2026-12-05-000003_histogram_medians` works out in SQL for the histogram rows of
/// an existing database are those the service keeps with each row from then on.
fn histogram_medians_migration_agrees_with_the_upkeep(backend: Backend) {
    use diesel::prelude::*;
    use minsheng::db::schema::case_stats_histogram as h;

    let (_dir, state) = seeded_province(backend, 11);
    let mut conn = state.pool.get().expect("conn");
    type Medians = Vec<((String, String, String, String, String), Option<f64>)>;
    let medians = |conn: &mut minsheng::db::DbConn| -> Medians {
        h::table
            .select(((h::node, h::dim, h::dim_value, h::basis, h::month), h::median))
            .order((h::node, h::dim, h::dim_value, h::basis, h::month))
            .load(conn)
            .expect("medians")
    };
    let kept = medians(&mut conn);
    assert!(kept.len() > 100 && kept.iter().all(|(_, m)| m.is_some()), "every seeded row has its median: {kept:?}");
    assert!(kept.iter().any(|(_, m)| m.is_some_and(|m| m.fract() == 0.5)), "even counts give half hours");

    revert_through(&mut conn, HISTOGRAM_MEDIANS);
    minsheng::db::run_migrations(&mut conn).expect("migrate again");
    assert_eq!(medians(&mut conn), kept, "up works out the medians the upkeep keeps");
}

/// The migration that stores SQLite's kept sums in key order (`WITHOUT ROWID`) carries every row
/// over exactly, and back on revert; on PostgreSQL it changes nothing.
fn kept_sums_clustered_migration_keeps_the_sums_both_ways(backend: Backend) {
    use diesel::prelude::*;
    use minsheng::db::schema::case_stats as s;
    use minsheng::db::DbConn;

    let (_dir, state) = seeded_province(backend, 5);
    let mut conn = state.pool.get().expect("conn");
    type Sums = Vec<((String, String, String, String, String), (i64, i64, i64, i64, i64), (i64, i64, i64, i64, i64))>;
    let sums = |conn: &mut DbConn| -> Sums {
        s::table
            .select((
                (s::node, s::dim, s::dim_value, s::basis, s::month),
                (s::total, s::dismissed, s::resolved, s::completed, s::on_time),
                (s::assigned, s::responded, s::rated, s::satisfied, s::resolution_secs),
            ))
            .order((s::node, s::dim, s::dim_value, s::basis, s::month))
            .load(conn)
            .expect("sums")
    };
    // On SQLite, whether the table is stored in key order.
    let clustered = |conn: &mut DbConn| -> Option<bool> {
        #[derive(QueryableByName)]
        struct Sql {
            #[diesel(sql_type = diesel::sql_types::Text)]
            sql: String,
        }
        match conn {
            DbConn::Sqlite(c) => {
                let table: Sql = diesel::sql_query("SELECT sql FROM sqlite_master WHERE name = 'case_stats'")
                    .get_result(c)
                    .expect("case_stats");
                Some(table.sql.contains("WITHOUT ROWID"))
            }
            DbConn::Pg(_) => None,
        }
    };
    let kept = sums(&mut conn);
    assert!(kept.len() > 500, "a seeded province keeps many rows: {}", kept.len());
    assert_eq!(clustered(&mut conn), (backend == Backend::Sqlite).then_some(true));

    revert_through(&mut conn, KEPT_SUMS_CLUSTERED);
    assert_eq!(sums(&mut conn), kept, "down keeps every row");
    assert_eq!(clustered(&mut conn), (backend == Backend::Sqlite).then_some(false));

    minsheng::db::run_migrations(&mut conn).expect("migrate again");
    assert_eq!(sums(&mut conn), kept, "up keeps every row");
    assert_eq!(clustered(&mut conn), (backend == Backend::Sqlite).then_some(true));
}

/// The histogram migration carries stored histograms over exactly, and back on revert: an
/// upgraded county keeps its medians without a `rebuild-stats`.
fn histogram_migration_keeps_the_histograms_both_ways(backend: Backend) {
    use diesel::prelude::*;
    use minsheng::db::schema::case_stats_histogram as hist;
    use minsheng::db::{ConnectionFactory, DbConn};

    let dir = tempfile::tempdir().expect("dir");
    let (url, _schema) = fresh_database(backend, dir.path());
    let mut conn = ConnectionFactory::new(&url, 5_000).open().expect("connect");
    minsheng::db::run_migrations(&mut conn).expect("migrate");
    let revert = |conn: &mut DbConn| revert_through(conn, COMPACT_HISTOGRAM);
    revert(&mut conn);

    let old = |node: &str, month: &str, hours: i64, cases: i64| {
        (
            case_stats_hours::node.eq(node.to_owned()),
            case_stats_hours::dim.eq(""),
            case_stats_hours::dim_value.eq(""),
            case_stats_hours::basis.eq("c"),
            case_stats_hours::month.eq(month.to_owned()),
            case_stats_hours::hours.eq(hours),
            case_stats_hours::cases.eq(cases),
        )
    };
    let rows = vec![
        old("530000", "2026-01", 17, 2),
        old("530000", "2026-01", 0, 3),
        old("530000", "2026-01", 5, 1),
        old("530000", "2026-01", 9, 0),
        old("530100", "2026-02", 1200, 1),
        old("530200", "2026-02", 4, 0),
    ];
    for row in rows {
        diesel::insert_into(case_stats_hours::table).values(row).execute(&mut conn).expect("old row");
    }

    minsheng::db::run_migrations(&mut conn).expect("migrate again");
    let kept: Vec<(String, String, String)> = hist::table
        .select((hist::node, hist::month, hist::counts))
        .order((hist::node, hist::month))
        .load(&mut conn)
        .expect("histograms");
    assert_eq!(
        kept,
        vec![
            ("530000".to_owned(), "2026-01".to_owned(), "0:3,5:1,17:2".to_owned()),
            ("530100".to_owned(), "2026-02".to_owned(), "1200:1".to_owned()),
        ],
        "one row per key, hours in order, empty hours and keys left out"
    );

    revert(&mut conn);
    let back: Vec<(String, i64, i64)> = case_stats_hours::table
        .select((case_stats_hours::node, case_stats_hours::hours, case_stats_hours::cases))
        .order((case_stats_hours::node, case_stats_hours::hours))
        .load(&mut conn)
        .expect("rows back");
    assert_eq!(
        back,
        vec![
            ("530000".to_owned(), 0, 3),
            ("530000".to_owned(), 5, 1),
            ("530000".to_owned(), 17, 2),
            ("530100".to_owned(), 1200, 1)
        ]
    );
}

/// A command that fails exits with status 1, every time. It used to die of SIGSEGV now and then
/// on PostgreSQL: the pool was opening a spare connection (TLS handshake) in the background while
/// the process ran OpenSSL's exit handlers. Commands keep no spare connections now.
fn a_failing_command_exits_with_1_not_a_signal(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    let (url, _schema) = fresh_database(backend, dir.path());
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_minsheng"))
            .args(["create-admin", "--username", "chief", "--password", "Strong-Enough-2026"])
            .current_dir(dir.path())
            .env("DATABASE_URL", &url)
            .env("MINSHENG_ARGON2_MEMORY_KIB", "64")
            .env("RUST_LOG", "warn")
            .output()
            .expect("run")
    };
    let first = run();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    for _ in 0..12 {
        let again = run();
        assert_eq!(again.status.code(), Some(1), "the name is taken: exit 1 ({:?})", again.status);
        assert!(String::from_utf8_lossy(&again.stderr).contains("taken"));
    }
}
