//! Every lifecycle action with its guards, the audit trail, `If-Match`, and concurrency.

use std::sync::Arc;

use serde_json::json;

use crate::support::{Backend, World};

fn happy_path_and_audit_trail(b: Backend) {
    let w = World::new(b);
    let id = w.new_case("村里自来水停水三天");
    let case = w.ok(
        &w.supervisor,
        &id,
        "assign",
        json!({"department_id": w.water, "assignee_id": w.ids["water1"], "note": "请三日内处理"}),
    );
    assert_eq!(case["status"], "assigned");
    assert_eq!(case["department_id"], w.water.as_str());
    assert_eq!(case["assignee_id"], w.ids["water1"].as_str());
    assert_eq!(case["version"], 2);
    let case = w.ok(&w.water_worker, &id, "acknowledge", json!({}));
    assert!(case["acknowledged_at"].is_string());
    assert_eq!(case["status"], "assigned");
    let case = w.ok(&w.water_worker, &id, "resolve", json!({"resolution": "已修复管道，恢复供水"}));
    assert_eq!(case["status"], "resolved");
    assert_eq!(case["resolved_by"], w.ids["water1"].as_str());
    assert!(case["resolved_at"].is_string());
    let case = w.ok(&w.supervisor, &id, "verify", json!({"satisfaction": "satisfied", "note": "回访群众满意"}));
    assert_eq!(case["status"], "verified");
    assert_eq!(case["satisfaction"], "satisfied");
    let case = w.ok(&w.supervisor, &id, "close", json!({}));
    assert_eq!(case["status"], "closed");
    assert_eq!(case["outcome"], "completed");
    assert_eq!(case["version"], 6);
    assert_eq!(case["allowed_actions"], json!(["reopen", "comment"]));

    let events = w.app.get(&format!("/api/v1/cases/{id}/events"), &w.supervisor).expect(200).clone();
    let items = events["items"].as_array().expect("items");
    let summary: Vec<(i64, &str, Option<&str>, &str, &str)> = items
        .iter()
        .map(|e| {
            (
                e["seq"].as_i64().expect("seq"),
                e["action"].as_str().expect("action"),
                e["from_status"].as_str(),
                e["to_status"].as_str().expect("to"),
                e["actor"]["name"].as_str().expect("actor"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, "create", None, "received", "sup"),
            (2, "assign", Some("received"), "assigned", "sup"),
            (3, "acknowledge", Some("assigned"), "assigned", "water1"),
            (4, "resolve", Some("assigned"), "resolved", "water1"),
            (5, "verify", Some("resolved"), "verified", "sup"),
            (6, "close", Some("verified"), "closed", "sup"),
        ]
    );
    assert_eq!(items[1]["note"], "请三日内处理");
    assert_eq!(items[1]["data"]["department_id"], w.water.as_str());
    assert_eq!(items[3]["note"], "已修复管道，恢复供水");
    assert_eq!(items[4]["data"]["satisfaction"], "satisfied");
    assert!(items.iter().all(|e| e["at"].as_str().is_some_and(|t| t.ends_with('Z'))));
}

fn illegal_actions_are_409_with_allowed_actions(b: Backend) {
    let w = World::new(b);
    // Logged by the caseworker, so they can read it while it waits for dispatch.
    let id = w.app.post("/api/v1/cases", &w.water_worker, w.complaint("路灯不亮")).expect(201)["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let r = w.act(&w.water_worker, &id, "resolve", json!({"resolution": "done"}));
    // The caseworker may resolve in principle, but not a received case.
    let p = r.expect_problem(409, "invalid_transition");
    assert_eq!(p["allowed_actions"], json!(["assign", "dismiss", "extend", "comment"]));
    let r = w.act(&w.supervisor, &id, "close", json!({}));
    r.expect_problem(409, "invalid_transition");
    let r = w.act(&w.supervisor, &id, "verify", json!({"satisfaction": "satisfied"}));
    r.expect_problem(409, "invalid_transition");
    w.ok(&w.supervisor, &id, "assign", json!({"department_id": w.water}));
    w.act(&w.supervisor, &id, "assign", json!({"department_id": w.water})).expect_problem(409, "invalid_transition");
    w.act(&w.supervisor, &id, "reopen", json!({"reason": "x", "department_id": w.water}))
        .expect_problem(409, "invalid_transition");
    // A refused action changes nothing.
    let case = w.app.get(&format!("/api/v1/cases/{id}"), &w.supervisor).expect(200).clone();
    assert_eq!(case["version"], 2);
    let events = w.app.get(&format!("/api/v1/cases/{id}/events"), &w.supervisor).expect(200).clone();
    assert_eq!(events["items"].as_array().map(Vec::len), Some(2));
    // Unknown actions are not routes.
    w.act(&w.supervisor, &id, "teleport", json!({})).expect_problem(404, "not_found");
    w.act(&w.supervisor, &id, "create", json!({})).expect_problem(404, "not_found");
}

fn role_rules_are_enforced(b: Backend) {
    let w = World::new(b);
    let id = w.app.post("/api/v1/cases", &w.water_worker, w.complaint("噪音扰民")).expect(201)["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // Caseworkers do not dispatch (not even cases they logged); viewers do nothing.
    w.act(&w.water_worker, &id, "assign", json!({"department_id": w.water})).expect_problem(403, "role_not_permitted");
    w.act(&w.viewer, &id, "assign", json!({"department_id": w.water})).expect_problem(403, "role_not_permitted");
    w.act(&w.viewer, &id, "comment", json!({"text": "看看"})).expect_problem(403, "role_not_permitted");
    // The role is refused before the body or the version are looked at.
    w.act(&w.viewer, &id, "assign", json!({})).expect_problem(403, "role_not_permitted");
    let close = format!("/api/v1/cases/{id}/actions/close");
    let r = w.app.call("POST", &close, Some(&w.water_worker), None, &[("If-Match", "\"9\"")]);
    r.expect_problem(403, "role_not_permitted");
    w.ok(&w.supervisor, &id, "assign", json!({"department_id": w.water}));
    // Supervisors do not do the department's work.
    w.act(&w.supervisor, &id, "resolve", json!({"resolution": "x"})).expect_problem(403, "role_not_permitted");
    // Another department's caseworker may not act on it (and cannot even see it).
    w.act(&w.roads_worker, &id, "acknowledge", json!({})).expect_problem(404, "not_found");
    // The department's other caseworker may.
    w.ok(&w.water_worker2, &id, "acknowledge", json!({}));
    w.act(&w.water_worker, &id, "acknowledge", json!({})).expect_problem(409, "already_acknowledged");
    w.ok(&w.water_worker, &id, "resolve", json!({"resolution": "已处理"}));
    w.act(&w.water_worker, &id, "verify", json!({"satisfaction": "satisfied"}))
        .expect_problem(403, "role_not_permitted");
    w.ok(&w.supervisor, &id, "verify", json!({"satisfaction": "basically_satisfied"}));
    w.act(&w.water_worker, &id, "close", json!({})).expect_problem(403, "role_not_permitted");
}

fn resolver_cannot_verify_or_reject(b: Backend) {
    let w = World::new(b);
    let id = w.new_case("自己办结自己核实");
    w.ok(&w.admin, &id, "assign", json!({"department_id": w.water}));
    // An admin may do department work, but then may not verify it.
    w.ok(&w.admin, &id, "resolve", json!({"resolution": "管理员代办"}));
    w.act(&w.admin, &id, "verify", json!({"satisfaction": "satisfied"})).expect_problem(403, "separation_of_duties");
    w.act(&w.admin, &id, "reject", json!({"reason": "x"})).expect_problem(403, "separation_of_duties");
    w.ok(&w.supervisor, &id, "verify", json!({"satisfaction": "satisfied"}));
}

fn return_reject_and_rework(b: Backend) {
    let w = World::new(b);
    let id = w.new_case("道路坑洼");
    w.ok(&w.supervisor, &id, "assign", json!({"department_id": w.water}));
    w.act(&w.water_worker, &id, "return", json!({})).expect_problem(422, "validation_failed");
    let case = w.ok(&w.water_worker, &id, "return", json!({"reason": "不属于本单位职责，应由交通局办理"}));
    assert_eq!(case["status"], "received");
    assert_eq!(case["department_id"], serde_json::Value::Null);
    w.ok(&w.supervisor, &id, "assign", json!({"department_id": w.roads}));
    w.ok(&w.roads_worker, &id, "acknowledge", json!({}));
    w.ok(&w.roads_worker, &id, "resolve", json!({"resolution": "已填补坑洼"}));
    w.act(&w.supervisor, &id, "reject", json!({})).expect_problem(422, "validation_failed");
    let case = w.ok(&w.supervisor, &id, "reject", json!({"reason": "群众反映仍有积水", "satisfaction": "unsatisfied"}));
    assert_eq!(case["status"], "assigned");
    assert_eq!(case["rework_count"], 1);
    assert_eq!(case["satisfaction"], "unsatisfied");
    assert_eq!(case["resolved_at"], serde_json::Value::Null);
    assert_eq!(case["department_id"], w.roads.as_str());
    w.ok(&w.roads_worker, &id, "resolve", json!({"resolution": "已重新铺设路面"}));
    // Unsatisfied is not a verification: that is what reject is for.
    w.act(&w.supervisor, &id, "verify", json!({"satisfaction": "unsatisfied"}))
        .expect_problem(422, "validation_failed");
    let case = w.ok(&w.supervisor, &id, "verify", json!({"satisfaction": "satisfied"}));
    assert_eq!(case["satisfaction"], "satisfied");
    assert_eq!(case["rework_count"], 1);
}

fn dismiss_reopen_extend_comment(b: Backend) {
    let w = World::new(b);
    let first = w.new_case("同一诉求第一次来电");
    let dup = w.new_case("同一诉求第二次来电");
    // A duplicate must say of what; other outcomes must not.
    let r = w.act(&w.supervisor, &dup, "dismiss", json!({"outcome": "duplicate", "reason": "重复来电"}));
    assert_eq!(r.bad_fields(), vec!["duplicate_of"]);
    let r = w.act(&w.supervisor, &dup, "dismiss", json!({"outcome": "invalid", "reason": "x", "duplicate_of": first}));
    assert_eq!(r.bad_fields(), vec!["duplicate_of"]);
    let r = w.act(&w.supervisor, &dup, "dismiss", json!({"outcome": "completed", "reason": "x"}));
    assert_eq!(r.bad_fields(), vec!["outcome"]);
    let r = w.act(&w.supervisor, &dup, "dismiss", json!({"outcome": "duplicate", "reason": "x", "duplicate_of": dup}));
    r.expect_problem(422, "validation_failed");
    let r = w.act(
        &w.supervisor,
        &dup,
        "dismiss",
        json!({"outcome": "duplicate", "reason": "x", "duplicate_of": uuid::Uuid::new_v4()}),
    );
    assert_eq!(r.bad_fields(), vec!["duplicate_of"]);
    let case = w.ok(
        &w.supervisor,
        &dup,
        "dismiss",
        json!({"outcome": "duplicate", "reason": "重复来电", "duplicate_of": first}),
    );
    assert_eq!(case["status"], "closed");
    assert_eq!(case["outcome"], "duplicate");
    assert_eq!(case["duplicate_of"], first.as_str());

    // Reopen needs a reason and a department, and clears the closure.
    let r = w.act(&w.supervisor, &dup, "reopen", json!({}));
    assert_eq!(r.bad_fields(), vec!["department_id", "reason"]);
    let case = w.ok(&w.supervisor, &dup, "reopen", json!({"reason": "群众再次反映", "department_id": w.water}));
    assert_eq!(case["status"], "assigned");
    assert_eq!(case["outcome"], serde_json::Value::Null);
    assert_eq!(case["closed_at"], serde_json::Value::Null);
    assert_eq!(case["department_id"], w.water.as_str());

    // Extend: only later deadlines, with a reason.
    let due = case["due_at"].as_str().expect("due").to_owned();
    let r = w.act(&w.supervisor, &dup, "extend", json!({"due_at": "2020-01-01T00:00:00Z", "reason": "x"}));
    assert_eq!(r.bad_fields(), vec!["due_at"]);
    let r = w.act(&w.supervisor, &dup, "extend", json!({"due_at": due, "reason": "x"}));
    assert_eq!(r.bad_fields(), vec!["due_at"]);
    let case =
        w.ok(&w.supervisor, &dup, "extend", json!({"due_at": "2099-06-30T18:00:00+08:00", "reason": "需协调多部门"}));
    assert_eq!(case["due_at"], "2099-06-30T10:00:00.000000Z");
    assert_eq!(case["status"], "assigned");
    w.act(&w.water_worker, &dup, "extend", json!({"due_at": "2099-07-30T00:00:00Z", "reason": "x"}))
        .expect_problem(403, "role_not_permitted");

    // Comments by anyone who reads the case, in any state; they do not change the status.
    let case = w.ok(&w.water_worker, &dup, "comment", json!({"text": "已联系群众"}));
    assert_eq!(case["status"], "assigned");
    w.act(&w.water_worker, &dup, "comment", json!({"text": "   "})).expect_problem(422, "validation_failed");
    w.ok(&w.supervisor, &first, "comment", json!({"text": "督办"}));

    let events = w.app.get(&format!("/api/v1/cases/{dup}/events"), &w.supervisor).expect(200).clone();
    let actions: Vec<&str> =
        events["items"].as_array().expect("items").iter().map(|e| e["action"].as_str().expect("a")).collect();
    assert_eq!(actions, vec!["create", "dismiss", "reopen", "extend", "comment"]);
    let extend = &events["items"][3];
    assert_eq!(extend["data"]["previous_due_at"], due.as_str());
    assert_eq!(extend["note"], "需协调多部门");
}

fn assignment_targets_are_checked(b: Backend) {
    let w = World::new(b);
    let id = w.new_case("派单检查");
    // Unknown department, a department of a sibling county, an assignee of another department.
    let r = w.act(&w.supervisor, &id, "assign", json!({"department_id": uuid::Uuid::new_v4()}));
    assert_eq!(r.bad_fields(), vec!["department_id"]);
    let r = w.act(&w.admin, &id, "assign", json!({"department_id": w.sibling_dept}));
    assert_eq!(r.bad_fields(), vec!["department_id"]);
    let r = w.act(&w.supervisor, &id, "assign", json!({"department_id": w.water, "assignee_id": w.ids["roads1"]}));
    assert_eq!(r.bad_fields(), vec!["assignee_id"]);
    let r = w.act(&w.supervisor, &id, "assign", json!({"department_id": "not-a-uuid"}));
    assert_eq!(r.bad_fields(), vec!["department_id"]);
    // An inactive department takes no new cases.
    w.app.patch(&format!("/api/v1/departments/{}", w.roads), &w.admin, json!({"active": false})).expect(200);
    let r = w.act(&w.supervisor, &id, "assign", json!({"department_id": w.roads}));
    assert_eq!(r.bad_fields(), vec!["department_id"]);
    let case = w.ok(&w.supervisor, &id, "assign", json!({"department_id": w.water}));
    assert_eq!(case["version"], 2);
    // Reassign moves it and asks the new department to acknowledge again.
    w.ok(&w.water_worker, &id, "acknowledge", json!({}));
    w.app.patch(&format!("/api/v1/departments/{}", w.roads), &w.admin, json!({"active": true})).expect(200);
    let case = w.ok(&w.supervisor, &id, "reassign", json!({"department_id": w.roads, "note": "改派交通局"}));
    assert_eq!(case["department_id"], w.roads.as_str());
    assert_eq!(case["acknowledged_at"], serde_json::Value::Null);
    w.act(&w.water_worker, &id, "resolve", json!({"resolution": "x"})).expect_problem(404, "not_found");
    w.ok(&w.roads_worker, &id, "acknowledge", json!({}));
}

fn if_match_is_honoured(b: Backend) {
    let w = World::new(b);
    let id = w.new_case("并发修改");
    let path = format!("/api/v1/cases/{id}/actions/assign");
    let body = json!({"department_id": w.water});
    let r = w.app.call("POST", &path, Some(&w.supervisor), Some(&body), &[("If-Match", "\"7\"")]);
    let p = r.expect_problem(412, "stale_version");
    assert_eq!(p["current_version"], 1);
    let r = w.app.call("POST", &path, Some(&w.supervisor), Some(&body), &[("If-Match", "seven")]);
    r.expect_problem(400, "invalid_if_match");
    let r = w.app.call("POST", &path, Some(&w.supervisor), Some(&body), &[("If-Match", "\"0\", W/\"1\"")]);
    assert_eq!(r.expect(200)["version"], 2);
    assert_eq!(r.header("etag"), Some("\"2\""));
    let comment = format!("/api/v1/cases/{id}/actions/comment");
    let r = w.app.call("POST", &comment, Some(&w.supervisor), Some(&json!({"text": "a"})), &[("If-Match", "*")]);
    assert_eq!(r.expect(200)["version"], 3);
    let r = w.app.call("POST", &comment, Some(&w.supervisor), Some(&json!({"text": "b"})), &[("If-Match", "\"2\"")]);
    r.expect_problem(412, "stale_version");
    let get = w.app.get(&format!("/api/v1/cases/{id}"), &w.supervisor);
    assert_eq!(get.header("etag"), Some("\"3\""));
    // RFC 9110 entity tags may contain commas, and an empty list is a list: both are well formed
    // and simply do not match (412), where they used to be refused as malformed (400).
    for stale in ["\"a,b\", \"2\"", "", " , "] {
        let r = w.app.call("POST", &comment, Some(&w.supervisor), Some(&json!({"text": "c"})), &[("If-Match", stale)]);
        r.expect_problem(412, "stale_version");
    }
    for malformed in ["\"a b\"", "\"3\" \"4\"", "*, \"3\""] {
        let r =
            w.app.call("POST", &comment, Some(&w.supervisor), Some(&json!({"text": "c"})), &[("If-Match", malformed)]);
        r.expect_problem(400, "invalid_if_match");
    }
    let r =
        w.app.call("POST", &comment, Some(&w.supervisor), Some(&json!({"text": "c"})), &[("If-Match", "\"x\",\"3\"")]);
    assert_eq!(r.expect(200)["version"], 4);
}

fn concurrent_actions_on_one_version_have_one_winner(b: Backend) {
    let w = Arc::new(World::new(b));
    let id = w.new_case("同时派单");
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let w = Arc::clone(&w);
            let id = id.clone();
            let dept = w.water.clone();
            std::thread::spawn(move || {
                let tok = if i % 2 == 0 { w.supervisor.clone() } else { w.supervisor2.clone() };
                let r = w.app.call(
                    "POST",
                    &format!("/api/v1/cases/{id}/actions/assign"),
                    Some(&tok),
                    Some(&json!({"department_id": dept})),
                    &[("If-Match", "\"1\"")],
                );
                r.status
            })
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().expect("thread")).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "statuses: {statuses:?}");
    assert!(statuses.iter().all(|s| [200, 409, 412].contains(s)), "statuses: {statuses:?}");
    let events = w.app.get(&format!("/api/v1/cases/{id}/events"), &w.supervisor).expect(200).clone();
    let actions: Vec<&str> =
        events["items"].as_array().expect("items").iter().map(|e| e["action"].as_str().expect("a")).collect();
    assert_eq!(actions, vec!["create", "assign"]);

    // Without If-Match, concurrent comments all land, in a gap-free sequence: no lost update.
    let handles: Vec<_> = (0..10)
        .map(|i| {
            let w = Arc::clone(&w);
            let id = id.clone();
            std::thread::spawn(move || w.act(&w.supervisor, &id, "comment", json!({"text": format!("第{i}条")})).status)
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().expect("thread")).collect();
    assert!(statuses.iter().all(|s| *s == 200), "statuses: {statuses:?}");
    let case = w.app.get(&format!("/api/v1/cases/{id}"), &w.supervisor).expect(200).clone();
    assert_eq!(case["version"], 12);
    let events = w.app.get(&format!("/api/v1/cases/{id}/events"), &w.supervisor).expect(200).clone();
    let seqs: Vec<i64> =
        events["items"].as_array().expect("items").iter().map(|e| e["seq"].as_i64().expect("seq")).collect();
    assert_eq!(seqs, (1..=12).collect::<Vec<_>>());

    // Racing different transitions: resolve vs return on the same assigned case — exactly one wins.
    let handles: Vec<_> = ["resolve", "return"]
        .into_iter()
        .map(|action| {
            let w = Arc::clone(&w);
            let id = id.clone();
            std::thread::spawn(move || {
                let body =
                    if action == "resolve" { json!({"resolution": "done"}) } else { json!({"reason": "not ours"}) };
                (action, w.act(&w.water_worker, &id, action, body).status)
            })
        })
        .collect();
    let results: Vec<(&str, u16)> = handles.into_iter().map(|h| h.join().expect("thread")).collect();
    assert_eq!(results.iter().filter(|(_, s)| *s == 200).count(), 1, "{results:?}");
    let events = w.app.get(&format!("/api/v1/cases/{id}/events"), &w.supervisor).expect(200).clone();
    assert_eq!(events["items"].as_array().map(Vec::len), Some(13));
}

both!(
    happy_path_and_audit_trail,
    illegal_actions_are_409_with_allowed_actions,
    role_rules_are_enforced,
    resolver_cannot_verify_or_reject,
    return_reject_and_rework,
    dismiss_reopen_extend_comment,
    assignment_targets_are_checked,
    if_match_is_honoured,
    concurrent_actions_on_one_version_have_one_winner,
);
