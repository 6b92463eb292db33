//! Completion statistics over the caller's scope: the summary, breakdowns, and the upkeep of the
//! kept sums (in the same transaction as every case change).
//!
//! A figure is read from the kept sums (`case_stats`, a handful of rows per scope however many
//! cases there are) when the filters are at most one of category, kind, department, programme;
//! for combinations of those it is computed from the matching cases themselves. Both give the
//! same answer; `overdue` is always counted from the open cases, as it moves with the clock.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use serde::Serialize;

use super::reference::visible_jurisdiction;
use crate::db::models::Case;
use crate::db::stats::{self as q, CaseScope, RowFilter, StatRow};
use crate::db::{reference, DbConn};
use crate::domain::access::{upper_bound, Principal};
use crate::domain::input::Query;
use crate::domain::stats::{self, dim, month_of, Basis, Counters, Facts, Histogram, HourDeltas, Summary};
use crate::domain::types::{Kind, Outcome, Role, Satisfaction, Status};
use crate::domain::util::{from_db, now, to_db};
use crate::error::{AppError, AppResult};

/// The statistical facts of a stored case.
pub fn facts_of(case: &Case) -> AppResult<Facts> {
    let corrupt = |what: &str| AppError::Internal(format!("case {} has an unknown {what}", case.id));
    Ok(Facts {
        path: case.jurisdiction_path.clone(),
        category_code: case.category_code.clone(),
        kind: case.kind.clone(),
        department_id: case.department_id.clone(),
        programme_id: case.programme_id.clone(),
        created_at: from_db(case.created_at),
        due_at: from_db(case.due_at),
        status: Status::parse(&case.status).ok_or_else(|| corrupt("status"))?,
        outcome: case.outcome.as_deref().map(|o| Outcome::parse(o).ok_or_else(|| corrupt("outcome"))).transpose()?,
        first_assigned_at: case.first_assigned_at.map(from_db),
        responded: case.responded,
        resolved_on_time: case.resolved_on_time,
        resolution_secs: case.resolution_secs,
        satisfaction: case
            .satisfaction
            .as_deref()
            .map(|s| Satisfaction::parse(s).ok_or_else(|| corrupt("satisfaction")))
            .transpose()?,
    })
}

/// Keeps the sums in step with a case that was created (`before` = `None`) or changed, in the
/// caller's transaction, as its last writes (`q::add_at_commit`).
pub fn record_change(conn: &mut DbConn, before: Option<&Case>, after: &Case) -> AppResult<()> {
    let before = before.map(facts_of).transpose()?;
    let after = facts_of(after)?;
    let (sums, hours) = stats::delta(before.as_ref(), &after);
    Ok(q::add_at_commit(conn, sums, hours)?)
}

/// What `minsheng rebuild-stats` did.
#[derive(Debug, Default)]
pub struct RebuildReport {
    /// Cases summed.
    pub cases: u64,
    /// Cases whose kept facts disagreed with their audit trail, and were corrected.
    pub facts_fixed: u64,
    /// Kept-sum rows and hour-histogram rows (one per key) written.
    pub rows: usize,
    pub histogram_rows: usize,
}

/// Recomputes the kept statistics from the cases and their audit trails, in one write
/// transaction: each case's facts (first assignment and acknowledgement, response, on-time,
/// resolution time) are replayed from its events with the response `window` and corrected on
/// the case where they differ; then the sums and the hour histogram are summed from the cases and
/// replace the kept ones whole. For databases that held cases before the statistics migration,
/// and after a restore or a repair. `progress` is told how many cases are done.
pub fn rebuild(conn: &mut DbConn, window: chrono::Duration, mut progress: impl FnMut(u64)) -> AppResult<RebuildReport> {
    use crate::db::cases as cq;
    let report = crate::db::write_tx(conn, |conn| {
        let mut sums: BTreeMap<stats::Key, Counters> = BTreeMap::new();
        let mut hours: HourDeltas = BTreeMap::new();
        let mut report = RebuildReport::default();
        let mut after: Option<String> = None;
        loop {
            let page = cq::page_by_id(conn, after.as_deref(), 2_000)?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            let ids: Vec<String> = page.iter().map(|c| c.id.clone()).collect();
            let mut trails: BTreeMap<String, Vec<crate::db::models::CaseEvent>> = BTreeMap::new();
            for e in cq::events_of(conn, &ids)? {
                trails.entry(e.case_id.clone()).or_default().push(e);
            }
            for mut case in page {
                if let Some(events) = trails.get(&case.id) {
                    let data: Vec<serde_json::Value> =
                        events.iter().map(|e| serde_json::from_str(&e.data).unwrap_or_default()).collect();
                    let trail: Vec<stats::TrailEvent<'_>> = events
                        .iter()
                        .zip(&data)
                        .map(|(e, d)| stats::TrailEvent { action: &e.action, at: from_db(e.at), data: d })
                        .collect();
                    let kept = stats::replay(from_db(case.created_at), &trail, window);
                    let stored = stats::KeptFacts {
                        first_assigned_at: case.first_assigned_at.map(from_db),
                        first_acknowledged_at: case.first_acknowledged_at.map(from_db),
                        responded: case.responded,
                        resolved_on_time: case.resolved_on_time,
                        resolution_secs: case.resolution_secs,
                    };
                    if kept != stored {
                        let fixed = cq::CaseFacts {
                            first_assigned_at: kept.first_assigned_at.map(to_db),
                            first_acknowledged_at: kept.first_acknowledged_at.map(to_db),
                            responded: kept.responded,
                            resolved_on_time: kept.resolved_on_time,
                            resolution_secs: kept.resolution_secs,
                        };
                        cq::set_facts(conn, &case.id, &fixed)?;
                        case.first_assigned_at = fixed.first_assigned_at;
                        case.first_acknowledged_at = fixed.first_acknowledged_at;
                        case.responded = fixed.responded;
                        case.resolved_on_time = fixed.resolved_on_time;
                        case.resolution_secs = fixed.resolution_secs;
                        report.facts_fixed += 1;
                    }
                }
                let (s, h) = stats::delta(None, &facts_of(&case)?);
                stats::add_sums(&mut sums, s);
                stats::add_hours(&mut hours, h);
                report.cases += 1;
            }
            progress(report.cases);
        }
        let (rows, histogram_rows) = q::rows_of(sums, hours);
        (report.rows, report.histogram_rows) = (rows.len(), histogram_rows.len());
        q::clear(conn)?;
        q::insert_fresh(conn, &rows, &histogram_rows)?;
        Ok::<_, AppError>(report)
    })?;
    crate::db::refresh_planner_statistics(conn)?;
    Ok(report)
}

/// What a breakdown groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Jurisdiction,
    Department,
    Category,
    Programme,
    Month,
}

impl By {
    const NAMES: &'static [&'static str] = &["jurisdiction", "department", "category", "programme", "month"];

    fn parse(s: &str) -> Option<By> {
        Some(match s {
            "jurisdiction" => By::Jurisdiction,
            "department" => By::Department,
            "category" => By::Category,
            "programme" => By::Programme,
            "month" => By::Month,
            _ => return None,
        })
    }
}

/// The filters of a statistics request.
#[derive(Debug, Clone, Default)]
pub struct StatsQuery {
    pub jurisdiction_code: Option<String>,
    pub department_id: Option<String>,
    pub category_code: Option<String>,
    pub programme_id: Option<String>,
    pub kind: Option<String>,
    /// Count the period by deadline instead of creation.
    pub by_due: bool,
    /// Inclusive `YYYY-MM` bounds of the period.
    pub from: Option<String>,
    pub to: Option<String>,
}

fn is_month(s: &str) -> bool {
    match (s.len(), s.get(..4), s.get(4..5), s.get(5..)) {
        (7, Some(year), Some("-"), Some(month)) => {
            year.bytes().all(|b| b.is_ascii_digit())
                && month.bytes().all(|b| b.is_ascii_digit())
                && month.parse::<u32>().is_ok_and(|m| (1..=12).contains(&m))
        }
        _ => false,
    }
}

impl StatsQuery {
    /// Reads the filters from a query string (`by` for breakdowns is read by the caller).
    pub fn read(qs: &mut Query<'_>) -> StatsQuery {
        let month = |qs: &mut Query<'_>, name: &str| {
            let v = qs.text(name, 7)?;
            if is_month(&v) {
                Some(v)
            } else {
                qs.error(name, "invalid_format", "a month, YYYY-MM");
                None
            }
        };
        let query = StatsQuery {
            jurisdiction_code: qs.text("jurisdiction_code", 12),
            department_id: qs.uuid("department_id"),
            category_code: qs.text("category_code", 32),
            programme_id: qs.uuid("programme_id"),
            kind: qs.choice("kind", Kind::parse, Kind::NAMES).map(|k| k.as_str().to_owned()),
            by_due: qs
                .choice(
                    "period",
                    |s| match s {
                        "created" => Some(false),
                        "due" => Some(true),
                        _ => None,
                    },
                    &["created", "due"],
                )
                .unwrap_or(false),
            from: month(qs, "from"),
            to: month(qs, "to"),
        };
        if let (Some(f), Some(t)) = (&query.from, &query.to) {
            if f > t {
                qs.error("to", "out_of_range", "must not be before from");
            }
        }
        query
    }

    /// Reads `by` and the filters.
    pub fn read_breakdown(qs: &mut Query<'_>) -> (StatsQuery, Option<By>) {
        let by = qs.choice("by", By::parse, By::NAMES);
        if by.is_none() && qs.get("by").is_none() {
            qs.error("by", "required", format!("one of: {}", By::NAMES.join(", ")));
        }
        (StatsQuery::read(qs), by)
    }

    fn basis(&self) -> Basis {
        if self.by_due {
            Basis::Due
        } else {
            Basis::Created
        }
    }

    /// The one dimension filter, if there is at most one; `Err` when there are several.
    fn single_dim(&self) -> Result<Option<(&'static str, String)>, ()> {
        let dims: Vec<(&'static str, String)> = [
            (dim::DEPARTMENT, &self.department_id),
            (dim::CATEGORY, &self.category_code),
            (dim::PROGRAMME, &self.programme_id),
            (dim::KIND, &self.kind),
        ]
        .into_iter()
        .filter_map(|(d, v)| v.clone().map(|v| (d, v)))
        .collect();
        match dims.len() {
            0 => Ok(None),
            1 => Ok(dims.into_iter().next()),
            _ => Err(()),
        }
    }
}

/// The first instant of a `YYYY-MM` month in China Standard Time.
fn month_start(month: &str) -> Option<DateTime<Utc>> {
    let date = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").ok()?;
    let local = chrono::FixedOffset::east_opt(8 * 3600)?.from_local_datetime(&date.and_hms_opt(0, 0, 0)?).single()?;
    Some(local.with_timezone(&Utc))
}

/// The month after a `YYYY-MM` month.
fn next_month(month: &str) -> Option<String> {
    let date = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").ok()?;
    let (y, m) = if date.month() == 12 { (date.year() + 1, 1) } else { (date.year(), date.month() + 1) };
    Some(format!("{y:04}-{m:02}"))
}

/// The scope a request covers: its jurisdiction node(s) and their path range.
struct Scope {
    /// The requested node, or the caller's home, or every root for a whole-tree caller.
    nodes: Vec<String>,
    /// Path range of the scope; `None` = the whole tree.
    range: Option<(String, String)>,
}

fn require_stats_reader(p: &Principal) -> AppResult<()> {
    match p.role {
        Role::Admin | Role::Supervisor | Role::Viewer => Ok(()),
        Role::Caseworker | Role::Integration => Err(AppError::Forbidden {
            code: "role_not_permitted",
            detail: "statistics are for admins, supervisors and viewers".to_owned(),
        }),
    }
}

fn scope(conn: &mut DbConn, p: &Principal, sq: &StatsQuery) -> AppResult<Scope> {
    let not_found =
        |field: &str, what: &str| AppError::invalid(field, "not_found", format!("no such {what} in your scope"));
    let in_scope_path = |conn: &mut DbConn, code: &str| -> AppResult<Option<String>> {
        match visible_jurisdiction(conn, p, code) {
            Ok(j) => Ok(Some(j.path)),
            Err(AppError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    };
    if let Some(d) = &sq.department_id {
        let dept = reference::department(conn, d)?.ok_or_else(|| not_found("department_id", "department"))?;
        in_scope_path(conn, &dept.jurisdiction_code)?.ok_or_else(|| not_found("department_id", "department"))?;
    }
    if let Some(pid) = &sq.programme_id {
        let prog = reference::programme(conn, pid)?.ok_or_else(|| not_found("programme_id", "programme"))?;
        in_scope_path(conn, &prog.jurisdiction_code)?.ok_or_else(|| not_found("programme_id", "programme"))?;
    }
    if let Some(c) = &sq.category_code {
        reference::category(conn, c)?
            .ok_or_else(|| AppError::invalid("category_code", "not_found", "no such category"))?;
    }
    let code = sq.jurisdiction_code.clone().or_else(|| p.jurisdiction_code.clone());
    Ok(match code {
        Some(code) => {
            let path = in_scope_path(conn, &code)?.ok_or_else(|| not_found("jurisdiction_code", "jurisdiction"))?;
            Scope { nodes: vec![code], range: Some((path.clone(), upper_bound(&path))) }
        }
        None => Scope { nodes: reference::root_codes(conn)?, range: None },
    })
}

fn case_scope(sq: &StatsQuery, range: &Option<(String, String)>) -> CaseScope {
    CaseScope {
        subtree: range.clone(),
        department_id: sq.department_id.clone(),
        category_code: sq.category_code.clone(),
        programme_id: sq.programme_id.clone(),
        kind: sq.kind.clone(),
        created_basis: !sq.by_due,
        from: sq.from.as_deref().and_then(month_start).map(to_db),
        to: sq.to.as_deref().and_then(next_month).as_deref().and_then(month_start).map(to_db),
    }
}

/// Sums and hour histogram of one group.
#[derive(Debug, Default, Clone)]
struct Acc {
    counters: Counters,
    hours: Histogram,
    /// The median as stored with the group's one histogram row, when it was read instead of the
    /// hours (see [`from_sums`]).
    stored_median: Option<Option<f64>>,
}

impl Acc {
    /// The median resolution hours of the group.
    fn median(&self) -> Option<f64> {
        self.stored_median.unwrap_or_else(|| self.hours.median())
    }
}

fn counters_of(r: &StatRow) -> Counters {
    Counters {
        total: r.total,
        dismissed: r.dismissed,
        resolved: r.resolved,
        completed: r.completed,
        on_time: r.on_time,
        assigned: r.assigned,
        responded: r.responded,
        rated: r.rated,
        satisfied: r.satisfied,
        resolution_secs: r.resolution_secs,
    }
}

/// The kept rows a question reads: counters and resolution-hour histograms (which may come from
/// different rows: without a period, the histograms are the all-time rows while the counters of
/// the whole node, a category or a kind are added up from their months).
#[derive(Debug, Clone)]
struct Kept {
    sums: RowFilter,
    hours: RowFilter,
}

impl Kept {
    /// The same rows, of other nodes.
    fn at_nodes(&self, nodes: Vec<String>) -> Kept {
        Kept {
            sums: RowFilter { nodes: Some(nodes.clone()), subtree: None, ..self.sums.clone() },
            hours: RowFilter { nodes: Some(nodes), subtree: None, ..self.hours.clone() },
        }
    }

    /// Whether both are read by node (and so can be read for the scope's children instead).
    fn by_node(&self) -> bool {
        self.sums.nodes.is_some() && self.hours.nodes.is_some()
    }
}

/// The kept rows of dimension `dim` (one value, or all of them) over the scope. `per_month`: the
/// rows must be monthly (a breakdown by month), even without a period.
fn kept_rows(sq: &StatsQuery, scope: &Scope, dim: &'static str, value: Option<String>, per_month: bool) -> Kept {
    let period = per_month || sq.from.is_some() || sq.to.is_some();
    // By month, department and programme rows are kept at the case's own jurisdiction only: read
    // every node of the subtree. All time, they are kept at every ancestor too.
    let own_node_only = dim::per_unit(dim);
    let monthly = RowFilter {
        nodes: (!own_node_only).then(|| scope.nodes.clone()),
        subtree: if own_node_only { scope.range.clone() } else { None },
        dim,
        value: value.clone(),
        basis: sq.basis().code(),
        from_month: sq.from.clone(),
        to_month: sq.to.clone(),
    };
    let all_time = RowFilter {
        nodes: Some(scope.nodes.clone()),
        subtree: None,
        dim,
        value,
        basis: Basis::AllTime.code(),
        from_month: None,
        to_month: None,
    };
    // All-time counters are kept for departments and programmes only (`stats::Key::keeps_counters`).
    Kept {
        sums: if period || !dim::per_unit(dim) { monthly.clone() } else { all_time.clone() },
        hours: if period { monthly } else { all_time },
    }
}

/// Whether [`from_sums`] may answer a group's median from its one histogram row's stored median
/// rather than from its hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Medians {
    /// Where every group is one row with its median; else the hours.
    Stored,
    /// Always the hours (the caller adds or subtracts groups).
    FromHours,
}

/// Reads kept sums into groups keyed by `key` (of node, dimension value, month).
fn from_sums(
    conn: &mut DbConn,
    kept: &Kept,
    medians: Medians,
    key: impl Fn(&str, &str, &str) -> Option<String>,
) -> AppResult<BTreeMap<String, Acc>> {
    let mut groups: BTreeMap<String, Acc> = BTreeMap::new();
    for r in q::sums(conn, &kept.sums)? {
        if let Some(k) = key(&r.node, &r.dim_value, &r.month) {
            groups.entry(k).or_default().counters.add(&counters_of(&r), 1);
        }
    }
    if medians == Medians::Stored {
        // A breakdown without a period has one histogram row per group: its stored median is the
        // group's, and the hours (kilobytes a row) need not be read.
        let mut rows: BTreeMap<String, (usize, Option<f64>)> = BTreeMap::new();
        for (node, value, month, median) in q::hour_medians(conn, &kept.hours)? {
            if let Some(k) = key(&node, &value, &month) {
                let row = rows.entry(k).or_insert((0, None));
                *row = (row.0 + 1, median);
            }
        }
        if rows.values().all(|(n, median)| *n == 1 && median.is_some()) {
            for (k, (_, median)) in rows {
                groups.entry(k).or_default().stored_median = Some(median);
            }
            return Ok(groups);
        }
    }
    for h in q::hours(conn, &kept.hours)? {
        if let Some(k) = key(&h.node, &h.dim_value, &h.month) {
            groups
                .entry(k)
                .or_default()
                .hours
                .add_stored(&h.counts, 1)
                .map_err(|e| AppError::Internal(format!("the resolution-hours histogram of node {}: {e}", h.node)))?;
        }
    }
    Ok(groups)
}

/// Computes groups from the matching cases themselves.
fn from_cases(
    conn: &mut DbConn,
    cs: &CaseScope,
    key: impl Fn(&Facts) -> Option<String>,
) -> AppResult<BTreeMap<String, Acc>> {
    let mut groups: BTreeMap<String, Acc> = BTreeMap::new();
    for case in q::scan(conn, cs)? {
        let f = facts_of(&case)?;
        if let Some(k) = key(&f) {
            let acc = groups.entry(k).or_default();
            acc.counters.add(&Counters::of(&f), 1);
            if let Some(h) = f.resolution_hours() {
                acc.hours.add(h, 1);
            }
        }
    }
    Ok(groups)
}

/// The kept rows a query reads, if the kept sums can answer it (at most one of department,
/// category, programme, kind).
fn query_rows(sq: &StatsQuery, scope: &Scope, per_month: bool) -> Option<Kept> {
    let (dim, value) = sq.single_dim().ok()?.unwrap_or((dim::ALL, String::new()));
    Some(kept_rows(sq, scope, dim, Some(value), per_month))
}

fn one_group(conn: &mut DbConn, sq: &StatsQuery, scope: &Scope, medians: Medians) -> AppResult<Acc> {
    let groups = match query_rows(sq, scope, false) {
        Some(kept) => from_sums(conn, &kept, medians, |_, _, _| Some(String::new()))?,
        None => from_cases(conn, &case_scope(sq, &scope.range), |_| Some(String::new()))?,
    };
    Ok(groups.into_values().next().unwrap_or_default())
}

/// `GET /stats/summary`: the figures of the caller's scope, narrowed by the filters.
pub fn summary(conn: &mut DbConn, p: &Principal, sq: StatsQuery) -> AppResult<Summary> {
    require_stats_reader(p)?;
    let scope = scope(conn, p, &sq)?;
    let acc = one_group(conn, &sq, &scope, Medians::Stored)?;
    let overdue = q::count_overdue(conn, &case_scope(&sq, &scope.range), to_db(now()))?;
    Ok(stats::summarize(&acc.counters, acc.median(), overdue))
}

/// One group of a breakdown.
#[derive(Debug, Serialize)]
pub struct Group {
    /// The jurisdiction code, department or programme id, category code, or `YYYY-MM`.
    pub key: String,
    /// Its name (`null` for months and for unknown keys).
    pub name: Option<String>,
    #[serde(flatten)]
    pub figures: Summary,
}

/// A breakdown.
#[derive(Debug, Serialize)]
pub struct Breakdown {
    pub by: &'static str,
    pub groups: Vec<Group>,
}

/// `GET /stats/breakdown`: the same figures per child jurisdiction, department, category,
/// programme or month.
pub fn breakdown(conn: &mut DbConn, p: &Principal, sq: StatsQuery, by: By) -> AppResult<Breakdown> {
    require_stats_reader(p)?;
    let scope = scope(conn, p, &sq)?;
    let cs = case_scope(&sq, &scope.range);
    let month_of_facts = |f: &Facts| month_of(if sq.by_due { f.due_at } else { f.created_at });
    // The children of the scope: each groups its whole subtree.
    let children: Vec<(String, String, String)> = if by == By::Jurisdiction {
        match (&sq.jurisdiction_code, &p.jurisdiction_code) {
            (None, None) => reference::roots(conn)?,
            _ => match scope.nodes.first() {
                Some(node) => reference::children(conn, node)?,
                None => Vec::new(),
            },
        }
        .into_iter()
        .map(|j| (j.code, j.name, j.path))
        .collect()
    } else {
        Vec::new()
    };
    // Cases logged at the requested node itself (not in any child) form a group of their own, so
    // the groups add up to the summary.
    let own: Option<(String, String)> = match (by, &scope.range, scope.nodes.first()) {
        (By::Jurisdiction, Some((path, _)), Some(code)) => Some((code.clone(), path.clone())),
        _ => None,
    };
    let child_of = |path: &str| {
        children
            .iter()
            .find(|(_, _, cp)| path.starts_with(cp.as_str()))
            .map(|(c, _, _)| c.clone())
            .or_else(|| own.as_ref().filter(|(_, p)| p == path).map(|(c, _)| c.clone()))
    };
    let single = sq.single_dim();
    let kept = query_rows(&sq, &scope, by == By::Month);
    let groups: BTreeMap<String, Acc> = match (by, &kept, &single) {
        // Children's own rows hold their subtrees.
        (By::Jurisdiction, Some(k), _) if k.by_node() => {
            let child_rows = k.at_nodes(children.iter().map(|(c, _, _)| c.clone()).collect());
            let by_node = |node: &str, _: &str, _: &str| Some(node.to_owned());
            let mut groups = from_sums(conn, &child_rows, Medians::Stored, by_node)?;
            if let Some((code, _)) = &own {
                // The node's own cases: its sums less its children's.
                let mut rest = one_group(conn, &sq, &scope, Medians::Stored)?;
                for acc in groups.values() {
                    rest.counters.add(&acc.counters, -1);
                }
                rest.stored_median = Some(None);
                if rest.counters.resolved != 0 {
                    // Its resolution hours too: the node's hours less its children's.
                    rest = one_group(conn, &sq, &scope, Medians::FromHours)?;
                    for acc in from_sums(conn, &child_rows, Medians::FromHours, by_node)?.values() {
                        rest.counters.add(&acc.counters, -1);
                        rest.hours.merge(&acc.hours, -1);
                    }
                }
                if !rest.counters.is_zero() {
                    groups.insert(code.clone(), rest);
                }
            }
            groups
        }
        (By::Month, Some(k), _) => from_sums(conn, k, Medians::Stored, |_, _, month| Some(month.to_owned()))?,
        (By::Category | By::Department | By::Programme, Some(_), Ok(None)) => {
            let d = match by {
                By::Category => dim::CATEGORY,
                By::Department => dim::DEPARTMENT,
                _ => dim::PROGRAMME,
            };
            from_sums(conn, &kept_rows(&sq, &scope, d, None, false), Medians::Stored, |_, v, _| Some(v.to_owned()))?
        }
        _ => from_cases(conn, &cs, |f| match by {
            By::Jurisdiction => child_of(&f.path),
            By::Department => f.department_id.clone(),
            By::Category => Some(f.category_code.clone()),
            By::Programme => f.programme_id.clone(),
            By::Month => Some(month_of_facts(f)),
        })?,
    };
    let overdue_by = match by {
        By::Jurisdiction => q::OverdueBy::Path,
        By::Department => q::OverdueBy::Department,
        By::Category => q::OverdueBy::Category,
        By::Programme => q::OverdueBy::Programme,
        By::Month if sq.by_due => q::OverdueBy::DueAt,
        By::Month => q::OverdueBy::CreatedAt,
    };
    let mut overdue: HashMap<String, i64> = HashMap::new();
    for (value, n) in q::overdue_counts(conn, &cs, to_db(now()), overdue_by)? {
        let key = match by {
            By::Jurisdiction => value.as_deref().and_then(child_of),
            _ => value,
        };
        if let Some(key) = key {
            *overdue.entry(key).or_default() += n;
        }
    }
    // Every group with kept sums or overdue cases, and every child, in key order.
    let mut groups = groups;
    for key in overdue.keys().chain(children.iter().map(|(c, _, _)| c)) {
        if !groups.contains_key(key) {
            groups.insert(key.clone(), Acc::default());
        }
    }
    let keys: Vec<&String> = groups.keys().collect();
    let names = names(conn, by, &keys, &children)?;
    let is_child = |key: &str| children.iter().any(|(c, _, _)| c == key);
    let groups = groups
        .into_iter()
        .map(|(key, acc)| {
            let figures = stats::summarize(&acc.counters, acc.median(), overdue.get(&key).copied().unwrap_or(0));
            Group { name: names.get(&key).cloned(), key, figures }
        })
        // Every child is listed; other groups only when they hold cases (kept sums can linger at
        // zero after a case moves away).
        .filter(|g| g.figures.total != 0 || g.figures.overdue != 0 || is_child(&g.key))
        .collect();
    let by = By::NAMES.get(by as usize).copied().unwrap_or("jurisdiction");
    Ok(Breakdown { by, groups })
}

/// Group names read per query: bound values, under SQLite's 32,766 and PostgreSQL's 65,535.
const NAMES_PER_QUERY: usize = 10_000;

fn names(
    conn: &mut DbConn,
    by: By,
    keys: &[&String],
    children: &[(String, String, String)],
) -> AppResult<HashMap<String, String>> {
    let mut names = HashMap::new();
    match by {
        By::Jurisdiction => {
            for (code, name, _) in children {
                names.insert(code.clone(), name.clone());
            }
            let own: Vec<&String> = keys.iter().copied().filter(|k| !names.contains_key(*k)).collect();
            for k in own {
                if let Some(j) = reference::jurisdiction(conn, k)? {
                    names.insert(k.clone(), format!("{}（本级）", j.name));
                }
            }
        }
        By::Department => {
            // One query for all of them: a province has a thousand departments.
            for chunk in keys.chunks(NAMES_PER_QUERY) {
                names.extend(reference::department_names(conn, chunk)?);
            }
        }
        By::Category => {
            for k in keys {
                if let Some(c) = reference::category(conn, k)? {
                    names.insert((*k).clone(), c.name);
                }
            }
        }
        By::Programme => {
            for chunk in keys.chunks(NAMES_PER_QUERY) {
                names.extend(reference::programme_names(conn, chunk)?);
            }
        }
        By::Month => {}
    }
    Ok(names)
}

/// A case on the overdue (督办) list. No personal data.
#[derive(Debug, Serialize)]
pub struct OverdueItem {
    pub id: String,
    #[serde(rename = "ref")]
    pub case_ref: String,
    pub title: String,
    pub kind: String,
    pub category_code: String,
    pub jurisdiction_code: String,
    pub status: String,
    pub department_id: Option<String>,
    pub department_name: Option<String>,
    #[serde(with = "crate::domain::util::ts")]
    pub due_at: DateTime<Utc>,
    /// Whole days since the deadline.
    pub days_overdue: i64,
    #[serde(with = "crate::domain::util::ts")]
    pub created_at: DateTime<Utc>,
}

/// `GET /stats/overdue`: open cases past their deadline in scope, the longest overdue first.
pub fn overdue(
    conn: &mut DbConn,
    p: &Principal,
    sq: StatsQuery,
    page: super::PageRequest,
) -> AppResult<super::Page<OverdueItem>> {
    require_stats_reader(p)?;
    let scope = scope(conn, p, &sq)?;
    let after = match &page.after {
        None => None,
        Some(c) => Some(
            c.split_once('|')
                .and_then(|(micros, id)| {
                    let at = DateTime::<Utc>::from_timestamp_micros(micros.parse().ok()?)?;
                    Some((to_db(at), id.to_owned()))
                })
                .ok_or_else(|| AppError::invalid("cursor", "invalid_cursor", "not a cursor returned by this list"))?,
        ),
    };
    let t = now();
    let rows = q::overdue_page(conn, &case_scope(&sq, &scope.range), to_db(t), after, page.limit + 1)?;
    let ids: Vec<String> = rows.iter().filter_map(|c| c.department_id.clone()).collect();
    let names: std::collections::HashMap<String, String> =
        reference::department_names(conn, &ids)?.into_iter().collect();
    let more = rows.len() as i64 > page.limit;
    let mut last = None;
    let items = rows
        .into_iter()
        .take(page.limit.max(0) as usize)
        .map(|c| {
            let due_at = from_db(c.due_at);
            last = Some(format!("{}|{}", due_at.timestamp_micros(), c.id));
            OverdueItem {
                department_name: c.department_id.as_ref().and_then(|d| names.get(d).cloned()),
                days_overdue: (t - due_at).num_days(),
                id: c.id,
                case_ref: c.case_ref,
                title: c.title,
                kind: c.kind,
                category_code: c.category_code,
                jurisdiction_code: c.jurisdiction_code,
                status: c.status,
                department_id: c.department_id,
                due_at,
                created_at: from_db(c.created_at),
            }
        })
        .collect();
    Ok(super::Page { items, next_cursor: if more { last.map(|k| super::encode_cursor(&k)) } else { None } })
}

/// A programme's progress: its items, how many are completed, and every figure.
#[derive(Debug, Serialize)]
pub struct Progress {
    pub programme: super::reference::ProgrammeView,
    pub items: i64,
    pub completed: i64,
    pub completion_rate: stats::Rate,
    pub overdue: i64,
    pub figures: Summary,
}

/// `GET /programmes/{id}/progress`.
pub fn progress(conn: &mut DbConn, p: &Principal, id: &str) -> AppResult<Progress> {
    let programme = super::reference::get_programme(conn, p, id)?;
    let figures = summary(conn, p, StatsQuery { programme_id: Some(id.to_owned()), ..StatsQuery::default() })?;
    Ok(Progress {
        programme,
        items: figures.total,
        completed: figures.completion_rate.numerator,
        completion_rate: figures.completion_rate,
        overdue: figures.overdue,
        figures,
    })
}
