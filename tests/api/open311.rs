//! Open311 GeoReport v2 at `/open311/v2`: every endpoint and every error, in XML and in JSON,
//! parsed and checked field by field against the specification — and that a public answer never
//! carries a complainant's data.

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{json, Value};

use crate::support::{Backend, Resp, TestApp, World};

const JSON_TYPE: &str = "application/json; charset=utf-8";
const XML_TYPE: &str = "text/xml; charset=utf-8";
const XML_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>";

/// The spec's request fields, in its order.
const REQUEST_FIELDS: &[&str] = &[
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
];

/// What the test data says about the complainant and the case, none of which is public.
const PRIVATE: &[&str] = &[
    "张三丰",
    "张**",
    "13812345678",
    "138****5678",
    "zhangsan@example.com",
    "村民反映自来水停水三天",
    "村里自来水停水三天",
    "complainant",
    "phone",
    "email",
];

fn get(app: &TestApp, path: &str) -> Resp {
    app.call("GET", path, None, None, &[])
}

/// The element children of an XML node.
fn children<'a, 'input>(node: roxmltree::Node<'a, 'input>) -> Vec<roxmltree::Node<'a, 'input>> {
    node.children().filter(roxmltree::Node::is_element).collect()
}

/// The XML element `name` under `node`, which must be there once.
#[track_caller]
fn child<'a, 'input>(node: roxmltree::Node<'a, 'input>, name: &str) -> roxmltree::Node<'a, 'input> {
    let found: Vec<_> = children(node).into_iter().filter(|c| c.tag_name().name() == name).collect();
    assert_eq!(found.len(), 1, "<{}> has {} <{name}>", node.tag_name().name(), found.len());
    found[0]
}

/// Asserts that an XML element holds exactly the data of a JSON value (the spec's Spark
/// convention): an object's members are the element's children, an array's items are its
/// repeated `item` children, `null` and `[]` are an empty element, scalars its text.
#[track_caller]
fn assert_same(json: &Value, node: roxmltree::Node<'_, '_>, item: Option<&str>) {
    let name = node.tag_name().name().to_owned();
    let kids = children(node);
    let text = node.text().unwrap_or("");
    match json {
        Value::Null => assert!(kids.is_empty() && text.is_empty(), "<{name}> should be empty"),
        Value::Array(items) => {
            assert!(text.trim().is_empty(), "<{name}> has text");
            assert_eq!(kids.len(), items.len(), "<{name}> items");
            for (kid, value) in kids.iter().zip(items) {
                if let Some(item) = item {
                    assert_eq!(kid.tag_name().name(), item, "items of <{name}>");
                }
                assert_same(value, *kid, item_of(kid.tag_name().name()));
            }
        }
        Value::Object(map) => {
            let mut names: Vec<&str> = kids.iter().map(|k| k.tag_name().name()).collect();
            names.sort_unstable();
            let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(names, keys, "children of <{name}>");
            for kid in kids {
                let member = &map[kid.tag_name().name()];
                assert_same(member, kid, item_of(kid.tag_name().name()));
            }
        }
        Value::String(s) => {
            assert!(kids.is_empty());
            assert_eq!(text, s, "<{name}>");
        }
        Value::Number(n) => {
            assert!(kids.is_empty());
            assert_eq!(text.parse::<f64>().ok(), n.as_f64(), "<{name}>");
        }
        Value::Bool(b) => assert_eq!(text, b.to_string(), "<{name}>"),
    }
}

/// The item element of the spec's list elements.
fn item_of(list: &str) -> Option<&'static str> {
    Some(match list {
        "services" => "service",
        "service_requests" => "request",
        "errors" => "error",
        "attributes" => "attribute",
        "values" => "value",
        "endpoints" => "endpoint",
        "formats" => "format",
        _ => return None,
    })
}

/// Parses an XML answer: UTF-8 declaration, no namespace, the expected root.
#[track_caller]
fn parse_xml<'a>(r: &'a Resp, root: &str) -> roxmltree::Document<'a> {
    assert_eq!(r.header("content-type"), Some(XML_TYPE), "{}", r.text);
    assert!(r.text.starts_with(XML_DECLARATION), "no UTF-8 declaration: {}", r.text);
    let doc = roxmltree::Document::parse(&r.text).unwrap_or_else(|e| panic!("not XML ({e}): {}", r.text));
    let el = doc.root_element();
    assert_eq!(el.tag_name().name(), root, "{}", r.text);
    assert_eq!(el.tag_name().namespace(), None, "namespaced: {}", r.text);
    assert_eq!(el.namespaces().count(), 0, "namespace declared: {}", r.text);
    doc
}

/// GETs `path.{json,xml}?query` without credentials, checks both answers have `status`, their
/// content types, and carry the same data; returns the JSON and the XML text.
#[track_caller]
fn fetch(app: &TestApp, path: &str, query: &str, status: u16, root: &str) -> (Value, String) {
    let sep = if query.is_empty() { "" } else { "?" };
    let j = get(app, &format!("{path}.json{sep}{query}"));
    let x = get(app, &format!("{path}.xml{sep}{query}"));
    assert_eq!(j.status, status, "{path}.json: {}", j.text);
    assert_eq!(x.status, status, "{path}.xml: {}", x.text);
    assert_eq!(j.header("content-type"), Some(JSON_TYPE));
    let doc = parse_xml(&x, root);
    assert_same(&j.body, doc.root_element(), item_of(root));
    (j.body.clone(), x.text.clone())
}

/// Checks an errors answer: the status, the content type, and `[{code, description}]` with the
/// status as `code`; every expected fragment appears in some description. Returns the
/// descriptions.
#[track_caller]
fn assert_errors(r: &Resp, xml: bool, status: u16, expected: &[&str]) -> Vec<String> {
    assert_eq!(r.status, status, "{}", r.text);
    let descriptions: Vec<String> = if xml {
        let doc = parse_xml(r, "errors");
        children(doc.root_element())
            .into_iter()
            .map(|e| {
                assert_eq!(e.tag_name().name(), "error");
                let names: Vec<&str> = children(e).iter().map(|c| c.tag_name().name()).collect();
                assert_eq!(names, ["code", "description"]);
                assert_eq!(child(e, "code").text(), Some(status.to_string().as_str()));
                child(e, "description").text().unwrap_or("").to_owned()
            })
            .collect()
    } else {
        assert_eq!(r.header("content-type"), Some(JSON_TYPE), "{}", r.text);
        let items = r.body.as_array().unwrap_or_else(|| panic!("not an array: {}", r.text));
        items
            .iter()
            .map(|e| {
                let obj = e.as_object().expect("object");
                assert_eq!(obj.len(), 2, "{e}");
                assert_eq!(e["code"], status);
                e["description"].as_str().expect("description").to_owned()
            })
            .collect()
    };
    assert!(!descriptions.is_empty(), "no errors listed: {}", r.text);
    for fragment in expected {
        assert!(descriptions.iter().any(|d| d.contains(fragment)), "no error mentions {fragment:?}: {descriptions:?}");
    }
    descriptions
}

/// Asserts a W3C datetime with a timezone (China Standard Time, to the second); returns it.
#[track_caller]
fn w3c(v: &Value) -> DateTime<Utc> {
    let s = v.as_str().unwrap_or_else(|| panic!("not a datetime: {v}"));
    assert_eq!(s.len(), 25, "{s}");
    assert!(s.ends_with("+08:00"), "no timezone: {s}");
    DateTime::parse_from_rfc3339(s).expect("W3C datetime").with_timezone(&Utc)
}

/// A v1 timestamp, to the second.
fn v1_time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("timestamp")).expect("rfc3339").with_timezone(&Utc).trunc_subsecs(0)
}

#[track_caller]
fn assert_private(text: &str) {
    for secret in PRIVATE {
        assert!(!text.contains(secret), "a public answer carries {secret:?}: {text}");
    }
}

/// POSTs a form to `/open311/v2/requests.{ext}`.
fn post(app: &TestApp, ext: &str, pairs: &[(&str, &str)]) -> Resp {
    let body = serde_urlencoded::to_string(pairs).expect("form");
    app.raw(
        "POST",
        &format!("/open311/v2/requests.{ext}"),
        None,
        "application/x-www-form-urlencoded; charset=utf-8",
        body.as_bytes(),
    )
}

/// An API client of `jurisdiction` (none: the whole tree) with `scopes`; returns its id and key.
fn client(w: &World, jurisdiction: Option<&str>, scopes: &[&str]) -> (String, String) {
    let r = w.app.post(
        "/api/v1/api-clients",
        &w.admin,
        json!({"name": "市民App", "jurisdiction_code": jurisdiction, "scopes": scopes}),
    );
    let c = r.expect(201);
    (c["id"].as_str().expect("id").to_owned(), c["key"].as_str().expect("key").to_owned())
}

/// Gives drinking_water a definition: a required single-value list, a number, a multi-value
/// list and an informational attribute.
fn define_drinking_water(w: &World) {
    w.app
        .patch(
            "/api/v1/categories/drinking_water",
            &w.admin,
            json!({
                "description": "自来水停水、水压不足、水质异常", "group": "水务", "keywords": ["停水", "水质"],
                "attributes": [
                    {"code": "COLOUR", "datatype": "singlevaluelist", "required": true, "description": "水是什么颜色？",
                     "values": [{"key": "yellow", "name": "发黄"}, {"key": "turbid", "name": "浑浊"}]},
                    {"code": "DAYS", "datatype": "number", "order": 3, "description": "停水几天了？"},
                    {"code": "SMELL", "datatype": "multivaluelist", "order": 2, "description": "有什么气味？",
                     "datatype_description": "可多选",
                     "values": [{"key": "chlorine", "name": "漂白粉味"}, {"key": "rot", "name": "腐臭"}]},
                    {"code": "SAFETY", "datatype": "text", "variable": false, "order": 9, "description": "请勿饮用异常的水"}
                ]
            }),
        )
        .expect(200);
}

fn ref_of(w: &World, id: &str) -> String {
    w.app.get(&format!("/api/v1/cases/{id}"), &w.admin).expect(200)["ref"].as_str().expect("ref").to_owned()
}

fn discovery_services_and_definitions(b: Backend) {
    let w = World::new(b);
    define_drinking_water(&w);

    // Discovery: an object, both formats, the spec's fields.
    let (d, _) = fetch(&w.app, "/open311/v2/discovery", "", 200, "discovery");
    let mut keys: Vec<&str> = d.as_object().expect("object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["changeset", "contact", "endpoints", "key_service"]);
    w3c(&d["changeset"]);
    assert!(d["contact"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(d["key_service"].as_str().is_some_and(|k| k.contains("cases:create")));
    let endpoints = d["endpoints"].as_array().expect("endpoints");
    assert_eq!(endpoints.len(), 1);
    let e = &endpoints[0];
    assert_eq!(e["specification"], "http://wiki.open311.org/GeoReport_v2");
    assert_eq!(e["url"], format!("{}/open311/v2", w.app.base));
    assert_eq!(e["type"], "production");
    assert_eq!(e["formats"], json!(["text/xml", "application/json"]));
    assert_eq!(e["changeset"], d["changeset"]);

    // The service list: every active category, the spec's fields in its order.
    w.app
        .post("/api/v1/categories", &w.admin, json!({"code": "old", "name": "旧分类", "deadline_days": 5}))
        .expect(201);
    w.app.patch("/api/v1/categories/old", &w.admin, json!({"active": false})).expect(200);
    let (services, xml) = fetch(&w.app, "/open311/v2/services", "", 200, "services");
    assert_eq!(
        services,
        json!([
            {"service_code": "drinking_water", "service_name": "饮水安全", "description": "自来水停水、水压不足、水质异常",
             "metadata": true, "type": "realtime", "keywords": "停水, 水质", "group": "水务"},
            {"service_code": "transport", "service_name": "交通出行", "description": null,
             "metadata": false, "type": "realtime", "keywords": null, "group": null}
        ])
    );
    let doc = roxmltree::Document::parse(&xml).expect("xml");
    let first = children(doc.root_element())[0];
    let order: Vec<&str> = children(first).iter().map(|c| c.tag_name().name()).collect();
    assert_eq!(order, ["service_code", "service_name", "description", "metadata", "type", "keywords", "group"]);
    // jurisdiction_id must name a jurisdiction; categories serve the whole tree.
    let (scoped, _) = fetch(&w.app, "/open311/v2/services", "jurisdiction_id=530621", 200, "services");
    assert_eq!(scoped, services);
    for ext in ["json", "xml"] {
        let r = get(&w.app, &format!("/open311/v2/services.{ext}?jurisdiction_id=999999"));
        assert_errors(&r, ext == "xml", 404, &["jurisdiction_id 999999 not found"]);
    }

    // A definition: an object; attributes in their order, with their values.
    let (def, xml) = fetch(&w.app, "/open311/v2/services/drinking_water", "", 200, "service_definition");
    assert_eq!(
        def,
        json!({
            "service_code": "drinking_water",
            "attributes": [
                {"variable": true, "code": "COLOUR", "datatype": "singlevaluelist", "required": true,
                 "datatype_description": null, "order": 1, "description": "水是什么颜色？",
                 "values": [{"key": "yellow", "name": "发黄"}, {"key": "turbid", "name": "浑浊"}]},
                {"variable": true, "code": "SMELL", "datatype": "multivaluelist", "required": false,
                 "datatype_description": "可多选", "order": 2, "description": "有什么气味？",
                 "values": [{"key": "chlorine", "name": "漂白粉味"}, {"key": "rot", "name": "腐臭"}]},
                {"variable": true, "code": "DAYS", "datatype": "number", "required": false,
                 "datatype_description": null, "order": 3, "description": "停水几天了？", "values": []},
                {"variable": false, "code": "SAFETY", "datatype": "text", "required": false,
                 "datatype_description": null, "order": 9, "description": "请勿饮用异常的水", "values": []}
            ]
        })
    );
    let doc = roxmltree::Document::parse(&xml).expect("xml");
    let attribute = children(child(doc.root_element(), "attributes"))[0];
    let order: Vec<&str> = children(attribute).iter().map(|c| c.tag_name().name()).collect();
    assert_eq!(
        order,
        ["variable", "code", "datatype", "required", "datatype_description", "order", "description", "values"]
    );
    // A service without metadata has an empty definition; unknown and inactive ones none.
    let (plain, _) = fetch(&w.app, "/open311/v2/services/transport", "", 200, "service_definition");
    assert_eq!(plain, json!({"service_code": "transport", "attributes": []}));
    for code in ["nope", "old"] {
        for ext in ["json", "xml"] {
            let r = get(&w.app, &format!("/open311/v2/services/{code}.{ext}"));
            assert_errors(&r, ext == "xml", 404, &[&format!("service_code {code} not found")]);
        }
    }
    let r = get(&w.app, "/open311/v2/services/transport.xml?jurisdiction_id=1");
    assert_errors(&r, true, 404, &["jurisdiction_id 1 not found"]);

    // Unknown formats, paths and methods answer in the spec's error format too.
    let r = get(&w.app, "/open311/v2/services.html");
    assert_errors(&r, false, 404, &["no format html"]);
    let r = get(&w.app, "/open311/v2/tokens/123.xml");
    assert_errors(&r, true, 404, &["no route"]);
    // A method a resource does not take: 405 with `Allow` (RFC 9110), in the Open311 format.
    let r = w.app.call("DELETE", "/open311/v2/services.xml", None, None, &[]);
    assert_errors(&r, true, 405, &["method not allowed; this resource takes GET"]);
    assert_eq!(r.header("allow"), Some("GET"));
    let r = w.app.call("POST", "/open311/v2/discovery.json", None, None, &[]);
    assert_errors(&r, false, 405, &["method not allowed; this resource takes GET"]);
    let r = w.app.call("TRACE", "/open311/v2/requests.json", None, None, &[]);
    assert_errors(&r, false, 405, &["method not allowed; this resource takes GET, POST"]);
    assert_eq!(r.header("allow"), Some("GET, POST"));
}

fn a_post_files_a_real_case(b: Backend) {
    let w = World::new(b);
    define_drinking_water(&w);
    let (client_id, key) = client(&w, Some("530602"), &["cases:create"]);
    let total = |w: &World| w.app.get("/api/v1/stats/summary", &w.admin).expect(200)["total"].as_i64().expect("total");
    let before = total(&w);
    let r = post(
        &w.app,
        "xml",
        &[
            ("api_key", &key),
            ("service_code", "drinking_water"),
            ("lat", "27.3382"),
            ("long", "103.7172"),
            ("address_string", "昭阳区凤凰街道某村 3 组"),
            ("address_id", "ZY-000123"),
            ("attribute[COLOUR]", "yellow"),
            ("attribute[SMELL][]", "chlorine"),
            ("attribute[SMELL][]", "rot"),
            ("attribute[DAYS]", "3"),
            ("first_name", "三丰"),
            ("last_name", "张"),
            ("phone", "13812345678"),
            ("email", "zhangsan@example.com"),
            ("description", "村民反映自来水停水三天，水发黄有异味。\n请尽快处理。"),
            ("media_url", "https://img.example.com/1.jpg"),
            ("device_id", "tt222111"),
            ("account_id", "123456"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let doc = parse_xml(&r, "service_requests");
    let requests = children(doc.root_element());
    assert_eq!(requests.len(), 1);
    let request = requests[0];
    assert_eq!(request.tag_name().name(), "request");
    let names: Vec<&str> = children(request).iter().map(|c| c.tag_name().name()).collect();
    assert_eq!(names, ["service_request_id", "service_notice", "account_id"]);
    let case_ref = child(request, "service_request_id").text().expect("id").to_owned();
    let year = (Utc::now() + chrono::Duration::hours(8)).format("%Y").to_string();
    assert_eq!(case_ref, format!("530602-{year}-000001"));
    assert!(child(request, "service_notice").text().is_some_and(|n| n.contains(&case_ref)));
    assert_eq!(child(request, "account_id").text(), None);

    // A real case: intake through Minsheng's own rules, with its event and its statistics.
    let list = w.app.get("/api/v1/cases", &w.admin).expect(200).clone();
    let case = list["items"][0].clone();
    assert_eq!(case["ref"], case_ref.as_str());
    assert_eq!(case["kind"], "complaint");
    assert_eq!(case["channel"], "integration");
    assert_eq!(case["priority"], "normal");
    assert_eq!(case["status"], "received");
    assert_eq!(case["title"], "村民反映自来水停水三天，水发黄有异味。");
    assert_eq!(case["description"], "村民反映自来水停水三天，水发黄有异味。\n请尽快处理。");
    assert_eq!(case["category_code"], "drinking_water");
    assert_eq!(case["jurisdiction_code"], "530602");
    assert_eq!(case["created_by"], client_id.as_str());
    assert_eq!(
        case["location"],
        json!({"address": "昭阳区凤凰街道某村 3 组", "lat": 27.3382, "lon": 103.7172, "address_id": "ZY-000123"})
    );
    assert_eq!(case["media_url"], "https://img.example.com/1.jpg");
    assert_eq!(case["attributes"], json!({"COLOUR": "yellow", "SMELL": ["chlorine", "rot"], "DAYS": "3"}));
    assert_eq!(
        case["complainant"],
        json!({"name": "张**", "phone": "138****5678", "email": "z*******@example.com", "masked": true})
    );
    let id = case["id"].as_str().expect("id");
    let revealed = w.app.get(&format!("/api/v1/cases/{id}?include_personal_data=true"), &w.admin).expect(200)
        ["complainant"]
        .clone();
    assert_eq!(
        revealed,
        json!({"name": "张三丰", "phone": "13812345678", "email": "zhangsan@example.com", "masked": false})
    );
    let due = DateTime::parse_from_rfc3339(case["due_at"].as_str().expect("due")).expect("ts");
    let created = DateTime::parse_from_rfc3339(case["created_at"].as_str().expect("created")).expect("ts");
    assert_eq!(due - created, chrono::Duration::days(15));
    let events = w.app.get(&format!("/api/v1/cases/{id}/events"), &w.admin).expect(200).clone();
    assert_eq!(events["items"][0]["action"], "create");
    assert_eq!(events["items"][0]["actor"], json!({"id": client_id, "name": "市民App"}));
    assert_eq!(total(&w), before + 1);

    // JSON: a top-level array. No description: the service's name is the title. A Latin name
    // is given name first. The jurisdiction may be named, within the client's subtree.
    let r = post(
        &w.app,
        "json",
        &[
            ("api_key", &key),
            ("jurisdiction_id", "530602"),
            ("service_code", "transport"),
            ("address_string", "昭阳区 S301 公交站"),
            ("first_name", "John"),
            ("last_name", "Smith"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), Some(JSON_TYPE));
    let created = r.body.as_array().expect("array");
    assert_eq!(created.len(), 1);
    let mut keys: Vec<&str> = created[0].as_object().expect("object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["account_id", "service_notice", "service_request_id"]);
    assert_eq!(created[0]["service_request_id"], format!("530602-{year}-000002"));
    assert_eq!(created[0]["account_id"], Value::Null);
    let second = w.app.get("/api/v1/cases?category_code=transport", &w.admin).expect(200)["items"][0].clone();
    assert_eq!(second["title"], "交通出行");
    assert_eq!(second["description"], "");
    assert_eq!(second["location"]["lat"], Value::Null);
    let second_id = second["id"].as_str().expect("id");
    let name = w.app.get(&format!("/api/v1/cases/{second_id}?include_personal_data=true"), &w.admin).expect(200)
        ["complainant"]["name"]
        .clone();
    assert_eq!(name, "John Smith");

    // A whole-tree client must say where; it may file anywhere.
    let (_, tree_key) = client(&w, None, &["cases:create"]);
    let form = [("api_key", tree_key.as_str()), ("service_code", "transport"), ("address_string", "鲁甸县城")];
    let r = post(&w.app, "json", &form);
    assert_errors(&r, false, 400, &["jurisdiction_id was not provided"]);
    let mut with_place = form.to_vec();
    with_place.push(("jurisdiction_id", "530621"));
    let r = post(&w.app, "json", &with_place);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body[0]["service_request_id"], format!("530621-{year}-000001"));
}

fn post_errors_follow_the_spec(b: Backend) {
    let w = World::new(b);
    define_drinking_water(&w);
    let (_, key) = client(&w, Some("530602"), &["cases:create"]);
    let (_, reader) = client(&w, Some("530602"), &["cases:read_own"]);
    let (revoked_id, revoked) = client(&w, Some("530602"), &["cases:create"]);
    w.app.post(&format!("/api/v1/api-clients/{revoked_id}/revoke"), &w.admin, json!({})).expect(200);
    let valid = |key: &str| -> Vec<(String, String)> {
        [("api_key", key), ("service_code", "transport"), ("lat", "27.3"), ("long", "103.7")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let send = |ext: &str, pairs: &[(String, String)]| {
        let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        post(&w.app, ext, &borrowed)
    };
    for ext in ["xml", "json"] {
        let xml = ext == "xml";
        // 403: no key, a wrong one, a revoked one, one without cases:create, a user's token.
        let mut no_key = valid(&key);
        no_key.remove(0);
        assert_errors(&send(ext, &no_key), xml, 403, &["api_key was not provided"]);
        let empty = w.app.raw("POST", &format!("/open311/v2/requests.{ext}"), None, "text/plain", b"");
        assert_errors(&empty, xml, 403, &["api_key was not provided"]);
        for bad in [
            "msk_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "nonsense",
            revoked.as_str(),
            w.admin.as_str(),
        ] {
            assert_errors(&send(ext, &valid(bad)), xml, 403, &["invalid api_key"]);
        }
        assert_errors(&send(ext, &valid(&reader)), xml, 403, &["cases:create"]);
        // 403 comes first: a bad form with a bad key says only that the key is bad.
        let descriptions = assert_errors(&send(ext, &[("api_key".into(), "x".into())]), xml, 403, &[]);
        assert_eq!(descriptions.len(), 1);

        // 400: every problem at once, one entry each.
        let descriptions = assert_errors(
            &send(ext, &[("api_key".into(), key.clone()), ("lat".into(), "91".into())]),
            xml,
            400,
            &["service_code was not provided", "lat: must be a number", "long: lat and long are sent together"],
        );
        assert_eq!(descriptions.len(), 3, "{descriptions:?}");
        let mut no_place = valid(&key);
        no_place.truncate(2);
        assert_errors(&send(ext, &no_place), xml, 400, &["a location was not provided"]);
        let mut html = valid(&key);
        html.push(("description".into(), "<b>停水</b><script>alert(1)</script>".into()));
        assert_errors(&send(ext, &html), xml, 400, &["description: must be plain text, not HTML"]);
        let mut long = valid(&key);
        long.push(("description".into(), "水".repeat(4001)));
        assert_errors(&send(ext, &long), xml, 400, &["description: must be at most 4000 characters"]);
        let mut contact = valid(&key);
        contact.extend([
            ("phone".into(), "call me".into()),
            ("email".into(), "nobody".into()),
            ("media_url".into(), "javascript:alert(1)".into()),
            ("attribute[]".into(), "x".into()),
        ]);
        assert_errors(&send(ext, &contact), xml, 400, &["phone:", "email:", "media_url:", "attribute[]:"]);
        // Attribute answers are checked against the service definition.
        let mut answers = valid(&key);
        answers[1].1 = "drinking_water".into();
        let descriptions =
            assert_errors(&send(ext, &answers), xml, 400, &["attribute[COLOUR]: this attribute is required"]);
        assert_eq!(descriptions.len(), 1);
        answers.extend([
            ("attribute[COLOUR]".into(), "green".into()),
            ("attribute[DAYS]".into(), "many".into()),
            ("attribute[NOPE]".into(), "x".into()),
            ("attribute[SAFETY]".into(), "read".into()),
        ]);
        assert_errors(
            &send(ext, &answers),
            xml,
            400,
            &[
                "attribute[COLOUR]: must be the key",
                "attribute[DAYS]: must be a number",
                "attribute[NOPE]",
                "attribute[SAFETY]",
            ],
        );
        // The body must be a UTF-8 form.
        let body = serde_urlencoded::to_string(valid(&key)).expect("form");
        let path = format!("/open311/v2/requests.{ext}");
        let r = w.app.raw("POST", &path, None, "application/json", body.as_bytes());
        assert_errors(&r, xml, 400, &["application/x-www-form-urlencoded"]);
        let r = w.app.raw("POST", &path, None, "application/x-www-form-urlencoded; charset=gbk", body.as_bytes());
        assert_errors(&r, xml, 400, &["application/x-www-form-urlencoded"]);
        let big = format!("{body}&description={}", "a".repeat(70_000));
        let r = w.app.raw("POST", &path, None, "application/x-www-form-urlencoded", big.as_bytes());
        assert_errors(&r, xml, 400, &["larger than"]);

        // 404: a service or a jurisdiction that is not there for this client.
        let mut unknown = valid(&key);
        unknown[1].1 = "nope".into();
        assert_errors(&send(ext, &unknown), xml, 404, &["service_code nope not found"]);
        for place in ["530621", "999999"] {
            let mut elsewhere = valid(&key);
            elsewhere.push(("jurisdiction_id".into(), place.into()));
            assert_errors(&send(ext, &elsewhere), xml, 404, &[&format!("jurisdiction_id {place} not found")]);
        }
    }
    // Nothing of the above was filed.
    let cases = w.app.get("/api/v1/cases", &w.admin).expect(200).clone();
    assert_eq!(cases["items"], json!([]));
}

/// Checks a published request field by field against its case; returns the request.
#[track_caller]
fn assert_request(w: &World, case_ref: &str, query: &str) -> Value {
    let (list, xml) = fetch(&w.app, &format!("/open311/v2/requests/{case_ref}"), query, 200, "service_requests");
    assert_private(&xml);
    assert_private(&list.to_string());
    let items = list.as_array().expect("array");
    assert_eq!(items.len(), 1);
    let r = items[0].clone();
    let doc = roxmltree::Document::parse(&xml).expect("xml");
    let request = children(doc.root_element())[0];
    let order: Vec<&str> = children(request).iter().map(|c| c.tag_name().name()).collect();
    let extended = query.contains("extensions=true");
    let mut expected = REQUEST_FIELDS.to_vec();
    if extended {
        expected.push("extended_attributes");
    }
    assert_eq!(order, expected);
    let case = w.app.get(&format!("/api/v1/cases?q={}", ""), &w.admin).expect(200)["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|c| c["ref"] == case_ref)
        .cloned()
        .expect("the case");
    assert_eq!(r["service_request_id"], case_ref);
    let status = case["status"].as_str().expect("status");
    let public = if ["received", "assigned", "resolved"].contains(&status) { "open" } else { "closed" };
    assert_eq!(r["status"], public);
    assert_eq!(r["service_code"], case["category_code"]);
    assert_eq!(r["description"], Value::Null);
    assert_eq!(r["service_notice"], Value::Null);
    assert_eq!(r["zipcode"], Value::Null);
    assert_eq!(w3c(&r["requested_datetime"]), v1_time(&case["created_at"]));
    assert_eq!(w3c(&r["expected_datetime"]), v1_time(&case["due_at"]));
    let updated = match status {
        "closed" => &case["closed_at"],
        "verified" => &case["verified_at"],
        _ => &case["updated_at"],
    };
    assert_eq!(w3c(&r["updated_datetime"]), v1_time(updated));
    assert_eq!(r["address"], case["location"]["address"]);
    assert_eq!(r["lat"], case["location"]["lat"]);
    assert_eq!(r["long"], case["location"]["lon"]);
    assert_eq!(r["media_url"], case["media_url"]);
    if extended {
        assert_eq!(r["extended_attributes"], json!({"detailed_status": status}));
    } else {
        assert!(r.get("extended_attributes").is_none());
    }
    r
}

fn requests_follow_their_cases_and_publish_no_personal_data(b: Backend) {
    let w = World::new(b);
    let id = w.new_case("村里自来水停水三天");
    let case_ref = ref_of(&w, &id);
    let r = assert_request(&w, &case_ref, "extensions=true");
    assert_eq!(r["service_name"], "饮水安全");
    assert_eq!(r["status_notes"], Value::Null);
    assert_eq!(r["agency_responsible"], Value::Null);
    assert_eq!(r["address"], "昭阳区凤凰街道某村");
    assert_eq!(r["lat"], 27.32);
    assert_request(&w, &case_ref, "");

    // Through the lifecycle: internal notes never show; the department's answer does.
    w.ok(&w.supervisor, &id, "assign", json!({"department_id": w.water, "note": "内部：请三日内处理"}));
    w.ok(&w.water_worker, &id, "comment", json!({"text": "内部评论：已派人"}));
    let r = assert_request(&w, &case_ref, "extensions=true");
    assert_eq!(r["status"], "open");
    assert_eq!(r["agency_responsible"], "区水务局");
    assert_eq!(r["status_notes"], Value::Null);
    w.ok(&w.water_worker, &id, "resolve", json!({"resolution": "已抢修管道，恢复供水"}));
    let r = assert_request(&w, &case_ref, "extensions=true");
    assert_eq!((r["status"].as_str(), r["status_notes"].as_str()), (Some("open"), Some("已抢修管道，恢复供水")));
    w.ok(&w.supervisor, &id, "verify", json!({"satisfaction": "satisfied", "note": "电话回访张先生"}));
    let r = assert_request(&w, &case_ref, "extensions=true");
    assert_eq!(r["status"], "closed");
    w.ok(&w.supervisor, &id, "close", json!({}));
    let r = assert_request(&w, &case_ref, "extensions=true");
    assert_eq!((r["status"].as_str(), r["status_notes"].as_str()), (Some("closed"), Some("已抢修管道，恢复供水")));
    w.ok(&w.supervisor, &id, "reopen", json!({"reason": "群众反映又停水", "department_id": w.water}));
    let r = assert_request(&w, &case_ref, "extensions=true");
    assert_eq!((r["status"].as_str(), &r["status_notes"]), (Some("open"), &Value::Null));
    let (list, xml) = fetch(&w.app, &format!("/open311/v2/requests/{case_ref}"), "", 200, "service_requests");
    for internal in ["内部", "张先生", "又停水"] {
        assert!(!xml.contains(internal) && !list.to_string().contains(internal), "{internal} published");
    }

    // A dismissal says why in a fixed sentence, not in the supervisor's words.
    let dismissed = w.new_case("无效诉求");
    w.ok(&w.supervisor, &dismissed, "dismiss", json!({"outcome": "invalid", "reason": "来电人张三丰恶意投诉"}));
    let r = assert_request(&w, &ref_of(&w, &dismissed), "");
    assert_eq!(
        (r["status"].as_str(), r["status_notes"].as_str()),
        (Some("closed"), Some("经核实为无效诉求，不予受理。"))
    );

    // Petitions are not published; nor does a ref outside jurisdiction_id's subtree exist there.
    let mut petition = w.complaint("信访件");
    petition["channel"] = json!("petition");
    let petition =
        w.app.post("/api/v1/cases", &w.supervisor, petition).expect(201)["ref"].as_str().expect("ref").to_owned();
    for ext in ["json", "xml"] {
        let r = get(&w.app, &format!("/open311/v2/requests/{petition}.{ext}"));
        assert_errors(&r, ext == "xml", 404, &[&format!("service_request_id {petition} not found")]);
        let r = get(&w.app, &format!("/open311/v2/requests/{case_ref}.{ext}?jurisdiction_id=530621"));
        assert_errors(&r, ext == "xml", 404, &["not found"]);
        let r = get(&w.app, &format!("/open311/v2/requests/{case_ref}.{ext}?jurisdiction_id=888888"));
        assert_errors(&r, ext == "xml", 404, &["jurisdiction_id 888888 not found"]);
        let r = get(&w.app, &format!("/open311/v2/requests/{case_ref}.{ext}?extensions=maybe"));
        assert_errors(&r, ext == "xml", 400, &["extensions"]);
    }
    assert_request(&w, &case_ref, "jurisdiction_id=530600");
    let (all, xml) = fetch(&w.app, "/open311/v2/requests", "", 200, "service_requests");
    assert_private(&xml);
    let refs: Vec<&str> =
        all.as_array().expect("array").iter().map(|r| r["service_request_id"].as_str().expect("id")).collect();
    assert_eq!(refs.len(), 2);
    assert!(!refs.contains(&petition.as_str()));

    // A request filed over Open311 follows the same rules.
    let (_, key) = client(&w, Some("530602"), &["cases:create"]);
    let r = post(
        &w.app,
        "json",
        &[
            ("api_key", &key),
            ("service_code", "drinking_water"),
            ("address_string", "凤凰街道 <2 号> & \"老街\" 'A'"),
            ("first_name", "三丰"),
            ("last_name", "张"),
            ("phone", "13812345678"),
            ("email", "zhangsan@example.com"),
            ("description", "村民反映自来水停水三天"),
            ("media_url", "https://img.example.com/a.jpg?x=1&y=2"),
        ],
    );
    let filed = r.body[0]["service_request_id"].as_str().expect("ref").to_owned();
    let r = assert_request(&w, &filed, "extensions=true");
    assert_eq!(r["address"], "凤凰街道 <2 号> & \"老街\" 'A'");
    assert_eq!(r["media_url"], "https://img.example.com/a.jpg?x=1&y=2");
    assert_eq!(r["extended_attributes"]["detailed_status"], "received");
}

fn request_queries_filter_window_and_page(b: Backend) {
    let w = World::new(b);
    let mut refs = Vec::new();
    for n in 0..5 {
        let mut body = w.complaint(&format!("第{n}件"));
        if n % 2 == 1 {
            body["category_code"] = json!("transport");
        }
        refs.push(w.app.post("/api/v1/cases", &w.supervisor, body).expect(201)["ref"].as_str().expect("r").to_owned());
    }
    let newest_first: Vec<String> = refs.iter().rev().cloned().collect();
    let ids = |v: &Value| -> Vec<String> {
        v.as_array().expect("array").iter().map(|r| r["service_request_id"].as_str().expect("id").to_owned()).collect()
    };
    let (all, _) = fetch(&w.app, "/open311/v2/requests", "", 200, "service_requests");
    assert_eq!(ids(&all), newest_first);
    // Filters: service codes, statuses, and ids (which override everything else).
    let (transport, _) = fetch(&w.app, "/open311/v2/requests", "service_code=transport", 200, "service_requests");
    assert_eq!(ids(&transport), vec![refs[3].clone(), refs[1].clone()]);
    let (both, _) =
        fetch(&w.app, "/open311/v2/requests", "service_code=transport,drinking_water", 200, "service_requests");
    assert_eq!(ids(&both).len(), 5);
    let first = w.app.get("/api/v1/cases?limit=200", &w.admin).expect(200)["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|c| c["ref"] == refs[0].as_str())
        .map(|c| c["id"].as_str().expect("id").to_owned())
        .expect("first");
    w.ok(&w.supervisor, &first, "dismiss", json!({"outcome": "withdrawn", "reason": "撤回"}));
    let (closed, _) = fetch(&w.app, "/open311/v2/requests", "status=closed", 200, "service_requests");
    assert_eq!(ids(&closed), vec![refs[0].clone()]);
    let (open, _) = fetch(&w.app, "/open311/v2/requests", "status=open", 200, "service_requests");
    assert_eq!(ids(&open).len(), 4);
    let (any, _) = fetch(&w.app, "/open311/v2/requests", "status=open,closed", 200, "service_requests");
    assert_eq!(ids(&any).len(), 5);
    let query = format!("service_request_id={},{},nope&status=closed&service_code=transport", refs[2], refs[0]);
    let (named, _) = fetch(&w.app, "/open311/v2/requests", &query, 200, "service_requests");
    assert_eq!(ids(&named), vec![refs[2].clone(), refs[0].clone()]);
    // Jurisdictions scope the list to their subtree.
    let mut sibling = w.complaint("鲁甸县的事");
    sibling["jurisdiction_code"] = json!("530621");
    let sibling = w.app.post("/api/v1/cases", &w.admin, sibling).expect(201)["ref"].as_str().expect("r").to_owned();
    let (ludian, _) = fetch(&w.app, "/open311/v2/requests", "jurisdiction_id=530621", 200, "service_requests");
    assert_eq!(ids(&ludian), vec![sibling.clone()]);
    let (city, _) = fetch(&w.app, "/open311/v2/requests", "jurisdiction_id=530600", 200, "service_requests");
    assert_eq!(ids(&city).len(), 6);

    // Pages (newest first, disjoint), at most 1000 long.
    let mut paged = Vec::new();
    for page in 1..=4 {
        let (items, _) = fetch(
            &w.app,
            "/open311/v2/requests",
            &format!("page_size=2&page={page}&jurisdiction_id=530602"),
            200,
            "service_requests",
        );
        paged.extend(ids(&items));
    }
    assert_eq!(paged, newest_first);

    // The window: the last 90 days unless asked; a case 100 days old shows only when asked for.
    {
        use diesel::prelude::*;
        use minsheng::db::schema::cases;
        let mut conn = minsheng::db::ConnectionFactory::new(&w.app.database_url, 5000).open().expect("db");
        let old = (Utc::now() - chrono::Duration::days(100)).naive_utc();
        diesel::update(cases::table.filter(cases::case_ref.eq(&refs[4])))
            .set(cases::created_at.eq(old))
            .execute(&mut conn)
            .expect("age a case");
    }
    let (recent, _) = fetch(&w.app, "/open311/v2/requests", "jurisdiction_id=530602", 200, "service_requests");
    assert!(!ids(&recent).contains(&refs[4]));
    assert_eq!(ids(&recent).len(), 4);
    let start = (Utc::now() - chrono::Duration::days(110)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let (aged, _) = fetch(&w.app, "/open311/v2/requests", &format!("start_date={start}"), 200, "service_requests");
    assert_eq!(ids(&aged), vec![refs[4].clone()]);
    let end = (Utc::now() - chrono::Duration::days(95)).format("%Y-%m-%dT%H:%M+00:00").to_string();
    let (aged, _) = fetch(
        &w.app,
        "/open311/v2/requests",
        &format!("end_date={}", end.replace('+', "%2B")),
        200,
        "service_requests",
    );
    assert_eq!(ids(&aged), vec![refs[4].clone()]);
    let (by_id, _) =
        fetch(&w.app, "/open311/v2/requests", &format!("service_request_id={}", refs[4]), 200, "service_requests");
    assert_eq!(ids(&by_id), vec![refs[4].clone()]);
    let future = (Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M:%S%%2B08:00").to_string();
    let (none, xml) = fetch(&w.app, "/open311/v2/requests", &format!("start_date={future}"), 200, "service_requests");
    assert_eq!(none, json!([]));
    assert!(xml.contains("<service_requests/>"), "{xml}");

    // Bad parameters: 400 in the spec's format, every one named.
    for (query, fragments) in [
        ("start_date=2026-01-01T00:00:00Z&end_date=2026-06-01T00:00:00Z", &["more than 90 days"][..]),
        ("start_date=2026-06-01T00:00:00Z&end_date=2026-01-01T00:00:00Z", &["end_date"][..]),
        ("start_date=2026-01-01", &["start_date: must be a W3C datetime with a timezone"][..]),
        ("end_date=2026-01-01T00:00:00", &["end_date: must be a W3C datetime with a timezone"][..]),
        ("status=pending", &["unknown status pending"][..]),
        ("page_size=0&page=0", &["page_size", "page:"][..]),
        ("page_size=1001", &["page_size"][..]),
        ("jurisdiction_id=1234567890123", &["jurisdiction_id"][..]),
    ] {
        for ext in ["json", "xml"] {
            let r = get(&w.app, &format!("/open311/v2/requests.{ext}?{query}"));
            assert_errors(&r, ext == "xml", 400, fragments);
        }
    }
    for ext in ["json", "xml"] {
        let r = get(&w.app, &format!("/open311/v2/requests.{ext}?jurisdiction_id=777777"));
        assert_errors(&r, ext == "xml", 404, &["jurisdiction_id 777777 not found"]);
    }
}

/// List parameters count characters, as the contract's lengths do (found by Schemathesis: a code
/// of 20 Chinese characters, 60 bytes, was refused as longer than 32).
fn list_parameters_count_characters(b: Backend) {
    let w = World::new(b);
    let encode = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
    let code = encode(&"饮".repeat(32));
    let r = get(&w.app, &format!("/open311/v2/requests.json?service_code={code}"));
    assert_eq!(r.status, 200, "{}", r.text);
    let id = encode(&"号".repeat(64));
    let r = get(&w.app, &format!("/open311/v2/requests.json?service_request_id={id}"));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = get(&w.app, &format!("/open311/v2/requests.json?service_code={code}{}", encode("饮")));
    assert_errors(&r, false, 400, &["service_code: at most 100 codes of at most 32 characters"]);
}

both!(
    list_parameters_count_characters,
    discovery_services_and_definitions,
    a_post_files_a_real_case,
    post_errors_follow_the_spec,
    requests_follow_their_cases_and_publish_no_personal_data,
    request_queries_filter_window_and_page,
);
