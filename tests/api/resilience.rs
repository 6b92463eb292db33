//! Overload and abuse (issue 9, item 4) and observability (item 6): the per-client rate limit,
//! the in-flight bound, slow and oversized clients, CORS, and `GET /metrics`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::json;

use crate::support::{Backend, TestApp, World, PASSWORD};

both!(
    a_burst_is_rate_limited_per_client,
    requests_beyond_the_in_flight_bound_get_503,
    a_client_that_stalls_mid_head_is_cut_off,
    a_body_that_never_arrives_is_refused_with_408,
    uploads_and_forms_that_stall_are_refused_with_408,
    oversized_heads_are_refused_not_500,
    cors_is_off_by_default,
    cors_answers_listed_origins_only,
    metrics_are_prometheus_text_with_the_expected_series,
    metrics_can_require_a_token,
    slow_units_of_work_are_counted,
);

#[test]
fn sqlite_checkpoints_run_off_the_request_path() {
    // Commits do not checkpoint (a few creates are far from SQLite's own 1,000-page threshold
    // anyway); the background thread copies the log into the database file. The file is read
    // as it is on disk, ignoring the log (`immutable=1`): the cases show up there only once a
    // checkpoint has copied them.
    use diesel::prelude::*;
    let w = World::new(Backend::Sqlite);
    let ids: Vec<String> = (0..5).map(|i| w.new_case(&format!("路灯不亮 {i}"))).collect();
    let file = format!("file:{}?immutable=1", w.app.database_url);
    eventually("a background checkpoint", || {
        let Ok(mut conn) = diesel::SqliteConnection::establish(&file) else { return false };
        let on_disk: Vec<String> = minsheng::db::schema::cases::table
            .select(minsheng::db::schema::cases::id)
            .load(&mut conn)
            .unwrap_or_default();
        ids.iter().all(|id| on_disk.contains(id))
    });
}

/// Waits (bounded) until `check` holds; for conditions another connection brings about.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..600 {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not happen");
}

fn a_burst_is_rate_limited_per_client(b: Backend) {
    // A slow refill (one token per 100 s) keeps the test free of timing: only the burst counts.
    let app = TestApp::start_with(b, |c| {
        c.rate_limit_per_sec = 0.01;
        c.rate_limit_burst = 5;
    });
    app.create_admin("root", PASSWORD, None);
    app.create_admin("root2", PASSWORD, None);
    // Two sign-ins from this address (its bucket: 3 left).
    let first = app.login("root", PASSWORD);
    let second = app.login("root2", PASSWORD);

    for _ in 0..5 {
        app.get("/api/v1/me", &first).expect(200);
    }
    let refused = app.get("/api/v1/me", &first);
    refused.expect_problem(429, "rate_limited");
    let retry: u64 = refused.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!(retry >= 1, "Retry-After {retry}");
    assert_eq!(refused.header("x-content-type-options"), Some("nosniff"), "security headers on a 429 too");
    assert!(refused.header("x-request-id").is_some());

    // Another signed-in client is unaffected, and so are the probes.
    app.get("/api/v1/me", &second).expect(200);
    for _ in 0..10 {
        app.call("GET", "/healthz", None, None, &[]).expect(200);
        app.call("GET", "/readyz", None, None, &[]).expect(200);
    }

    // Anonymous requests (and invalid credentials) are charged to the address: 3 left after the
    // two sign-ins, whatever token they make up.
    for token in [None, Some("made-up"), Some("msk_made_up_key_0123456789")] {
        app.call("GET", "/api/v1/categories", token, None, &[]).expect(401);
    }
    app.call("GET", "/api/v1/categories", Some("another-made-up"), None, &[]).expect_problem(429, "rate_limited");

    let metrics = app.call("GET", "/metrics", None, None, &[]);
    let value = sample(&metrics.text, "minsheng_http_rejected_total", &[("reason", "rate_limited")]);
    assert_eq!(value, Some(2.0), "{}", metrics.text);
}

fn requests_beyond_the_in_flight_bound_get_503(b: Backend) {
    let app = TestApp::start_with(b, |c| c.max_inflight = 1);
    app.create_admin("root", PASSWORD, None);
    let token = app.login("root", PASSWORD);

    // A request whose body is still on its way holds the one slot.
    let mut slow = TcpStream::connect(app.addr()).expect("connect");
    let body = json!({"username": "root", "password": "wrong password"}).to_string();
    let head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    slow.write_all(head.as_bytes()).expect("head");
    slow.write_all(&body.as_bytes()[..5]).expect("part of the body");

    // Once the server holds it (the scrape itself is exempt from the bound), the next request is refused.
    eventually("the slow request to be in flight", || {
        let m = app.call("GET", "/metrics", None, None, &[]);
        sample(&m.text, "minsheng_http_requests_in_flight", &[]) == Some(1.0)
    });
    let refused = app.get("/api/v1/me", &token);
    refused.expect_problem(503, "overloaded");
    assert_eq!(refused.header("retry-after"), Some("1"));
    app.call("GET", "/healthz", None, None, &[]).expect(200);

    // The slow request finishes; the slot is free again.
    slow.write_all(&body.as_bytes()[5..]).expect("rest of the body");
    let mut answer = Vec::new();
    slow.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    slow.read_to_end(&mut answer).expect("answer");
    let answer = crate::support::parse_raw(&answer).expect("an answer");
    assert_eq!(answer.status, 401, "{}", String::from_utf8_lossy(&answer.body));
    eventually("the slot to be free again", || app.get("/api/v1/me", &token).status == 200);

    let metrics = app.call("GET", "/metrics", None, None, &[]);
    let refusals = sample(&metrics.text, "minsheng_http_rejected_total", &[("reason", "overloaded")]).expect("series");
    assert!(refusals >= 1.0);
}

/// Reads until the server closes the connection; panics if it does not within a generous bound.
fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let mut bytes = Vec::new();
    match stream.read_to_end(&mut bytes) {
        Ok(_) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => bytes,
        Err(e) => panic!("the server did not close the stalled connection: {e}"),
    }
}

fn a_client_that_stalls_mid_head_is_cut_off(b: Backend) {
    let app = TestApp::start_with(b, |c| c.client_request_timeout = Duration::from_millis(300));
    let mut stream = TcpStream::connect(app.addr()).expect("connect");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Half-A-Hea").expect("half a head");
    let bytes = read_until_closed(&mut stream);
    // actix answers 408 before closing; either way the connection is gone.
    if let Some(answer) = crate::support::parse_raw(&bytes) {
        assert_eq!(answer.status, 408);
    }
    // The service is fine. (On a loaded machine even a well-behaved client's head can miss a
    // 300 ms deadline, so a 408 here is retried rather than failed.)
    eventually("the service to answer /healthz", || app.call("GET", "/healthz", None, None, &[]).status == 200);
}

fn a_body_that_never_arrives_is_refused_with_408(b: Backend) {
    let app = TestApp::start_with(b, |c| c.body_timeout = Duration::from_secs(1));
    let mut stream = TcpStream::connect(app.addr()).expect("connect");
    stream
        .write_all(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"user")
        .expect("head and part of the body");
    let bytes = read_until_closed(&mut stream);
    let answer = crate::support::parse_raw(&bytes).expect("an answer");
    assert_eq!(answer.status, 408, "{}", String::from_utf8_lossy(&answer.body));
    assert_eq!(answer.header("content-type"), Some("application/problem+json"));
    let body: serde_json::Value = serde_json::from_slice(&answer.body).expect("json");
    assert_eq!(body["code"], "body_timeout");
}

/// Sends a head and the start of a body, then stalls; returns the answer the server gives.
fn stall_after(app: &TestApp, head: &str, start_of_body: &[u8]) -> crate::support::RawResp {
    let mut stream = TcpStream::connect(app.addr()).expect("connect");
    stream.write_all(head.as_bytes()).expect("head");
    stream.write_all(start_of_body).expect("part of the body");
    let bytes = read_until_closed(&mut stream);
    crate::support::parse_raw(&bytes).expect("an answer")
}

fn uploads_and_forms_that_stall_are_refused_with_408(b: Backend) {
    let w = World::new_with(b, |c| c.body_timeout = Duration::from_secs(1));
    // A bulk import whose upload stops coming: refused once no byte came for the body time-out.
    let csv = "title,description\n";
    let head = format!(
        "POST /api/v1/cases:import HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: text/csv\r\nContent-Length: 100000\r\n\r\n",
        w.supervisor
    );
    let answer = stall_after(&w.app, &head, csv.as_bytes());
    assert_eq!(answer.status, 408, "{}", String::from_utf8_lossy(&answer.body));
    let body: serde_json::Value = serde_json::from_slice(&answer.body).expect("json");
    assert_eq!(body["code"], "body_timeout");
    // An Open311 form that never completes: refused in the Open311 error format, whose client
    // errors are all 400 (GeoReport v2 has no 408).
    let head = "POST /open311/v2/requests.json HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 500\r\n\r\n";
    let answer = stall_after(&w.app, head, b"api_key=msk_");
    assert_eq!(answer.status, 400, "{}", String::from_utf8_lossy(&answer.body));
    let body: serde_json::Value = serde_json::from_slice(&answer.body).expect("json");
    assert_eq!(body[0]["code"], 400, "{body}");
    assert!(body[0]["description"].as_str().is_some_and(|d| d.contains("not received in time")), "{body}");
    // Nothing was imported, and the service is fine.
    let listed = w.app.get("/api/v1/cases", &w.supervisor);
    assert_eq!(listed.expect(200)["items"].as_array().map(Vec::len), Some(0));
}

fn oversized_heads_are_refused_not_500(b: Backend) {
    let app = TestApp::start(b);
    // A big but acceptable header.
    let big = "a".repeat(16 * 1024);
    let ok = app
        .raw_http(format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\nConnection: close\r\n\r\n").as_bytes())
        .expect("answer");
    assert_eq!(ok.status, 200);
    // A head over actix's 128 KiB buffer: 431.
    let huge = "a".repeat(200 * 1024);
    let refused = app.raw_http(
        format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: {huge}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    if let Some(r) = refused {
        assert!(matches!(r.status, 400 | 431), "status {}", r.status);
    }
    // More than 96 header lines: 400.
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let refused =
        app.raw_http(format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}Connection: close\r\n\r\n").as_bytes());
    if let Some(r) = refused {
        assert!(matches!(r.status, 400 | 431), "status {}", r.status);
    }
    // A header value that is not text, a bad request line: 4xx, never 5xx.
    for request in [
        &b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\x80\r\nConnection: close\r\n\r\n"[..],
        &b"GET /api/v1/cases?q=%ff%00 HTTP/1.1\r\nHost: x\r\nX-Request-Id: \xe4\xb8\xad\r\nConnection: close\r\n\r\n"[..],
        &b"G\x00T / HTTP/1.1\r\n\r\n"[..],
    ] {
        if let Some(r) = app.raw_http(request) {
            assert!((400..500).contains(&r.status), "status {}", r.status);
        }
    }
    app.call("GET", "/healthz", None, None, &[]).expect(200);
}

const PORTAL: &str = "https://portal.example.gov.cn";

fn cors_is_off_by_default(b: Backend) {
    let app = TestApp::start(b);
    let r = app.call("GET", "/healthz", None, None, &[("Origin", PORTAL)]);
    r.expect(200);
    assert_eq!(r.header("access-control-allow-origin"), None);
    let preflight = app.call(
        "OPTIONS",
        "/api/v1/cases",
        None,
        None,
        &[("Origin", PORTAL), ("Access-Control-Request-Method", "POST")],
    );
    assert_eq!(preflight.header("access-control-allow-origin"), None);
    assert!(preflight.status >= 400 && preflight.status < 500, "{}", preflight.status);
}

fn cors_answers_listed_origins_only(b: Backend) {
    let app = TestApp::start_with(b, |c| c.cors_origins = vec![PORTAL.to_owned(), "http://localhost:3000".to_owned()]);
    app.create_admin("root", PASSWORD, None);
    let token = app.login("root", PASSWORD);
    let preflight_headers = |origin: &'static str| {
        [
            ("Origin", origin),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "authorization, content-type, idempotency-key"),
        ]
    };

    let ok = app.call("OPTIONS", "/api/v1/cases", None, None, &preflight_headers(PORTAL));
    assert_eq!(ok.status, 204, "{}", ok.text);
    assert_eq!(ok.header("access-control-allow-origin"), Some(PORTAL));
    assert!(ok.header("access-control-allow-methods").is_some_and(|m| m.contains("POST") && m.contains("PATCH")));
    let allowed_headers = ok.header("access-control-allow-headers").unwrap_or_default().to_ascii_lowercase();
    for h in ["authorization", "content-type", "idempotency-key", "if-match"] {
        assert!(allowed_headers.contains(h), "{allowed_headers}");
    }
    assert_eq!(ok.header("x-content-type-options"), Some("nosniff"));

    let refused = app.call("OPTIONS", "/api/v1/cases", None, None, &preflight_headers("https://evil.example.com"));
    assert_eq!(refused.header("access-control-allow-origin"), None);

    let simple = app.call("GET", "/api/v1/me", Some(&token), None, &[("Origin", PORTAL)]);
    simple.expect(200);
    assert_eq!(simple.header("access-control-allow-origin"), Some(PORTAL));
    assert!(simple.header("access-control-expose-headers").is_some_and(|h| h.contains("ETag")));
    assert!(simple.header("vary").is_some_and(|v| v.contains("Origin")));

    let other =
        app.call("GET", "/api/v1/me", Some(&token), None, &[("Origin", "https://portal.example.gov.cn.evil.com")]);
    other.expect(200);
    assert_eq!(other.header("access-control-allow-origin"), None);
}

/// One parsed sample line: name, labels, value.
type Sample = (String, HashMap<String, String>, f64);

/// Parses the text exposition format strictly enough to catch a malformed line.
fn parse_prometheus(text: &str) -> Vec<Sample> {
    let mut typed: HashMap<String, String> = HashMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE line");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            typed.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment {line}");
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 =
            if value == "+Inf" { f64::INFINITY } else { value.parse().unwrap_or_else(|_| panic!("{line}")) };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), HashMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {line}"));
                let mut labels = HashMap::new();
                // Label values here never contain `",`; split on it.
                for pair in body.split("\",") {
                    let (k, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("bad label in {line}"));
                    assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{line}");
                    labels.insert(k.to_owned(), v.trim_end_matches('"').to_owned());
                }
                (name.to_owned(), labels)
            }
        };
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{line}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| typed.get(*f).is_some_and(|k| k == "histogram")))
            .unwrap_or(&name);
        assert!(typed.contains_key(family), "no # TYPE before {line}");
        samples.push((name, labels, value));
    }
    samples
}

/// The value of the sample with that name and (at least) those labels.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    parse_prometheus(text)
        .into_iter()
        .find(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).is_some_and(|x| x == v)))
        .map(|(_, _, v)| v)
}

fn metrics_are_prometheus_text_with_the_expected_series(b: Backend) {
    let w = World::new(b);
    let open = w.new_case("村里自来水停水三天");
    let resolved = w.resolved_case("路灯不亮");
    w.app.get(&format!("/api/v1/cases/{open}"), &w.supervisor).expect(200);
    w.app.get(&format!("/api/v1/cases/{resolved}"), &w.supervisor).expect(200);
    w.app.get("/api/v1/cases/00000000-0000-0000-0000-000000000000", &w.supervisor).expect(404);
    w.app.call("GET", "/no/such/path", None, None, &[]).expect(404);

    let r = w.app.call("GET", "/metrics", None, None, &[]);
    r.expect(200);
    assert_eq!(r.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    let samples = parse_prometheus(&r.text);
    assert!(!r.text.contains(&open), "raw paths must not become labels");
    let get = |name: &str, labels: &[(&str, &str)]| {
        samples
            .iter()
            .find(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).is_some_and(|x| x == v)))
            .map(|(_, _, v)| *v)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in\n{}", r.text))
    };
    let created = [("method", "POST"), ("route", "/api/v1/cases"), ("status", "201")];
    assert_eq!(get("minsheng_http_requests_total", &created), 2.0);
    let read = [("method", "GET"), ("route", "/api/v1/cases/{id}"), ("status", "200")];
    assert_eq!(get("minsheng_http_requests_total", &read), 2.0);
    assert_eq!(get("minsheng_http_requests_total", &[("route", "/api/v1/cases/{id}"), ("status", "404")]), 1.0);
    assert_eq!(get("minsheng_http_requests_total", &[("route", "unmatched"), ("status", "404")]), 1.0);
    // Each lifecycle action is a route of its own.
    for action in ["assign", "resolve"] {
        let route = format!("/api/v1/cases/{{id}}/actions/{action}");
        assert_eq!(get("minsheng_http_requests_total", &[("route", &route), ("status", "200")]), 1.0);
    }
    // The histogram: cumulative buckets, +Inf equal to the count, a positive sum.
    let mut buckets: Vec<(f64, f64)> = samples
        .iter()
        .filter(|(n, l, _)| {
            n == "minsheng_http_request_duration_seconds_bucket"
                && created.iter().all(|(k, v)| l.get(*k).is_some_and(|x| x == v))
        })
        .map(|(_, l, v)| (if l["le"] == "+Inf" { f64::INFINITY } else { l["le"].parse().expect("le") }, *v))
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(buckets.len() > 5);
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "buckets not cumulative: {buckets:?}");
    assert_eq!(buckets.last().map(|b| b.1), Some(2.0));
    assert_eq!(get("minsheng_http_request_duration_seconds_count", &created), 2.0);
    assert!(get("minsheng_http_request_duration_seconds_sum", &created) > 0.0);
    // The pool, the outbox, the cases.
    assert_eq!(get("minsheng_db_pool_max_connections", &[]), 8.0);
    let in_use = get("minsheng_db_pool_connections", &[("state", "in_use")]);
    let idle = get("minsheng_db_pool_connections", &[("state", "idle")]);
    assert!(in_use + idle >= 1.0 && in_use + idle <= 8.0, "{in_use} + {idle}");
    assert_eq!(get("minsheng_webhook_outbox_events", &[("state", "pending")]), 0.0);
    assert_eq!(get("minsheng_webhook_outbox_events", &[("state", "failed")]), 0.0);
    assert_eq!(get("minsheng_webhook_deliveries_total", &[("outcome", "failed")]), 0.0);
    assert_eq!(get("minsheng_cases", &[("status_group", "open")]), 1.0);
    assert_eq!(get("minsheng_cases", &[("status_group", "resolved")]), 1.0);
    assert_eq!(get("minsheng_cases", &[("status_group", "completed")]), 0.0);
    assert_eq!(get("minsheng_cases", &[("status_group", "dismissed")]), 0.0);
    assert_eq!(get("minsheng_metrics_database_up", &[]), 1.0);
    assert!(get("minsheng_http_requests_in_flight", &[]) >= 0.0);
    if std::path::Path::new("/proc/self/statm").exists() {
        assert!(get("process_resident_memory_bytes", &[]) > 1e6);
    }

    // Closing and dismissing move cases between groups.
    w.ok(&w.supervisor, &resolved, "verify", json!({"satisfaction": "satisfied"}));
    w.ok(&w.supervisor, &open, "dismiss", json!({"outcome": "invalid", "reason": "重复来电"}));
    let r = w.app.call("GET", "/metrics", None, None, &[]);
    assert_eq!(sample(&r.text, "minsheng_cases", &[("status_group", "open")]), Some(0.0));
    assert_eq!(sample(&r.text, "minsheng_cases", &[("status_group", "completed")]), Some(1.0));
    assert_eq!(sample(&r.text, "minsheng_cases", &[("status_group", "dismissed")]), Some(1.0));
    // The scrape counts itself from the second one on.
    assert!(sample(&r.text, "minsheng_http_requests_total", &[("route", "/metrics"), ("status", "200")]).is_some());
}

fn metrics_can_require_a_token(b: Backend) {
    let app = TestApp::start_with(b, |c| c.metrics_token = Some("scrape-secret-1234".to_owned()));
    app.call("GET", "/metrics", None, None, &[]).expect_problem(401, "unauthenticated");
    app.call("GET", "/metrics", Some("wrong"), None, &[]).expect_problem(401, "unauthenticated");
    let r = app.call("GET", "/metrics", Some("scrape-secret-1234"), None, &[]);
    r.expect(200);
    assert!(r.text.contains("minsheng_http_requests_total"));
}

fn slow_units_of_work_are_counted(b: Backend) {
    // Every unit of work is "slow" at a threshold of one nanosecond.
    let app = TestApp::start_with(b, |c| c.slow_query = Duration::from_nanos(1));
    app.call("GET", "/readyz", None, None, &[]).expect(200);
    let r = app.call("GET", "/metrics", None, None, &[]);
    let slow = sample(&r.text, "minsheng_db_slow_units_total", &[]).expect("series");
    assert!(slow >= 1.0, "{}", r.text);
}
