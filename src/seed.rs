//! `minsheng seed-demo`: a realistic province-sized data set for demonstrations and benchmarks —
//! a province of cities, counties and townships, their departments, categories and annual
//! programmes, and cases whose lifecycles match their age, each with its full audit trail and its
//! share of the kept statistics. Deterministic for a given seed; written in bulk, in chunks.

#![expect(
    clippy::indexing_slicing,
    reason = "indices come from gen_range over the same slice, and county maps are built from the same tree"
)]

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::db::models::{Case, CaseEvent, Category, Department, Jurisdiction, Programme};
use crate::db::schema::{case_events, cases, categories, departments, jurisdictions, programmes, ref_counters};
use crate::db::{write_tx, DbConn};
use crate::domain::stats::{self, Counters, Facts, Key};
use crate::domain::types::{Outcome, Satisfaction, Status};
use crate::domain::util::{now, to_db};
use crate::error::{AppError, AppResult};

/// The shape of the generated province.
#[derive(Debug, Clone)]
pub struct SeedPlan {
    pub cases: u64,
    pub cities: u32,
    pub counties_per_city: u32,
    pub townships_per_county: u32,
    pub seed: u64,
}

const CATEGORIES: &[(&str, &str, i32)] = &[
    ("education", "教育", 30),
    ("healthcare", "医疗卫生", 20),
    ("elderly_childcare", "一老一小", 20),
    ("drinking_water", "饮水安全", 15),
    ("transport", "交通出行", 30),
    ("housing", "住房保障与搬迁", 45),
    ("employment", "就业创业", 20),
    ("environment", "生态环境", 30),
    ("petitions", "信访事项", 60),
    ("other", "其他", 15),
];
const DEPARTMENTS: &[&str] = &[
    "水务局",
    "交通运输局",
    "住房和城乡建设局",
    "卫生健康局",
    "教育体育局",
    "民政局",
    "人力资源和社会保障局",
    "生态环境分局",
];
const CHANNELS: &[&str] = &["hotline", "hotline", "hotline", "walk_in", "petition", "online", "online", "integration"];
const TITLES: &[&str] = &[
    "自来水停水",
    "道路破损坑洼",
    "小区噪音扰民",
    "养老院床位不足",
    "学校周边交通拥堵",
    "医保报销咨询",
    "农村危房改造",
    "垃圾清运不及时",
    "路灯不亮",
    "就业补贴发放",
];

/// What was written.
#[derive(Debug, Default)]
pub struct SeedReport {
    pub jurisdictions: usize,
    pub departments: usize,
    pub cases: u64,
    pub events: u64,
}

/// Inserts rows in multi-row statements of at most `$per` rows, on either backend (diesel's batch
/// insert needs the concrete connection).
macro_rules! bulk_insert {
    ($conn:expr, $table:expr, $rows:expr, $per:expr) => {{
        for chunk in $rows.chunks($per) {
            match &mut *$conn {
                DbConn::Pg(c) => diesel::insert_into($table).values(chunk).execute(c)?,
                DbConn::Sqlite(c) => diesel::insert_into($table).values(chunk).execute(c)?,
            };
        }
    }};
}

/// Generates the data set into an empty database (refuses one that already has cases).
pub fn seed(conn: &mut DbConn, plan: &SeedPlan, mut progress: impl FnMut(u64)) -> AppResult<SeedReport> {
    let existing: i64 = cases::table.count().get_result(conn)?;
    if existing > 0 {
        return Err(AppError::conflict("not_empty", "seed-demo writes into a database without cases"));
    }
    let mut rng = StdRng::seed_from_u64(plan.seed);
    // A page cache big enough for the indexes being filled (SQLite's default is 2 MB), for this
    // connection while it seeds; put back afterwards.
    if let DbConn::Sqlite(c) = conn {
        diesel::connection::SimpleConnection::batch_execute(c, "PRAGMA cache_size = -262144")?;
    }
    let report = seed_all(conn, plan, &mut rng, &mut progress);
    if let DbConn::Sqlite(c) = conn {
        diesel::connection::SimpleConnection::batch_execute(c, "PRAGMA cache_size = -2000")?;
    }
    report
}

fn seed_all(
    conn: &mut DbConn,
    plan: &SeedPlan,
    rng: &mut StdRng,
    progress: &mut impl FnMut(u64),
) -> AppResult<SeedReport> {
    let t0 = now();
    let t = to_db(t0);
    // The tree: 530000 > 53cc00 > 53ccnn > 53ccnnttt.
    let mut tree = vec![Jurisdiction {
        code: "530000".into(),
        name: "示例省".into(),
        parent_code: None,
        path: "/530000/".into(),
        depth: 0,
        created_at: t,
        updated_at: t,
    }];
    let mut townships = Vec::new();
    let mut county_depts: HashMap<String, Vec<String>> = HashMap::new();
    let mut depts = Vec::new();
    let mut progs = Vec::new();
    for c in 1..=plan.cities {
        let city = format!("53{c:02}00");
        let city_path = format!("/530000/{city}/");
        tree.push(Jurisdiction {
            code: city.clone(),
            name: format!("示例市{c}"),
            parent_code: Some("530000".into()),
            path: city_path.clone(),
            depth: 1,
            created_at: t,
            updated_at: t,
        });
        for k in 1..=plan.counties_per_city {
            let county = format!("53{c:02}{k:02}");
            let county_path = format!("{city_path}{county}/");
            tree.push(Jurisdiction {
                code: county.clone(),
                name: format!("示例市{c}第{k}县"),
                parent_code: Some(city.clone()),
                path: county_path.clone(),
                depth: 2,
                created_at: t,
                updated_at: t,
            });
            let ids: Vec<String> = DEPARTMENTS
                .iter()
                .map(|name| {
                    let id = uuid::Uuid::new_v4().to_string();
                    depts.push(Department {
                        id: id.clone(),
                        name: (*name).to_owned(),
                        jurisdiction_code: county.clone(),
                        active: true,
                        created_at: t,
                        updated_at: t,
                    });
                    id
                })
                .collect();
            county_depts.insert(county.clone(), ids);
            for year in [2025, 2026] {
                progs.push(Programme {
                    id: uuid::Uuid::new_v4().to_string(),
                    name: format!("{year}年为民办实事"),
                    year,
                    jurisdiction_code: county.clone(),
                    description: None,
                    created_at: t,
                    updated_at: t,
                });
            }
            for n in 1..=plan.townships_per_county {
                let code = format!("{county}{n:03}");
                let path = format!("{county_path}{code}/");
                townships.push((code.clone(), path.clone(), county.clone()));
                tree.push(Jurisdiction {
                    code,
                    name: format!("第{n}镇"),
                    parent_code: Some(county.clone()),
                    path,
                    depth: 3,
                    created_at: t,
                    updated_at: t,
                });
            }
        }
    }
    let cats: Vec<Category> = CATEGORIES
        .iter()
        .map(|(code, name, days)| Category {
            code: (*code).into(),
            name: (*name).into(),
            deadline_days: *days,
            active: true,
            created_at: t,
            updated_at: t,
            description: None,
            service_group: None,
            keywords: None,
            attributes: None,
        })
        .collect();
    write_tx(conn, |conn| {
        bulk_insert!(conn, jurisdictions::table, tree, 500);
        bulk_insert!(conn, departments::table, depts, 500);
        bulk_insert!(conn, programmes::table, progs, 500);
        for cat in &cats {
            let exists: i64 = categories::table.filter(categories::code.eq(&cat.code)).count().get_result(conn)?;
            if exists == 0 {
                diesel::insert_into(categories::table).values(cat).execute(conn)?;
            }
        }
        Ok::<_, AppError>(())
    })?;
    let county_progs: HashMap<String, Vec<String>> = progs.iter().fold(HashMap::new(), |mut m, p| {
        m.entry(p.jurisdiction_code.clone()).or_default().push(p.id.clone());
        m
    });

    let mut refs: HashMap<String, i64> = HashMap::new();
    let mut sums: BTreeMap<Key, Counters> = BTreeMap::new();
    let mut hours: stats::HourDeltas = BTreeMap::new();
    let mut report = SeedReport { jurisdictions: tree.len(), departments: depts.len(), ..SeedReport::default() };
    let chunk = 5_000u64;
    let mut done = 0u64;
    while done < plan.cases {
        let n = chunk.min(plan.cases - done);
        let mut batch = Vec::with_capacity(n as usize);
        let mut events = Vec::with_capacity(n as usize * 6);
        for _ in 0..n {
            let (code, path, county) = &townships[rng.gen_range(0..townships.len())];
            let (cat, _, days) = CATEGORIES[rng.gen_range(0..CATEGORIES.len())];
            // Creation times spread over the past year in generation order (as cases arrive),
            // so every index led by `created_at` is appended to rather than written all over.
            let slot = 365 * 86_400 / plan.cases.max(1) as i64;
            let offset = (done + batch.len() as u64) as i64 * 365 * 86_400 / plan.cases.max(1) as i64;
            let created =
                t0 - Duration::seconds(365 * 86_400) + Duration::seconds(offset + rng.gen_range(0..slot.max(1)));
            let year = (created + stats::CHINA_OFFSET).format("%Y").to_string();
            let prefix = format!("{code}-{year}");
            let number = refs.entry(prefix.clone()).or_insert(0);
            *number += 1;
            let (case, evs) = lifecycle(
                rng,
                t0,
                created,
                days,
                &county_depts[county],
                code,
                path,
                cat,
                &prefix,
                *number,
                county_progs.get(county),
            );
            let facts = Facts {
                path: case.jurisdiction_path.clone(),
                category_code: case.category_code.clone(),
                kind: case.kind.clone(),
                department_id: case.department_id.clone(),
                programme_id: case.programme_id.clone(),
                created_at: created,
                due_at: case.due_at.and_utc(),
                status: Status::parse(&case.status).unwrap_or(Status::Received),
                outcome: case.outcome.as_deref().and_then(Outcome::parse),
                first_assigned_at: case.first_assigned_at.map(|x| x.and_utc()),
                responded: case.responded,
                resolved_on_time: case.resolved_on_time,
                resolution_secs: case.resolution_secs,
                satisfaction: case.satisfaction.as_deref().and_then(Satisfaction::parse),
            };
            let (s, h) = stats::delta(None, &facts);
            stats::add_sums(&mut sums, s);
            stats::add_hours(&mut hours, h);
            events.extend(evs);
            batch.push(case);
        }
        write_tx(conn, |conn| {
            bulk_insert!(conn, cases::table, batch, 500);
            bulk_insert!(conn, case_events::table, events, 3_000);
            Ok::<_, AppError>(())
        })?;
        report.events += events.len() as u64;
        done += n;
        progress(done);
    }
    report.cases = done;
    let (stat_rows, histogram_rows) = crate::db::stats::rows_of(sums, hours);
    write_tx(conn, |conn| {
        // The database had no cases, so its kept sums (if any rows) add up to nothing: replace
        // them whole with plain inserts instead of one upsert per row.
        crate::db::stats::clear(conn)?;
        crate::db::stats::insert_fresh(conn, &stat_rows, &histogram_rows)?;
        for (prefix, last) in &refs {
            diesel::insert_into(ref_counters::table)
                .values((ref_counters::prefix.eq(prefix), ref_counters::last.eq(last)))
                .execute(conn)?;
        }
        Ok::<_, AppError>(())
    })?;
    crate::db::refresh_planner_statistics(conn)?;
    Ok(report)
}

/// One case with a lifecycle that fits its age, and its events.
#[allow(clippy::too_many_arguments)]
fn lifecycle(
    rng: &mut StdRng,
    now: DateTime<Utc>,
    created: DateTime<Utc>,
    deadline_days: i32,
    depts: &[String],
    code: &str,
    path: &str,
    category: &str,
    prefix: &str,
    number: i64,
    progs: Option<&Vec<String>>,
) -> (Case, Vec<CaseEvent>) {
    let id = uuid::Uuid::new_v4().to_string();
    let due = created + Duration::days(i64::from(deadline_days));
    let kind = if rng.gen_bool(0.1) { "project" } else { "complaint" };
    let programme =
        if kind == "project" { progs.and_then(|p| p.get(rng.gen_range(0..p.len()))).cloned() } else { None };
    let mut case = Case {
        id: id.clone(),
        case_ref: format!("{prefix}-{number:06}"),
        kind: kind.into(),
        title: TITLES[rng.gen_range(0..TITLES.len())].into(),
        description: "群众通过12345热线反映的问题，详情见附件。".into(),
        category_code: category.into(),
        jurisdiction_code: code.into(),
        jurisdiction_path: path.into(),
        programme_id: programme,
        channel: CHANNELS[rng.gen_range(0..CHANNELS.len())].into(),
        priority: if rng.gen_bool(0.05) { "urgent".into() } else { "normal".into() },
        complainant_name: Some("张**".into()),
        complainant_phone: None,
        location_address: None,
        location_lat: None,
        location_lon: None,
        status: "received".into(),
        outcome: None,
        department_id: None,
        assignee_id: None,
        due_at: to_db(due),
        acknowledged_at: None,
        resolved_at: None,
        resolved_by: None,
        resolution: None,
        verified_at: None,
        closed_at: None,
        satisfaction: None,
        rework_count: 0,
        duplicate_of: None,
        external_source: None,
        external_id: None,
        created_by: "seed-demo".into(),
        created_at: to_db(created),
        updated_at: to_db(created),
        version: 1,
        first_assigned_at: None,
        first_acknowledged_at: None,
        responded: false,
        resolved_on_time: None,
        resolution_secs: None,
        overdue_notified_at: None,
        complainant_email: None,
        media_url: None,
        address_id: None,
        attributes: None,
    };
    let mut events = Vec::new();
    let mut event = |case: &mut Case, action: &str, from: Option<&str>, at: DateTime<Utc>, data: serde_json::Value| {
        events.push(CaseEvent {
            case_id: case.id.clone(),
            seq: case.version,
            action: action.into(),
            from_status: from.map(str::to_owned),
            to_status: case.status.clone(),
            actor_id: "seed-demo".into(),
            actor_name: "seed-demo".into(),
            at: to_db(at),
            note: None,
            data: data.to_string(),
        });
    };
    event(&mut case, "create", None, created, json!({"due_at": crate::domain::util::rfc3339(due)}));
    let step = |rng: &mut StdRng, from: DateTime<Utc>, lo_h: f64, hi_h: f64| {
        from + Duration::seconds((rng.gen_range(lo_h..hi_h) * 3600.0) as i64)
    };
    let mut at = created;
    let advance = |case: &mut Case, to: &str, when: DateTime<Utc>| -> bool {
        if when > now {
            return false;
        }
        case.version += 1;
        case.status = to.into();
        case.updated_at = to_db(when);
        true
    };
    if rng.gen_bool(0.04) {
        let when = step(rng, at, 1.0, 72.0);
        if advance(&mut case, "closed", when) {
            case.outcome = Some(["duplicate", "invalid", "withdrawn", "out_of_scope"][rng.gen_range(0..4)].into());
            case.closed_at = Some(to_db(when));
            let outcome = case.outcome.clone();
            event(&mut case, "dismiss", Some("received"), when, json!({"outcome": outcome}));
        }
        return (case, events);
    }
    let assigned = step(rng, at, 0.2, 30.0);
    if !advance(&mut case, "assigned", assigned) {
        return (case, events);
    }
    let dept = depts[rng.gen_range(0..depts.len())].clone();
    case.department_id = Some(dept.clone());
    case.first_assigned_at = Some(to_db(assigned));
    event(&mut case, "assign", Some("received"), assigned, json!({"department_id": dept}));
    at = assigned;
    let ack = step(rng, at, 0.1, 40.0);
    if !advance(&mut case, "assigned", ack) {
        return (case, events);
    }
    case.acknowledged_at = Some(to_db(ack));
    case.first_acknowledged_at = Some(to_db(ack));
    case.responded = ack - assigned <= Duration::hours(24);
    event(&mut case, "acknowledge", Some("assigned"), ack, json!({}));
    at = ack;
    let resolved = step(rng, at, 2.0, f64::from(deadline_days) * 24.0 * 1.25);
    if !advance(&mut case, "resolved", resolved) {
        return (case, events);
    }
    case.resolved_at = Some(to_db(resolved));
    case.resolved_by = Some("seed-demo".into());
    case.resolution = Some("已办结".into());
    case.resolved_on_time = Some(resolved <= due);
    case.resolution_secs = Some((resolved - created).num_seconds());
    event(&mut case, "resolve", Some("assigned"), resolved, json!({"on_time": resolved <= due}));
    at = resolved;
    let verified = step(rng, at, 1.0, 96.0);
    if !advance(&mut case, "verified", verified) {
        return (case, events);
    }
    let sat = [
        "satisfied",
        "satisfied",
        "satisfied",
        "satisfied",
        "satisfied",
        "satisfied",
        "basically_satisfied",
        "basically_satisfied",
        "not_rated",
        "unsatisfied",
    ][rng.gen_range(0..10)];
    case.satisfaction = Some(sat.into());
    case.verified_at = Some(to_db(verified));
    event(&mut case, "verify", Some("resolved"), verified, json!({"satisfaction": sat}));
    at = verified;
    let closed = step(rng, at, 1.0, 72.0);
    if advance(&mut case, "closed", closed) {
        case.closed_at = Some(to_db(closed));
        case.outcome = Some("completed".into());
        event(&mut case, "close", Some("verified"), closed, json!({"outcome": "completed"}));
    }
    (case, events)
}
