//! Sign-in, tokens, users.

use serde_json::json;

use crate::support::{Backend, TestApp, World, PASSWORD};

fn login_and_tokens(b: Backend) {
    let app = TestApp::start(b);
    app.create_admin("root", PASSWORD, None);
    let r = app.call("POST", "/api/v1/auth/login", None, Some(&json!({"username": "root", "password": PASSWORD})), &[]);
    let body = r.expect(200).clone();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    let token = body["access_token"].as_str().expect("token").to_owned();
    let me = app.get("/api/v1/me", &token).expect(200).clone();
    assert_eq!(me["username"], "root");
    assert_eq!(me["role"], "admin");
    assert!(me.get("password_hash").is_none());
    // Wrong password and unknown user answer alike.
    let wrong = app.call(
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&json!({"username": "root", "password": "Wrong-Password-1"})),
        &[],
    );
    let unknown = app.call(
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&json!({"username": "nobody", "password": "Wrong-Password-1"})),
        &[],
    );
    wrong.expect_problem(401, "invalid_credentials");
    assert_eq!(wrong.body, unknown.body);
    let r = app.call("POST", "/api/v1/auth/login", None, Some(&json!({})), &[]);
    assert_eq!(r.bad_fields(), vec!["password", "username"]);
    // Passwords are taken verbatim, spaces included, whether set by the CLI or the API.
    app.create_admin("spacey", "  Spaces-Around-2026 ", None);
    app.login("spacey", "  Spaces-Around-2026 ");
    let trimmed = app.call(
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&json!({"username": "spacey", "password": "Spaces-Around-2026"})),
        &[],
    );
    trimmed.expect_problem(401, "invalid_credentials");
    // The auth scheme is case-insensitive.
    app.call("GET", "/api/v1/me", None, None, &[("Authorization", &format!("bearer {token}"))]).expect(200);
    // Every endpoint but login and health needs a valid token.
    for path in ["/api/v1/me", "/api/v1/cases", "/api/v1/jurisdictions", "/api/v1/categories", "/api/v1/users"] {
        let r = app.call("GET", path, None, None, &[]);
        r.expect_problem(401, "unauthenticated");
        assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"minsheng\""));
        app.call("GET", path, Some("not.a.jwt"), None, &[]).expect_problem(401, "invalid_token");
    }
    app.call("GET", "/api/v1/me", None, None, &[("Authorization", "Basic cm9vdDpwdw==")])
        .expect_problem(401, "unauthenticated");
    // alg none, a foreign key, an expired token, the wrong audience.
    let claims = |exp: i64, aud: &str| json!({"sub": me["id"], "name": "root", "role": "admin", "aud": aud, "iss": "minsheng", "iat": 0, "exp": exp});
    let future = chrono::Utc::now().timestamp() + 600;
    use base64::Engine;
    let b64 = |v: &serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&claims(future, "minsheng")));
    app.get("/api/v1/me", &none).expect_problem(401, "invalid_token");
    let sign = |secret: &str, kid: &str, c: serde_json::Value| {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        h.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&h, &c, &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes())).expect("sign")
    };
    let kid = jsonwebtoken::decode_header(&token).expect("header").kid.expect("kid");
    app.get("/api/v1/me", &sign("another-secret-another-secret-xx", &kid, claims(future, "minsheng")))
        .expect_problem(401, "invalid_token");
    let secret = crate::support::test_config("").jwt_secret.expect("secret");
    app.get("/api/v1/me", &sign(&secret, &kid, claims(future, "minsheng"))).expect(200);
    app.get("/api/v1/me", &sign(&secret, &kid, claims(1_000_000, "minsheng"))).expect_problem(401, "token_expired");
    app.get("/api/v1/me", &sign(&secret, &kid, claims(future, "other-system"))).expect_problem(401, "invalid_token");
}

fn user_administration(b: Backend) {
    let w = World::new(b);
    let r = w.app.post(
        "/api/v1/users",
        &w.admin,
        json!({"username": "new_user", "password": "password123", "role": "caseworker"}),
    );
    assert_eq!(r.bad_fields(), vec!["department_id", "password"]);
    let r = w.app.post("/api/v1/users", &w.admin, json!({"username": "x", "password": "short", "role": "mayor"}));
    assert_eq!(r.bad_fields(), vec!["password", "role", "username"]);
    let r = w.app.post(
        "/api/v1/users",
        &w.admin,
        json!({"username": "sup", "password": PASSWORD, "role": "viewer", "jurisdiction_code": "530602"}),
    );
    r.expect_problem(409, "username_taken");
    let r = w.app.post(
        "/api/v1/users",
        &w.admin,
        json!({"username": "mismatch", "password": PASSWORD, "role": "caseworker", "jurisdiction_code": "530621", "department_id": w.water}),
    );
    assert_eq!(r.bad_fields(), vec!["department_id"]);
    w.app
        .post("/api/v1/users", &w.supervisor, json!({"username": "sneaky", "password": PASSWORD, "role": "admin"}))
        .expect_problem(403, "admin_only");
    let created = w.app.post(
        "/api/v1/users",
        &w.admin,
        json!({"username": "wang.wu", "password": PASSWORD, "role": "caseworker", "jurisdiction_code": "530602", "department_id": w.water, "display_name": "王五"}),
    );
    let user = created.expect(201).clone();
    assert_eq!(user["display_name"], "王五");
    assert_eq!(user["active"], true);
    let token = w.app.login("wang.wu", PASSWORD);
    let me = w.app.get("/api/v1/me", &token).expect(200).clone();
    assert_eq!(me["department_id"], w.water.as_str());
    let got = w.app.get(&format!("/api/v1/users/{}", user["id"].as_str().expect("id")), &w.admin).expect(200).clone();
    assert_eq!(got["username"], "wang.wu");
}

both!(login_and_tokens, user_administration);
