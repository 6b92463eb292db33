//! Database faults: the database going away and coming back, a locked SQLite, a full disk.
//! Requests during a fault answer 503 problem+json quickly (no hang, no 500, no internals), and
//! nothing is half-written.
//!
//! "PostgreSQL stops" without stopping the shared server: the service talks to it through a
//! loopback proxy that, when told, drops every open connection and blackholes new ones (accepts
//! them and never answers — the harsher case: libpq's `connect_timeout` must end the wait).

use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::Connection;
use serde_json::{json, Value};

use crate::support::{pg_base_url, Backend, Resp, World};

/// A TCP proxy in front of the shared PostgreSQL.
struct Proxy {
    addr: String,
    down: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let down = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let (flag, conns, upstream) = (down.clone(), open.clone(), upstream.to_owned());
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if flag.load(Ordering::SeqCst) {
                    // Blackholed: held open, never answered, closed when the database returns.
                    conns.lock().unwrap().push(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else { continue };
                {
                    let mut all = conns.lock().unwrap();
                    all.push(client.try_clone().unwrap());
                    all.push(server.try_clone().unwrap());
                }
                for (mut from, mut to) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)]
                {
                    thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Proxy { addr, down, open }
    }

    /// The database "stops": every open connection is cut, new ones hang.
    fn stop_database(&self) {
        self.down.store(true, Ordering::SeqCst);
        for conn in self.open.lock().unwrap().drain(..) {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }

    /// The database "returns".
    fn start_database(&self) {
        self.down.store(false, Ordering::SeqCst);
        for conn in self.open.lock().unwrap().drain(..) {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

/// `host:port` of a PostgreSQL URL.
fn authority(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap().to_owned()
}

/// Asserts a 503 problem with `code` whose body says nothing internal.
#[track_caller]
fn unavailable(r: &Resp, code: &str) {
    r.expect_problem(503, code);
    assert!(r.header("retry-after").is_some(), "no Retry-After: {:?}", r.headers);
    for leak in ["127.0.0.1", "5432", "SQL", "sqlite", "postgres", "server closed", "locked", "disk"] {
        assert!(!r.text.contains(leak), "internal detail {leak:?} in {}", r.text);
    }
}

fn cases_count(w: &World) -> usize {
    w.app.get("/api/v1/cases?limit=100", &w.supervisor).expect(200)["items"].as_array().unwrap().len()
}

/// Every case has as many events as its version, the first one its `create`.
#[track_caller]
fn whole(w: &World) {
    let items = w.app.get("/api/v1/cases?limit=100", &w.supervisor).expect(200)["items"].as_array().unwrap().clone();
    for case in items {
        let id = case["id"].as_str().unwrap();
        let events = w.app.get(&format!("/api/v1/cases/{id}/events"), &w.supervisor).expect(200)["items"].clone();
        let events = events.as_array().unwrap();
        assert_eq!(events.len() as i64, case["version"].as_i64().unwrap(), "case {id} vs its events");
        assert_eq!(events[0]["action"], "create");
    }
}

fn database_outage(b: Backend) {
    match b {
        Backend::Postgres => postgres_outage(),
        Backend::Sqlite => sqlite_locked(),
    }
}

/// PostgreSQL stops mid-use and returns: 503s during, recovery without a restart after.
fn postgres_outage() {
    let proxy = Proxy::start(&authority(&pg_base_url()));
    let w = World::new_with(Backend::Postgres, |c| {
        c.database_url = c.database_url.replacen(&authority(&pg_base_url()), &proxy.addr, 1);
        c.db_timeout = Duration::from_millis(1000);
        c.pool_size = 4;
    });
    let before = w.new_case("停电前");
    w.app.call("GET", "/readyz", None, None, &[]).expect(200);

    proxy.stop_database();
    // More requests than pooled connections, so every stale connection is met at least once.
    for i in 0..6 {
        unavailable(&w.app.call("GET", "/readyz", None, None, &[]), "service_unavailable");
        unavailable(
            &w.app.post("/api/v1/cases", &w.supervisor, w.complaint(&format!("停电中 {i}"))),
            "service_unavailable",
        );
        unavailable(&w.app.get(&format!("/api/v1/cases/{before}"), &w.supervisor), "service_unavailable");
    }

    proxy.start_database();
    let mut ready = false;
    for _ in 0..60 {
        if w.app.call("GET", "/readyz", None, None, &[]).status == 200 {
            ready = true;
            break;
        }
        thread::sleep(Duration::from_millis(500));
    }
    assert!(ready, "/readyz never recovered");
    // Every pooled connection works again: no stale one is handed out.
    for i in 0..6 {
        w.app.get(&format!("/api/v1/cases/{before}"), &w.supervisor).expect(200);
        w.app.post("/api/v1/cases", &w.supervisor, w.complaint(&format!("恢复后 {i}"))).expect(201);
    }
    assert_eq!(cases_count(&w), 7, "only acknowledged writes are stored");

    // A short outage nobody noticed: the pool's connections all went stale while idle. The first
    // request to meet one may answer 503; the rest are weeded out before use.
    proxy.stop_database();
    proxy.start_database();
    let first = w.app.get(&format!("/api/v1/cases/{before}"), &w.supervisor);
    if first.status != 200 {
        unavailable(&first, "service_unavailable");
    }
    for i in 0..8 {
        w.app.get(&format!("/api/v1/cases/{before}"), &w.supervisor).expect(200);
        w.app.post("/api/v1/cases", &w.supervisor, w.complaint(&format!("再恢复 {i}"))).expect(201);
    }
    assert_eq!(cases_count(&w), 15);
    whole(&w);
}

/// Another connection holds SQLite's write lock beyond the busy timeout: writes answer 503,
/// reads go on, and nothing is half-written.
fn sqlite_locked() {
    let w = World::new_with(Backend::Sqlite, |c| c.db_timeout = Duration::from_millis(300));
    let before = w.new_case("上锁前");
    let mut locker = diesel::SqliteConnection::establish(&w.app.database_url).unwrap();
    locker.batch_execute("BEGIN IMMEDIATE").unwrap();
    for i in 0..3 {
        unavailable(
            &w.app.post("/api/v1/cases", &w.supervisor, w.complaint(&format!("上锁中 {i}"))),
            "service_unavailable",
        );
        unavailable(&w.act(&w.supervisor, &before, "comment", json!({"text": "锁住了"})), "service_unavailable");
    }
    // Reads are not blocked by a writer (WAL).
    w.app.get(&format!("/api/v1/cases/{before}"), &w.supervisor).expect(200);
    w.app.call("GET", "/readyz", None, None, &[]).expect(200);
    locker.batch_execute("ROLLBACK").unwrap();
    w.app.post("/api/v1/cases", &w.supervisor, w.complaint("解锁后")).expect(201);
    assert_eq!(w.app.get(&format!("/api/v1/cases/{before}"), &w.supervisor).expect(200)["version"], 1);
    assert_eq!(cases_count(&w), 2);
    whole(&w);
}

/// A case body with a long description (so a few fill a small database).
fn bulky(w: &World, title: &str) -> Value {
    let mut body = w.complaint(title);
    body["description"] = Value::String("水管破裂，村民反映多次。".repeat(700));
    body
}

/// The disk fills up: writes are refused whole with `503 storage_full`, reads go on, and
/// writing resumes once there is room. SQLite: the database reaches its size cap
/// (`MINSHENG_SQLITE_MAX_PAGES`, which answers exactly as a full disk does). PostgreSQL: the
/// server reports `No space left on device` (SQLSTATE 53100) on the event insert, after the
/// case row was written in the same transaction.
fn storage_full(b: Backend) {
    let mut w = World::new(b);
    let first = w.new_case("满盘前");
    let pg_admin = || diesel::PgConnection::establish(&pg_base_url()).unwrap();
    match b {
        Backend::Sqlite => {
            let mut conn = diesel::SqliteConnection::establish(&w.app.database_url).unwrap();
            #[derive(diesel::QueryableByName)]
            struct Pages {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                page_count: i64,
            }
            use diesel::RunQueryDsl;
            let pages: Vec<Pages> =
                diesel::sql_query("SELECT page_count FROM pragma_page_count()").load(&mut conn).unwrap();
            let cap = pages[0].page_count as u64 + 40;
            w.app.restart_with(|c| c.sqlite_max_pages = Some(cap));
        }
        Backend::Postgres => {
            let schema = w.app.database_url.rsplit("%3D").next().unwrap().to_owned();
            pg_admin()
                .batch_execute(&format!(
                    "CREATE FUNCTION {schema}.disk_full() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                   RAISE EXCEPTION 'could not extend file \"base/16384/2619\": No space left on device' \
                   USING ERRCODE = 'disk_full'; END $$; \
                 CREATE TRIGGER disk_full BEFORE INSERT ON {schema}.case_events \
                   FOR EACH ROW EXECUTE FUNCTION {schema}.disk_full();"
                ))
                .unwrap();
        }
    }
    let mut stored = 1;
    let mut refused = 0;
    for i in 0..200 {
        let r = w.app.post("/api/v1/cases", &w.supervisor, bulky(&w, &format!("满盘 {i}")));
        match r.status {
            201 => stored += 1,
            _ => {
                unavailable(&r, "storage_full");
                refused += 1;
                if refused == 3 {
                    break;
                }
            }
        }
    }
    assert_eq!(refused, 3, "the database never filled up");
    // An action on an existing case is refused whole too (SQLite: once really full).
    let r = w.act(&w.supervisor, &first, "comment", json!({"text": "满了".repeat(400)}));
    if r.status != 200 {
        unavailable(&r, "storage_full");
    }
    // Reads go on; what is stored is whole.
    w.app.call("GET", "/readyz", None, None, &[]).expect(200);
    assert_eq!(cases_count(&w), stored, "a refused case was stored");
    whole(&w);

    // Room again: writes resume.
    match b {
        Backend::Sqlite => w.app.restart_with(|c| c.sqlite_max_pages = None),
        Backend::Postgres => {
            let schema = w.app.database_url.rsplit("%3D").next().unwrap().to_owned();
            pg_admin().batch_execute(&format!("DROP TRIGGER disk_full ON {schema}.case_events")).unwrap();
        }
    }
    w.app.post("/api/v1/cases", &w.supervisor, w.complaint("有空间了")).expect(201);
    whole(&w);
}

both!(database_outage, storage_full);
