//! Hostile input (issue 9, item 5): a seeded, deterministic generator throws arbitrary JSON
//! (deep nesting, huge numbers, wrong types, mixed-width Chinese, RTL marks, control characters,
//! lone surrogates as escapes, very long strings), query strings and header values at a
//! representative set of endpoints. Never a 5xx; every 4xx is a problem document with a code (or
//! an Open311 errors document on `/open311`); afterwards the service still answers and earlier
//! data is intact. Iterations are bounded so the test runs in seconds; a failure prints the seed
//! and the request.

use serde_json::{json, Map, Value};

use crate::support::{Backend, RawResp, World};

both!(arbitrary_input_never_breaks_the_service);

/// Requests per endpoint (`MINSHENG_FUZZ_ROUNDS` for a longer run; `MINSHENG_FUZZ_SEED` for
/// another seed).
const ROUNDS: usize = 40;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Pieces hostile strings are made of.
const PIECES: &[&str] = &[
    "村里自来水停水三天",
    "ｆｕｌｌ－ｗｉｄｔｈ　ＡＢＣ１２３",
    "半角ｶﾀｶﾅ与全角混排",
    "\u{202E}RTL override\u{202C}",
    "\u{200F}\u{200E}\u{061C}",
    "مرحبا بالعالم",
    "שלום",
    "\u{0000}",
    "\u{0007}\u{0008}\u{001B}[31m",
    "\u{007F}\u{0085}\u{009F}",
    "\u{FEFF}",
    "\u{200B}\u{2060}",
    "\u{2028}\u{2029}",
    "e\u{0301}\u{0301}\u{0301}",
    "😀👨‍👩‍👧‍👦🇨🇳",
    "\u{10FFFF}\u{E000}",
    "'; DROP TABLE cases; --",
    "\" OR 1=1 --",
    "../../../etc/passwd",
    "<script>alert(1)</script>",
    "%00%ff%2e%2e",
    "${jndi:ldap://x}",
    "\\u0000",
    " \t\r\n ",
    "530602",
    "drinking_water",
    "received",
    "",
];

/// Field names the endpoints read, and some they do not.
const FIELDS: &[&str] = &[
    "kind",
    "title",
    "description",
    "category_code",
    "jurisdiction_code",
    "channel",
    "priority",
    "programme_id",
    "complainant",
    "location",
    "due_at",
    "external",
    "name",
    "phone",
    "address",
    "lat",
    "lon",
    "department_id",
    "assignee_id",
    "note",
    "reason",
    "resolution",
    "satisfaction",
    "outcome",
    "duplicate_of",
    "text",
    "username",
    "password",
    "code",
    "parent_code",
    "deadline_days",
    "__proto__",
    "标题",
];

fn string(rng: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..=rng.below(4) {
        let piece: &str = rng.pick::<&str>(PIECES);
        s.push_str(piece);
    }
    if rng.chance(8) {
        // Very long: past every length limit, sometimes past the body limit.
        let piece = rng.pick(PIECES).to_string();
        let times = if rng.chance(30) { 70_000 } else { 600 };
        s = piece.repeat(times.max(1) / piece.chars().count().max(1));
    }
    s
}

fn number(rng: &mut Rng) -> Value {
    match rng.below(10) {
        0 => json!(i64::MAX),
        1 => json!(i64::MIN),
        2 => json!(u64::MAX),
        3 => json!(f64::MAX),
        4 => json!(-0.0),
        5 => json!(5e-324),
        6 => json!(15.5),
        7 => json!(0),
        8 => json!(-1),
        _ => json!(rng.next() as i64),
    }
}

fn value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth > 3 { 4 } else { 7 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(50)),
        2 => number(rng),
        3 => Value::String(string(rng)),
        4 => Value::Array((0..rng.below(4)).map(|_| value(rng, depth + 1)).collect()),
        _ => object(rng, depth + 1),
    }
}

fn object(rng: &mut Rng, depth: usize) -> Value {
    let mut map = Map::new();
    for _ in 0..rng.below(6) {
        let key = if rng.chance(80) { rng.pick(FIELDS).to_string() } else { string(rng) };
        map.insert(key, value(rng, depth + 1));
    }
    Value::Object(map)
}

/// A valid body with some fields replaced, added or removed.
fn mutate(rng: &mut Rng, valid: &Value) -> Value {
    let mut body = valid.clone();
    if let Value::Object(map) = &mut body {
        for _ in 0..=rng.below(3) {
            let key = rng.pick(FIELDS).to_string();
            match rng.below(3) {
                0 => {
                    map.remove(&key);
                }
                _ => {
                    map.insert(key, value(rng, 1));
                }
            }
        }
    }
    body
}

/// A body as bytes: mostly JSON, sometimes text no `Value` can hold.
fn body_bytes(rng: &mut Rng, valid: &Value) -> Vec<u8> {
    match rng.below(12) {
        0 => {
            // Deeply nested, past serde_json's recursion limit or not.
            let depth = *rng.pick(&[20usize, 127, 129, 1000, 5000]);
            let (open, close) = if rng.chance(50) { ("[", "]") } else { ("{\"a\":", "}") };
            format!("{}1{}", open.repeat(depth), close.repeat(depth)).into_bytes()
        }
        1 => r#"{"title":"\ud800","description":"\udfff\ud800x","kind":"complaint"}"#.as_bytes().to_vec(),
        2 => r#"{"deadline_days":1e400,"lat":-1e999,"lon":123456789012345678901234567890}"#.as_bytes().to_vec(),
        3 => b"{\"title\": \"\xff\xfe invalid utf-8 \xc0\xaf\"}".to_vec(),
        4 => b"\xef\xbb\xbf{\"title\":\"bom\"}".to_vec(),
        5 => br#"{"title":"a","title":"b","title":{"c":1}}"#.to_vec(),
        6 => br#"{"title": "unterminated"#.to_vec(),
        7 => value(rng, 0).to_string().into_bytes(),
        _ => mutate(rng, valid).to_string().into_bytes(),
    }
}

/// A query string of arbitrary pairs, percent-encoded or raw.
fn query(rng: &mut Rng) -> String {
    const KEYS: &[&str] = &[
        "status",
        "kind",
        "category_code",
        "department_id",
        "jurisdiction_code",
        "programme_id",
        "overdue",
        "q",
        "limit",
        "cursor",
        "created_from",
        "created_to",
        "due_from",
        "due_to",
        "external_source",
        "external_id",
        "include_personal_data",
        "by",
        "period",
        "from",
        "to",
        "service_code",
        "start_date",
        "end_date",
        "service_request_id",
        "page_size",
    ];
    const RAW: &[&str] =
        &["%ff", "%00", "%", "%zz", "+", "&&", "==", "%E4%B8%AD", "-1", "99999999999999999999", "1e9", "true", "[]"];
    let mut parts = Vec::new();
    for _ in 0..=rng.below(5) {
        let key = rng.pick(KEYS);
        let value = if rng.chance(40) { rng.pick(RAW).to_string() } else { encode(&string(rng)) };
        parts.push(format!("{key}={value}"));
    }
    parts.join("&")
}

/// Percent-encodes everything but unreserved ASCII.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes().take(4000) {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A header value of visible ASCII, spaces and obs-text bytes (what HTTP allows in a value).
fn header_value(rng: &mut Rng) -> Vec<u8> {
    let mut v = Vec::new();
    match rng.below(4) {
        0 => v.extend_from_slice(string(rng).replace(['\r', '\n', '\0'], " ").as_bytes()),
        1 => v.extend((0..rng.below(300)).map(|_| 0x80 + (rng.next() % 0x80) as u8)),
        2 => v.extend((0..rng.below(300)).map(|_| 0x20 + (rng.next() % 0x5f) as u8)),
        _ => v.extend_from_slice(b"\"1\", W/\"2\", *, \"\xe4\xb8\xad\""),
    }
    // Control characters other than tab are not allowed in a header value at all, and a head
    // over 128 KiB is refused by the HTTP layer (431, tested in resilience.rs).
    v.retain(|b| *b == b'\t' || (*b >= 0x20 && *b != 0x7f));
    v.truncate(8 * 1024);
    v
}

/// One request to send.
struct Request {
    method: &'static str,
    target: String,
    headers: Vec<(String, Vec<u8>)>,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Request {
    fn bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", self.method, self.target)
            .into_bytes();
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        if self.method != "GET" {
            out.extend_from_slice(
                format!("Content-Type: {}\r\nContent-Length: {}\r\n", self.content_type, self.body.len()).as_bytes(),
            );
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }

    fn describe(&self) -> String {
        let body = String::from_utf8_lossy(&self.body);
        let body: String = body.chars().take(300).collect();
        format!(
            "{} {} headers={:?} body={body}",
            self.method,
            self.target.chars().take(300).collect::<String>(),
            self.headers.iter().map(|(n, v)| (n, String::from_utf8_lossy(v))).collect::<Vec<_>>()
        )
    }
}

/// The answer's rules: no 5xx; a 4xx is a problem with a code (Open311: an errors document).
fn check(seed: u64, req: &Request, answer: Option<RawResp>) {
    let Some(answer) = answer else {
        panic!("seed {seed}: the server closed without answering {}", req.describe());
    };
    let context =
        || format!("seed {seed}: {} → {} {}", req.describe(), answer.status, String::from_utf8_lossy(&answer.body));
    assert!(answer.status < 500, "{}", context());
    if answer.status < 400 {
        return;
    }
    if req.target.starts_with("/open311/") {
        let doc: Value = serde_json::from_slice(&answer.body).unwrap_or_else(|_| panic!("{}", context()));
        assert!(doc[0]["code"].is_number() && doc[0]["description"].is_string(), "{}", context());
    } else {
        assert_eq!(answer.header("content-type"), Some("application/problem+json"), "{}", context());
        let doc: Value = serde_json::from_slice(&answer.body).unwrap_or_else(|_| panic!("{}", context()));
        assert!(doc["code"].as_str().is_some_and(|c| !c.is_empty()), "{}", context());
        assert_eq!(doc["status"], answer.status, "{}", context());
    }
}

fn arbitrary_input_never_breaks_the_service(b: Backend) {
    let w = World::new(b);
    // What must come through untouched.
    let sentinel = w.resolved_case("路灯不亮");
    let before = w.app.get(&format!("/api/v1/cases/{sentinel}"), &w.admin).expect(200).clone();
    let target = w.new_case("供水管道破裂");
    let key = w.app.post(
        "/api/v1/api-clients",
        &w.admin,
        json!({"name": "市民App", "jurisdiction_code": "530602", "scopes": ["cases:create"]}),
    );
    let key = key.expect(201)["key"].as_str().expect("key").to_owned();
    let complaint = w.complaint("村里自来水停水三天");
    let login = json!({"username": "sup", "password": "x"});
    let category = json!({"code": "water_quality", "name": "水质", "deadline_days": 10});
    let jurisdiction = json!({"code": "530622", "name": "巧家县", "parent_code": "530600"});
    let action = json!({"department_id": w.water, "reason": "退回", "resolution": "已处理", "text": "备注"});
    const ACTIONS: &[&str] = &[
        "assign",
        "reassign",
        "acknowledge",
        "return",
        "resolve",
        "verify",
        "reject",
        "close",
        "dismiss",
        "reopen",
        "extend",
        "comment",
        "%E7%AD%BE%E6%94%B6",
        "ASSIGN",
        "..%2f..",
        "%ff",
        "a%00b",
    ];

    let seed = std::env::var("MINSHENG_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x6d69_6e73_6865_6e67);
    let mut rng = Rng(seed);
    let rounds = std::env::var("MINSHENG_FUZZ_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(ROUNDS);
    for round in 0..rounds {
        let reference = if rng.chance(50) { &category } else { &jurisdiction };
        let bearer = |t: &str| ("Authorization".to_owned(), format!("Bearer {t}").into_bytes());
        let mut requests = vec![
            Request {
                method: "POST",
                target: "/api/v1/cases".to_owned(),
                headers: vec![bearer(&w.supervisor)],
                content_type: "application/json",
                body: body_bytes(&mut rng, &complaint),
            },
            Request {
                method: "POST",
                target: format!("/api/v1/cases/{target}/actions/{}", rng.pick(ACTIONS)),
                headers: vec![bearer(if rng.chance(50) { &w.supervisor } else { &w.water_worker })],
                content_type: "application/json",
                body: body_bytes(&mut rng, &action),
            },
            Request {
                method: "GET",
                target: format!("/api/v1/cases?{}", query(&mut rng)),
                headers: vec![bearer(&w.supervisor)],
                content_type: "",
                body: Vec::new(),
            },
            Request {
                method: "GET",
                target: format!("/api/v1/stats/breakdown?{}", query(&mut rng)),
                headers: vec![bearer(&w.supervisor)],
                content_type: "",
                body: Vec::new(),
            },
            Request {
                method: "POST",
                target: "/api/v1/auth/login".to_owned(),
                headers: vec![],
                content_type: "application/json",
                body: body_bytes(&mut rng, &login),
            },
            Request {
                method: "POST",
                target: if rng.chance(50) { "/api/v1/categories" } else { "/api/v1/jurisdictions" }.to_owned(),
                headers: vec![bearer(&w.admin)],
                content_type: if rng.chance(90) { "application/json" } else { "text/plain; charset=gbk" },
                body: body_bytes(&mut rng, reference),
            },
            Request {
                method: "POST",
                target: format!(
                    "/open311/v2/requests.json?{}",
                    if rng.chance(30) { query(&mut rng) } else { String::new() }
                ),
                headers: vec![],
                content_type: "application/x-www-form-urlencoded",
                body: {
                    let mut form = vec![format!(
                        "api_key={}",
                        if rng.chance(70) { encode(&key) } else { encode(&string(&mut rng)) }
                    )];
                    for _ in 0..rng.below(6) {
                        let k = *rng.pick(&[
                            "service_code",
                            "lat",
                            "long",
                            "address_string",
                            "description",
                            "phone",
                            "first_name",
                            "email",
                            "attribute[COLOUR]",
                            "media_url",
                        ]);
                        form.push(format!(
                            "{k}={}",
                            if rng.chance(30) {
                                rng.pick(&["%ff", "%", "1e999", "drinking_water", "27.3"]).to_string()
                            } else {
                                encode(&string(&mut rng))
                            }
                        ));
                    }
                    form.join("&").into_bytes()
                },
            },
            Request {
                method: "GET",
                target: format!("/open311/v2/requests.json?{}", query(&mut rng)),
                headers: vec![],
                content_type: "",
                body: Vec::new(),
            },
        ];
        // Arbitrary values for the headers the service reads, on some of them.
        for req in &mut requests {
            if rng.chance(35) {
                let name = *rng.pick(&[
                    "X-Request-Id",
                    "Idempotency-Key",
                    "If-Match",
                    "Authorization",
                    "Accept",
                    "Accept-Encoding",
                    "X-Forwarded-For",
                    "Origin",
                ]);
                let mut value = header_value(&mut rng);
                if name == "Authorization" && rng.chance(50) {
                    let mut bearer = b"Bearer ".to_vec();
                    bearer.extend(value);
                    value = bearer;
                }
                req.headers.retain(|(n, _)| n != name);
                req.headers.push((name.to_owned(), value));
            }
        }
        for req in &requests {
            let answer = w.app.raw_http(&req.bytes());
            check(seed ^ round as u64, req, answer);
        }
    }

    // Still up, and what was there before is intact.
    w.app.call("GET", "/healthz", None, None, &[]).expect(200);
    w.app.call("GET", "/readyz", None, None, &[]).expect(200);
    let after = w.app.get(&format!("/api/v1/cases/{sentinel}"), &w.admin).expect(200).clone();
    assert_eq!(before, after, "the sentinel case changed");
    let category = w.app.get("/api/v1/categories/drinking_water", &w.admin).expect(200).clone();
    assert_eq!(category["deadline_days"], 15);
    assert_eq!(category["name"], "饮水安全");
    let county = w.app.get("/api/v1/jurisdictions/530602", &w.admin).expect(200).clone();
    assert_eq!(county["name"], "昭阳区");
    // And it still works.
    w.new_case("测试后仍可受理");
}
