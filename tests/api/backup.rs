//! `minsheng backup` while the service runs, `minsheng restore` into a fresh database, and a
//! service on the restored database that finds everything: cases with their events, users who can
//! sign in, a working API key, identical statistics.

use diesel::connection::SimpleConnection;
use diesel::Connection;
use serde_json::{json, Value};

use crate::support::{pg_base_url, run_cli, Backend, TestApp, World, PASSWORD};

/// Everything the restored service must show the same: the cases, each one's events, the stats.
fn snapshot(app: &TestApp, token: &str) -> (Value, Vec<Value>, Value) {
    let cases = app.get("/api/v1/cases?limit=100", token).expect(200)["items"].clone();
    let events = cases
        .as_array()
        .unwrap()
        .iter()
        .map(|c| app.get(&format!("/api/v1/cases/{}/events", c["id"].as_str().unwrap()), token).expect(200).clone())
        .collect();
    let stats = app.get("/api/v1/stats/summary", token).expect(200).clone();
    (cases, events, stats)
}

/// A fresh, empty PostgreSQL database for the restore; dropped at the end of the test.
struct ScratchDb {
    name: String,
}

impl ScratchDb {
    fn create() -> ScratchDb {
        let name = format!("restore_{}", uuid::Uuid::new_v4().simple());
        diesel::PgConnection::establish(&pg_base_url())
            .unwrap()
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        ScratchDb { name }
    }

    /// The URL of this database with the original's search path.
    fn url(&self, original: &str) -> String {
        let base_url = pg_base_url();
        let (base, query) =
            base_url.split_once('?').map_or((base_url.as_str(), None), |(b, q)| (b, Some(q.to_owned())));
        let (server, _) = base.rsplit_once('/').unwrap();
        let options = original.split_once('?').map(|(_, q)| q.to_owned());
        let query: Vec<String> = query.into_iter().chain(options).collect();
        format!("{server}/{}?{}", self.name, query.join("&"))
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        if let Ok(mut conn) = diesel::PgConnection::establish(&pg_base_url()) {
            let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

fn backup_and_restore(b: Backend) {
    let w = World::new(b);
    // Cases through their lifecycle, and one filed by an integration.
    let closed = w.resolved_case("全流程");
    w.ok(&w.supervisor, &closed, "verify", json!({"satisfaction": "satisfied"}));
    w.ok(&w.supervisor, &closed, "close", json!({}));
    let assigned = w.new_case("已交办");
    w.ok(&w.supervisor, &assigned, "assign", json!({"department_id": w.water}));
    w.ok(&w.water_worker, &assigned, "acknowledge", json!({}));
    let dismissed = w.new_case("重复件");
    w.ok(&w.supervisor, &dismissed, "dismiss", json!({"outcome": "invalid", "reason": "无效诉求"}));
    let client = w.app.post(
        "/api/v1/api-clients",
        &w.admin,
        json!({"name": "省12345平台", "jurisdiction_code": "530602", "scopes": ["cases:create", "cases:read_own"]}),
    );
    let key = client.expect(201)["key"].as_str().unwrap().to_owned();
    let filed =
        w.app.post("/api/v1/cases", &key, w.complaint("平台转办")).expect(201)["id"].as_str().unwrap().to_owned();
    let before = snapshot(&w.app, &w.supervisor);
    assert_eq!(before.0.as_array().unwrap().len(), 4);

    // Backup while the service runs; a second one to the same file is refused without --force.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("minsheng.backup");
    let file_arg = file.to_string_lossy().into_owned();
    let (ok, out, err) = run_cli(&w.app.database_url, &["backup", "--output", &file_arg]);
    assert!(ok, "backup failed: {out} {err}");
    assert!(file.metadata().unwrap().len() > 0);
    let (ok, _, err) = run_cli(&w.app.database_url, &["backup", "--output", &file_arg]);
    assert!(!ok && err.contains("already exists"), "{err}");
    // Changes after the backup are not in it.
    w.new_case("备份之后");

    // Restore into a fresh database; restoring over it again is refused without --force.
    let scratch = (b == Backend::Postgres).then(ScratchDb::create);
    let target = match &scratch {
        Some(db) => db.url(&w.app.database_url),
        None => dir.path().join("restored.db").to_string_lossy().into_owned(),
    };
    let (ok, out, err) = run_cli(&target, &["restore", "--input", &file_arg]);
    assert!(ok, "restore failed: {out} {err}");
    let (ok, _, err) = run_cli(&target, &["restore", "--input", &file_arg]);
    assert!(!ok && err.contains("not empty"), "{err}");
    let (ok, _, err) = run_cli(&target, &["restore", "--input", &dir.path().join("missing").to_string_lossy()]);
    assert!(!ok && err.contains("not a file"), "{err}");

    {
        let restored = TestApp::start_on(b, &target);
        let supervisor = restored.login("sup", PASSWORD);
        assert_eq!(snapshot(&restored, &supervisor), before);
        restored.login("water1", PASSWORD);
        let admin = restored.login("root", PASSWORD);
        assert_eq!(restored.get("/api/v1/api-clients", &admin).expect(200)["items"].as_array().unwrap().len(), 1);
        // The integration's key works, and it still sees the case it filed.
        let own = restored.get("/api/v1/cases", &key).expect(200)["items"].clone();
        assert_eq!(own.as_array().unwrap().len(), 1);
        assert_eq!(own[0]["id"], filed.as_str());
        // And the restored service takes new work.
        restored.post("/api/v1/cases", &supervisor, w.complaint("恢复之后")).expect(201);
    }
    drop(scratch);
}

both!(backup_and_restore);
