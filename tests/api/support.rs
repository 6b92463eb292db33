//! The test harness: a real server per test on an ephemeral port, on its own database — a fresh
//! SQLite file, or a fresh schema in the PostgreSQL at `MINSHENG_TEST_PG_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`) — and a small blocking HTTP client.

use std::collections::HashMap;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

use minsheng::config::Config;
use minsheng::domain::types::Role;
use minsheng::service::users::NewUser;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Declares each listed test twice: in `sqlite` and in `postgres`.
#[macro_export]
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name($crate::support::Backend::Sqlite) } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::$name($crate::support::Backend::Postgres) } )*
        }
    };
}

/// The PostgreSQL server tests create their schemas in.
pub fn pg_base_url() -> String {
    std::env::var("MINSHENG_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Value,
    pub text: String,
}

impl Resp {
    /// A header by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text);
        &self.body
    }

    /// Asserts a problem+json answer with this status and code.
    #[track_caller]
    pub fn expect_problem(&self, status: u16, code: &str) -> &Value {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text);
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "not problem+json: {}", self.text);
        assert_eq!(self.body["code"], code, "unexpected problem code; body: {}", self.text);
        assert_eq!(self.body["status"], status);
        &self.body
    }

    /// The `field`s of a validation problem, sorted.
    pub fn bad_fields(&self) -> Vec<String> {
        let mut fields: Vec<String> = self.body["errors"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["field"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        fields.sort();
        fields
    }
}

/// A running service on a fresh database.
pub struct TestApp {
    pub backend: Backend,
    pub base: String,
    pub database_url: String,
    agent: ureq::Agent,
    stop: Option<actix_web::dev::ServerHandle>,
    schema: Option<String>,
    config: Config,
    _dir: tempfile::TempDir,
}

/// Another service process on a test's database.
pub struct SecondProcess {
    pub base: String,
    handle: Option<actix_web::dev::ServerHandle>,
}

impl Drop for SecondProcess {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            futures_lite_block(h.stop(false));
        }
    }
}

/// Runs a service (HTTP server and background work) on its own thread; returns its port.
fn spawn_server(config: Config) -> (u16, actix_web::dev::ServerHandle) {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let system = actix_web::rt::System::new();
        system.block_on(async move {
            let state = actix_web::web::Data::new(minsheng::init_state(config.clone()).expect("init state"));
            let state_for_background = state.clone();
            // The production server settings (connection limits, client time-outs), test workers.
            let (server, addrs) =
                minsheng::bind(state, "127.0.0.1:0", config.workers.unwrap_or(2), 1, false).expect("bind");
            minsheng::background::start(state_for_background);
            let port = addrs[0].port();
            tx.send((port, server.handle())).expect("send port");
            server.await.expect("server");
        });
    });
    rx.recv_timeout(Duration::from_secs(60)).expect("server did not start")
}

/// The configuration every test server uses: cheap password hashing, a fixed JWT secret, no API
/// key cache (so a revocation is seen by the very next request).
pub fn test_config(database_url: &str) -> Config {
    Config {
        database_url: database_url.to_owned(),
        listen: "127.0.0.1:0".to_owned(),
        jwt_secret: Some("test-secret-0123456789abcdef0123456789".to_owned()),
        pool_size: 8,
        workers: Some(2),
        argon2_memory_kib: 64,
        argon2_iterations: 1,
        shutdown_grace: Duration::from_secs(1),
        // Revocations must bite at once in tests; production trusts a look for 5 s.
        session_check_ttl: Duration::ZERO,
        api_key_cache_ttl: Duration::ZERO,
        // Tests fire requests from one address as fast as they can; the rate limit has its own
        // tests (tests/api/resilience.rs).
        rate_limit_per_sec: 0.0,
        ..Config::default()
    }
}

/// Creates a fresh database for `backend` and returns its URL (and the PostgreSQL schema name).
pub fn fresh_database(backend: Backend, dir: &std::path::Path) -> (String, Option<String>) {
    match backend {
        Backend::Sqlite => (dir.join("test.db").to_string_lossy().into_owned(), None),
        Backend::Postgres => {
            use diesel::connection::SimpleConnection;
            use diesel::Connection;
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            let base = pg_base_url();
            let mut conn = diesel::PgConnection::establish(&base)
                .unwrap_or_else(|e| panic!("PostgreSQL is needed for the postgres tests at {base}: {e}"));
            conn.batch_execute(&format!("CREATE SCHEMA {schema}")).expect("create schema");
            let sep = if base.contains('?') { '&' } else { '?' };
            (format!("{base}{sep}options=-csearch_path%3D{schema}"), Some(schema))
        }
    }
}

impl TestApp {
    /// Starts a service on a fresh database.
    pub fn start(backend: Backend) -> TestApp {
        Self::start_with(backend, |_| {})
    }

    /// Starts a service on a fresh database with adjusted configuration.
    pub fn start_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let (database_url, schema) = fresh_database(backend, dir.path());
        let mut config = test_config(&database_url);
        adjust(&mut config);
        let (port, handle) = spawn_server(config.clone());
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(60)).build();
        TestApp {
            backend,
            base: format!("http://127.0.0.1:{port}"),
            database_url,
            agent,
            stop: Some(handle),
            schema,
            config,
            _dir: dir,
        }
    }

    /// Stops this process and starts a new one on the same database (what a crash and restart
    /// leaves behind, minus the in-flight requests).
    pub fn restart(&mut self) {
        if let Some(handle) = self.stop.take() {
            futures_lite_block(handle.stop(false));
        }
        let (port, handle) = spawn_server(self.config.clone());
        self.base = format!("http://127.0.0.1:{port}");
        self.stop = Some(handle);
    }

    /// Starts a second service process on the same database; it stops when dropped.
    pub fn second_process(&self) -> SecondProcess {
        let (port, handle) = spawn_server(self.config.clone());
        SecondProcess { base: format!("http://127.0.0.1:{port}"), handle: Some(handle) }
    }

    /// Sends a request; `body` is sent as JSON when given.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        send(&self.agent, &self.base, method, path, token, body, headers)
            .unwrap_or_else(|e| panic!("transport error: {e}"))
    }

    /// Sends a raw body with a content type.
    pub fn raw(&self, method: &str, path: &str, token: Option<&str>, content_type: &str, body: &[u8]) -> Resp {
        let mut req = self.agent.request(method, &format!("{}{}", self.base, path)).set("Content-Type", content_type);
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        Self::read(req.send_bytes(body))
    }

    fn read(result: Result<ureq::Response, ureq::Error>) -> Resp {
        read_response(result).unwrap_or_else(|e| panic!("transport error: {e}"))
    }

    /// Restarts on the same database with adjusted configuration.
    pub fn restart_with(&mut self, adjust: impl FnOnce(&mut Config)) {
        adjust(&mut self.config);
        self.restart();
    }

    /// Starts a service on an existing database (e.g. one a backup was restored into); the test
    /// owns that database and cleans it up.
    pub fn start_on(backend: Backend, database_url: &str) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = test_config(database_url);
        let (port, handle) = spawn_server(config.clone());
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(60)).build();
        TestApp {
            backend,
            base: format!("http://127.0.0.1:{port}"),
            database_url: database_url.to_owned(),
            agent,
            stop: Some(handle),
            schema: None,
            config,
            _dir: dir,
        }
    }

    pub fn get(&self, path: &str, token: &str) -> Resp {
        self.call("GET", path, Some(token), None, &[])
    }

    pub fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call("POST", path, Some(token), Some(&body), &[])
    }

    pub fn patch(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call("PATCH", path, Some(token), Some(&body), &[])
    }

    /// Creates an admin straight in the database (as `minsheng create-admin` does).
    pub fn create_admin(&self, username: &str, password: &str, jurisdiction: Option<&str>) {
        let config = test_config(&self.database_url);
        let state = minsheng::init_state(config).expect("state");
        let hash = state.hasher.hash(password).expect("hash");
        let mut conn = state.pool.get().expect("conn");
        let new = NewUser {
            username: username.to_owned(),
            password: String::new(),
            role: Role::Admin,
            jurisdiction_code: jurisdiction.map(str::to_owned),
            department_id: None,
            display_name: None,
        };
        minsheng::service::users::create_admin(&mut conn, new, hash).expect("create admin");
    }

    /// Signs in and returns the access token.
    #[track_caller]
    pub fn login(&self, username: &str, password: &str) -> String {
        let r = self.call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(&json!({"username": username, "password": password})),
            &[],
        );
        r.expect(200)["access_token"].as_str().expect("token").to_owned()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(handle) = self.stop.take() {
            futures_lite_block(handle.stop(false));
        }
        if let Some(schema) = &self.schema {
            use diesel::connection::SimpleConnection;
            use diesel::Connection;
            if let Ok(mut conn) = diesel::PgConnection::establish(&pg_base_url()) {
                let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
        }
    }
}

/// Reads a response whole; a transport failure (refused, reset, timed out) is an `Err`.
pub fn read_response(result: Result<ureq::Response, ureq::Error>) -> Result<Resp, String> {
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(e.to_string()),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .filter_map(|n| resp.header(&n).map(|v| (n.to_ascii_lowercase(), v.to_owned())))
        .collect();
    let text = resp.into_string().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Resp { status, headers, body, text })
}

/// Sends one request with `agent` to `base` + `path`: the bearer token and headers when given,
/// `body` as JSON when given. The one request builder of [`TestApp::call`] and [`Client::call`].
fn send(
    agent: &ureq::Agent,
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Result<Resp, String> {
    let mut req = agent.request(method, &format!("{base}{path}"));
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    for (k, v) in headers {
        req = req.set(k, v);
    }
    read_response(match body {
        Some(b) => req.send_json(b.clone()),
        None => req.call(),
    })
}

/// An HTTP client for a service at `base` that reports transport failures instead of panicking
/// (for services that are killed or stopped under it).
#[derive(Clone)]
pub struct Client {
    pub base: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client with a generous "does not hang" bound on every request.
    pub fn new(base: &str) -> Client {
        Client { base: base.to_owned(), agent: ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build() }
    }

    /// Sends a request; `body` is sent as JSON when given.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Resp, String> {
        send(&self.agent, &self.base, method, path, token, body, headers)
    }

    /// A GET that must get an answer.
    #[track_caller]
    pub fn get(&self, path: &str, token: &str) -> Resp {
        self.call("GET", path, Some(token), None, &[]).unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
}

/// The real `minsheng` binary, run as a child process on a test's database: what a crash, a
/// SIGTERM or a CLI command needs that an in-process server cannot give.
pub struct Process {
    pub child: std::process::Child,
    pub base: String,
    pub addr: String,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// The environment every child process gets: the same cheap hashing and JWT secret as
/// [`test_config`], so tokens from an in-process server work against it and back.
pub fn process_env(database_url: &str) -> Vec<(String, String)> {
    [
        ("DATABASE_URL", database_url),
        ("MINSHENG_LISTEN", "127.0.0.1:0"),
        ("MINSHENG_JWT_SECRET", "test-secret-0123456789abcdef0123456789"),
        ("MINSHENG_ARGON2_MEMORY_KIB", "64"),
        ("MINSHENG_ARGON2_ITERATIONS", "1"),
        ("MINSHENG_WORKERS", "2"),
        ("MINSHENG_DB_POOL_SIZE", "8"),
        ("MINSHENG_SESSION_CHECK_SECS", "0"),
        ("MINSHENG_API_KEY_CACHE_SECS", "0"),
        ("RUST_LOG", "info"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Runs a CLI command of the binary to completion; returns (success, stdout, stderr).
pub fn run_cli(database_url: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_minsheng"))
        .args(args)
        .envs(process_env(database_url))
        .output()
        .expect("run minsheng");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl Process {
    /// Starts `minsheng serve` on `database_url` with extra environment, and waits until it listens.
    pub fn start(database_url: &str, extra: &[(&str, &str)]) -> Process {
        use std::io::BufRead;
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_minsheng"));
        cmd.arg("serve").envs(process_env(database_url));
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn minsheng");
        let stderr = child.stderr.take().expect("stderr");
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let lines = log.clone();
        thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("minsheng listening on ").nth(1) {
                    let addr: String = rest.chars().take_while(|c| *c != '"' && !c.is_whitespace()).collect();
                    let _ = tx.send(addr);
                }
                lines.lock().expect("log").push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("minsheng did not start; log: {:?}", log.lock().expect("log"));
            }
        };
        Process { child, base: format!("http://{addr}"), addr, log }
    }

    /// The log lines so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().expect("log").clone()
    }

    /// A client for this process.
    pub fn client(&self) -> Client {
        Client::new(&self.base)
    }

    /// Sends a signal by name (`TERM`, `KILL`) with `kill(1)`.
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit, at most `bound` (a "does not hang" bound, not a timing).
    pub fn wait_exit(&mut self, bound: Duration) -> std::process::ExitStatus {
        let until = std::time::Instant::now() + bound;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if std::time::Instant::now() > until {
                let _ = self.child.kill();
                panic!("minsheng did not exit; log: {:?}", self.log());
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs a future to completion on a throwaway runtime (used to stop the server from `Drop`).
fn futures_lite_block<F: std::future::Future>(f: F) -> F::Output {
    actix_web::rt::System::new().block_on(f)
}

/// The password every seeded user has.
pub const PASSWORD: &str = "Test-Password-2026";

/// A seeded world: 云南省 530000 > 昭通市 530600 > {昭阳区 530602, 鲁甸县 530621}, departments,
/// a category, and one user per role with their tokens.
pub struct World {
    pub app: TestApp,
    pub admin: String,
    pub supervisor: String,
    pub supervisor2: String,
    pub water_worker: String,
    pub water_worker2: String,
    pub roads_worker: String,
    pub viewer: String,
    pub sibling_supervisor: String,
    pub water: String,
    pub roads: String,
    pub sibling_dept: String,
    pub ids: HashMap<String, String>,
}

impl World {
    /// Seeds a fresh service.
    pub fn new(backend: Backend) -> World {
        Self::new_with(backend, |_| {})
    }

    /// Seeds a fresh service with adjusted configuration.
    pub fn new_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> World {
        let app = TestApp::start_with(backend, adjust);
        app.create_admin("root", PASSWORD, None);
        let admin = app.login("root", PASSWORD);
        for (code, name, parent) in [
            ("530000", "云南省", None),
            ("530600", "昭通市", Some("530000")),
            ("530602", "昭阳区", Some("530600")),
            ("530621", "鲁甸县", Some("530600")),
        ] {
            app.post("/api/v1/jurisdictions", &admin, json!({"code": code, "name": name, "parent_code": parent}))
                .expect(201);
        }
        let dept = |name: &str, j: &str| -> String {
            app.post("/api/v1/departments", &admin, json!({"name": name, "jurisdiction_code": j})).expect(201)["id"]
                .as_str()
                .expect("id")
                .to_owned()
        };
        let water = dept("区水务局", "530602");
        let roads = dept("区交通运输局", "530602");
        let sibling_dept = dept("鲁甸县水务局", "530621");
        app.post(
            "/api/v1/categories",
            &admin,
            json!({"code": "drinking_water", "name": "饮水安全", "deadline_days": 15}),
        )
        .expect(201);
        app.post("/api/v1/categories", &admin, json!({"code": "transport", "name": "交通出行", "deadline_days": 30}))
            .expect(201);
        let mut ids = HashMap::new();
        let mut user = |username: &str, role: &str, j: &str, d: Option<&str>| -> String {
            let r = app.post(
                "/api/v1/users",
                &admin,
                json!({"username": username, "password": PASSWORD, "role": role, "jurisdiction_code": j, "department_id": d}),
            );
            ids.insert(username.to_owned(), r.expect(201)["id"].as_str().expect("id").to_owned());
            app.login(username, PASSWORD)
        };
        let supervisor = user("sup", "supervisor", "530602", None);
        let supervisor2 = user("sup2", "supervisor", "530602", None);
        let water_worker = user("water1", "caseworker", "530602", Some(&water));
        let water_worker2 = user("water2", "caseworker", "530602", Some(&water));
        let roads_worker = user("roads1", "caseworker", "530602", Some(&roads));
        let viewer = user("viewer", "viewer", "530602", None);
        let sibling_supervisor = user("ludian_sup", "supervisor", "530621", None);
        World {
            app,
            admin,
            supervisor,
            supervisor2,
            water_worker,
            water_worker2,
            roads_worker,
            viewer,
            sibling_supervisor,
            water,
            roads,
            sibling_dept,
            ids,
        }
    }

    /// A valid complaint body in 昭阳区.
    pub fn complaint(&self, title: &str) -> Value {
        json!({
            "kind": "complaint",
            "title": title,
            "description": "村民反映自来水停水三天，影响日常生活。",
            "category_code": "drinking_water",
            "jurisdiction_code": "530602",
            "channel": "hotline",
            "complainant": {"name": "张三丰", "phone": "13812345678"},
            "location": {"address": "昭阳区凤凰街道某村", "lat": 27.32, "lon": 103.72}
        })
    }

    /// Logs a complaint as the supervisor; returns its id.
    pub fn new_case(&self, title: &str) -> String {
        self.app.post("/api/v1/cases", &self.supervisor, self.complaint(title)).expect(201)["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    /// Takes an action and returns the response.
    pub fn act(&self, token: &str, case: &str, action: &str, body: Value) -> Resp {
        self.app.post(&format!("/api/v1/cases/{case}/actions/{action}"), token, body)
    }

    /// Takes an action that must succeed; returns the case.
    #[track_caller]
    pub fn ok(&self, token: &str, case: &str, action: &str, body: Value) -> Value {
        self.act(token, case, action, body).expect(200).clone()
    }

    /// Moves a new case to `resolved` (assigned to water, resolved by water1).
    pub fn resolved_case(&self, title: &str) -> String {
        let id = self.new_case(title);
        self.ok(&self.supervisor, &id, "assign", json!({"department_id": self.water}));
        self.ok(&self.water_worker, &id, "resolve", json!({"resolution": "已修复管道，恢复供水"}));
        id
    }
}

/// An answer read off a raw connection.
#[derive(Debug)]
pub struct RawResp {
    pub status: u16,
    /// Header lines, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResp {
    /// The first header of that (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

impl TestApp {
    /// The server's address, `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    /// Sends raw bytes as one request (which should say `Connection: close`) and reads the answer
    /// until the server closes. `None` when the server closed without answering.
    pub fn raw_http(&self, request: &[u8]) -> Option<RawResp> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(self.addr()).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
        // The server may answer and close before it has read everything (a head too large).
        let _ = stream.write_all(request);
        let mut bytes = Vec::new();
        match stream.read_to_end(&mut bytes) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("reading the answer: {e}"),
        }
        parse_raw(&bytes)
    }
}

/// Parses one HTTP/1.1 answer (`Content-Length` or to the end).
pub fn parse_raw(bytes: &[u8]) -> Option<RawResp> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.get(9..12)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = bytes[end + 4..].to_vec();
    if let Some(n) = headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse::<usize>().ok()) {
        body.truncate(n);
    }
    Some(RawResp { status, headers, body })
}

/// Reads one HTTP/1.1 request from a test receiver's connection: its head (request line and
/// headers) and its body, as far as `Content-Length` says. Empty strings when the peer closed
/// before a whole request came.
pub fn read_http_request(stream: &mut std::net::TcpStream) -> (String, String) {
    use std::io::Read;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).unwrap_or(0);
        if n == 0 {
            return (String::new(), String::new());
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&buf[..at]).into_owned();
        let len: usize = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
            .unwrap_or(0);
        if buf.len() >= at + 4 + len {
            return (head, String::from_utf8_lossy(&buf[at + 4..at + 4 + len]).into_owned());
        }
    }
}
