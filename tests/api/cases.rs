//! Case intake, reading, the filtered list and its pagination, personal-data masking.

use serde_json::{json, Value};

use crate::support::{Backend, World};

fn create_numbers_refs_and_sets_deadlines(b: Backend) {
    let w = World::new(b);
    let r = w.app.post("/api/v1/cases", &w.supervisor, w.complaint("村里自来水停水三天"));
    let case = r.expect(201).clone();
    let id = case["id"].as_str().expect("id");
    assert_eq!(r.header("location"), Some(format!("/api/v1/cases/{id}").as_str()));
    assert_eq!(r.header("etag"), Some("\"1\""));
    assert_eq!(case["status"], "received");
    assert_eq!(case["version"], 1);
    assert_eq!(case["priority"], "normal");
    assert_eq!(case["kind"], "complaint");
    assert_eq!(case["complainant"], json!({"name": "张**", "phone": "138****5678", "email": null, "masked": true}));
    assert_eq!(case["location"]["address"], "昭阳区凤凰街道某村");
    let case_ref = case["ref"].as_str().expect("ref");
    let year = (chrono::Utc::now() + chrono::Duration::hours(8)).format("%Y").to_string();
    assert_eq!(case_ref, format!("530602-{year}-000001"));
    // Deadline from the category: 15 days after creation.
    let created = chrono::DateTime::parse_from_rfc3339(case["created_at"].as_str().expect("c")).expect("ts");
    let due = chrono::DateTime::parse_from_rfc3339(case["due_at"].as_str().expect("d")).expect("ts");
    assert_eq!(due - created, chrono::Duration::days(15));
    // The next case of the jurisdiction gets the next number; an explicit deadline is kept.
    let mut body = w.complaint("第二件");
    body["due_at"] = json!("2099-01-31T17:30:00+08:00");
    body["priority"] = json!("urgent");
    body["kind"] = json!("project");
    let second = w.app.post("/api/v1/cases", &w.water_worker, body).expect(201).clone();
    assert_eq!(second["ref"], format!("530602-{year}-000002"));
    assert_eq!(second["due_at"], "2099-01-31T09:30:00.000000Z");
    assert_eq!(second["priority"], "urgent");
    assert_eq!(second["created_by"], w.ids["water1"].as_str());
    // An email is personal data like the phone; a media link is not.
    let mut body = w.complaint("带照片的诉求");
    body["complainant"]["email"] = json!("zhangsan@example.com");
    body["media_url"] = json!("https://img.example.com/photos/1.jpg");
    let third = w.app.post("/api/v1/cases", &w.supervisor, body).expect(201).clone();
    assert_eq!(third["complainant"]["email"], "z*******@example.com");
    assert_eq!(third["media_url"], "https://img.example.com/photos/1.jpg");
    assert_eq!(third["attributes"], Value::Null);
    assert_eq!(third["location"]["address_id"], Value::Null);
    let third_id = third["id"].as_str().expect("id");
    let revealed =
        w.app.get(&format!("/api/v1/cases/{third_id}?include_personal_data=true"), &w.supervisor).expect(200).clone();
    assert_eq!(revealed["complainant"]["email"], "zhangsan@example.com");
    let mut body = w.complaint("坏链接");
    body["complainant"]["email"] = json!("not-an-email");
    body["media_url"] = json!("javascript:alert(1)");
    let r = w.app.post("/api/v1/cases", &w.supervisor, body);
    r.expect_problem(422, "validation_failed");
    assert_eq!(r.bad_fields(), vec!["complainant.email", "media_url"]);
    // Another jurisdiction has its own sequence.
    let mut body = w.complaint("鲁甸县的事");
    body["jurisdiction_code"] = json!("530621");
    let other = w.app.post("/api/v1/cases", &w.admin, body).expect(201).clone();
    assert_eq!(other["ref"], format!("530621-{year}-000001"));

    let got = w.app.get(&format!("/api/v1/cases/{id}"), &w.supervisor);
    assert_eq!(got.header("etag"), Some("\"1\""));
    assert_eq!(got.expect(200)["ref"], case_ref);
}

fn create_validates_every_field(b: Backend) {
    let w = World::new(b);
    let r = w.app.post(
        "/api/v1/cases",
        &w.supervisor,
        json!({
            "kind": "rumour",
            "title": "x".repeat(201),
            "description": "",
            "channel": "pigeon",
            "priority": 3,
            "complainant": {"name": "李四", "phone": "call me"},
            "location": {"lat": 91},
            "due_at": "tomorrow",
            "programme_id": "p-1",
            "external": {"source": "12345"}
        }),
    );
    r.expect_problem(422, "validation_failed");
    assert_eq!(
        r.bad_fields(),
        vec![
            "category_code",
            "channel",
            "complainant.phone",
            "description",
            "due_at",
            "external.id",
            "jurisdiction_code",
            "kind",
            "location.lat",
            "priority",
            "programme_id",
            "title"
        ]
    );
    // References are checked too, all at once.
    let mut body = w.complaint("引用错误");
    body["category_code"] = json!("no_such");
    body["jurisdiction_code"] = json!("999999");
    body["programme_id"] = json!(uuid::Uuid::new_v4());
    let r = w.app.post("/api/v1/cases", &w.supervisor, body);
    assert_eq!(r.bad_fields(), vec!["category_code", "jurisdiction_code", "programme_id"]);
    // A deadline in the past, a body that is not an object, control characters in a title.
    let mut body = w.complaint("过去的期限");
    body["due_at"] = json!("2001-01-01T00:00:00Z");
    assert_eq!(w.app.post("/api/v1/cases", &w.supervisor, body).bad_fields(), vec!["due_at"]);
    assert_eq!(w.app.post("/api/v1/cases", &w.supervisor, json!([1, 2])).status, 422);
    let mut body = w.complaint("标题\u{0007}响铃");
    body["title"] = json!("标题\u{0007}响铃");
    assert_eq!(w.app.post("/api/v1/cases", &w.supervisor, body).bad_fields(), vec!["title"]);
    // Viewers do not log cases; nothing was stored by any of the above.
    w.app.post("/api/v1/cases", &w.viewer, w.complaint("viewer")).expect_problem(403, "role_not_permitted");
    let list = w.app.get("/api/v1/cases", &w.admin).expect(200).clone();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0));
}

fn external_ids_are_unique_per_source(b: Backend) {
    let w = World::new(b);
    let mut body = w.complaint("省12345平台转办");
    body["channel"] = json!("integration");
    body["external"] = json!({"source": "yn12345", "id": "GD-2026-0001"});
    let first = w.app.post("/api/v1/cases", &w.supervisor, body.clone()).expect(201).clone();
    assert_eq!(first["external"], json!({"source": "yn12345", "id": "GD-2026-0001"}));
    let r = w.app.post("/api/v1/cases", &w.supervisor, body.clone());
    let p = r.expect_problem(409, "external_id_exists");
    assert_eq!(p["existing_id"], first["id"]);
    body["external"]["source"] = json!("petition");
    w.app.post("/api/v1/cases", &w.supervisor, body).expect(201);
    let found =
        w.app.get("/api/v1/cases?external_source=yn12345&external_id=GD-2026-0001", &w.supervisor).expect(200).clone();
    assert_eq!(found["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(found["items"][0]["id"], first["id"]);
    let r = w.app.get("/api/v1/cases?external_source=yn12345", &w.supervisor);
    assert_eq!(r.bad_fields(), vec!["external_id"]);
}

fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().expect("items").iter().map(|c| c["id"].as_str().expect("id").to_owned()).collect()
}

fn list_filters(b: Backend) {
    let w = World::new(b);
    let water_case = w.new_case("自来水管道破裂");
    let roads_case = {
        let mut body = w.complaint("乡村公路塌方");
        body["category_code"] = json!("transport");
        body["description"] = json!("公路塌方，车辆无法通行");
        body["kind"] = json!("project");
        w.app.post("/api/v1/cases", &w.supervisor, body).expect(201)["id"].as_str().expect("id").to_owned()
    };
    let overdue_case = {
        w.new_case("未逾期的诉求");
        // Extend is forward only, so make it overdue the honest way: a deadline that passes.
        let mut body = w.complaint("很快逾期");
        body["due_at"] = json!((chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339());
        let soon = w.app.post("/api/v1/cases", &w.supervisor, body).expect(201)["id"].as_str().expect("id").to_owned();
        std::thread::sleep(std::time::Duration::from_millis(2500));
        soon
    };
    let sibling_case = {
        let mut body = w.complaint("鲁甸县饮水");
        body["jurisdiction_code"] = json!("530621");
        w.app.post("/api/v1/cases", &w.admin, body).expect(201)["id"].as_str().expect("id").to_owned()
    };
    w.ok(&w.supervisor, &water_case, "assign", json!({"department_id": w.water}));
    w.ok(&w.supervisor, &roads_case, "assign", json!({"department_id": w.roads}));

    let get = |q: &str| ids(w.app.get(&format!("/api/v1/cases?{q}"), &w.admin).expect(200));
    assert_eq!(get("status=assigned&kind=complaint"), vec![water_case.clone()]);
    assert_eq!(get("kind=project"), vec![roads_case.clone()]);
    assert_eq!(get("category_code=transport"), vec![roads_case.clone()]);
    assert_eq!(get(&format!("department_id={}", w.roads)), vec![roads_case.clone()]);
    assert_eq!(get("jurisdiction_code=530621"), vec![sibling_case.clone()]);
    assert_eq!(get("jurisdiction_code=530600").len(), 5);
    assert_eq!(get("overdue=true"), vec![overdue_case.clone()]);
    assert_eq!(get("overdue=false").len(), 4);
    // Keyword search over title and description, in Chinese; LIKE wildcards are literal.
    assert_eq!(get("q=%E5%A1%8C%E6%96%B9"), vec![roads_case.clone()]); // 塌方
    assert_eq!(get("q=%E8%BD%A6%E8%BE%86%E6%97%A0%E6%B3%95"), vec![roads_case.clone()]); // 车辆无法 (description)
    assert!(get("q=%25").is_empty());
    assert!(get("q=_").is_empty());
    // Date ranges.
    let future = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert!(get(&format!("created_from={}", future.replace('+', "%2B"))).is_empty());
    assert_eq!(get(&format!("created_to={future}")).len(), 5);
    assert_eq!(get("due_to=2000-01-01T00:00:00Z").len(), 0);
    assert_eq!(get("due_from=2000-01-01T00:00:00Z").len(), 5);
    // A supervisor of the sibling county sees only its own subtree, and a filter cannot widen it.
    let sib = |q: &str| ids(w.app.get(&format!("/api/v1/cases?{q}"), &w.sibling_supervisor).expect(200));
    assert_eq!(sib(""), vec![sibling_case.clone()]);
    assert_eq!(
        w.app.get("/api/v1/cases?jurisdiction_code=530602", &w.sibling_supervisor).bad_fields(),
        vec!["jurisdiction_code"]
    );
    // A caseworker sees what they created and what their department holds.
    let mine = ids(w.app.get("/api/v1/cases", &w.roads_worker).expect(200));
    assert_eq!(mine, vec![roads_case.clone()]);
    // Bad filters are 422 with every bad parameter.
    let r = w.app.get(
        "/api/v1/cases?status=lost&overdue=maybe&department_id=x&created_from=yesterday&limit=500&cursor=%21",
        &w.admin,
    );
    assert_eq!(r.bad_fields(), vec!["created_from", "cursor", "department_id", "limit", "overdue", "status"]);
}

fn pagination_is_stable_and_complete(b: Backend) {
    let w = World::new(b);
    let mut created = Vec::new();
    for i in 0..23 {
        created.push(w.new_case(&format!("第{i}件")));
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/cases?limit=5&cursor={c}"),
            None => "/api/v1/cases?limit=5".to_owned(),
        };
        let page = w.app.get(&path, &w.supervisor).expect(200).clone();
        pages += 1;
        seen.extend(ids(&page));
        // A case created while paging must not disturb the walk (it is newer than the cursor).
        if pages == 2 {
            w.new_case("翻页时新建");
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 5);
    created.reverse(); // newest first
    assert_eq!(seen, created);
}

fn personal_data_is_masked_unless_revealed_and_every_reveal_is_logged(b: Backend) {
    let w = World::new(b);
    let id = w.new_case("隐私");
    let masked = json!({"name": "张**", "phone": "138****5678", "email": null, "masked": true});
    // Masked by default for everyone, in reads, lists and action answers.
    for token in [&w.viewer, &w.supervisor, &w.admin] {
        assert_eq!(w.app.get(&format!("/api/v1/cases/{id}"), token).expect(200)["complainant"], masked);
    }
    assert_eq!(w.app.get("/api/v1/cases", &w.supervisor).expect(200)["items"][0]["complainant"], masked);
    let assigned = w.ok(&w.supervisor, &id, "assign", json!({"department_id": w.water}));
    assert_eq!(assigned["complainant"], masked);
    // Those entitled may ask; the holding department's caseworker too. Viewers and other
    // departments may not (the latter cannot even read the case).
    let reveal = format!("/api/v1/cases/{id}?include_personal_data=true");
    let unmasked = json!({"name": "张三丰", "phone": "13812345678", "email": null, "masked": false});
    let r = w.app.call("GET", &reveal, Some(&w.supervisor), None, &[("X-Request-Id", "reveal-1")]);
    assert_eq!(r.expect(200)["complainant"], unmasked);
    assert_eq!(w.app.get(&reveal, &w.water_worker).expect(200)["complainant"], unmasked);
    w.app.get(&reveal, &w.viewer).expect_problem(403, "personal_data_forbidden");
    w.app.get(&reveal, &w.roads_worker).expect_problem(404, "not_found");
    assert_eq!(
        w.app.get(&format!("/api/v1/cases/{id}?include_personal_data=yes"), &w.supervisor).bad_fields(),
        vec!["include_personal_data"]
    );
    // Each reveal is in the access log, newest first, with who and the request id.
    let log = w.app.get(&format!("/api/v1/audit/personal-data?case_id={id}"), &w.admin).expect(200).clone();
    let who: Vec<&str> =
        log["items"].as_array().expect("items").iter().map(|e| e["actor"]["name"].as_str().expect("n")).collect();
    assert_eq!(who, vec!["water1", "sup"]);
    assert_eq!(log["items"][1]["request_id"], "reveal-1");
    w.app.get("/api/v1/audit/personal-data", &w.supervisor).expect_problem(403, "admin_only");
    // The sibling county's admin does not see this county's log.
    w.app.post("/api/v1/users", &w.admin, json!({"username": "ld_admin", "password": crate::support::PASSWORD, "role": "admin", "jurisdiction_code": "530621"})).expect(201);
    let ld_admin = w.app.login("ld_admin", crate::support::PASSWORD);
    let log = w.app.get("/api/v1/audit/personal-data", &ld_admin).expect(200).clone();
    assert_eq!(log["items"].as_array().map(Vec::len), Some(0));
}

fn reading_outside_scope_is_404(b: Backend) {
    let w = World::new(b);
    let id = w.new_case("昭阳区的案件");
    let missing = w.app.get(&format!("/api/v1/cases/{}", uuid::Uuid::new_v4()), &w.sibling_supervisor);
    let hidden = w.app.get(&format!("/api/v1/cases/{id}"), &w.sibling_supervisor);
    hidden.expect_problem(404, "not_found");
    assert_eq!(missing.body, hidden.body);
    w.app.get(&format!("/api/v1/cases/{id}/events"), &w.sibling_supervisor).expect_problem(404, "not_found");
    w.act(&w.sibling_supervisor, &id, "assign", json!({"department_id": w.sibling_dept}))
        .expect_problem(404, "not_found");
    w.app.get(&format!("/api/v1/cases/{id}"), &w.roads_worker).expect_problem(404, "not_found");
    w.app.get("/api/v1/cases/not-a-uuid", &w.supervisor).expect_problem(404, "not_found");
    // A case of the sibling county cannot be logged by this county's supervisor.
    let mut body = w.complaint("越权");
    body["jurisdiction_code"] = json!("530621");
    assert_eq!(w.app.post("/api/v1/cases", &w.supervisor, body).bad_fields(), vec!["jurisdiction_code"]);
}

both!(
    create_numbers_refs_and_sets_deadlines,
    create_validates_every_field,
    external_ids_are_unique_per_source,
    list_filters,
    pagination_is_stable_and_complete,
    personal_data_is_masked_unless_revealed_and_every_reveal_is_logged,
    reading_outside_scope_is_404,
);
