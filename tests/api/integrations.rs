//! Safe retries (Idempotency-Key), external ids.

use std::sync::Arc;

use serde_json::json;

use crate::support::{Backend, World};

fn post_with_key(w: &World, token: &str, path: &str, key: &str, body: &serde_json::Value) -> crate::support::Resp {
    w.app.call("POST", path, Some(token), Some(body), &[("Idempotency-Key", key)])
}

fn count_cases(w: &World) -> usize {
    w.app.get("/api/v1/cases?limit=200", &w.admin).expect(200)["items"].as_array().map_or(0, Vec::len)
}

fn retries_with_one_key_create_one_case(b: Backend) {
    let w = World::new(b);
    let body = w.complaint("网络重试");
    let first = post_with_key(&w, &w.supervisor, "/api/v1/cases", "retry-0001", &body);
    let case = first.expect(201).clone();
    let again = post_with_key(&w, &w.supervisor, "/api/v1/cases", "retry-0001", &body);
    assert_eq!(again.status, 201);
    assert_eq!(again.body, case, "the first answer, replayed");
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(again.header("etag"), Some("\"1\""));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(count_cases(&w), 1);
    // The same key with another body is refused; with another caller it is another key.
    let mut other = body.clone();
    other["title"] = json!("另一件事");
    let r = post_with_key(&w, &w.supervisor, "/api/v1/cases", "retry-0001", &other);
    r.expect_problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["code"], "idempotency_key_reused");
    post_with_key(&w, &w.supervisor2, "/api/v1/cases", "retry-0001", &body).expect(201);
    assert_eq!(count_cases(&w), 2);
    // Actions too: a retried assign is answered, not done twice.
    let id = case["id"].as_str().expect("id");
    let path = format!("/api/v1/cases/{id}/actions/assign");
    let assign = json!({"department_id": w.water});
    let a1 = post_with_key(&w, &w.supervisor, &path, "assign-1", &assign);
    assert_eq!(a1.expect(200)["version"], 2);
    let a2 = post_with_key(&w, &w.supervisor, &path, "assign-1", &assign);
    assert_eq!(a2.expect(200)["version"], 2);
    assert_eq!(a2.header("etag"), Some("\"2\""));
    let events = w.app.get(&format!("/api/v1/cases/{id}/events"), &w.admin).expect(200).clone();
    assert_eq!(events["items"].as_array().map(Vec::len), Some(2));
    // A failed request leaves nothing behind: the same key may be retried.
    let bad = json!({"kind": "complaint"});
    post_with_key(&w, &w.supervisor, "/api/v1/cases", "retry-0002", &bad).expect_problem(422, "validation_failed");
    post_with_key(&w, &w.supervisor, "/api/v1/cases", "retry-0002", &body).expect(201);
    // Keys are visible ASCII, 1-255 characters.
    post_with_key(&w, &w.supervisor, "/api/v1/cases", "two words", &body)
        .expect_problem(400, "invalid_idempotency_key");
    let long = "k".repeat(256);
    post_with_key(&w, &w.supervisor, "/api/v1/cases", &long, &body).expect_problem(400, "invalid_idempotency_key");
    // Reference data and users honour it as well.
    let dept = json!({"name": "区民政局", "jurisdiction_code": "530602"});
    let d1 = post_with_key(&w, &w.admin, "/api/v1/departments", "dept-1", &dept).expect(201).clone();
    let d2 = post_with_key(&w, &w.admin, "/api/v1/departments", "dept-1", &dept).expect(201).clone();
    assert_eq!(d1["id"], d2["id"]);
}

fn concurrent_duplicates_with_one_key_create_one_case(b: Backend) {
    let w = Arc::new(World::new(b));
    let body = w.complaint("同时重复提交");
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (w, body) = (Arc::clone(&w), body.clone());
            std::thread::spawn(move || {
                let r = post_with_key(&w, &w.supervisor, "/api/v1/cases", "burst-key", &body);
                (r.status, r.body["id"].as_str().map(str::to_owned))
            })
        })
        .collect();
    let results: Vec<(u16, Option<String>)> = handles.into_iter().map(|h| h.join().expect("join")).collect();
    assert!(results.iter().all(|(s, _)| *s == 201), "{results:?}");
    let ids: std::collections::BTreeSet<_> = results.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(ids.len(), 1, "one case for one key: {results:?}");
    assert_eq!(count_cases(&w), 1);
}

fn keys_expire_after_a_day(b: Backend) {
    let w = World::new(b);
    let body = w.complaint("过期的键");
    post_with_key(&w, &w.supervisor, "/api/v1/cases", "old-key", &body).expect(201);
    let state = minsheng::init_state(crate::support::test_config(&w.app.database_url)).expect("state");
    let mut conn = state.pool.get().expect("conn");
    let later = chrono::Utc::now() + chrono::Duration::hours(23);
    assert_eq!(minsheng::service::idempotency::purge_expired(&mut conn, later).expect("purge"), 0, "kept for 24 h");
    let later = chrono::Utc::now() + chrono::Duration::hours(25);
    assert_eq!(minsheng::service::idempotency::purge_expired(&mut conn, later).expect("purge"), 1);
}

both!(
    retries_with_one_key_create_one_case,
    concurrent_duplicates_with_one_key_create_one_case,
    keys_expire_after_a_day
);
