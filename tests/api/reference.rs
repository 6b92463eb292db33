//! Reference data: the jurisdiction tree, departments, categories, programmes.

use serde_json::{json, Value};

use crate::support::{Backend, World};

fn jurisdiction_tree(b: Backend) {
    let w = World::new(b);
    let list = w.app.get("/api/v1/jurisdictions", &w.viewer).expect(200).clone();
    let codes: Vec<&str> =
        list["items"].as_array().expect("items").iter().map(|j| j["code"].as_str().expect("c")).collect();
    assert_eq!(codes, vec!["530602"], "a viewer of 昭阳区 sees its own subtree");
    let children = w.app.get("/api/v1/jurisdictions?parent_code=530600", &w.admin).expect(200).clone();
    let codes: Vec<&str> =
        children["items"].as_array().expect("items").iter().map(|j| j["code"].as_str().expect("c")).collect();
    assert_eq!(codes, vec!["530602", "530621"]);
    let j = w.app.get("/api/v1/jurisdictions/530602", &w.admin).expect(200).clone();
    assert_eq!(j["name"], "昭阳区");
    assert_eq!(j["parent_code"], "530600");
    assert_eq!(j["depth"], 2);
    // Validation, duplicates, unknown parents, roles.
    let r = w.app.post("/api/v1/jurisdictions", &w.admin, json!({"code": "53-06", "name": ""}));
    assert_eq!(r.bad_fields(), vec!["code", "name"]);
    w.app
        .post("/api/v1/jurisdictions", &w.admin, json!({"code": "530602", "name": "重复", "parent_code": "530600"}))
        .expect_problem(409, "already_exists");
    let r =
        w.app.post("/api/v1/jurisdictions", &w.admin, json!({"code": "530699", "name": "无", "parent_code": "999999"}));
    assert_eq!(r.bad_fields(), vec!["parent_code"]);
    w.app
        .post(
            "/api/v1/jurisdictions",
            &w.supervisor,
            json!({"code": "530602001", "name": "凤凰街道", "parent_code": "530602"}),
        )
        .expect_problem(403, "admin_only");
    // A township under the district, then renamed.
    let t = w.app.post(
        "/api/v1/jurisdictions",
        &w.admin,
        json!({"code": "530602001", "name": "凤凰街道", "parent_code": "530602"}),
    );
    assert_eq!(t.expect(201)["depth"], 3);
    assert_eq!(t.header("location"), Some("/api/v1/jurisdictions/530602001"));
    let renamed =
        w.app.patch("/api/v1/jurisdictions/530602001", &w.admin, json!({"name": "凤凰街道办事处"})).expect(200).clone();
    assert_eq!(renamed["name"], "凤凰街道办事处");
    w.app.get("/api/v1/jurisdictions/530621", &w.supervisor).expect_problem(404, "not_found");
    w.app.get("/api/v1/jurisdictions/000000", &w.admin).expect_problem(404, "not_found");
    w.app.patch("/api/v1/jurisdictions/530602", &w.viewer, json!({"name": "x"})).expect_problem(403, "admin_only");
}

fn departments_and_scoped_admins(b: Backend) {
    let w = World::new(b);
    // A county admin manages their own subtree only.
    w.app.post("/api/v1/users", &w.admin, json!({"username": "zy_admin", "password": crate::support::PASSWORD, "role": "admin", "jurisdiction_code": "530602"}))
        .expect(201);
    let county_admin = w.app.login("zy_admin", crate::support::PASSWORD);
    let d = w
        .app
        .post("/api/v1/departments", &county_admin, json!({"name": "区卫健局", "jurisdiction_code": "530602"}))
        .expect(201)
        .clone();
    let r =
        w.app.post("/api/v1/departments", &county_admin, json!({"name": "县卫健局", "jurisdiction_code": "530621"}));
    assert_eq!(r.bad_fields(), vec!["jurisdiction_code"]);
    w.app
        .post("/api/v1/departments", &county_admin, json!({"name": "区卫健局", "jurisdiction_code": "530602"}))
        .expect_problem(409, "already_exists");
    w.app.get(&format!("/api/v1/departments/{}", w.sibling_dept), &county_admin).expect_problem(404, "not_found");
    let listed = w.app.get("/api/v1/departments?jurisdiction_code=530602", &w.water_worker).expect(200).clone();
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(3));
    let all = w.app.get("/api/v1/departments", &w.admin).expect(200).clone();
    assert_eq!(all["items"].as_array().map(Vec::len), Some(4));
    let id = d["id"].as_str().expect("id");
    let changed = w
        .app
        .patch(&format!("/api/v1/departments/{id}"), &county_admin, json!({"name": "区卫生健康局", "active": false}))
        .expect(200)
        .clone();
    assert_eq!(changed["name"], "区卫生健康局");
    assert_eq!(changed["active"], false);
    assert_eq!(
        w.app.patch(&format!("/api/v1/departments/{id}"), &county_admin, json!({"active": "no"})).bad_fields(),
        vec!["active"]
    );
    // Categories are shared by the whole tree: a county admin reads them but may not change them.
    w.app
        .post("/api/v1/categories", &county_admin, json!({"code": "elderly", "name": "一老一小", "deadline_days": 20}))
        .expect_problem(403, "forbidden");
    // Users created by the county admin land in its subtree; it lists only those.
    let users = w.app.get("/api/v1/users", &county_admin).expect(200).clone();
    assert!(users["items"].as_array().expect("items").iter().all(|u| u["jurisdiction_code"] == "530602"));
    assert!(users["items"].as_array().expect("items").iter().all(|u| u.get("password_hash").is_none()));
    let sibling = w.ids["ludian_sup"].clone();
    w.app.get(&format!("/api/v1/users/{sibling}"), &county_admin).expect_problem(404, "not_found");
    w.app.get("/api/v1/users", &w.supervisor).expect_problem(403, "admin_only");
}

fn categories_and_programmes(b: Backend) {
    let w = World::new(b);
    let r = w.app.post(
        "/api/v1/categories",
        &w.admin,
        json!({"code": "Elderly Care", "name": "一老一小", "deadline_days": 0}),
    );
    assert_eq!(r.bad_fields(), vec!["code", "deadline_days"]);
    w.app
        .post("/api/v1/categories", &w.admin, json!({"code": "drinking_water", "name": "饮水", "deadline_days": 10}))
        .expect_problem(409, "already_exists");
    let c = w.app.patch("/api/v1/categories/transport", &w.admin, json!({"deadline_days": 45})).expect(200).clone();
    assert_eq!(c["deadline_days"], 45);
    w.app.patch("/api/v1/categories/nope", &w.admin, json!({"deadline_days": 45})).expect_problem(404, "not_found");
    let list = w.app.get("/api/v1/categories?limit=1", &w.viewer).expect(200).clone();
    assert_eq!(list["items"][0]["code"], "drinking_water");
    let next = list["next_cursor"].as_str().expect("cursor");
    let list = w.app.get(&format!("/api/v1/categories?limit=1&cursor={next}"), &w.viewer).expect(200).clone();
    assert_eq!(list["items"][0]["code"], "transport");
    assert!(list["next_cursor"].is_null());
    // A new case takes the changed deadline.
    let mut body = w.complaint("公交线路");
    body["category_code"] = json!("transport");
    let case = w.app.post("/api/v1/cases", &w.supervisor, body.clone()).expect(201).clone();
    let created = chrono::DateTime::parse_from_rfc3339(case["created_at"].as_str().expect("c")).expect("ts");
    let due = chrono::DateTime::parse_from_rfc3339(case["due_at"].as_str().expect("d")).expect("ts");
    assert_eq!(due - created, chrono::Duration::days(45));
    // An inactive category takes no new cases.
    w.app.patch("/api/v1/categories/transport", &w.admin, json!({"active": false})).expect(200);
    assert_eq!(w.app.post("/api/v1/cases", &w.supervisor, body).bad_fields(), vec!["category_code"]);

    // Programmes: the year's list of practical projects.
    let r =
        w.app.post("/api/v1/programmes", &w.admin, json!({"name": "", "year": 1999, "jurisdiction_code": "530602"}));
    assert_eq!(r.bad_fields(), vec!["name", "year"]);
    let prog = w
        .app
        .post(
            "/api/v1/programmes",
            &w.admin,
            json!({"name": "2026年为民办实事", "year": 2026, "jurisdiction_code": "530602", "description": "468项"}),
        )
        .expect(201)
        .clone();
    let pid = prog["id"].as_str().expect("id").to_owned();
    let sibling_prog = w
        .app
        .post(
            "/api/v1/programmes",
            &w.admin,
            json!({"name": "2026年鲁甸县实事", "year": 2026, "jurisdiction_code": "530621"}),
        )
        .expect(201)
        .clone();
    let mut project = w.complaint("新增病床1500张");
    project["kind"] = json!("project");
    project["programme_id"] = json!(pid);
    let case = w.app.post("/api/v1/cases", &w.supervisor, project.clone()).expect(201).clone();
    assert_eq!(case["programme_id"], pid.as_str());
    project["programme_id"] = sibling_prog["id"].clone();
    assert_eq!(w.app.post("/api/v1/cases", &w.admin, project).bad_fields(), vec!["programme_id"]);
    w.new_case("不在清单里");
    let listed = w.app.get(&format!("/api/v1/cases?programme_id={pid}"), &w.supervisor).expect(200).clone();
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    let progs = w.app.get("/api/v1/programmes?year=2026", &w.supervisor).expect(200).clone();
    assert_eq!(progs["items"].as_array().map(Vec::len), Some(1));
    let changed = w
        .app
        .patch(&format!("/api/v1/programmes/{pid}"), &w.admin, json!({"description": "共468项"}))
        .expect(200)
        .clone();
    assert_eq!(changed["description"], "共468项");
    w.app
        .get(&format!("/api/v1/programmes/{}", sibling_prog["id"].as_str().expect("id")), &w.supervisor)
        .expect_problem(404, "not_found");
}

/// Categories are Open311 services: a description, a group, keywords and the attributes of the
/// service definition, all checked, changed and cleared through `/api/v1/categories`.
fn categories_carry_their_service_definition(b: Backend) {
    let w = World::new(b);
    // Plain categories have none of it.
    let plain = w.app.get("/api/v1/categories/transport", &w.viewer).expect(200).clone();
    assert_eq!(plain["description"], Value::Null);
    assert_eq!(plain["group"], Value::Null);
    assert_eq!(plain["keywords"], json!([]));
    assert_eq!(plain["attributes"], json!([]));
    let body = json!({
        "code": "street_lights", "name": "路灯", "deadline_days": 7,
        "description": "路灯不亮、灯杆损坏", "group": "市政", "keywords": ["路灯", "照明", "路灯"],
        "attributes": [
            {"code": "POLE", "datatype": "string", "description": "灯杆编号"},
            {"code": "KIND", "datatype": "singlevaluelist", "required": true, "order": 5,
             "description": "故障类型", "datatype_description": "选一项",
             "values": [{"key": "dark", "name": "不亮"}, {"key": "flicker", "name": "闪烁"}]},
            {"code": "NOTE", "datatype": "text", "variable": false, "description": "夜间请注意安全"}
        ]
    });
    let c = w.app.post("/api/v1/categories", &w.admin, body).expect(201).clone();
    assert_eq!(c["group"], "市政");
    assert_eq!(c["description"], "路灯不亮、灯杆损坏");
    assert_eq!(c["keywords"], json!(["路灯", "照明"]));
    assert_eq!(
        c["attributes"],
        json!([
            {"code": "POLE", "datatype": "string", "required": false, "variable": true, "order": 1,
             "description": "灯杆编号", "datatype_description": null, "values": []},
            {"code": "KIND", "datatype": "singlevaluelist", "required": true, "variable": true, "order": 5,
             "description": "故障类型", "datatype_description": "选一项",
             "values": [{"key": "dark", "name": "不亮"}, {"key": "flicker", "name": "闪烁"}]},
            {"code": "NOTE", "datatype": "text", "required": false, "variable": false, "order": 3,
             "description": "夜间请注意安全", "datatype_description": null, "values": []}
        ])
    );
    assert_eq!(w.app.get("/api/v1/categories/street_lights", &w.viewer).expect(200).clone(), c);
    // Every bad definition is named at once.
    let r = w.app.post(
        "/api/v1/categories",
        &w.admin,
        json!({"code": "bad", "name": "坏", "deadline_days": 1, "keywords": ["a,b"], "group": "x".repeat(101),
        "attributes": [
            {"code": "has space", "datatype": "colour", "description": "?"},
            {"code": "L", "datatype": "multivaluelist", "description": "?"},
            {"code": "S", "datatype": "string", "description": "?", "values": [{"key": "a", "name": "A"}]},
            {"code": "R", "datatype": "string", "description": "?", "required": true, "variable": false},
            {"code": "V", "datatype": "singlevaluelist", "description": "?",
             "values": [{"key": "a", "name": "A"}, {"key": "a", "name": "B"}]},
            "not an object"
        ]}),
    );
    r.expect_problem(422, "validation_failed");
    assert_eq!(
        r.bad_fields(),
        vec![
            "attributes[0].code",
            "attributes[0].datatype",
            "attributes[1].values",
            "attributes[2].values",
            "attributes[3].required",
            "attributes[4].values",
            "attributes[5]",
            "group",
            "keywords"
        ]
    );
    let r = w.app.post(
        "/api/v1/categories",
        &w.admin,
        json!({"code": "dup", "name": "重复", "deadline_days": 1, "attributes": [
            {"code": "A", "datatype": "number", "description": "?", "order": 1},
            {"code": "A", "datatype": "number", "description": "?", "order": 1}]}),
    );
    assert_eq!(r.bad_fields(), vec!["attributes", "attributes"]);
    // A change replaces what it names; "" and [] clear.
    let changed = w
        .app
        .patch("/api/v1/categories/street_lights", &w.admin, json!({"group": "城市管理", "keywords": ["路灯"]}))
        .expect(200)
        .clone();
    assert_eq!(changed["group"], "城市管理");
    assert_eq!(changed["keywords"], json!(["路灯"]));
    assert_eq!(changed["description"], "路灯不亮、灯杆损坏");
    assert_eq!(changed["attributes"].as_array().map(Vec::len), Some(3));
    let cleared = w
        .app
        .patch(
            "/api/v1/categories/street_lights",
            &w.admin,
            json!({"group": "", "description": "", "keywords": [], "attributes": []}),
        )
        .expect(200)
        .clone();
    assert_eq!(cleared["group"], Value::Null);
    assert_eq!(cleared["description"], Value::Null);
    assert_eq!(cleared["keywords"], json!([]));
    assert_eq!(cleared["attributes"], json!([]));
    // The audit log records the definition's changes.
    let audit = w.app.get("/api/v1/audit/admin", &w.admin).expect(200).clone();
    assert!(audit.to_string().contains("城市管理"), "{audit}");
}

both!(
    jurisdiction_tree,
    departments_and_scoped_admins,
    categories_and_programmes,
    categories_carry_their_service_definition
);
