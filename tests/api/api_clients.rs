//! API clients: keys shown once and stored hashed, what a key lets an integration do, who manages
//! clients, rotation, revocation, and the answers to bad keys.

use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::{Backend, TestApp, World, PASSWORD};

/// Creates a client as `admin`; returns its JSON and its key.
#[track_caller]
fn new_client(w: &World, admin: &str, body: Value) -> (Value, String) {
    let r = w.app.post("/api/v1/api-clients", admin, body);
    let client = r.expect(201).clone();
    let key = client["key"].as_str().expect("key").to_owned();
    (client, key)
}

/// A client of 昭阳区 with `scopes`, created by the whole-tree admin.
#[track_caller]
fn client_with(w: &World, name: &str, scopes: &[&str]) -> (Value, String) {
    new_client(w, &w.admin, json!({"name": name, "jurisdiction_code": "530602", "scopes": scopes}))
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

/// An admin user of `jurisdiction`'s subtree; returns their token.
fn scoped_admin(w: &World, username: &str, jurisdiction: &str) -> String {
    w.app
        .post(
            "/api/v1/users",
            &w.admin,
            json!({"username": username, "password": PASSWORD, "role": "admin", "jurisdiction_code": jurisdiction}),
        )
        .expect(201);
    w.app.login(username, PASSWORD)
}

fn db_row(app: &TestApp, client_id: &str) -> minsheng::db::models::ApiClient {
    let mut conn = minsheng::db::ConnectionFactory::new(&app.database_url, 5000).open().expect("connect");
    minsheng::db::api_clients::by_id(&mut conn, client_id).expect("query").expect("row")
}

fn keys_are_shown_once_and_stored_hashed(b: Backend) {
    let w = World::new(b);
    let r = w.app.post(
        "/api/v1/api-clients",
        &w.admin,
        json!({"name": "省12345平台", "jurisdiction_code": "530602",
               "scopes": ["cases:read_own", "cases:create", "cases:create"]}),
    );
    let created = r.expect(201).clone();
    let client_id = id(&created);
    assert_eq!(r.header("location"), Some(format!("/api/v1/api-clients/{client_id}").as_str()));
    let key = created["key"].as_str().expect("key").to_owned();
    let prefix = created["key_prefix"].as_str().expect("prefix").to_owned();
    assert!(key.starts_with("msk_"), "{key}");
    assert_eq!(key.len(), 60);
    assert_eq!(prefix.len(), 16);
    assert!(key.starts_with(&format!("{prefix}_")));
    assert_eq!(created["name"], "省12345平台");
    assert_eq!(created["jurisdiction_code"], "530602");
    assert_eq!(created["scopes"], json!(["cases:create", "cases:read_own"]));
    assert_eq!(created["active"], true);
    assert_eq!(created["revoked_at"], Value::Null);
    assert_eq!(created["last_used_at"], Value::Null);
    assert_eq!(created["previous_key_prefix"], Value::Null);
    let me = w.app.get("/api/v1/me", &w.admin).expect(200).clone();
    assert_eq!(created["created_by"], me["id"]);
    assert!(created.get("key_hash").is_none());

    // Never shown again: not by GET, not in the list.
    let got = w.app.get(&format!("/api/v1/api-clients/{client_id}"), &w.admin);
    assert!(got.expect(200).get("key").is_none());
    assert!(!got.text.contains(&key));
    assert!(got.body.get("key_hash").is_none());
    assert_eq!(got.body["key_prefix"], prefix.as_str());
    let list = w.app.get("/api/v1/api-clients", &w.admin);
    assert_eq!(list.expect(200)["items"][0]["id"], client_id.as_str());
    assert!(list.body["items"][0].get("key").is_none());
    assert!(!list.text.contains(&key));

    // The database holds the prefix and the SHA-256 of the key, never the key.
    let row = db_row(&w.app, &client_id);
    let secret = &key[17..];
    let stored = format!("{row:?}");
    assert!(!stored.contains(&key), "{stored}");
    assert!(!stored.contains(secret), "{stored}");
    assert_eq!(row.key_prefix, prefix);
    let digest: String = Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(row.key_hash, digest);
    assert_eq!(row.scopes, "cases:create cases:read_own");

    // The key works, says who it is, and its use is recorded.
    let who = w.app.get("/api/v1/me", &key).expect(200).clone();
    assert_eq!(who["id"], client_id.as_str());
    assert_eq!(who["name"], "省12345平台");
    assert!(who.get("key").is_none());
    assert!(db_row(&w.app, &client_id).last_used_at.is_some());
    let got = w.app.get(&format!("/api/v1/api-clients/{client_id}"), &w.admin).expect(200).clone();
    assert!(got["last_used_at"].is_string());
}

fn client_creates_reads_and_comments_on_its_own_cases(b: Backend) {
    let w = World::new(b);
    let (client, key) = client_with(&w, "省12345平台", &["cases:create", "cases:read_own", "cases:comment"]);
    let client_id = id(&client);
    let mut body = w.complaint("省平台转办：停水");
    body["channel"] = json!("integration");
    body["external"] = json!({"source": "yn12345", "id": "GD-2026-0001"});
    let case = w.app.post("/api/v1/cases", &key, body).expect(201).clone();
    let case_id = id(&case);
    assert_eq!(case["created_by"], client_id.as_str());
    // Masked by default like for everyone; it may reveal its own case's complainant (logged).
    assert_eq!(case["complainant"]["masked"], true);
    let got = w.app.get(&format!("/api/v1/cases/{case_id}"), &key).expect(200).clone();
    assert_eq!(got["external"]["id"], "GD-2026-0001");
    let revealed = w.app.get(&format!("/api/v1/cases/{case_id}?include_personal_data=true"), &key).expect(200).clone();
    assert_eq!(
        revealed["complainant"],
        json!({"name": "张三丰", "phone": "13812345678", "email": null, "masked": false})
    );
    let log = w.app.get(&format!("/api/v1/audit/personal-data?case_id={case_id}"), &w.admin).expect(200).clone();
    assert_eq!(log["items"][0]["actor"]["id"], client_id.as_str());
    let events = w.app.get(&format!("/api/v1/cases/{case_id}/events"), &key).expect(200).clone();
    assert_eq!(events["items"][0]["actor"], json!({"id": client_id, "name": "省12345平台"}));

    // Cases others created do not exist for it: the same answer as a missing case.
    let theirs = w.new_case("热线受理的案件");
    let hidden = w.app.get(&format!("/api/v1/cases/{theirs}"), &key);
    let missing = w.app.get(&format!("/api/v1/cases/{}", uuid::Uuid::new_v4()), &key);
    hidden.expect_problem(404, "not_found");
    assert_eq!(hidden.body, missing.body);
    w.app.get(&format!("/api/v1/cases/{theirs}/events"), &key).expect_problem(404, "not_found");
    w.act(&key, &theirs, "comment", json!({"text": "看看"})).expect_problem(404, "not_found");
    let listed = w.app.get("/api/v1/cases", &key).expect(200).clone();
    let ids: Vec<&str> =
        listed["items"].as_array().expect("items").iter().map(|c| c["id"].as_str().expect("id")).collect();
    assert_eq!(ids, vec![case_id.as_str()]);

    // It comments on its own case; the event names it.
    let commented = w.ok(&key, &case_id, "comment", json!({"text": "群众来电催办"}));
    assert_eq!(commented["version"], 2);
    let events = w.app.get(&format!("/api/v1/cases/{case_id}/events"), &w.supervisor).expect(200).clone();
    assert_eq!(events["items"][1]["action"], "comment");
    assert_eq!(events["items"][1]["actor"]["id"], client_id.as_str());
    assert_eq!(events["items"][1]["actor"]["name"], "省12345平台");

    // Every other action is refused, whatever the case's state.
    for (action, body) in [
        ("assign", json!({"department_id": w.water})),
        ("extend", json!({"due_at": "2099-01-01T00:00:00Z", "reason": "r"})),
        ("dismiss", json!({"outcome": "withdrawn", "reason": "r"})),
        ("acknowledge", json!({})),
        ("resolve", json!({"resolution": "done"})),
    ] {
        w.act(&key, &case_id, action, body).expect_problem(403, "role_not_permitted");
    }

    // Outside its subtree it cannot log cases, like a user of 昭阳区.
    let mut body = w.complaint("鲁甸县的事");
    body["jurisdiction_code"] = json!("530621");
    let r = w.app.post("/api/v1/cases", &key, body);
    r.expect_problem(422, "validation_failed");
    assert_eq!(r.bad_fields(), vec!["jurisdiction_code"]);

    // Supervisors of the subtree work the case as usual.
    w.ok(&w.supervisor, &case_id, "assign", json!({"department_id": w.water}));
    // A viewer sees the client's case masked.
    let as_viewer = w.app.get(&format!("/api/v1/cases/{case_id}"), &w.viewer).expect(200).clone();
    assert_eq!(as_viewer["complainant"]["masked"], true);

    // It is no admin.
    for (method, path) in [
        ("GET", "/api/v1/users"),
        ("POST", "/api/v1/users"),
        ("GET", "/api/v1/api-clients"),
        ("POST", "/api/v1/api-clients"),
        ("POST", "/api/v1/jurisdictions"),
        ("POST", "/api/v1/departments"),
    ] {
        w.app.call(method, path, Some(&key), Some(&json!({})), &[]).expect_problem(403, "admin_only");
    }
    for path in [
        format!("/api/v1/api-clients/{client_id}"),
        format!("/api/v1/api-clients/{client_id}/rotate"),
        format!("/api/v1/api-clients/{client_id}/revoke"),
    ] {
        let method = if path.ends_with(&client_id) { "GET" } else { "POST" };
        w.app.call(method, &path, Some(&key), None, &[]).expect_problem(403, "admin_only");
    }
}

fn scopes_limit_what_a_key_allows(b: Backend) {
    let w = World::new(b);
    let (_, reader) = client_with(&w, "只读", &["cases:read_own"]);
    w.app.post("/api/v1/cases", &reader, w.complaint("x")).expect_problem(403, "scope_missing");

    // Create only: the answer to the create, and nothing after.
    let (_, pusher) = client_with(&w, "只推送", &["cases:create"]);
    let case = w.app.post("/api/v1/cases", &pusher, w.complaint("推送")).expect(201).clone();
    let case_id = id(&case);
    w.app.get(&format!("/api/v1/cases/{case_id}"), &pusher).expect_problem(404, "not_found");
    w.app.get("/api/v1/cases", &pusher).expect_problem(403, "scope_missing");
    w.act(&pusher, &case_id, "comment", json!({"text": "hi"})).expect_problem(403, "scope_missing");

    // Reading without commenting.
    let (client, both) = client_with(&w, "推送和读取", &["cases:create", "cases:read_own"]);
    let own = id(&w.app.post("/api/v1/cases", &both, w.complaint("自己的")).expect(201).clone());
    w.app.get(&format!("/api/v1/cases/{own}"), &both).expect(200);
    w.act(&both, &own, "comment", json!({"text": "hi"})).expect_problem(403, "scope_missing");
    // An admin grants the scope; the same key may comment from now on.
    let changed = w
        .app
        .patch(
            &format!("/api/v1/api-clients/{}", id(&client)),
            &w.admin,
            json!({"scopes": ["cases:read_own", "cases:comment", "cases:create"], "name": "推送、读取和留言"}),
        )
        .expect(200)
        .clone();
    assert_eq!(changed["scopes"], json!(["cases:comment", "cases:create", "cases:read_own"]));
    assert_eq!(changed["name"], "推送、读取和留言");
    w.ok(&both, &own, "comment", json!({"text": "hi"}));

    // No user may be given the integration role.
    let r = w.app.post(
        "/api/v1/users",
        &w.admin,
        json!({"username": "robot", "password": PASSWORD, "role": "integration", "jurisdiction_code": "530602"}),
    );
    r.expect_problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "role");
    assert_eq!(r.body["errors"][0]["code"], "invalid_value");
}

fn only_admins_of_the_subtree_manage_clients(b: Backend) {
    let w = World::new(b);
    let zhaoyang = scoped_admin(&w, "zy_admin", "530602");
    let ludian = scoped_admin(&w, "ld_admin", "530621");

    // A scoped admin's client defaults to, and must stay in, the admin's subtree.
    let (mine, _) = new_client(&w, &zhaoyang, json!({"name": "区政务网", "scopes": ["cases:create"]}));
    assert_eq!(mine["jurisdiction_code"], "530602");
    let r = w.app.post(
        "/api/v1/api-clients",
        &zhaoyang,
        json!({"name": "越权", "jurisdiction_code": "530621", "scopes": ["cases:create"]}),
    );
    assert_eq!(r.bad_fields(), vec!["jurisdiction_code"]);
    // The whole-tree admin may create a whole-tree client.
    let (whole, _) =
        new_client(&w, &w.admin, json!({"name": "省信访系统", "scopes": ["cases:create", "webhooks:manage"]}));
    assert_eq!(whole["jurisdiction_code"], Value::Null);

    // Each admin sees their subtree only; out of scope is 404, as if absent.
    let listed = w.app.get("/api/v1/api-clients", &zhaoyang).expect(200).clone();
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed["items"][0]["id"], mine["id"]);
    assert_eq!(listed["next_cursor"], Value::Null);
    let all = w.app.get("/api/v1/api-clients?limit=1", &w.admin).expect(200).clone();
    assert_eq!(all["items"].as_array().map(Vec::len), Some(1));
    let cursor = all["next_cursor"].as_str().expect("cursor");
    let rest = w.app.get(&format!("/api/v1/api-clients?cursor={cursor}"), &w.admin).expect(200).clone();
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(1));
    assert_ne!(rest["items"][0]["id"], all["items"][0]["id"]);
    w.app.get(&format!("/api/v1/api-clients/{}", id(&whole)), &zhaoyang).expect_problem(404, "not_found");
    let mine_path = format!("/api/v1/api-clients/{}", id(&mine));
    w.app.get(&mine_path, &ludian).expect_problem(404, "not_found");
    w.app.patch(&mine_path, &ludian, json!({"name": "改名"})).expect_problem(404, "not_found");
    w.app.post(&format!("{mine_path}/rotate"), &ludian, json!({})).expect_problem(404, "not_found");
    w.app.post(&format!("{mine_path}/revoke"), &ludian, json!({})).expect_problem(404, "not_found");
    w.app.get("/api/v1/api-clients/not-a-uuid", &w.admin).expect_problem(404, "not_found");
    w.app.get(&mine_path, &zhaoyang).expect(200);

    // Nobody but admins.
    for token in [&w.supervisor, &w.water_worker, &w.viewer] {
        w.app.get("/api/v1/api-clients", token).expect_problem(403, "admin_only");
        w.app
            .post("/api/v1/api-clients", token, json!({"name": "x", "scopes": ["cases:create"]}))
            .expect_problem(403, "admin_only");
        w.app.get(&mine_path, token).expect_problem(403, "admin_only");
        w.app.post(&format!("{mine_path}/rotate"), token, json!({})).expect_problem(403, "admin_only");
        w.app.post(&format!("{mine_path}/revoke"), token, json!({})).expect_problem(403, "admin_only");
    }

    // Every bad field at once.
    let r = w.app.post("/api/v1/api-clients", &w.admin, json!({}));
    assert_eq!(r.bad_fields(), vec!["name", "scopes"]);
    let r = w.app.post(
        "/api/v1/api-clients",
        &w.admin,
        json!({"name": "x".repeat(101), "scopes": ["cases:create", "cases:delete"], "jurisdiction_code": "999999"}),
    );
    assert_eq!(r.bad_fields(), vec!["name", "scopes"]);
    let r = w.app.post("/api/v1/api-clients", &w.admin, json!({"name": "x", "scopes": []}));
    assert_eq!(r.bad_fields(), vec!["scopes"]);
    let r = w.app.post("/api/v1/api-clients", &w.admin, json!({"name": "x", "scopes": "cases:create"}));
    assert_eq!(r.bad_fields(), vec!["scopes"]);
    let r = w.app.post(
        "/api/v1/api-clients",
        &w.admin,
        json!({"name": "x", "scopes": ["cases:create"], "jurisdiction_code": "999999"}),
    );
    assert_eq!(r.bad_fields(), vec!["jurisdiction_code"]);
    for hours in [json!(-1), json!(169), json!("24")] {
        let r = w.app.post(&format!("{mine_path}/rotate"), &w.admin, json!({"overlap_hours": hours}));
        assert_eq!(r.bad_fields(), vec!["overlap_hours"]);
    }
    let r = w.app.patch(&mine_path, &w.admin, json!({"scopes": []}));
    assert_eq!(r.bad_fields(), vec!["scopes"]);
}

fn rotation_overlaps_and_revocation_is_immediate(b: Backend) {
    let w = World::new(b);
    let (client, key1) = client_with(&w, "省12345平台", &["cases:create", "cases:read_own"]);
    let path = format!("/api/v1/api-clients/{}", id(&client));
    w.app.get("/api/v1/me", &key1).expect(200);

    // With an overlap both keys work.
    let rotated = w.app.post(&format!("{path}/rotate"), &w.admin, json!({"overlap_hours": 1})).expect(200).clone();
    let key2 = rotated["key"].as_str().expect("key").to_owned();
    assert!(key2.starts_with("msk_"));
    assert_ne!(key2, key1);
    assert_eq!(rotated["previous_key_prefix"], client["key_prefix"]);
    assert_ne!(rotated["key_prefix"], client["key_prefix"]);
    let until =
        chrono::DateTime::parse_from_rfc3339(rotated["previous_key_valid_until"].as_str().expect("until")).expect("ts");
    let hour = chrono::Utc::now() + chrono::Duration::hours(1);
    assert!((until.with_timezone(&chrono::Utc) - hour).num_seconds().abs() < 60);
    assert_eq!(w.app.get("/api/v1/me", &key1).expect(200)["id"], client["id"]);
    assert_eq!(w.app.get("/api/v1/me", &key2).expect(200)["id"], client["id"]);
    // The new key is shown once too.
    assert!(w.app.get(&path, &w.admin).expect(200).get("key").is_none());

    // Without an overlap the old key stops at once; the key before it is gone as well.
    let rotated = w.app.post(&format!("{path}/rotate"), &w.admin, json!({"overlap_hours": 0})).expect(200).clone();
    let key3 = rotated["key"].as_str().expect("key").to_owned();
    assert_eq!(rotated["previous_key_prefix"], Value::Null);
    assert_eq!(rotated["previous_key_valid_until"], Value::Null);
    w.app.get("/api/v1/me", &key2).expect_problem(401, "invalid_api_key");
    w.app.get("/api/v1/me", &key1).expect_problem(401, "invalid_api_key");
    w.app.get("/api/v1/me", &key3).expect(200);

    // The default overlap is a day.
    let rotated = w.app.post(&format!("{path}/rotate"), &w.admin, json!({})).expect(200).clone();
    let key4 = rotated["key"].as_str().expect("key").to_owned();
    let until =
        chrono::DateTime::parse_from_rfc3339(rotated["previous_key_valid_until"].as_str().expect("until")).expect("ts");
    let day = chrono::Utc::now() + chrono::Duration::hours(24);
    assert!((until.with_timezone(&chrono::Utc) - day).num_seconds().abs() < 60);
    w.app.get("/api/v1/me", &key3).expect(200);

    // Revocation stops both keys at once and is final.
    let revoked = w.app.post(&format!("{path}/revoke"), &w.admin, json!({})).expect(200).clone();
    assert_eq!(revoked["active"], false);
    assert!(revoked["revoked_at"].is_string());
    assert!(revoked.get("key").is_none());
    for key in [&key3, &key4] {
        w.app.get("/api/v1/me", key).expect_problem(401, "invalid_api_key");
        w.app.post("/api/v1/cases", key, w.complaint("x")).expect_problem(401, "invalid_api_key");
    }
    let again = w.app.call("POST", &format!("{path}/revoke"), Some(&w.admin), None, &[]).expect(200).clone();
    assert_eq!(again["revoked_at"], revoked["revoked_at"]);
    w.app.post(&format!("{path}/rotate"), &w.admin, json!({})).expect_problem(409, "client_revoked");
}

fn bad_keys_get_one_answer(b: Backend) {
    let w = World::new(b);
    let (client, key) = client_with(&w, "省12345平台", &["cases:read_own"]);
    let prefix = client["key_prefix"].as_str().expect("prefix");
    let unknown = format!("msk_0123456789ab_{}", "A".repeat(43));
    let wrong_secret = format!("{prefix}_{}", "B".repeat(43));
    let answers: Vec<_> = ["msk_garbage", "msk_", unknown.as_str(), wrong_secret.as_str()]
        .into_iter()
        .map(|k| {
            let r = w.app.get("/api/v1/cases", k);
            r.expect_problem(401, "invalid_api_key");
            assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"minsheng\""));
            r.body
        })
        .collect();
    w.app.post(&format!("/api/v1/api-clients/{}/revoke", id(&client)), &w.admin, json!({})).expect(200);
    let revoked = w.app.get("/api/v1/cases", &key);
    revoked.expect_problem(401, "invalid_api_key");
    for a in &answers {
        assert_eq!(*a, revoked.body);
    }
    // The refusals are not logged as uses.
    assert!(db_row(&w.app, &id(&client)).last_used_at.is_none());
    // Access tokens are unaffected, and an access token can never claim the integration role.
    w.app.get("/api/v1/me", &w.admin).expect(200);
    let secret = crate::support::test_config("").jwt_secret.expect("secret");
    let kid = jsonwebtoken::decode_header(&w.admin).expect("header").kid.expect("kid");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid);
    let now = chrono::Utc::now().timestamp();
    let forged = jsonwebtoken::encode(
        &header,
        &json!({"sub": id(&client), "name": "x", "role": "integration", "aud": "minsheng",
                "iss": "minsheng", "iat": now, "exp": now + 600}),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign");
    w.app.get("/api/v1/me", &forged).expect_problem(401, "invalid_token");
}

fn a_process_forgets_keys_it_revokes_at_once(b: Backend) {
    // With the cache on, the process that revokes (or re-scopes) a client stops honouring what it
    // had cached at once; other processes would within the time-to-live.
    let w = World::new_with(b, |c| c.api_key_cache_ttl = Duration::from_secs(300));
    let (client, key) = client_with(&w, "省12345平台", &["cases:create", "cases:read_own"]);
    let path = format!("/api/v1/api-clients/{}", id(&client));
    let own = id(&w.app.post("/api/v1/cases", &key, w.complaint("缓存")).expect(201).clone());
    w.app.get(&format!("/api/v1/cases/{own}"), &key).expect(200);
    w.app.patch(&path, &w.admin, json!({"scopes": ["cases:create"]})).expect(200);
    w.app.get(&format!("/api/v1/cases/{own}"), &key).expect_problem(404, "not_found");
    w.app.post(&format!("{path}/revoke"), &w.admin, json!({})).expect(200);
    w.app.get("/api/v1/me", &key).expect_problem(401, "invalid_api_key");
}

/// A key has no password to change and no session to end: both answer 403 (changing a password
/// used to look the client up as a user and answer an undocumented 404), and the key still works.
fn keys_have_no_password_and_no_session(b: Backend) {
    let w = World::new(b);
    let (_, key) = client_with(&w, "省12345平台", &["cases:create"]);
    let body = json!({"current_password": "Anything-2026", "new_password": "Something-Else-2026"});
    w.app.post("/api/v1/me/password", &key, body).expect_problem(403, "role_not_permitted");
    w.app.post("/api/v1/auth/logout", &key, json!({})).expect_problem(403, "role_not_permitted");
    w.app.get("/api/v1/me", &key).expect(200);
}

both!(
    keys_are_shown_once_and_stored_hashed,
    keys_have_no_password_and_no_session,
    client_creates_reads_and_comments_on_its_own_cases,
    scopes_limit_what_a_key_allows,
    only_admins_of_the_subtree_manage_clients,
    rotation_overlaps_and_revocation_is_immediate,
    bad_keys_get_one_answer,
    a_process_forgets_keys_it_revokes_at_once,
);
