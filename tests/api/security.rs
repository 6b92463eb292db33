//! Sessions, refresh-token rotation, throttling, user administration and its audit trail.

use serde_json::{json, Value};

use crate::support::{Backend, TestApp, World, PASSWORD};

fn login_pair(app: &TestApp, username: &str, password: &str) -> (String, String) {
    let r =
        app.call("POST", "/api/v1/auth/login", None, Some(&json!({"username": username, "password": password})), &[]);
    let body = r.expect(200);
    (body["access_token"].as_str().expect("a").to_owned(), body["refresh_token"].as_str().expect("r").to_owned())
}

fn refresh(app: &TestApp, token: &str) -> crate::support::Resp {
    app.call("POST", "/api/v1/auth/refresh", None, Some(&json!({"refresh_token": token})), &[])
}

fn refresh_tokens_rotate_and_reuse_ends_the_session(b: Backend) {
    let w = World::new(b);
    let (access, r1) = login_pair(&w.app, "sup", PASSWORD);
    assert!(r1.starts_with("msr_"));
    let next = refresh(&w.app, &r1).expect(200).clone();
    // The session's end does not move with each refresh.
    assert!(next["refresh_expires_in"].as_i64().is_some_and(|s| s > 0 && s <= 30 * 24 * 3600), "{next}");
    let r2 = next["refresh_token"].as_str().expect("r2").to_owned();
    let access2 = next["access_token"].as_str().expect("a2").to_owned();
    assert_ne!(r1, r2);
    assert_eq!(next["token_type"], "Bearer");
    w.app.get("/api/v1/me", &access2).expect(200);
    w.app.get("/api/v1/me", &access).expect(200);
    // r1 again: theft is assumed, the whole session ends — r2 and both access tokens with it.
    refresh(&w.app, &r1).expect_problem(401, "refresh_token_reused");
    refresh(&w.app, &r2).expect_problem(401, "invalid_refresh_token");
    w.app.get("/api/v1/me", &access2).expect_problem(401, "session_ended");
    w.app.get("/api/v1/me", &access).expect_problem(401, "session_ended");
    // Other sessions of the same user are untouched.
    w.app.get("/api/v1/me", &w.supervisor).expect(200);
    refresh(&w.app, "msr_nonsense").expect_problem(401, "invalid_refresh_token");
    assert_eq!(
        w.app.call("POST", "/api/v1/auth/refresh", None, Some(&json!({})), &[]).bad_fields(),
        vec!["refresh_token"]
    );
    // The database keeps only hashes of refresh tokens.
    let n = count_rows_containing(&w.app, "refresh_tokens", "token_hash", &r2);
    assert_eq!(n, 0);
}

fn count_rows_containing(app: &TestApp, table: &str, column: &str, needle: &str) -> i64 {
    use diesel::prelude::*;
    let state = minsheng::init_state(crate::support::test_config(&app.database_url)).expect("state");
    let mut conn = state.pool.get().expect("conn");
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE {column} LIKE '%{needle}%'");
    diesel::sql_query(sql).get_result::<N>(&mut *conn).expect("count").n
}

fn concurrent_refreshes_with_one_token_cannot_both_win(b: Backend) {
    let w = std::sync::Arc::new(World::new(b));
    let (_, r1) = login_pair(&w.app, "sup", PASSWORD);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (w, t) = (std::sync::Arc::clone(&w), r1.clone());
            std::thread::spawn(move || refresh(&w.app, &t).status)
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().expect("join")).collect();
    assert!(statuses.iter().filter(|s| **s == 200).count() <= 1, "{statuses:?}");
}

fn logout_ends_the_session(b: Backend) {
    let w = World::new(b);
    let (access, refresh_token) = login_pair(&w.app, "water1", PASSWORD);
    w.app.call("POST", "/api/v1/auth/logout", Some(&access), None, &[]).expect(204);
    w.app.get("/api/v1/me", &access).expect_problem(401, "session_ended");
    refresh(&w.app, &refresh_token).expect_problem(401, "invalid_refresh_token");
    w.app.call("POST", "/api/v1/auth/logout", None, None, &[]).expect_problem(401, "unauthenticated");
    w.app.get("/api/v1/me", &w.water_worker).expect(200);
}

fn password_changes_end_every_session(b: Backend) {
    let w = World::new(b);
    let (other_device, _) = login_pair(&w.app, "water1", PASSWORD);
    let path = "/api/v1/me/password";
    let r = w.app.post(
        path,
        &w.water_worker,
        json!({"current_password": "wrong-wrong-wrong", "new_password": "New-Secret-2026"}),
    );
    assert_eq!(r.bad_fields(), vec!["current_password"]);
    let r = w.app.post(path, &w.water_worker, json!({"current_password": PASSWORD, "new_password": "12345678"}));
    assert_eq!(r.bad_fields(), vec!["new_password"]);
    w.app
        .post(path, &w.water_worker, json!({"current_password": PASSWORD, "new_password": "New-Secret-2026"}))
        .expect(204);
    w.app.get("/api/v1/me", &w.water_worker).expect_problem(401, "session_ended");
    w.app.get("/api/v1/me", &other_device).expect_problem(401, "session_ended");
    w.app
        .call("POST", "/api/v1/auth/login", None, Some(&json!({"username": "water1", "password": PASSWORD})), &[])
        .expect_problem(401, "invalid_credentials");
    let fresh = w.app.login("water1", "New-Secret-2026");
    // An admin's reset ends the sessions too.
    let id = w.ids["water1"].clone();
    w.app
        .post(&format!("/api/v1/users/{id}/password"), &w.supervisor, json!({"password": "Reset-By-Admin-2026"}))
        .expect_problem(403, "admin_only");
    assert_eq!(
        w.app.post(&format!("/api/v1/users/{id}/password"), &w.admin, json!({"password": "short"})).bad_fields(),
        vec!["password"]
    );
    w.app
        .post(&format!("/api/v1/users/{id}/password"), &w.admin, json!({"password": "Reset-By-Admin-2026"}))
        .expect(204);
    w.app.get("/api/v1/me", &fresh).expect_problem(401, "session_ended");
    w.app.login("water1", "Reset-By-Admin-2026");
}

fn disabling_and_role_changes_end_sessions(b: Backend) {
    let w = World::new(b);
    let id = w.ids["roads1"].clone();
    let path = format!("/api/v1/users/{id}");
    let r = w.app.patch(&path, &w.admin, json!({"active": false}));
    assert_eq!(r.expect(200)["active"], false);
    w.app.get("/api/v1/me", &w.roads_worker).expect_problem(401, "session_ended");
    w.app
        .call("POST", "/api/v1/auth/login", None, Some(&json!({"username": "roads1", "password": PASSWORD})), &[])
        .expect_problem(401, "invalid_credentials");
    w.app.patch(&path, &w.admin, json!({"active": true})).expect(200);
    let token = w.app.login("roads1", PASSWORD);
    // A display-name change keeps the session; a role change ends it.
    w.app.patch(&path, &w.admin, json!({"display_name": "赵六"})).expect(200);
    w.app.get("/api/v1/me", &token).expect(200);
    let changed = w.app.patch(&path, &w.admin, json!({"role": "viewer"})).expect(200).clone();
    assert_eq!(changed["role"], "viewer");
    w.app.get("/api/v1/me", &token).expect_problem(401, "session_ended");
    // Validation and scope.
    let r = w.app.patch(&path, &w.admin, json!({"role": "caseworker", "department_id": w.sibling_dept}));
    assert_eq!(r.bad_fields(), vec!["department_id"]);
    assert_eq!(
        w.app.patch(&path, &w.admin, json!({"role": "emperor", "active": "yes"})).bad_fields(),
        vec!["active", "role"]
    );
    w.app.patch(&path, &w.supervisor, json!({"active": false})).expect_problem(403, "admin_only");
    let me = w.app.get("/api/v1/me", &w.admin).expect(200)["id"].as_str().expect("id").to_owned();
    w.app
        .patch(&format!("/api/v1/users/{me}"), &w.admin, json!({"active": false}))
        .expect_problem(403, "self_modification");
    w.app
        .patch(&format!("/api/v1/users/{me}"), &w.admin, json!({"role": "viewer"}))
        .expect_problem(403, "self_modification");
    let sibling = w.ids["ludian_sup"].clone();
    w.app
        .post(
            "/api/v1/users",
            &w.admin,
            json!({"username": "zy_admin", "password": PASSWORD, "role": "admin", "jurisdiction_code": "530602"}),
        )
        .expect(201);
    let county_admin = w.app.login("zy_admin", PASSWORD);
    w.app
        .patch(&format!("/api/v1/users/{sibling}"), &county_admin, json!({"active": false}))
        .expect_problem(404, "not_found");
    w.app
        .post(&format!("/api/v1/users/{sibling}/password"), &county_admin, json!({"password": "Reset-By-Admin-2026"}))
        .expect_problem(404, "not_found");
    // Moving a caseworker to another county keeps a department that is not there: refused.
    let water1 = w.ids["water1"].clone();
    let r = w.app.patch(&format!("/api/v1/users/{water1}"), &w.admin, json!({"jurisdiction_code": "530621"}));
    assert_eq!(r.bad_fields(), vec!["department_id"]);
    let moved = w.app.patch(
        &format!("/api/v1/users/{water1}"),
        &w.admin,
        json!({"jurisdiction_code": "530621", "department_id": w.sibling_dept}),
    );
    assert_eq!(moved.expect(200)["jurisdiction_code"], "530621");
    // A county admin cannot move a user out of the county.
    let r = w.app.patch(&path, &county_admin, json!({"jurisdiction_code": "530621"}));
    assert_eq!(r.bad_fields(), vec!["jurisdiction_code"]);
}

fn failed_logins_are_throttled(b: Backend) {
    let app = TestApp::start_with(b, |c| {
        c.login_max_failures = 3;
        c.login_max_failures_per_address = 9;
    });
    app.create_admin("chief", PASSWORD, None);
    let attempt = |user: &str, pw: &str| {
        app.call("POST", "/api/v1/auth/login", None, Some(&json!({"username": user, "password": pw})), &[])
    };
    for _ in 0..3 {
        attempt("chief", "Wrong-Password-1").expect_problem(401, "invalid_credentials");
    }
    // Locked: even the right password is refused for now, with a Retry-After.
    let r = attempt("chief", PASSWORD);
    r.expect_problem(429, "rate_limited");
    let retry: u64 = r.header("retry-after").expect("retry-after").parse().expect("seconds");
    assert!(retry > 0 && retry <= 900, "{retry}");
    // An unknown account locks exactly like a known one: no enumeration by lockout.
    for _ in 0..3 {
        attempt("ghost", "Wrong-Password-1").expect_problem(401, "invalid_credentials");
    }
    attempt("ghost", "Wrong-Password-1").expect_problem(429, "rate_limited");
    // Nine attempts from one address (refused ones count) lock the address, whatever the account.
    attempt("someone", "x-x-x-x-x-x").expect_problem(401, "invalid_credentials");
    let r = attempt("someone-else", "x-x-x-x-x-x");
    r.expect_problem(429, "rate_limited");
}

fn admin_changes_are_audited(b: Backend) {
    let w = World::new(b);
    let client = w
        .app
        .post(
            "/api/v1/api-clients",
            &w.admin,
            json!({"name": "省平台", "jurisdiction_code": "530602", "scopes": ["cases:create"]}),
        )
        .expect(201)
        .clone();
    let client_id = client["id"].as_str().expect("id").to_owned();
    w.app.post(&format!("/api/v1/api-clients/{client_id}/rotate"), &w.admin, json!({})).expect(200);
    w.app.call("POST", &format!("/api/v1/api-clients/{client_id}/revoke"), Some(&w.admin), None, &[]).expect(200);
    let clients = w.app.get("/api/v1/audit/admin?target_type=api_client", &w.admin).expect(200).clone();
    let actions: Vec<&str> =
        clients["items"].as_array().expect("items").iter().map(|e| e["action"].as_str().expect("a")).collect();
    assert_eq!(actions, vec!["api_client.revoked", "api_client.rotated", "api_client.created"]);
    let key = client["key"].as_str().expect("key");
    assert!(!clients.to_string().contains(key), "no key in the audit log");
    w.app.patch("/api/v1/categories/transport", &w.admin, json!({"deadline_days": 20})).expect(200);
    w.app.patch(&format!("/api/v1/departments/{}", w.roads), &w.admin, json!({"name": "区交通局"})).expect(200);
    let log = w.app.get("/api/v1/audit/admin?limit=200", &w.admin).expect(200).clone();
    let items = log["items"].as_array().expect("items");
    let actions: Vec<&str> = items.iter().map(|e| e["action"].as_str().expect("a")).collect();
    assert_eq!(actions[0], "department.updated");
    assert_eq!(actions[1], "category.updated");
    for expected in ["jurisdiction.created", "department.created", "category.created", "user.created"] {
        assert!(actions.contains(&expected), "{expected} missing from {actions:?}");
    }
    assert_eq!(items[1]["details"]["deadline_days"], 20);
    assert_eq!(items[1]["actor"]["name"], "root");
    assert!(items.iter().all(|e| !e.to_string().contains(PASSWORD)), "no password in the audit log");
    let users_only = w.app.get("/api/v1/audit/admin?target_type=user", &w.admin).expect(200).clone();
    assert!(users_only["items"].as_array().expect("items").iter().all(|e| e["target_type"] == "user"));
    // A county admin sees its county's changes only (not tree-wide categories, not the sibling).
    w.app
        .post(
            "/api/v1/users",
            &w.admin,
            json!({"username": "zy_admin", "password": PASSWORD, "role": "admin", "jurisdiction_code": "530602"}),
        )
        .expect(201);
    let county_admin = w.app.login("zy_admin", PASSWORD);
    let log = w.app.get("/api/v1/audit/admin?limit=200", &county_admin).expect(200).clone();
    let items: &Vec<Value> = log["items"].as_array().expect("items");
    assert!(!items.is_empty());
    assert!(items.iter().all(|e| e["target_type"] != "category"));
    assert!(items.iter().all(|e| e["target_id"] != w.sibling_dept.as_str() && e["target_id"] != "530621"));
    w.app.get("/api/v1/audit/admin", &w.supervisor).expect_problem(403, "admin_only");
}

fn parallel_guesses_cannot_outrun_the_limit(b: Backend) {
    let app = std::sync::Arc::new(TestApp::start_with(b, |c| c.login_max_failures = 3));
    app.create_admin("chief", PASSWORD, None);
    let handles: Vec<_> = (0..12)
        .map(|i| {
            let app = std::sync::Arc::clone(&app);
            std::thread::spawn(move || {
                let body = json!({"username": "chief", "password": format!("Guess-Number-{i}")});
                app.call("POST", "/api/v1/auth/login", None, Some(&body), &[]).status
            })
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().expect("join")).collect();
    // At most three guesses were checked; every other attempt was refused before its check.
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 9, "{statuses:?}");
}

fn guessing_the_current_password_is_throttled(b: Backend) {
    let app = TestApp::start_with(b, |c| c.login_max_failures = 2);
    app.create_admin("chief", PASSWORD, None);
    let token = app.login("chief", PASSWORD);
    let guess = |pw: &str| {
        app.post("/api/v1/me/password", &token, json!({"current_password": pw, "new_password": "Brand-New-Pass-2026"}))
    };
    assert_eq!(guess("Wrong-Guess-0001").bad_fields(), vec!["current_password"]);
    assert_eq!(guess("Wrong-Guess-0002").bad_fields(), vec!["current_password"]);
    guess(PASSWORD).expect_problem(429, "rate_limited");
    // An admin resets others' passwords, never its own (that needs the current one).
    let me = app.get("/api/v1/me", &token).expect(200)["id"].as_str().expect("id").to_owned();
    app.post(&format!("/api/v1/users/{me}/password"), &token, json!({"password": "Brand-New-Pass-2026"}))
        .expect_problem(403, "self_modification");
}

both!(
    parallel_guesses_cannot_outrun_the_limit,
    guessing_the_current_password_is_throttled,
    refresh_tokens_rotate_and_reuse_ends_the_session,
    concurrent_refreshes_with_one_token_cannot_both_win,
    logout_ends_the_session,
    password_changes_end_every_session,
    disabling_and_role_changes_end_sessions,
    failed_logins_are_throttled,
    admin_changes_are_audited,
);
