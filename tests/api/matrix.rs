//! For every endpoint: no token, an expired token, a disabled user's token, a revoked API key, a
//! lower role and a caller from a sibling jurisdiction are all refused — on both databases.

use serde_json::{json, Value};

use crate::support::{test_config, Backend, World, PASSWORD};

/// Who may call an endpoint at all.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Needs {
    /// Any signed-in user.
    SignedIn,
    /// Anyone but a viewer.
    Writer,
    /// Admins only.
    Admin,
}

struct Endpoint {
    method: &'static str,
    path: String,
    body: Option<Value>,
    needs: Needs,
    /// Names a resource of 昭阳区, which a caller from 鲁甸县 must not find.
    scoped: bool,
}

fn endpoints(w: &World, case: &str, programme: &str, client: &str) -> Vec<Endpoint> {
    let e = |method, path: String, body: Option<Value>, needs, scoped| Endpoint { method, path, body, needs, scoped };
    let water = &w.water;
    let user = &w.ids["water1"];
    vec![
        e("GET", "/api/v1/me".into(), None, Needs::SignedIn, false),
        e(
            "POST",
            "/api/v1/me/password".into(),
            Some(json!({"current_password": PASSWORD, "new_password": "Another-Pass-2026"})),
            Needs::SignedIn,
            false,
        ),
        e("POST", "/api/v1/auth/logout".into(), None, Needs::SignedIn, false),
        e("GET", "/api/v1/users".into(), None, Needs::Admin, false),
        e(
            "POST",
            "/api/v1/users".into(),
            Some(json!({"username": "m_user", "password": PASSWORD, "role": "viewer", "jurisdiction_code": "530602"})),
            Needs::Admin,
            false,
        ),
        e("GET", format!("/api/v1/users/{user}"), None, Needs::Admin, true),
        e("PATCH", format!("/api/v1/users/{user}"), Some(json!({"display_name": "x"})), Needs::Admin, true),
        e(
            "POST",
            format!("/api/v1/users/{user}/password"),
            Some(json!({"password": "Reset-By-Admin-2026"})),
            Needs::Admin,
            true,
        ),
        e("GET", "/api/v1/jurisdictions".into(), None, Needs::SignedIn, false),
        e(
            "POST",
            "/api/v1/jurisdictions".into(),
            Some(json!({"code": "530602002", "name": "龙泉街道", "parent_code": "530602"})),
            Needs::Admin,
            true,
        ),
        e("GET", "/api/v1/jurisdictions/530602".into(), None, Needs::SignedIn, true),
        e("PATCH", "/api/v1/jurisdictions/530602".into(), Some(json!({"name": "昭阳区"})), Needs::Admin, true),
        e("GET", "/api/v1/departments".into(), None, Needs::SignedIn, false),
        e(
            "POST",
            "/api/v1/departments".into(),
            Some(json!({"name": "区民政局", "jurisdiction_code": "530602"})),
            Needs::Admin,
            true,
        ),
        e("GET", format!("/api/v1/departments/{water}"), None, Needs::SignedIn, true),
        e("PATCH", format!("/api/v1/departments/{water}"), Some(json!({"name": "区水务局"})), Needs::Admin, true),
        e("GET", "/api/v1/categories".into(), None, Needs::SignedIn, false),
        e(
            "POST",
            "/api/v1/categories".into(),
            Some(json!({"code": "housing", "name": "住房", "deadline_days": 30})),
            Needs::Admin,
            false,
        ),
        e("GET", "/api/v1/categories/transport".into(), None, Needs::SignedIn, false),
        e("PATCH", "/api/v1/categories/transport".into(), Some(json!({"deadline_days": 30})), Needs::Admin, false),
        e("GET", "/api/v1/programmes".into(), None, Needs::SignedIn, false),
        e(
            "POST",
            "/api/v1/programmes".into(),
            Some(json!({"name": "实事清单", "year": 2027, "jurisdiction_code": "530602"})),
            Needs::Admin,
            true,
        ),
        e("GET", format!("/api/v1/programmes/{programme}"), None, Needs::SignedIn, true),
        e("PATCH", format!("/api/v1/programmes/{programme}"), Some(json!({"description": "x"})), Needs::Admin, true),
        e("GET", "/api/v1/cases".into(), None, Needs::SignedIn, false),
        e("POST", "/api/v1/cases".into(), Some(w.complaint("矩阵测试")), Needs::Writer, true),
        e("GET", format!("/api/v1/cases/{case}"), None, Needs::SignedIn, true),
        e("GET", format!("/api/v1/cases/{case}/events"), None, Needs::SignedIn, true),
        e("POST", format!("/api/v1/cases/{case}/actions/comment"), Some(json!({"text": "x"})), Needs::Writer, true),
        e(
            "POST",
            format!("/api/v1/cases/{case}/actions/assign"),
            Some(json!({"department_id": water})),
            Needs::Writer,
            true,
        ),
        e("GET", "/api/v1/api-clients".into(), None, Needs::Admin, false),
        e(
            "POST",
            "/api/v1/api-clients".into(),
            Some(json!({"name": "省平台", "jurisdiction_code": "530602", "scopes": ["cases:create"]})),
            Needs::Admin,
            true,
        ),
        e("GET", format!("/api/v1/api-clients/{client}"), None, Needs::Admin, true),
        e("PATCH", format!("/api/v1/api-clients/{client}"), Some(json!({"name": "省平台2"})), Needs::Admin, true),
        e(
            "POST",
            format!("/api/v1/api-clients/{client}/rotate"),
            Some(json!({"overlap_hours": 1})),
            Needs::Admin,
            true,
        ),
        e("POST", format!("/api/v1/api-clients/{client}/revoke"), None, Needs::Admin, true),
        e("GET", "/api/v1/audit/admin".into(), None, Needs::Admin, false),
        e("GET", "/api/v1/audit/personal-data".into(), None, Needs::Admin, false),
    ]
}

fn call(w: &World, ep: &Endpoint, token: Option<&str>) -> crate::support::Resp {
    w.app.call(ep.method, &ep.path, token, ep.body.as_ref(), &[])
}

fn expired_token(w: &World, live: &str) -> String {
    use base64::Engine;
    let payload = live.split('.').nth(1).expect("payload");
    let mut claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("b64"))
            .expect("json");
    claims["exp"] = json!(chrono::Utc::now().timestamp() - 3600);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = jsonwebtoken::decode_header(live).expect("header").kid;
    let secret = test_config(&w.app.database_url).jwt_secret.expect("secret");
    jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes())).expect("sign")
}

fn every_endpoint_refuses_the_wrong_callers(b: Backend) {
    let w = World::new(b);
    let case = w.new_case("矩阵");
    let programme = w
        .app
        .post(
            "/api/v1/programmes",
            &w.admin,
            json!({"name": "2026年实事", "year": 2026, "jurisdiction_code": "530602"}),
        )
        .expect(201)["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // A second admin whose account is then disabled: its token must die everywhere.
    let disabled_id = w
        .app
        .post(
            "/api/v1/users",
            &w.admin,
            json!({"username": "gone_admin", "password": PASSWORD, "role": "admin", "jurisdiction_code": "530602"}),
        )
        .expect(201)["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let disabled = w.app.login("gone_admin", PASSWORD);
    w.app.patch(&format!("/api/v1/users/{disabled_id}"), &w.admin, json!({"active": false})).expect(200);
    let expired = expired_token(&w, &w.admin);
    w.app
        .post(
            "/api/v1/users",
            &w.admin,
            json!({"username": "ld_admin", "password": PASSWORD, "role": "admin", "jurisdiction_code": "530621"}),
        )
        .expect(201);
    let sibling_admin = w.app.login("ld_admin", PASSWORD);

    // An API client of this county whose key is revoked: refused everywhere too.
    let made = w
        .app
        .post("/api/v1/api-clients", &w.admin, json!({"name": "旧平台", "jurisdiction_code": "530602", "scopes": ["cases:create", "cases:read_own", "cases:comment"]}))
        .expect(201)
        .clone();
    let revoked_key = made["key"].as_str().expect("key").to_owned();
    let client = made["id"].as_str().expect("id").to_owned();
    w.app.call("POST", &format!("/api/v1/api-clients/{client}/revoke"), Some(&w.admin), None, &[]).expect(200);
    let live = w
        .app
        .post(
            "/api/v1/api-clients",
            &w.admin,
            json!({"name": "新平台", "jurisdiction_code": "530602", "scopes": ["cases:create"]}),
        )
        .expect(201)
        .clone();
    let client = live["id"].as_str().expect("id").to_owned();

    let eps = endpoints(&w, &case, &programme, &client);
    let mut checked = 0;
    for ep in &eps {
        let what = format!("{} {}", ep.method, ep.path);
        assert_eq!(call(&w, ep, None).status, 401, "no token: {what}");
        let r = call(&w, ep, Some(&expired));
        assert_eq!((r.status, r.body["code"].as_str()), (401, Some("token_expired")), "expired: {what}");
        let r = call(&w, ep, Some(&disabled));
        assert_eq!((r.status, r.body["code"].as_str()), (401, Some("session_ended")), "disabled: {what}");
        let r = call(&w, ep, Some(&revoked_key));
        assert_eq!((r.status, r.body["code"].as_str()), (401, Some("invalid_api_key")), "revoked key: {what}");
        match ep.needs {
            Needs::Admin => {
                for lower in [&w.supervisor, &w.water_worker, &w.viewer] {
                    assert_eq!(call(&w, ep, Some(lower)).status, 403, "lower role: {what}");
                }
            }
            Needs::Writer => assert_eq!(call(&w, ep, Some(&w.viewer)).status, 403, "viewer: {what}"),
            Needs::SignedIn => {}
        }
        if ep.scoped {
            // The sibling county's admin (or supervisor, for case actions) meets a 404 or, for a
            // create naming a foreign jurisdiction, a 422 on that field — never a success.
            let token = if ep.needs == Needs::Admin { &sibling_admin } else { &w.sibling_supervisor };
            let r = call(&w, ep, Some(token));
            assert!(
                r.status == 404 || (r.status == 422 && ep.method == "POST"),
                "sibling got {}: {what}: {}",
                r.status,
                r.text
            );
        }
        checked += 1;
    }
    assert_eq!(checked, eps.len());
    // Lists never show the sibling anything of this county.
    for path in ["/api/v1/cases", "/api/v1/departments", "/api/v1/programmes", "/api/v1/users", "/api/v1/audit/admin"] {
        let body = w.app.get(path, &sibling_admin).expect(200).clone();
        let text = body.to_string();
        assert!(
            !text.contains(&case) && !text.contains(&w.water) && !text.contains(&programme),
            "{path} leaks: {text}"
        );
    }
}

both!(every_endpoint_refuses_the_wrong_callers);
