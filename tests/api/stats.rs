//! Statistics against an independent recomputation: random case histories go through the API
//! (every action, reworks, dismissals, reopenings, extensions, deadlines passing mid-run, several
//! threads at once), then every figure the service reports — summary, filtered summaries that take
//! the kept sums and ones that scan, every breakdown — is checked against the same figures computed
//! here from nothing but each case's audit trail.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::support::{Backend, World, PASSWORD};

fn ts(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("timestamp")).expect("rfc3339").with_timezone(&Utc)
}

/// A case as recomputed from its events.
#[derive(Debug, Clone)]
struct Replayed {
    jurisdiction: String,
    category: String,
    kind: String,
    programme: Option<String>,
    department: Option<String>,
    created_at: DateTime<Utc>,
    due_at: DateTime<Utc>,
    status: String,
    outcome: Option<String>,
    first_assigned: Option<DateTime<Utc>>,
    first_ack: Option<DateTime<Utc>>,
    resolved: Option<(DateTime<Utc>, bool)>,
    satisfaction: Option<String>,
}

fn replay(case: &Value, events: &Value) -> Replayed {
    let mut r = Replayed {
        jurisdiction: case["jurisdiction_code"].as_str().expect("j").to_owned(),
        category: case["category_code"].as_str().expect("c").to_owned(),
        kind: case["kind"].as_str().expect("k").to_owned(),
        programme: case["programme_id"].as_str().map(str::to_owned),
        department: None,
        created_at: ts(&case["created_at"]),
        due_at: ts(&case["created_at"]),
        status: "received".to_owned(),
        outcome: None,
        first_assigned: None,
        first_ack: None,
        resolved: None,
        satisfaction: None,
    };
    for e in events["items"].as_array().expect("events") {
        let at = ts(&e["at"]);
        let d = &e["data"];
        match e["action"].as_str().expect("action") {
            "create" => r.due_at = ts(&d["due_at"]),
            "assign" | "reassign" => {
                r.department = d["department_id"].as_str().map(str::to_owned);
                r.first_assigned.get_or_insert(at);
            }
            "acknowledge" => {
                r.first_ack.get_or_insert(at);
            }
            "return" => r.department = None,
            "resolve" => r.resolved = Some((at, at <= r.due_at)),
            "verify" => r.satisfaction = d["satisfaction"].as_str().map(str::to_owned),
            "reject" => {
                r.resolved = None;
                if let Some(s) = d["satisfaction"].as_str() {
                    r.satisfaction = Some(s.to_owned());
                }
            }
            "close" => r.outcome = Some("completed".to_owned()),
            "dismiss" => r.outcome = d["outcome"].as_str().map(str::to_owned),
            "reopen" => {
                r.first_assigned.get_or_insert(at);
                r.outcome = None;
                r.resolved = None;
                r.satisfaction = None;
                r.department = d["department_id"].as_str().map(str::to_owned);
                r.due_at = ts(&d["due_at"]);
            }
            "extend" => r.due_at = ts(&d["due_at"]),
            _ => {}
        }
        r.status = e["to_status"].as_str().expect("to").to_owned();
    }
    r
}

/// The figures of a set of cases, computed from the definitions in the product brief.
fn figures(cases: &[&Replayed], now: DateTime<Utc>, window: Duration) -> Value {
    let reached = |c: &Replayed| {
        matches!(c.status.as_str(), "resolved" | "verified")
            || (c.status == "closed" && c.outcome.as_deref() == Some("completed"))
    };
    let total = cases.len() as i64;
    let dismissed =
        cases.iter().filter(|c| c.status == "closed" && c.outcome.as_deref() != Some("completed")).count() as i64;
    let effective = total - dismissed;
    let resolved: Vec<&&Replayed> = cases.iter().filter(|c| reached(c)).collect();
    let completed = cases
        .iter()
        .filter(|c| c.status == "verified" || (c.status == "closed" && c.outcome.as_deref() == Some("completed")))
        .count() as i64;
    let on_time = resolved.iter().filter(|c| c.resolved.is_some_and(|(_, ok)| ok)).count() as i64;
    let overdue =
        cases.iter().filter(|c| matches!(c.status.as_str(), "received" | "assigned") && c.due_at < now).count() as i64;
    let assigned = cases.iter().filter(|c| c.first_assigned.is_some()).count() as i64;
    let responded = cases
        .iter()
        .filter(|c| matches!((c.first_assigned, c.first_ack), (Some(a), Some(k)) if k - a <= window))
        .count() as i64;
    let rated = cases
        .iter()
        .filter(|c| matches!(c.satisfaction.as_deref(), Some("satisfied" | "basically_satisfied" | "unsatisfied")))
        .count() as i64;
    let satisfied =
        cases.iter().filter(|c| matches!(c.satisfaction.as_deref(), Some("satisfied" | "basically_satisfied"))).count()
            as i64;
    let round = |x: f64, p: i32| (x * 10f64.powi(p)).round() / 10f64.powi(p);
    let rate = |n: i64, d: i64| json!({"value": if d == 0 { Value::Null } else { json!(round(n as f64 / d as f64, 4)) }, "numerator": n, "denominator": d});
    let secs: Vec<i64> =
        resolved.iter().filter_map(|c| c.resolved.map(|(at, _)| (at - c.created_at).num_seconds())).collect();
    let mut hours: Vec<i64> = secs.iter().map(|s| s / 3600).collect();
    hours.sort();
    let n = hours.len();
    let median =
        if n == 0 { Value::Null } else { json!(round((hours[n.div_ceil(2) - 1] + hours[n / 2]) as f64 / 2.0, 2)) };
    let mean = if n == 0 { Value::Null } else { json!(round(secs.iter().sum::<i64>() as f64 / n as f64 / 3600.0, 2)) };
    json!({
        "total": total, "dismissed": dismissed, "effective": effective,
        "resolution_rate": rate(resolved.len() as i64, effective),
        "completion_rate": rate(completed, effective),
        "on_time_rate": rate(on_time, resolved.len() as i64),
        "overdue": overdue,
        "response_rate": rate(responded, assigned),
        "satisfaction_rate": rate(satisfied, rated),
        "resolution_hours": {"median": median, "mean": mean},
    })
}

/// Numbers compared as numbers (the service may write 1 as 1.0).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            (x.as_f64().unwrap_or(f64::NAN) - y.as_f64().unwrap_or(f64::NAN)).abs() < 1e-9
        }
        (Value::Object(x), Value::Object(y)) => x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w))),
        _ => a == b,
    }
}

#[track_caller]
fn check(what: &str, got: &Value, expected: &Value) {
    let keys = [
        "total",
        "dismissed",
        "effective",
        "resolution_rate",
        "completion_rate",
        "on_time_rate",
        "overdue",
        "response_rate",
        "satisfaction_rate",
        "resolution_hours",
    ];
    for k in keys {
        assert!(same(&got[k], &expected[k]), "{what}: {k} is {} but the events say {}", got[k], expected[k]);
    }
}

/// Takes random allowed actions on a set of cases.
fn walk(w: &World, ids: &[String], steps: usize, seed: u64, workers: &BTreeMap<String, Vec<String>>, sibling: &str) {
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..steps {
        let id = &ids[rng.gen_range(0..ids.len())];
        let case = w.app.get(&format!("/api/v1/cases/{id}"), &w.admin).expect(200).clone();
        let in_sibling = case["jurisdiction_code"] == "530621";
        let sup = if in_sibling {
            w.sibling_supervisor.clone()
        } else if rng.gen_bool(0.5) {
            w.supervisor.clone()
        } else {
            w.supervisor2.clone()
        };
        let depts: Vec<String> =
            if in_sibling { vec![sibling.to_owned()] } else { vec![w.water.clone(), w.roads.clone()] };
        let dept = depts[rng.gen_range(0..depts.len())].clone();
        let holder = case["department_id"].as_str().map(|d| workers[d][rng.gen_range(0..workers[d].len())].clone());
        let allowed: Vec<String> = case["allowed_actions"]
            .as_array()
            .expect("allowed")
            .iter()
            .map(|a| a.as_str().expect("a").to_owned())
            .collect();
        let action = allowed[rng.gen_range(0..allowed.len())].clone();
        let due_later = (ts(&case["due_at"]) + Duration::seconds(rng.gen_range(1..4))).to_rfc3339();
        let sats = ["satisfied", "basically_satisfied", "not_rated"];
        let (token, body) = match action.as_str() {
            "assign" | "reassign" => (sup, json!({"department_id": dept})),
            "acknowledge" | "return" | "resolve" => match holder {
                Some(t) => (t, json!({"reason": "不属本单位", "resolution": "已办结"})),
                None => continue,
            },
            "verify" => (sup, json!({"satisfaction": sats[rng.gen_range(0..3)]})),
            "reject" => (
                sup,
                json!({"reason": "群众不满意", "satisfaction": if rng.gen_bool(0.5) { json!("unsatisfied") } else { Value::Null }}),
            ),
            "close" => (sup, json!({})),
            "dismiss" => {
                let outcomes = ["invalid", "withdrawn", "out_of_scope"];
                (sup, json!({"outcome": outcomes[rng.gen_range(0..3)], "reason": "核实后不予受理"}))
            }
            "reopen" => {
                let due = if rng.gen_bool(0.5) {
                    json!((Utc::now() + Duration::seconds(2)).to_rfc3339())
                } else {
                    Value::Null
                };
                (sup, json!({"reason": "群众再次反映", "department_id": dept, "due_at": due}))
            }
            "extend" => (sup, json!({"due_at": due_later, "reason": "需协调"})),
            _ => (sup, json!({"text": "跟进"})),
        };
        let r = w.act(&token, id, &action, body);
        // Another thread may have moved the case first (even to another department, which its
        // caseworkers then cannot see); anything else is a failure.
        let code = r.body["code"].as_str().unwrap_or("");
        // An extension raced by another extension is no longer later: refused, rightly.
        let later_deadline_raced = action == "extend" && r.body["errors"][0]["code"] == "not_later";
        let raced = ["invalid_transition", "already_acknowledged", "not_found"].contains(&code) || later_deadline_raced;
        assert!(r.status == 200 || raced, "{action}: {}", r.text);
    }
}

fn figures_agree_with_the_audit_trail(b: Backend) {
    let window = Duration::seconds(2);
    let w = Arc::new(World::new_with(b, |c| c.response_window = std::time::Duration::from_secs(2)));
    let admin = w.admin.clone();
    // A township below 昭阳区, so sums roll up through several levels; a caseworker in 鲁甸县.
    w.app
        .post(
            "/api/v1/jurisdictions",
            &admin,
            json!({"code": "530602001", "name": "凤凰街道", "parent_code": "530602"}),
        )
        .expect(201);
    w.app.post("/api/v1/users", &admin, json!({"username": "ld_water", "password": PASSWORD, "role": "caseworker", "jurisdiction_code": "530621", "department_id": w.sibling_dept})).expect(201);
    let ld_water = w.app.login("ld_water", PASSWORD);
    let prog = w
        .app
        .post(
            "/api/v1/programmes",
            &admin,
            json!({"name": "2026年为民办实事", "year": 2026, "jurisdiction_code": "530600"}),
        )
        .expect(201)["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut workers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    workers.insert(w.water.clone(), vec![w.water_worker.clone(), w.water_worker2.clone()]);
    workers.insert(w.roads.clone(), vec![w.roads_worker.clone()]);
    workers.insert(w.sibling_dept.clone(), vec![ld_water]);

    let mut rng = StdRng::seed_from_u64(match b {
        Backend::Sqlite => 7,
        Backend::Postgres => 11,
    });
    let mut ids = Vec::new();
    for i in 0..36 {
        let jurisdiction = ["530602", "530602001", "530621"][i % 3];
        let mut body = w.complaint(&format!("随机案件{i}"));
        body["jurisdiction_code"] = json!(jurisdiction);
        body["category_code"] = json!(if rng.gen_bool(0.5) { "drinking_water" } else { "transport" });
        body["kind"] = json!(if rng.gen_bool(0.3) { "project" } else { "complaint" });
        if rng.gen_bool(0.4) {
            body["programme_id"] = json!(prog);
        }
        if rng.gen_bool(0.4) {
            // Due in a moment: resolved late, or overdue, once the run passes it.
            body["due_at"] = json!((Utc::now() + Duration::seconds(rng.gen_range(2..5))).to_rfc3339());
        }
        ids.push(w.app.post("/api/v1/cases", &admin, body).expect(201)["id"].as_str().expect("id").to_owned());
    }
    // Three threads on overlapping cases, before and after the short deadlines pass.
    let run = |seed: u64, steps: usize| {
        let handles: Vec<_> = (0..3)
            .map(|t| {
                let (w, ids, workers, sibling) = (Arc::clone(&w), ids.clone(), workers.clone(), w.sibling_dept.clone());
                std::thread::spawn(move || walk(&w, &ids, steps, seed + t, &workers, &sibling))
            })
            .collect();
        for h in handles {
            h.join().expect("walker");
        }
    };
    run(100, 30);
    std::thread::sleep(std::time::Duration::from_millis(5200));
    run(200, 30);

    let replay_all = || -> Vec<Replayed> {
        ids.iter()
            .map(|id| {
                let case = w.app.get(&format!("/api/v1/cases/{id}"), &admin).expect(200).clone();
                let events = w.app.get(&format!("/api/v1/cases/{id}/events"), &admin).expect(200).clone();
                replay(&case, &events)
            })
            .collect()
    };
    // Reopenings and extensions may have set deadlines seconds ahead: let them pass, so that
    // "overdue" cannot change between the recomputation and the service's answers.
    let soon = replay_all()
        .iter()
        .map(|c| c.due_at)
        .filter(|d| *d > Utc::now() && *d < Utc::now() + Duration::minutes(1))
        .max();
    if let Some(due) = soon {
        std::thread::sleep((due - Utc::now() + Duration::milliseconds(300)).to_std().unwrap_or_default());
    }
    let all = replay_all();
    let now = Utc::now();
    let paths: BTreeMap<&str, &str> =
        [("530602", "530600/530602"), ("530602001", "530600/530602/530602001"), ("530621", "530600/530621")]
            .into_iter()
            .collect();
    let under = |c: &Replayed, code: &str| paths[c.jurisdiction.as_str()].split('/').any(|p| p == code);
    let pick = |pred: &dyn Fn(&Replayed) -> bool| all.iter().filter(|c| pred(c)).collect::<Vec<_>>();
    let get = |q: &str| w.app.get(&format!("/api/v1/stats/{q}"), &admin).expect(200).clone();

    check("whole tree", &get("summary"), &figures(&pick(&|_| true), now, window));
    check("昭阳区", &get("summary?jurisdiction_code=530602"), &figures(&pick(&|c| under(c, "530602")), now, window));
    check(
        "township",
        &get("summary?jurisdiction_code=530602001"),
        &figures(&pick(&|c| under(c, "530602001")), now, window),
    );
    check(
        "category",
        &get("summary?category_code=transport"),
        &figures(&pick(&|c| c.category == "transport"), now, window),
    );
    check(
        "kind",
        &get("summary?kind=project&jurisdiction_code=530602"),
        &figures(&pick(&|c| c.kind == "project" && under(c, "530602")), now, window),
    );
    check(
        "department",
        &get(&format!("summary?department_id={}", w.water)),
        &figures(&pick(&|c| c.department.as_deref() == Some(w.water.as_str())), now, window),
    );
    check(
        "programme",
        &get(&format!("summary?programme_id={prog}")),
        &figures(&pick(&|c| c.programme.as_deref() == Some(prog.as_str())), now, window),
    );
    // Two filters at once take the scanning path; it must agree too.
    check(
        "category+kind",
        &get("summary?category_code=drinking_water&kind=complaint"),
        &figures(&pick(&|c| c.category == "drinking_water" && c.kind == "complaint"), now, window),
    );
    check(
        "department+category",
        &get(&format!("summary?department_id={}&category_code=transport", w.roads)),
        &figures(
            &pick(&|c| c.department.as_deref() == Some(w.roads.as_str()) && c.category == "transport"),
            now,
            window,
        ),
    );
    let month = (now + Duration::hours(8)).format("%Y-%m").to_string();
    check(
        "period",
        &get(&format!("summary?period=created&from={month}&to={month}")),
        &figures(&pick(&|_| true), now, window),
    );
    let empty = get("summary?period=due&from=2001-01&to=2001-12");
    assert_eq!(empty["total"], 0);
    assert_eq!(empty["resolution_rate"]["value"], Value::Null);

    // Breakdowns: every group against the recomputation of its members.
    let groups = |q: &str| -> BTreeMap<String, Value> {
        get(&format!("breakdown?{q}"))["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .map(|g| (g["key"].as_str().expect("key").to_owned(), g.clone()))
            .collect()
    };
    let by_j = groups("by=jurisdiction&jurisdiction_code=530600");
    assert_eq!(by_j.keys().collect::<Vec<_>>(), vec!["530602", "530621"]);
    for (code, g) in &by_j {
        check(&format!("breakdown {code}"), g, &figures(&pick(&|c| under(c, code)), now, window));
    }
    assert_eq!(by_j["530602"]["name"], "昭阳区");
    // Below 昭阳区: its township, and the cases logged at 昭阳区 itself as a group of their own.
    let own = groups("by=jurisdiction&jurisdiction_code=530602");
    assert_eq!(own.keys().collect::<Vec<_>>(), vec!["530602", "530602001"]);
    assert_eq!(own["530602"]["name"], "昭阳区（本级）");
    check("昭阳区 itself", &own["530602"], &figures(&pick(&|c| c.jurisdiction == "530602"), now, window));
    check("凤凰街道", &own["530602001"], &figures(&pick(&|c| c.jurisdiction == "530602001"), now, window));
    // With two filters the same breakdown is computed from the cases; it must agree.
    let scanned = groups("by=jurisdiction&jurisdiction_code=530602&category_code=transport&kind=complaint");
    for (code, g) in &scanned {
        let want = figures(
            &pick(&|c| c.jurisdiction == *code && c.category == "transport" && c.kind == "complaint"),
            now,
            window,
        );
        check(&format!("scanned {code}"), g, &want);
    }
    for (key, g) in groups("by=category") {
        check(&format!("category {key}"), &g, &figures(&pick(&|c| c.category == key), now, window));
    }
    for (key, g) in groups("by=department") {
        check(
            &format!("department {key}"),
            &g,
            &figures(&pick(&|c| c.department.as_deref() == Some(key.as_str())), now, window),
        );
    }
    for (key, g) in groups("by=programme") {
        check(
            &format!("programme {key}"),
            &g,
            &figures(&pick(&|c| c.programme.as_deref() == Some(key.as_str())), now, window),
        );
    }
    // With a period, department, programme and category figures come from the monthly rows
    // (departments and programmes: of every jurisdiction in scope); without one, from the
    // all-time rows. Both must agree with the trail, at the top and below it.
    let period = format!("period=created&from={month}&to={month}");
    for q in [format!("by=department&{period}"), "by=department&jurisdiction_code=530602".to_owned()] {
        for (key, g) in groups(&q) {
            let want =
                pick(&|c| c.department.as_deref() == Some(key.as_str()) && (q.contains(&period) || under(c, "530602")));
            check(&format!("{q}: department {key}"), &g, &figures(&want, now, window));
        }
    }
    for (key, g) in groups(&format!("by=programme&jurisdiction_code=530602&{period}")) {
        let want = pick(&|c| c.programme.as_deref() == Some(key.as_str()) && under(c, "530602"));
        check(&format!("programme {key} with a period"), &g, &figures(&want, now, window));
    }
    for (key, g) in groups(&format!("by=category&{period}")) {
        check(&format!("category {key} with a period"), &g, &figures(&pick(&|c| c.category == key), now, window));
    }
    check(
        "department with a period",
        &get(&format!("summary?department_id={}&{period}", w.water)),
        &figures(&pick(&|c| c.department.as_deref() == Some(w.water.as_str())), now, window),
    );
    for q in [format!("department_id={}", w.water), format!("department_id={}&{period}", w.water)] {
        for (code, g) in groups(&format!("by=jurisdiction&jurisdiction_code=530602&{q}")) {
            let want = pick(&|c| c.jurisdiction == code && c.department.as_deref() == Some(w.water.as_str()));
            check(&format!("{q}: jurisdiction {code}"), &g, &figures(&want, now, window));
        }
    }
    for (key, g) in groups("by=month&period=due") {
        check(
            &format!("due month {key}"),
            &g,
            &figures(&pick(&|c| (c.due_at + Duration::hours(8)).format("%Y-%m").to_string() == key), now, window),
        );
    }
    for (key, g) in groups("by=category&kind=complaint") {
        check(
            &format!("category {key}, complaints"),
            &g,
            &figures(&pick(&|c| c.category == key && c.kind == "complaint"), now, window),
        );
    }
    // The histories really went through the interesting places.
    let statuses: std::collections::BTreeSet<&str> = all.iter().map(|c| c.status.as_str()).collect();
    assert!(statuses.len() >= 4, "{statuses:?}");
}

fn statistics_stay_in_scope(b: Backend) {
    let w = World::new(b);
    w.new_case("昭阳区的案件");
    let mut body = w.complaint("鲁甸县的案件");
    body["jurisdiction_code"] = json!("530621");
    w.app.post("/api/v1/cases", &w.admin, body).expect(201);
    let total =
        |token: &str, q: &str| w.app.get(&format!("/api/v1/stats/summary{q}"), token).expect(200)["total"].clone();
    assert_eq!(total(&w.admin, ""), 2);
    assert_eq!(total(&w.supervisor, ""), 1);
    assert_eq!(total(&w.viewer, ""), 1);
    assert_eq!(total(&w.sibling_supervisor, ""), 1);
    // A filter cannot widen the scope, and naming what is out of scope is refused like unknown.
    assert_eq!(
        w.app.get("/api/v1/stats/summary?jurisdiction_code=530621", &w.supervisor).bad_fields(),
        vec!["jurisdiction_code"]
    );
    assert_eq!(
        w.app.get(&format!("/api/v1/stats/summary?department_id={}", w.sibling_dept), &w.supervisor).bad_fields(),
        vec!["department_id"]
    );
    let groups = w.app.get("/api/v1/stats/breakdown?by=department", &w.sibling_supervisor).expect(200).clone();
    assert!(!groups.to_string().contains(&w.water), "{groups}");
    let by_j = w.app.get("/api/v1/stats/breakdown?by=jurisdiction", &w.supervisor).expect(200).clone();
    let own: Vec<&str> =
        by_j["groups"].as_array().expect("groups").iter().map(|g| g["key"].as_str().expect("k")).collect();
    assert_eq!(own, vec!["530602"], "昭阳区 has no children, only its own cases: {by_j}");
    // Caseworkers and integration clients do not read statistics; bad parameters are 422.
    w.app.get("/api/v1/stats/summary", &w.water_worker).expect_problem(403, "role_not_permitted");
    let r = w.app.get("/api/v1/stats/summary?period=yesterday&from=2026-13&to=26-01&kind=rumour", &w.admin);
    assert_eq!(r.bad_fields(), vec!["from", "kind", "period", "to"]);
    assert_eq!(w.app.get("/api/v1/stats/breakdown", &w.admin).bad_fields(), vec!["by"]);
    assert_eq!(w.app.get("/api/v1/stats/breakdown?by=weather", &w.admin).bad_fields(), vec!["by"]);
    assert_eq!(w.app.get("/api/v1/stats/summary?from=2026-05&to=2026-01", &w.admin).bad_fields(), vec!["to"]);
}

fn overdue_list_and_programme_progress(b: Backend) {
    let w = World::new(b);
    let prog = w
        .app
        .post(
            "/api/v1/programmes",
            &w.admin,
            json!({"name": "2026年为民办实事", "year": 2026, "jurisdiction_code": "530602"}),
        )
        .expect(201)["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut soon = Vec::new();
    for i in 0..3 {
        let mut body = w.complaint(&format!("即将逾期{i}"));
        body["due_at"] = json!((Utc::now() + Duration::milliseconds(1500 + 300 * i)).to_rfc3339());
        body["programme_id"] = json!(prog);
        soon.push(w.app.post("/api/v1/cases", &w.supervisor, body).expect(201)["id"].as_str().expect("id").to_owned());
    }
    let mut later = w.complaint("不逾期");
    later["programme_id"] = json!(prog);
    let done = w.app.post("/api/v1/cases", &w.supervisor, later).expect(201)["id"].as_str().expect("id").to_owned();
    w.ok(&w.supervisor, &soon[1], "assign", json!({"department_id": w.water}));
    w.ok(&w.supervisor, &done, "assign", json!({"department_id": w.water}));
    w.ok(&w.water_worker, &done, "resolve", json!({"resolution": "已完成"}));
    w.ok(&w.supervisor, &done, "verify", json!({"satisfaction": "satisfied"}));
    std::thread::sleep(std::time::Duration::from_millis(2400));
    // Oldest deadline first, paged, with the department and days overdue; nothing personal.
    let first = w.app.get("/api/v1/stats/overdue?limit=2", &w.supervisor).expect(200).clone();
    let ids: Vec<&str> =
        first["items"].as_array().expect("items").iter().map(|c| c["id"].as_str().expect("id")).collect();
    assert_eq!(ids, vec![soon[0].as_str(), soon[1].as_str()]);
    assert_eq!(first["items"][1]["department_name"], "区水务局");
    assert_eq!(first["items"][0]["days_overdue"], 0);
    assert!(first["items"][0].get("complainant").is_none());
    let cursor = first["next_cursor"].as_str().expect("more");
    let rest = w.app.get(&format!("/api/v1/stats/overdue?limit=2&cursor={cursor}"), &w.supervisor).expect(200).clone();
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(1));
    assert!(rest["next_cursor"].is_null());
    let by_dept =
        w.app.get(&format!("/api/v1/stats/overdue?department_id={}", w.water), &w.supervisor).expect(200).clone();
    assert_eq!(by_dept["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        w.app.get("/api/v1/stats/overdue", &w.sibling_supervisor).expect(200)["items"].as_array().map(Vec::len),
        Some(0)
    );
    w.app.get("/api/v1/stats/overdue?cursor=bm9wZQ", &w.supervisor).expect_problem(422, "validation_failed");
    // The programme's progress.
    let progress = w.app.get(&format!("/api/v1/programmes/{prog}/progress"), &w.supervisor).expect(200).clone();
    assert_eq!(progress["items"], 4);
    assert_eq!(progress["completed"], 1);
    assert_eq!(progress["completion_rate"], json!({"value": 0.25, "numerator": 1, "denominator": 4}));
    assert_eq!(progress["overdue"], 3);
    assert_eq!(progress["programme"]["name"], "2026年为民办实事");
    assert_eq!(progress["figures"]["satisfaction_rate"]["numerator"], 1);
    w.app.get(&format!("/api/v1/programmes/{prog}/progress"), &w.sibling_supervisor).expect_problem(404, "not_found");
}

fn ledgers_stream_as_csv(b: Backend) {
    let w = World::new_with(b, |c| c.export_batch = 3);
    let prog = w
        .app
        .post("/api/v1/programmes", &w.admin, json!({"name": "实事清单", "year": 2026, "jurisdiction_code": "530602"}))
        .expect(201)["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut refs = Vec::new();
    for i in 0..8 {
        let mut body = w.complaint(&format!("新增病床{i}张, \"扩建\""));
        if i == 0 {
            body["title"] = json!("=HYPERLINK(\"http://evil\")");
        }
        body["programme_id"] = json!(prog);
        refs.push(
            w.app.post("/api/v1/cases", &w.supervisor, body).expect(201)["ref"].as_str().expect("ref").to_owned(),
        );
    }
    w.new_case("不在清单里");
    let r = w.app.call("GET", &format!("/api/v1/programmes/{prog}/ledger.csv"), Some(&w.supervisor), None, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(r.header("content-disposition").is_some_and(|d| d.contains("attachment")));
    assert!(r.text.starts_with('\u{feff}'), "a UTF-8 byte-order mark first");
    let lines: Vec<&str> = r.text.trim_start_matches('\u{feff}').split("\r\n").filter(|l| !l.is_empty()).collect();
    assert!(lines[0].starts_with("ref,title,kind,category_code"));
    // Eight rows across three batches of three, newest first, none twice, none missing.
    assert_eq!(lines.len(), 9, "{}", r.text);
    let mut got: Vec<&str> = lines[1..].iter().map(|l| l.split(',').next().expect("ref")).collect();
    got.sort();
    let mut want: Vec<&str> = refs.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(got, want);
    assert!(r.text.contains("\"新增病床1张, \"\"扩建\"\"\""), "quoted per RFC 4180");
    assert!(r.text.contains("'=HYPERLINK"), "formulas are defused");
    assert!(!r.text.contains("13812345678") && !r.text.contains("张三丰"), "no personal data");
    // The same export for any filtered list; scope and filters apply.
    let r = w.app.call("GET", "/api/v1/cases.csv?q=%E4%B8%8D%E5%9C%A8", Some(&w.supervisor), None, &[]);
    assert_eq!(r.text.trim_start_matches('\u{feff}').split("\r\n").filter(|l| !l.is_empty()).count(), 2);
    let r = w.app.call("GET", "/api/v1/cases.csv", Some(&w.sibling_supervisor), None, &[]);
    assert_eq!(r.text.trim_start_matches('\u{feff}').split("\r\n").filter(|l| !l.is_empty()).count(), 1, "header only");
    w.app.get(&format!("/api/v1/programmes/{prog}/ledger.csv"), &w.sibling_supervisor).expect_problem(404, "not_found");
    assert_eq!(w.app.get("/api/v1/cases.csv?status=lost", &w.supervisor).bad_fields(), vec!["status"]);
}

fn seeded_demo_data_agrees_with_its_events(b: Backend) {
    let app = crate::support::TestApp::start(b);
    {
        let state = minsheng::init_state(crate::support::test_config(&app.database_url)).expect("state");
        let mut conn = state.pool.get().expect("conn");
        let plan =
            minsheng::seed::SeedPlan { cases: 300, cities: 2, counties_per_city: 2, townships_per_county: 2, seed: 5 };
        let report = minsheng::seed::seed(&mut conn, &plan, |_| {}).expect("seed");
        assert_eq!(report.cases, 300);
        // Seeding twice is refused rather than doubling the data.
        assert!(minsheng::seed::seed(&mut conn, &plan, |_| {}).is_err());
    }
    app.create_admin("root", PASSWORD, None);
    let admin = app.login("root", PASSWORD);
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/cases?limit=200&cursor={c}"),
            None => "/api/v1/cases?limit=200".to_owned(),
        };
        let page = app.get(&path, &admin).expect(200).clone();
        for case in page["items"].as_array().expect("items") {
            let events = app
                .get(&format!("/api/v1/cases/{}/events", case["id"].as_str().expect("id")), &admin)
                .expect(200)
                .clone();
            all.push(replay(case, &events));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(all.len(), 300);
    let now = Utc::now();
    let window = Duration::hours(24);
    let everything: Vec<&Replayed> = all.iter().collect();
    check(
        "seeded province",
        &app.get("/api/v1/stats/summary", &admin).expect(200).clone(),
        &figures(&everything, now, window),
    );
    let by_city =
        app.get("/api/v1/stats/breakdown?by=jurisdiction&jurisdiction_code=530000", &admin).expect(200).clone();
    for g in by_city["groups"].as_array().expect("groups") {
        let city = g["key"].as_str().expect("key");
        let members: Vec<&Replayed> = all.iter().filter(|c| c.jurisdiction.starts_with(&city[..4])).collect();
        check(&format!("seeded city {city}"), g, &figures(&members, now, window));
    }
    let median = app.get("/api/v1/stats/summary", &admin).expect(200)["resolution_hours"]["median"].clone();
    assert!(median.as_f64().is_some_and(|m| m > 1.0), "seeded durations span hours: {median}");
}

/// The figures without `overdue`, which moves with the clock (a seeded deadline may pass while
/// the test runs) and is never kept.
fn without_overdue(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter().filter(|(k, _)| k.as_str() != "overdue").map(|(k, v)| (k.clone(), without_overdue(v))).collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_overdue).collect()),
        other => other.clone(),
    }
}

fn rebuild_stats_restores_the_kept_sums(b: Backend) {
    use diesel::connection::SimpleConnection;
    let app = crate::support::TestApp::start(b);
    let state = minsheng::init_state(crate::support::test_config(&app.database_url)).expect("state");
    {
        let mut conn = state.pool.get().expect("conn");
        let plan =
            minsheng::seed::SeedPlan { cases: 400, cities: 2, counties_per_city: 2, townships_per_county: 2, seed: 11 };
        minsheng::seed::seed(&mut conn, &plan, |_| {}).expect("seed");
    }
    app.create_admin("root", PASSWORD, None);
    let admin = app.login("root", PASSWORD);
    let views = [
        "/api/v1/stats/summary",
        "/api/v1/stats/summary?period=due",
        "/api/v1/stats/summary?kind=project",
        "/api/v1/stats/breakdown?by=jurisdiction&jurisdiction_code=530000",
        "/api/v1/stats/breakdown?by=jurisdiction&jurisdiction_code=530101",
        "/api/v1/stats/breakdown?by=department&jurisdiction_code=530101",
        "/api/v1/stats/breakdown?by=category",
        "/api/v1/stats/breakdown?by=programme",
        "/api/v1/stats/breakdown?by=month",
    ];
    let figures = || views.iter().map(|p| without_overdue(app.get(p, &admin).expect(200))).collect::<Vec<_>>();
    let before = figures();
    assert!(before[0]["total"] == json!(400) && before[0]["resolution_hours"]["median"].is_number());

    // A bad restore: the province's sums gone, every other sum off, the hour histogram gone, and
    // every case's kept facts contradicting its audit trail.
    state
        .pool
        .get()
        .expect("conn")
        .batch_execute(
            "DELETE FROM case_stats WHERE node = '530000';
             UPDATE case_stats SET total = total + 3, resolved = resolved + 1;
             DELETE FROM case_stats_histogram;
             UPDATE cases SET responded = NOT responded, resolution_secs = NULL, first_assigned_at = NULL",
        )
        .expect("corrupt");
    assert_ne!(figures(), before, "the damage shows in the figures");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_minsheng"))
        .arg("rebuild-stats")
        .env("DATABASE_URL", &app.database_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run minsheng rebuild-stats");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "rebuild-stats failed: {stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("rebuilt the statistics of 400 cases (400 with corrected facts)"), "{stdout}");
    let after = figures();
    for ((view, b), a) in views.iter().zip(&before).zip(&after) {
        assert_eq!(a, b, "{view} after rebuild-stats");
    }
    // Run again on sound data: nothing to correct, the same figures.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_minsheng"))
        .arg("rebuild-stats")
        .env("DATABASE_URL", &app.database_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run minsheng rebuild-stats");
    assert!(String::from_utf8_lossy(&out.stdout).contains("400 cases (0 with corrected facts)"));
    assert_eq!(figures(), before);
}

/// Kept sums are written last in each transaction, merged per key and in key order
/// (`db::stats::add_at_commit`). Eight writers at once — creates with an Idempotency-Key (the
/// create nested in the key's transaction), their replays, assignments and resolutions — neither
/// deadlock nor lose or double a count: the figures equal those `rebuild-stats` recomputes from
/// the cases.
fn concurrent_writers_keep_exact_sums(b: Backend) {
    let w = Arc::new(World::new(b));
    let admin = w.admin.clone();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let w = Arc::clone(&w);
            std::thread::spawn(move || {
                for i in 0..3 {
                    let key = format!("concurrent-{t}-{i}");
                    let body = w.complaint(&format!("并发 {t}-{i}"));
                    let create = || {
                        let headers = [("Idempotency-Key", key.as_str())];
                        w.app.call("POST", "/api/v1/cases", Some(&w.supervisor), Some(&body), &headers)
                    };
                    let id = create().expect(201)["id"].as_str().expect("id").to_owned();
                    assert_eq!(create().expect(201)["id"], id.as_str(), "a replay answers the first create");
                    w.ok(&w.supervisor, &id, "assign", json!({"department_id": w.water}));
                    if i != 1 {
                        w.ok(&w.water_worker, &id, "resolve", json!({"resolution": "已修复"}));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer");
    }
    let views = [
        "/api/v1/stats/summary",
        "/api/v1/stats/breakdown?by=jurisdiction",
        "/api/v1/stats/breakdown?by=department",
        "/api/v1/stats/breakdown?by=category",
        "/api/v1/stats/breakdown?by=month",
    ];
    let figures = || views.iter().map(|p| without_overdue(w.app.get(p, &admin).expect(200))).collect::<Vec<_>>();
    let kept = figures();
    assert_eq!(kept[0]["total"], json!(24));
    assert_eq!(kept[0]["resolution_rate"]["numerator"], json!(16));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_minsheng"))
        .arg("rebuild-stats")
        .env("DATABASE_URL", &w.app.database_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run minsheng rebuild-stats");
    assert!(out.status.success(), "rebuild-stats failed: {}", String::from_utf8_lossy(&out.stderr));
    for ((view, k), r) in views.iter().zip(&kept).zip(&figures()) {
        assert_eq!(k, r, "{view}: kept sums against rebuilt ones");
    }
}

both!(
    rebuild_stats_restores_the_kept_sums,
    concurrent_writers_keep_exact_sums,
    figures_agree_with_the_audit_trail,
    statistics_stay_in_scope,
    overdue_list_and_programme_progress,
    ledgers_stream_as_csv,
    seeded_demo_data_agrees_with_its_events
);
