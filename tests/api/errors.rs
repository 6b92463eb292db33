//! Every class of bad input gets a problem+json 4xx with a stable code; nothing internal leaks.

use serde_json::json;

use crate::support::{Backend, World};

fn bad_input_gets_problems(b: Backend) {
    let w = World::new(b);
    let t = Some(w.supervisor.as_str());
    let r = w.app.raw("POST", "/api/v1/cases", t, "application/json", b"{\"kind\": ");
    r.expect_problem(400, "malformed_json");
    let r = w.app.raw("POST", "/api/v1/cases", t, "text/plain", b"{}");
    r.expect_problem(415, "unsupported_media_type");
    let r = w.app.raw("POST", "/api/v1/cases", t, "application/x-www-form-urlencoded", b"kind=complaint");
    r.expect_problem(415, "unsupported_media_type");
    let big = format!("{{\"title\": \"{}\"}}", "长".repeat(30_000));
    let r = w.app.raw("POST", "/api/v1/cases", t, "application/json", big.as_bytes());
    r.expect_problem(413, "payload_too_large");
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let r = w.app.raw("POST", "/api/v1/cases", t, "application/json", deep.as_bytes());
    r.expect_problem(400, "malformed_json");
    let r = w.app.raw("POST", "/api/v1/cases", t, "application/json", b"\xff\xfe");
    r.expect_problem(400, "malformed_json");
    let r = w.app.raw(
        "POST",
        "/api/v1/cases",
        t,
        "application/json; charset=utf-8",
        b"{\"kind\": \"complaint\", \"channel\": 7}",
    );
    r.expect_problem(422, "validation_failed");
    assert!(r.bad_fields().contains(&"channel".to_owned()));
    // Unknown ids and malformed ids.
    w.app.get(&format!("/api/v1/cases/{}", uuid::Uuid::new_v4()), &w.supervisor).expect_problem(404, "not_found");
    w.app.get("/api/v1/cases/123", &w.supervisor).expect_problem(404, "not_found");
    w.app.get("/api/v1/departments/xyz", &w.supervisor).expect_problem(404, "not_found");
    w.act(&w.supervisor, "not-a-uuid", "assign", json!({})).expect_problem(404, "not_found");
    // Unknown routes and methods.
    w.app.get("/api/v1/nothing-here", &w.supervisor).expect_problem(404, "not_found");
    w.app.call("DELETE", "/api/v1/cases", Some(&w.supervisor), None, &[]).expect_problem(405, "method_not_allowed");
    w.app
        .call("PUT", "/api/v1/categories/drinking_water", Some(&w.admin), None, &[])
        .expect_problem(405, "method_not_allowed");
    // A query string that is not one.
    let r = w.app.get("/api/v1/cases?limit=%ZZ", &w.supervisor);
    assert!(r.status == 400 || r.status == 422, "{}", r.text);
    // Nothing internal in any of these bodies.
    for text in [&r.text] {
        for leak in ["diesel", "SELECT", "sqlite", "postgres", "/src/", "panicked"] {
            assert!(!text.contains(leak), "leaked {leak}: {text}");
        }
    }
    // The database is untouched by all of the above.
    let list = w.app.get("/api/v1/cases", &w.admin).expect(200).clone();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0));
}

/// Input is read as the contract's JSON Schema reads it: `15.0` is an integer, `maxLength` counts
/// characters as sent (before trimming), and a UUID is the hyphenated form only.
fn input_is_read_as_json_schema_reads_it(b: Backend) {
    let w = World::new(b);
    let admin = w.admin.as_str();
    let r = w.app.post("/api/v1/categories", admin, json!({"code": "roads2", "name": "道路", "deadline_days": 15.0}));
    assert_eq!(r.expect(201)["deadline_days"], 15);
    let r = w.app.patch("/api/v1/categories/roads2", admin, json!({"deadline_days": 1e300}));
    assert_eq!(r.expect_problem(422, "validation_failed")["errors"][0]["code"], "out_of_range");
    let r = w.app.patch("/api/v1/categories/roads2", admin, json!({"deadline_days": 15.5}));
    assert_eq!(r.expect_problem(422, "validation_failed")["errors"][0]["code"], "invalid_type");
    // 200 characters and a trailing line break: 201 characters as sent.
    let mut case = w.complaint("x");
    case["title"] = json!(format!("{}\n", "水".repeat(200)));
    let r = w.app.post("/api/v1/cases", &w.supervisor, case.clone());
    assert_eq!(r.expect_problem(422, "validation_failed")["errors"][0]["code"], "too_long");
    case["title"] = json!(format!("{}\n", "水".repeat(199)));
    let created = w.app.post("/api/v1/cases", &w.supervisor, case).expect(201).clone();
    assert_eq!(created["title"], "水".repeat(199));
    // Bare hex, braces and URNs are UUIDs to the `uuid` crate, not to `format: uuid`.
    let id = created["id"].as_str().expect("id").to_owned();
    let simple = id.replace('-', "");
    w.app.get(&format!("/api/v1/cases/{simple}"), &w.supervisor).expect_problem(404, "not_found");
    let r = w.act(&w.supervisor, &id, "assign", json!({"department_id": w.water.replace('-', "")}));
    assert_eq!(r.expect_problem(422, "validation_failed")["errors"][0]["code"], "invalid_format");
    let r = w.act(&w.supervisor, &id, "assign", json!({"department_id": format!("{{{}}}", w.water)}));
    r.expect_problem(422, "validation_failed");
    let r = w.app.get(&format!("/api/v1/cases?department_id={}", w.water.replace('-', "")), &w.supervisor);
    assert_eq!(r.expect_problem(422, "validation_failed")["errors"][0]["field"], "department_id");
    w.act(&w.supervisor, &id, "assign", json!({"department_id": w.water.to_uppercase()})).expect(200);
}

fn health_and_request_ids(b: Backend) {
    let w = World::new(b);
    let r = w.app.call("GET", "/healthz", None, None, &[]);
    assert_eq!(r.expect(200)["status"], "ok");
    let r = w.app.call("GET", "/readyz", None, None, &[("X-Request-Id", "abc-123")]);
    assert_eq!(r.expect(200)["status"], "ready");
    assert_eq!(r.header("x-request-id"), Some("abc-123"));
    let r = w.app.call("GET", "/api/v1/cases", None, None, &[("X-Request-Id", "bad id with spaces")]);
    let generated = r.header("x-request-id").expect("generated id");
    assert!(uuid::Uuid::parse_str(generated).is_ok(), "{generated}");
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
}

both!(bad_input_gets_problems, input_is_read_as_json_schema_reads_it, health_and_request_ids);
