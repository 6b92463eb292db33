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

fn one_key_across_two_processes_creates_one_case(b: Backend) {
    let w = Arc::new(World::new(b));
    let other = w.app.second_process();
    let body = w.complaint("两个进程同时收到");
    let bases = [w.app.base.clone(), other.base.clone()];
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let (w, body, base) = (Arc::clone(&w), body.clone(), bases[i % 2].clone());
            std::thread::spawn(move || {
                let r = ureq::post(&format!("{base}/api/v1/cases"))
                    .set("Authorization", &format!("Bearer {}", w.supervisor))
                    .set("Idempotency-Key", "two-processes")
                    .send_json(body);
                match r {
                    Ok(resp) => (
                        resp.status(),
                        resp.into_json::<serde_json::Value>().ok().and_then(|v| v["id"].as_str().map(str::to_owned)),
                    ),
                    Err(ureq::Error::Status(code, _)) => (code, None),
                    Err(e) => panic!("{e}"),
                }
            })
        })
        .collect();
    let results: Vec<(u16, Option<String>)> = handles.into_iter().map(|h| h.join().expect("join")).collect();
    assert!(results.iter().all(|(s, _)| *s == 201), "{results:?}");
    let ids: std::collections::BTreeSet<_> = results.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(ids.len(), 1, "{results:?}");
    assert_eq!(count_cases(&w), 1);
    drop(other);
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

fn wait_for_import(w: &World, token: &str, location: &str) -> serde_json::Value {
    let started = std::time::Instant::now();
    loop {
        let job = w.app.get(location, token).expect(200).clone();
        if job["state"] != "running" || started.elapsed() > std::time::Duration::from_secs(60) {
            return job;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn bulk_import_reports_every_row_and_reruns_create_nothing(b: Backend) {
    let w = World::new(b);
    let row = |id: &str, title: &str| {
        let mut c = w.complaint(title);
        c["external"] = json!({"source": "yn12345", "id": id});
        c.to_string()
    };
    let mut no_external = w.complaint("没有外部编号");
    no_external["external"] = serde_json::Value::Null;
    let mut sibling = w.complaint("鲁甸县的");
    sibling["jurisdiction_code"] = json!("530621");
    sibling["external"] = json!({"source": "yn12345", "id": "GD-9"});
    let lines = [
        row("GD-1", "第一件"),
        "{not json".to_owned(),
        row("GD-2", "第二件"),
        json!({"kind": "complaint", "external": {"source": "yn12345", "id": "GD-3"}}).to_string(),
        no_external.to_string(),
        sibling.to_string(),
        row("GD-4", "第四件"),
    ]
    .join("\n");
    let r = w.app.raw("POST", "/api/v1/cases:import", Some(&w.supervisor), "application/x-ndjson", lines.as_bytes());
    assert_eq!(r.status, 202, "{}", r.text);
    let location = r.header("location").expect("location").to_owned();
    let job = wait_for_import(&w, &w.supervisor, &location);
    assert_eq!(job["state"], "done");
    assert_eq!(
        (job["total_rows"].clone(), job["created"].clone(), job["rejected"].clone()),
        (json!(7), json!(3), json!(4))
    );
    let statuses: Vec<&str> =
        job["results"].as_array().expect("results").iter().map(|r| r["status"].as_str().expect("s")).collect();
    assert_eq!(statuses, vec!["created", "rejected", "created", "rejected", "rejected", "rejected", "created"]);
    let fields = |i: usize| -> Vec<String> {
        job["results"][i]["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| e["field"].as_str().expect("f").to_owned())
            .collect()
    };
    assert!(fields(3).contains(&"title".to_owned()), "{:?}", fields(3));
    assert_eq!(fields(4), vec!["external"]);
    assert_eq!(fields(5), vec!["jurisdiction_code"], "a row outside the caller's scope is refused");
    // The same file again: nothing new, each row reported as existing.
    let again =
        w.app.raw("POST", "/api/v1/cases:import", Some(&w.supervisor), "application/x-ndjson", lines.as_bytes());
    let job2 = wait_for_import(&w, &w.supervisor, again.header("location").expect("location"));
    assert_eq!((job2["created"].clone(), job2["existing"].clone()), (json!(0), json!(3)));
    assert_eq!(job2["results"][0]["id"], job["results"][0]["id"]);
    assert_eq!(count_cases(&w), 3);
    // Only the caller who started a job sees it.
    w.app.get(&location, &w.admin).expect_problem(404, "not_found");
}

fn bulk_import_reads_csv_with_or_without_bom(b: Backend) {
    let w = World::new(b);
    let mut csv = String::from("\u{feff}kind,title,description,category_code,jurisdiction_code,channel,complainant_name,external_source,external_id\r\n");
    for i in 0..450 {
        csv.push_str(&format!("complaint,\"第{i}件, 停水\",\"村民反映\"\"停水\"\"\",drinking_water,530602,hotline,张三,petition,P-{i}\r\n"));
    }
    let r = w.app.raw("POST", "/api/v1/cases:import", Some(&w.admin), "text/csv; charset=utf-8", csv.as_bytes());
    let job = wait_for_import(&w, &w.admin, r.header("location").expect("location"));
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["created"], 450, "{}", job["results"][0]);
    let first = job["results"][0]["id"].as_str().expect("id").to_owned();
    let case = w.app.get(&format!("/api/v1/cases/{first}"), &w.admin).expect(200).clone();
    assert_eq!(case["title"], "第0件, 停水");
    assert_eq!(case["description"], "村民反映\"停水\"");
    assert_eq!(case["external"], json!({"source": "petition", "id": "P-0"}));
    // Bad uploads are refused whole, before any row.
    let r = w.app.raw("POST", "/api/v1/cases:import", Some(&w.admin), "text/csv", b"kind,colour\ncomplaint,red\n");
    assert_eq!(r.bad_fields(), vec!["header"]);
    w.app
        .raw("POST", "/api/v1/cases:import", Some(&w.admin), "application/json", b"{}")
        .expect_problem(415, "unsupported_media_type");
    w.app
        .raw("POST", "/api/v1/cases:import", Some(&w.admin), "text/csv", b"\xff\xfe")
        .expect_problem(400, "invalid_encoding");
    w.app
        .raw("POST", "/api/v1/cases:import", Some(&w.viewer), "text/csv", csv.as_bytes())
        .expect_problem(403, "role_not_permitted");
}

both!(
    retries_with_one_key_create_one_case,
    concurrent_duplicates_with_one_key_create_one_case,
    one_key_across_two_processes_creates_one_case,
    keys_expire_after_a_day,
    bulk_import_reports_every_row_and_reruns_create_nothing,
    bulk_import_reads_csv_with_or_without_bom,
);
