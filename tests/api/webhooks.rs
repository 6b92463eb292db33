//! Webhooks against a real HTTP receiver in the test process: signatures, order, retries,
//! nothing for refused changes, nothing lost across a restart, nothing sent twice by two
//! processes, and the once-only overdue announcement.

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};

use crate::support::{Backend, World};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Delivery {
    headers: HashMap<String, String>,
    body: String,
    answered: u16,
}

/// A webhook endpoint: answers 500 to its first `fail_first` requests, 200 after.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Delivery>>>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    fn start(fail_first: usize) -> Receiver {
        Self::on(TcpListener::bind("127.0.0.1:0").expect("bind"), fail_first)
    }

    fn on(listener: TcpListener, fail_first: usize) -> Receiver {
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        listener.set_nonblocking(true).expect("nonblocking");
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let failures = Arc::new(AtomicUsize::new(fail_first));
        let (g, s) = (Arc::clone(&got), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                stream.set_nonblocking(false).ok();
                stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
                let (head, body) = crate::support::read_http_request(&mut stream);
                let headers = head
                    .lines()
                    .skip(1)
                    .filter_map(|l| {
                        l.split_once(':').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                    })
                    .collect();
                let status = if failures.load(Ordering::SeqCst) > 0 {
                    failures.fetch_sub(1, Ordering::SeqCst);
                    500
                } else {
                    200
                };
                g.lock().expect("lock").push(Delivery { headers, body, answered: status });
                let _ = write!(stream, "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        });
        Receiver { url, got, stop }
    }

    /// The requests it answered 200, once at least `n` arrived (or the timeout passed).
    fn delivered(&self, n: usize, timeout: Duration) -> Vec<Delivery> {
        let started = Instant::now();
        loop {
            let ok: Vec<Delivery> =
                self.got.lock().expect("lock").iter().filter(|d| d.answered == 200).cloned().collect();
            if ok.len() >= n || started.elapsed() > timeout {
                return ok;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn all(&self) -> Vec<Delivery> {
        self.got.lock().expect("lock").clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn fast(c: &mut minsheng::config::Config) {
    c.webhook_poll = Duration::from_millis(50);
    c.webhook_retry_base = Duration::from_millis(150);
    c.overdue_scan = Duration::from_millis(500);
}

fn subscribe(w: &World, token: &str, url: &str, events: &[&str]) -> (String, String) {
    let r = w.app.post("/api/v1/webhooks", token, json!({"url": url, "events": events}));
    let body = r.expect(201).clone();
    (body["id"].as_str().expect("id").to_owned(), body["secret"].as_str().expect("secret").to_owned())
}

const ALL: &[&str] =
    &["case.created", "case.assigned", "case.acknowledged", "case.resolved", "case.verified", "case.closed"];

fn verify(secret: &str, d: &Delivery) {
    let sig = d.headers.get("minsheng-signature").expect("signature header");
    let (t, v1) = sig.split_once(',').expect("t=…,v1=…");
    let t = t.strip_prefix("t=").expect("t=");
    let v1 = v1.strip_prefix("v1=").expect("v1=");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{t}.{}", d.body).as_bytes());
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(v1, expected, "signature");
    let age = chrono::Utc::now().timestamp() - t.parse::<i64>().expect("t");
    assert!((0..60).contains(&age), "timestamp {age} s old");
}

fn types(ds: &[Delivery]) -> Vec<String> {
    ds.iter()
        .map(|d| serde_json::from_str::<Value>(&d.body).expect("json")["type"].as_str().expect("type").to_owned())
        .collect()
}

fn deliveries_are_signed_ordered_and_logged(b: Backend) {
    let w = World::new_with(b, fast);
    let rx = Receiver::start(0);
    let (hook, secret) = subscribe(&w, &w.admin, &rx.url, ALL);
    let id = w.new_case("推送测试");
    w.ok(&w.supervisor, &id, "assign", json!({"department_id": w.water}));
    w.ok(&w.water_worker, &id, "acknowledge", json!({}));
    w.ok(&w.water_worker, &id, "comment", json!({"text": "评论不推送"}));
    w.ok(&w.water_worker, &id, "resolve", json!({"resolution": "已修复"}));
    let got = rx.delivered(4, Duration::from_secs(15));
    assert_eq!(types(&got), vec!["case.created", "case.assigned", "case.acknowledged", "case.resolved"]);
    for d in &got {
        verify(&secret, d);
        let body: Value = serde_json::from_str(&d.body).expect("json");
        assert_eq!(d.headers.get("minsheng-event-id").map(String::as_str), body["id"].as_str());
        assert_eq!(body["case"]["id"], id.as_str());
        assert_eq!(body["case"]["complainant"]["masked"], true, "no personal data in a payload");
        assert!(!d.body.contains("13812345678"));
    }
    assert_eq!(serde_json::from_str::<Value>(&got[3].body).expect("json")["case"]["status"], "resolved");
    // The delivery log, newest first, with each attempt.
    // The dispatcher records a delivery just after the receiver answers it.
    let started = Instant::now();
    let log = loop {
        let log = w.app.get(&format!("/api/v1/webhooks/{hook}/deliveries"), &w.admin).expect(200).clone();
        let done = log["items"].as_array().is_some_and(|i| i.iter().all(|e| e["state"] == "delivered"));
        if done || started.elapsed() > Duration::from_secs(10) {
            break log;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let items = log["items"].as_array().expect("items");
    assert_eq!(items.len(), 4);
    assert_eq!(items[0]["event_type"], "case.resolved");
    assert!(items.iter().all(|i| i["state"] == "delivered" && i["log"].as_array().map(Vec::len) == Some(1)));
    // Redelivery sends the same event, with the same id, again.
    let first = items[3]["event_id"].as_str().expect("id").to_owned();
    w.app
        .call("POST", &format!("/api/v1/webhooks/{hook}/deliveries/{first}/redeliver"), Some(&w.admin), None, &[])
        .expect(202);
    let again = rx.delivered(5, Duration::from_secs(10));
    assert_eq!(again[4].headers.get("minsheng-event-id"), Some(&first));
    // Subscriptions: validation and who may manage them.
    let r = w.app.post("/api/v1/webhooks", &w.admin, json!({"url": "ftp://x", "events": ["case.exploded"]}));
    assert_eq!(r.bad_fields(), vec!["events", "url"]);
    w.app
        .post("/api/v1/webhooks", &w.supervisor, json!({"url": rx.url, "events": ["case.created"]}))
        .expect_problem(403, "role_not_permitted");
    w.app.post("/api/v1/users", &w.admin, json!({"username": "ld_admin", "password": crate::support::PASSWORD, "role": "admin", "jurisdiction_code": "530621"})).expect(201);
    let ld = w.app.login("ld_admin", crate::support::PASSWORD);
    w.app.get(&format!("/api/v1/webhooks/{hook}"), &ld).expect_problem(404, "not_found");
    assert!(
        w.app.get(&format!("/api/v1/webhooks/{hook}"), &w.admin).expect(200).get("secret").is_none(),
        "the secret is shown once"
    );
}

fn failed_deliveries_are_retried_in_order(b: Backend) {
    let w = World::new_with(b, fast);
    let rx = Receiver::start(3);
    let (hook, _) = subscribe(&w, &w.admin, &rx.url, ALL);
    let id = w.new_case("重试测试");
    w.ok(&w.supervisor, &id, "assign", json!({"department_id": w.water}));
    let got = rx.delivered(2, Duration::from_secs(20));
    assert_eq!(types(&got), vec!["case.created", "case.assigned"], "the second waits for the first");
    let all = rx.all();
    assert_eq!(all.iter().filter(|d| d.answered == 500).count(), 3);
    assert!(
        types(&all[..3]).iter().all(|t| t == "case.created"),
        "no later event overtakes a failing one: {:?}",
        types(&all)
    );
    let started = Instant::now();
    let log = loop {
        let log = w.app.get(&format!("/api/v1/webhooks/{hook}/deliveries"), &w.admin).expect(200).clone();
        let done = log["items"].as_array().is_some_and(|i| i.iter().all(|e| e["state"] == "delivered"));
        if done || started.elapsed() > Duration::from_secs(10) {
            break log;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let created = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["event_type"] == "case.created")
        .expect("created")
        .clone();
    assert_eq!(created["attempts"], 4);
    assert_eq!(created["log"].as_array().map(Vec::len), Some(4));
    assert_eq!(created["log"][0]["status_code"], 500);
}

fn refused_changes_send_nothing(b: Backend) {
    let w = World::new_with(b, fast);
    let rx = Receiver::start(0);
    subscribe(&w, &w.admin, &rx.url, ALL);
    let id = w.new_case("被拒绝的操作");
    w.act(&w.supervisor, &id, "close", json!({})).expect_problem(409, "invalid_transition");
    w.app
        .call(
            "POST",
            &format!("/api/v1/cases/{id}/actions/assign"),
            Some(&w.supervisor),
            Some(&json!({"department_id": w.water})),
            &[("If-Match", "\"9\"")],
        )
        .expect_problem(412, "stale_version");
    let mut bad = w.complaint("不覆盖的清单");
    bad["programme_id"] = json!(uuid::Uuid::new_v4());
    w.app.post("/api/v1/cases", &w.supervisor, bad).expect_problem(422, "validation_failed");
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(types(&rx.delivered(1, Duration::from_secs(5))), vec!["case.created"]);
}

fn events_survive_a_restart(b: Backend) {
    let mut w = World::new_with(b, fast);
    // The receiver is down while the events are made.
    let parked = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", parked.local_addr().expect("addr"));
    drop(parked);
    subscribe(&w, &w.admin, &url, ALL);
    let id = w.new_case("重启前");
    w.ok(&w.supervisor, &id, "assign", json!({"department_id": w.water}));
    std::thread::sleep(Duration::from_millis(400));
    w.app.restart();
    let port: u16 = url.trim_start_matches("http://127.0.0.1:").trim_end_matches("/hook").parse().expect("port");
    let rx = Receiver::on(TcpListener::bind(("127.0.0.1", port)).expect("rebind"), 0);
    let got = rx.delivered(2, Duration::from_secs(30));
    assert_eq!(types(&got), vec!["case.created", "case.assigned"], "nothing lost, in order, after a restart");
}

fn two_processes_never_send_one_event_twice(b: Backend) {
    let w = World::new_with(b, fast);
    let other = w.app.second_process();
    let rx = Receiver::start(0);
    subscribe(&w, &w.admin, &rx.url, &["case.created"]);
    for i in 0..12 {
        w.new_case(&format!("并发投递{i}"));
    }
    let got = rx.delivered(12, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    let ids: Vec<String> =
        rx.all().iter().map(|d| d.headers.get("minsheng-event-id").cloned().unwrap_or_default()).collect();
    let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(got.len(), 12);
    assert_eq!(unique.len(), ids.len(), "an event was sent twice: {ids:?}");
    drop(other);
}

fn overdue_is_announced_once(b: Backend) {
    let w = World::new_with(b, fast);
    let rx = Receiver::start(0);
    subscribe(&w, &w.admin, &rx.url, &["case.overdue"]);
    let mut body = w.complaint("即将逾期");
    body["due_at"] = json!((chrono::Utc::now() + chrono::Duration::milliseconds(800)).to_rfc3339());
    let id = w.app.post("/api/v1/cases", &w.supervisor, body).expect(201)["id"].as_str().expect("id").to_owned();
    let got = rx.delivered(1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(rx.delivered(1, Duration::from_secs(1)).len(), 1, "once");
    assert_eq!(serde_json::from_str::<Value>(&got[0].body).expect("json")["case"]["id"], id.as_str());
    // A new deadline that passes is announced again.
    let due = (chrono::Utc::now() + chrono::Duration::milliseconds(800)).to_rfc3339();
    w.ok(&w.supervisor, &id, "extend", json!({"due_at": due, "reason": "延期"}));
    assert_eq!(rx.delivered(2, Duration::from_secs(10)).len(), 2);
}

fn clients_hear_only_of_their_own_cases(b: Backend) {
    let w = World::new_with(b, fast);
    let rx = Receiver::start(0);
    let made = w
        .app
        .post("/api/v1/api-clients", &w.admin, json!({"name": "省平台", "jurisdiction_code": "530602", "scopes": ["cases:create", "cases:read_own", "webhooks:manage"]}))
        .expect(201)
        .clone();
    let key = made["key"].as_str().expect("key").to_owned();
    subscribe(&w, &key, &rx.url, &["case.created"]);
    w.new_case("别人的案件");
    let mine =
        w.app.post("/api/v1/cases", &key, w.complaint("平台转办")).expect(201)["id"].as_str().expect("id").to_owned();
    let got = rx.delivered(1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(rx.all().len(), 1);
    assert_eq!(serde_json::from_str::<Value>(&got[0].body).expect("json")["case"]["id"], mine.as_str());
    let no_scope = w
        .app
        .post(
            "/api/v1/api-clients",
            &w.admin,
            json!({"name": "无权限", "jurisdiction_code": "530602", "scopes": ["cases:create"]}),
        )
        .expect(201)["key"]
        .as_str()
        .expect("key")
        .to_owned();
    w.app
        .post("/api/v1/webhooks", &no_scope, json!({"url": rx.url, "events": ["case.created"]}))
        .expect_problem(403, "scope_missing");
}

/// A subscription URL follows the rule of every URL the service takes (the contract's pattern):
/// `http` or `https` in any case, then a host, no spaces or control characters, surrounding
/// white space trimmed. Found by Schemathesis: `HTTPS://…` was refused, `https:///x` accepted.
fn subscription_urls_follow_the_contract(b: Backend) {
    let w = World::new(b);
    for url in ["HTTPS://12345.yn.example/hooks", " https://12345.yn.example/hooks\u{85}", "http://10.0.0.1:8080/h"] {
        let r = w.app.post("/api/v1/webhooks", &w.admin, json!({"url": url, "events": ["case.created"]}));
        assert_eq!(r.status, 201, "{url:?}: {}", r.text);
        assert_eq!(r.body["url"], url.trim(), "{url:?}");
    }
    for url in ["https:///hooks", "https://", "http://a b", "ftp://12345.yn.example", "https://x\u{7}y"] {
        let r = w.app.post("/api/v1/webhooks", &w.admin, json!({"url": url, "events": ["case.created"]}));
        assert_eq!(r.bad_fields(), vec!["url"], "{url:?}: {}", r.text);
    }
}

both!(
    subscription_urls_follow_the_contract,
    deliveries_are_signed_ordered_and_logged,
    failed_deliveries_are_retried_in_order,
    refused_changes_send_nothing,
    events_survive_a_restart,
    two_processes_never_send_one_event_twice,
    overdue_is_announced_once,
    clients_hear_only_of_their_own_cases,
);
