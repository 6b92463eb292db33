//! The real binary as a process: killed with SIGKILL under load (every acknowledged write
//! survives, whole), and stopped with SIGTERM (in-flight requests finish, new connections are
//! refused, background work and the pool are closed, exit 0).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::RunQueryDsl;
use serde_json::{json, Value};

use crate::support::{Backend, Client, Process, World};

/// A request the client sent; whether it was acknowledged (2xx) or left in doubt (no answer).
#[derive(Clone, Debug)]
struct Sent {
    key: String,
    path: String,
    body: Value,
    token: String,
    /// The case (for creates: known only once answered).
    case: Option<String>,
    /// The case's version in the 2xx answer.
    version: Option<i64>,
    action: &'static str,
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn count(conn: &mut minsheng::db::DbConn, sql: &str) -> i64 {
    diesel::sql_query(sql).load::<Count>(conn).unwrap()[0].n
}

/// Sends `sent` until it gets an answer: `true` when acknowledged (2xx; the answer's case and
/// version are recorded), `false` when the service stopped answering (the request is in doubt).
/// A 503 (the process is starting or busy) is retried.
fn attempt(c: &Client, sent: &mut Sent, acked: &AtomicUsize) -> bool {
    loop {
        match c.call("POST", &sent.path, Some(&sent.token), Some(&sent.body), &[("Idempotency-Key", &sent.key)]) {
            Ok(r) if r.status == 200 || r.status == 201 => {
                sent.case = Some(r.body["id"].as_str().unwrap().to_owned());
                sent.version = r.body["version"].as_i64();
                acked.fetch_add(1, Ordering::SeqCst);
                return true;
            }
            Ok(r) if r.status == 503 => thread::sleep(Duration::from_millis(20)),
            Ok(r) => panic!("unexpected answer {} to {}: {}", r.status, sent.path, r.text),
            Err(_) => return false,
        }
    }
}

/// One client's loop: create a case, assign it, comment on it, extend it — each with an
/// Idempotency-Key — until the service stops answering. Returns what was acknowledged and the
/// one request left in doubt.
fn client_loop(
    c: Client,
    w: Arc<(String, String, Value)>,
    n: usize,
    acked: Arc<AtomicUsize>,
) -> (Vec<Sent>, Option<Sent>) {
    let (supervisor, water, complaint) = (&w.0, &w.1, &w.2);
    let mut done = Vec::new();
    for j in 0.. {
        let mut body = complaint.clone();
        body["title"] = json!(format!("crash-{n}-{j}"));
        let mut create = Sent {
            key: format!("create-{n}-{j}"),
            path: "/api/v1/cases".to_owned(),
            body,
            token: supervisor.clone(),
            case: None,
            version: None,
            action: "create",
        };
        if !attempt(&c, &mut create, &acked) {
            return (done, Some(create));
        }
        let case = create.case.clone().unwrap();
        done.push(create);
        for (action, body) in [
            ("assign", json!({"department_id": water})),
            ("comment", json!({"text": format!("进展 {j}")})),
            ("extend", json!({"due_at": "2099-01-01T00:00:00Z", "reason": "等待材料"})),
        ] {
            let mut sent = Sent {
                key: format!("{action}-{n}-{j}"),
                path: format!("/api/v1/cases/{case}/actions/{action}"),
                body,
                token: supervisor.clone(),
                case: Some(case.clone()),
                version: None,
                action,
            };
            if !attempt(&c, &mut sent, &acked) {
                return (done, Some(sent));
            }
            done.push(sent);
        }
    }
    unreachable!()
}

fn crash_under_load(b: Backend) {
    let w = World::new(b);
    let shared = Arc::new((w.supervisor.clone(), w.water.clone(), w.complaint("x")));
    let mut service = Process::start(&w.app.database_url, &[]);
    let acked = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|n| {
            let (c, s, a) = (service.client(), shared.clone(), acked.clone());
            thread::spawn(move || client_loop(c, s, n, a))
        })
        .collect();
    // Kill it mid-load (a "does not hang" bound, not a timing).
    for _ in 0..1200 {
        if acked.load(Ordering::SeqCst) >= 80 {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    assert!(acked.load(Ordering::SeqCst) >= 80, "the load never got going; log: {:?}", service.log());
    service.child.kill().unwrap();
    service.child.wait().unwrap();
    let results: Vec<(Vec<Sent>, Option<Sent>)> = clients.into_iter().map(|t| t.join().unwrap()).collect();

    let service = Process::start(&w.app.database_url, &[]);
    let c = service.client();
    // Every acknowledged write is there, with its event at the version it answered.
    for sent in results.iter().flat_map(|(done, _)| done) {
        let case = sent.case.as_deref().unwrap();
        let events = c.get(&format!("/api/v1/cases/{case}/events"), &w.supervisor).expect(200)["items"].clone();
        let version = sent.version.unwrap();
        let event = events.as_array().unwrap().iter().find(|e| e["seq"] == version);
        assert_eq!(event.map(|e| e["action"].clone()), Some(json!(sent.action)), "lost: {sent:?}");
    }
    // A request in doubt, retried with its key, is done exactly once (replayed or executed now).
    let in_doubt: Vec<Sent> = results.iter().filter_map(|(_, d)| d.clone()).collect();
    assert_eq!(in_doubt.len(), 4, "every client lost the service with one request unanswered");
    for sent in &in_doubt {
        let r =
            c.call("POST", &sent.path, Some(&sent.token), Some(&sent.body), &[("Idempotency-Key", &sent.key)]).unwrap();
        assert!(r.status == 200 || r.status == 201, "retry of {sent:?}: {} {}", r.status, r.text);
    }
    // Whole: every case has one event per version, the first its `create`; each title (one
    // client request) made one case; each action key made one event.
    let mut titles: HashMap<String, usize> = HashMap::new();
    let mut cursor: Option<String> = None;
    let mut cases = 0;
    loop {
        let path = match &cursor {
            Some(k) => format!("/api/v1/cases?limit=100&cursor={k}"),
            None => "/api/v1/cases?limit=100".to_owned(),
        };
        let page = c.get(&path, &w.supervisor).expect(200).clone();
        for case in page["items"].as_array().unwrap() {
            cases += 1;
            *titles.entry(case["title"].as_str().unwrap().to_owned()).or_default() += 1;
            let id = case["id"].as_str().unwrap();
            let events = c.get(&format!("/api/v1/cases/{id}/events"), &w.supervisor).expect(200)["items"].clone();
            let events = events.as_array().unwrap();
            assert_eq!(events.len() as i64, case["version"].as_i64().unwrap(), "case {id} vs its events");
            assert_eq!(events[0]["action"], "create");
            let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
            assert_eq!(seqs, (1..=events.len() as i64).collect::<Vec<_>>(), "gaps in the events of {id}");
            let kinds: Vec<&str> = events.iter().map(|e| e["action"].as_str().unwrap()).collect();
            for a in ["create", "assign", "comment", "extend"] {
                assert!(kinds.iter().filter(|k| **k == a).count() <= 1, "{a} twice on {id}: {kinds:?}");
            }
        }
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    assert!(titles.values().all(|n| *n == 1), "a create happened twice: {titles:?}");
    assert!(cases >= results.iter().flat_map(|(d, _)| d).filter(|s| s.action == "create").count());
    // And below the API: no event without its case, no case without its events.
    let mut conn = minsheng::db::ConnectionFactory::new(&w.app.database_url, 5000).open().unwrap();
    let orphans =
        "SELECT count(*) AS n FROM case_events e WHERE NOT EXISTS (SELECT 1 FROM cases c WHERE c.id = e.case_id)";
    assert_eq!(count(&mut conn, orphans), 0);
    let short = "SELECT count(*) AS n FROM cases c WHERE c.version <> (SELECT count(*) FROM case_events e WHERE e.case_id = c.id)";
    assert_eq!(count(&mut conn, short), 0);
}

/// A write that waits on a lock the test holds, so it is certainly in flight during SIGTERM.
struct Lock {
    conn: minsheng::db::DbConn,
}

impl Lock {
    fn take(w: &World, case: &str) -> Lock {
        let mut conn = minsheng::db::ConnectionFactory::new(&w.app.database_url, 5000).open().unwrap();
        match &mut conn {
            minsheng::db::DbConn::Sqlite(c) => c.batch_execute("BEGIN IMMEDIATE").unwrap(),
            minsheng::db::DbConn::Pg(c) => {
                c.batch_execute(&format!("BEGIN; SELECT 1 FROM cases WHERE id = '{case}' FOR UPDATE")).unwrap()
            }
        }
        Lock { conn }
    }

    fn release(mut self) {
        self.conn.batch_execute("ROLLBACK").unwrap();
    }
}

fn sigterm_finishes_in_flight_requests(b: Backend) {
    let w = World::new(b);
    let case = w.new_case("优雅停机");
    let mut service = Process::start(
        &w.app.database_url,
        &[("MINSHENG_SHUTDOWN_GRACE_SECS", "20"), ("MINSHENG_DB_TIMEOUT_MS", "20000")],
    );
    let c = service.client();
    c.get("/readyz", &w.supervisor).expect(200);
    let lock = Lock::take(&w, &case);
    let (path, token) = (format!("/api/v1/cases/{case}/actions/comment"), w.supervisor.clone());
    let in_flight = thread::spawn(move || c.call("POST", &path, Some(&token), Some(&json!({"text": "停机前"})), &[]));
    // Let the request reach the lock; then ask the service to stop.
    thread::sleep(Duration::from_secs(2));
    service.signal("TERM");
    // It stops accepting: new connections are refused while the request is still in flight.
    let mut refused = false;
    for _ in 0..200 {
        if std::net::TcpStream::connect(&service.addr).is_err() {
            refused = true;
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    assert!(refused, "still accepting connections after SIGTERM");
    assert!(!in_flight.is_finished(), "the request finished before the lock was released");
    lock.release();
    let r = in_flight.join().unwrap().expect("the in-flight request was cut off");
    assert_eq!(r.status, 200, "in-flight request: {}", r.text);
    let status = service.wait_exit(Duration::from_secs(40));
    assert!(status.success(), "exit status {status}; log: {:?}", service.log());
    let log = service.log().join("\n");
    assert!(log.contains("webhook dispatcher stopped"), "{log}");
    assert!(log.contains("database pool closed"), "{log}");
    // What it acknowledged is stored.
    assert_eq!(w.app.get(&format!("/api/v1/cases/{case}"), &w.supervisor).expect(200)["version"], 2);
}

/// A webhook endpoint that holds its first request until told to answer; answers the rest at
/// once. Counts what it got.
struct SlowReceiver {
    url: String,
    got: Arc<AtomicUsize>,
    arrived: std::sync::mpsc::Receiver<()>,
    answer: std::sync::mpsc::Sender<()>,
}

impl SlowReceiver {
    fn start() -> SlowReceiver {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let got = Arc::new(AtomicUsize::new(0));
        let (arrived_tx, arrived) = std::sync::mpsc::channel();
        let (answer, answer_rx) = std::sync::mpsc::channel::<()>();
        let count = got.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
                crate::support::read_http_request(&mut stream);
                if count.fetch_add(1, Ordering::SeqCst) == 0 {
                    let _ = arrived_tx.send(());
                    let _ = answer_rx.recv_timeout(Duration::from_secs(60));
                }
                let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        });
        SlowReceiver { url, got, arrived, answer }
    }
}

fn sigterm_lets_the_webhook_delivery_finish(b: Backend) {
    // The in-process service must not deliver: only the child process's dispatcher runs.
    let w = World::new_with(b, |c| c.webhook_poll = Duration::from_secs(3600));
    let rx = SlowReceiver::start();
    let hook = w.app.post("/api/v1/webhooks", &w.admin, json!({"url": rx.url, "events": ["case.created"]}));
    let hook = hook.expect(201)["id"].as_str().unwrap().to_owned();
    let mut service = Process::start(
        &w.app.database_url,
        &[("MINSHENG_SHUTDOWN_GRACE_SECS", "20"), ("MINSHENG_WEBHOOK_POLL_MS", "50")],
    );
    w.new_case("推送中停机");
    rx.arrived.recv_timeout(Duration::from_secs(30)).expect("the delivery never started");
    service.signal("TERM");
    // The process waits for the delivery in progress: let it wait a little, then answer.
    thread::sleep(Duration::from_secs(1));
    assert!(service.child.try_wait().unwrap().is_none(), "exited before its delivery finished");
    rx.answer.send(()).unwrap();
    let status = service.wait_exit(Duration::from_secs(40));
    assert!(status.success(), "exit status {status}; log: {:?}", service.log());
    let log = service.log();
    let at = |needle: &str| {
        log.iter().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("no {needle:?} in {log:?}"))
    };
    assert!(at("http server stopped") < at("webhook delivery"), "{log:?}");
    assert!(at("webhook delivery") < at("webhook dispatcher stopped"), "{log:?}");
    assert!(at("webhook dispatcher stopped") < at("database pool closed"), "{log:?}");
    // Recorded as delivered, once: nothing is sent again.
    let deliveries = w.app.get(&format!("/api/v1/webhooks/{hook}/deliveries"), &w.admin).expect(200)["items"].clone();
    assert_eq!(deliveries.as_array().unwrap().len(), 1);
    assert_eq!(deliveries[0]["state"], "delivered", "{deliveries}");
    assert_eq!(rx.got.load(Ordering::SeqCst), 1);
}

both!(crash_under_load, sigterm_finishes_in_flight_requests, sigterm_lets_the_webhook_delivery_finish);
