//! Completion statistics: what each case contributes to the figures, under which keys the sums
//! are kept, and how the published figures are made from the sums. No SQL here.
//!
//! Definitions (over a scope; "reached resolved" = now resolved, verified, or closed completed):
//! - `total`; `dismissed` = closed with an outcome other than completed; `effective` = total − dismissed;
//! - resolution rate = reached resolved / effective; completion rate = verified or closed
//!   completed / effective;
//! - on-time rate = reached-resolved cases whose last resolution was on or before the deadline
//!   then in force / reached resolved;
//! - response rate = cases whose first acknowledgement came within the response window of their
//!   first assignment / cases ever assigned;
//! - satisfaction rate = satisfied + basically satisfied / rated (satisfied, basically satisfied,
//!   unsatisfied; the current — final — rating counts);
//! - resolution hours: mean of the exact durations from creation to the last resolution, median
//!   of those durations in whole hours (rounded down), over the reached-resolved cases;
//! - overdue = open (received, assigned) cases whose deadline is before now (not kept as a sum:
//!   it changes with the clock; counted exactly when asked).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::types::{Outcome, Satisfaction, Status};

/// Period months are calendar months in China Standard Time.
pub const CHINA_OFFSET: Duration = Duration::hours(8);

/// `YYYY-MM` of an instant, in China Standard Time.
pub fn month_of(t: DateTime<Utc>) -> String {
    (t + CHINA_OFFSET).format("%Y-%m").to_string()
}

/// What a case is, for the statistics.
#[derive(Debug, Clone)]
pub struct Facts {
    /// Materialised path of the case's jurisdiction, `/530000/530600/530602/`.
    pub path: String,
    pub category_code: String,
    pub kind: String,
    pub department_id: Option<String>,
    pub programme_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub status: Status,
    pub outcome: Option<Outcome>,
    pub first_assigned_at: Option<DateTime<Utc>>,
    pub responded: bool,
    pub resolved_on_time: Option<bool>,
    pub resolution_secs: Option<i64>,
    pub satisfaction: Option<Satisfaction>,
}

impl Facts {
    /// Now resolved, verified, or closed completed.
    pub fn reached_resolved(&self) -> bool {
        match self.status {
            Status::Resolved | Status::Verified => true,
            Status::Closed => self.outcome == Some(Outcome::Completed),
            Status::Received | Status::Assigned => false,
        }
    }

    /// Whole hours from creation to the last resolution, for a reached-resolved case.
    pub fn resolution_hours(&self) -> Option<i64> {
        if self.reached_resolved() {
            self.resolution_secs.map(|s| s / 3600)
        } else {
            None
        }
    }
}

/// The sums kept per key (all counts but `resolution_secs`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub total: i64,
    pub dismissed: i64,
    pub resolved: i64,
    pub completed: i64,
    pub on_time: i64,
    pub assigned: i64,
    pub responded: i64,
    pub rated: i64,
    pub satisfied: i64,
    pub resolution_secs: i64,
}

impl Counters {
    /// One case's contribution.
    pub fn of(f: &Facts) -> Counters {
        let resolved = f.reached_resolved();
        let closed_completed = f.status == Status::Closed && f.outcome == Some(Outcome::Completed);
        let rated = matches!(
            f.satisfaction,
            Some(Satisfaction::Satisfied | Satisfaction::BasicallySatisfied | Satisfaction::Unsatisfied)
        );
        let b = i64::from;
        Counters {
            total: 1,
            dismissed: b(f.status == Status::Closed && f.outcome.is_some_and(|o| o != Outcome::Completed)),
            resolved: b(resolved),
            completed: b(f.status == Status::Verified || closed_completed),
            on_time: b(resolved && f.resolved_on_time == Some(true)),
            assigned: b(f.first_assigned_at.is_some()),
            responded: b(f.first_assigned_at.is_some() && f.responded),
            rated: b(rated),
            satisfied: b(matches!(f.satisfaction, Some(Satisfaction::Satisfied | Satisfaction::BasicallySatisfied))),
            resolution_secs: if resolved { f.resolution_secs.unwrap_or(0) } else { 0 },
        }
    }

    /// Adds `other` times `sign`.
    pub fn add(&mut self, other: &Counters, sign: i64) {
        self.total += sign * other.total;
        self.dismissed += sign * other.dismissed;
        self.resolved += sign * other.resolved;
        self.completed += sign * other.completed;
        self.on_time += sign * other.on_time;
        self.assigned += sign * other.assigned;
        self.responded += sign * other.responded;
        self.rated += sign * other.rated;
        self.satisfied += sign * other.satisfied;
        self.resolution_secs += sign * other.resolution_secs;
    }

    /// All zero: a delta that changes nothing.
    pub fn is_zero(&self) -> bool {
        *self == Counters::default()
    }
}

/// A dimension of the kept sums.
pub mod dim {
    /// Every case of the node.
    pub const ALL: &str = "";
    /// Per category (kept for every ancestor).
    pub const CATEGORY: &str = "category";
    /// Per kind (kept for every ancestor).
    pub const KIND: &str = "kind";
    /// Per department (by month: kept for the case's own jurisdiction; all time: for every
    /// ancestor too).
    pub const DEPARTMENT: &str = "department";
    /// Per programme (kept like [`DEPARTMENT`]).
    pub const PROGRAMME: &str = "programme";

    /// A department or a programme: by month kept at the case's own jurisdiction only; all time
    /// kept at every level, counters and hours (the other dimensions: hours only).
    pub fn per_unit(dim: &str) -> bool {
        matches!(dim, DEPARTMENT | PROGRAMME)
    }
}

/// Which month a kept row counts by: the month of creation, the month of the deadline, or none
/// (all time, for questions without a period).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Basis {
    /// The month the case was created.
    Created,
    /// The month of its deadline.
    Due,
    /// Every month at once: the row's `month` is empty.
    AllTime,
}

impl Basis {
    /// The stored letter.
    pub fn code(self) -> &'static str {
        match self {
            Basis::Created => "c",
            Basis::Due => "d",
            Basis::AllTime => "a",
        }
    }
}

/// One row key of the kept sums.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub node: String,
    pub dim: &'static str,
    pub value: String,
    pub basis: Basis,
    /// `YYYY-MM`; empty for [`Basis::AllTime`].
    pub month: String,
}

impl Key {
    /// Whether counters are kept under this key, or only the resolution-hours histogram. The
    /// all-time counters of the whole node, a category and a kind are not kept: a question without
    /// a period adds up their monthly rows (a dozen or two per group), which costs a reader less
    /// than a dozen more rows would cost every write. Their hour histograms are kept, because
    /// adding up monthly histograms means reading every hour of every month.
    pub fn keeps_counters(&self) -> bool {
        self.basis != Basis::AllTime || dim::per_unit(self.dim)
    }
}

/// The jurisdiction codes on a materialised path, root first.
pub fn path_codes(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

/// Every key a case's figures are kept under:
/// - by creation month and by deadline month: for each ancestor (and its own jurisdiction) the
///   whole, per category and per kind; for its own jurisdiction per department and per programme;
/// - all time (no month): for each ancestor and its own jurisdiction, the whole, per category,
///   per kind, per department and per programme — counters only for the department and the
///   programme (see [`Key::keeps_counters`]).
pub fn keys(f: &Facts) -> Vec<Key> {
    let own = path_codes(&f.path).last().unwrap_or_default().to_owned();
    let months =
        [(Basis::Created, month_of(f.created_at)), (Basis::Due, month_of(f.due_at)), (Basis::AllTime, String::new())];
    let mut keys = Vec::with_capacity(48);
    for (basis, month) in &months {
        let key = |node: &str, dim: &'static str, value: &str| Key {
            node: node.to_owned(),
            dim,
            value: value.to_owned(),
            basis: *basis,
            month: month.clone(),
        };
        for node in path_codes(&f.path) {
            keys.push(key(node, dim::ALL, ""));
            keys.push(key(node, dim::CATEGORY, &f.category_code));
            keys.push(key(node, dim::KIND, &f.kind));
            if *basis == Basis::AllTime || node == own {
                if let Some(d) = &f.department_id {
                    keys.push(key(node, dim::DEPARTMENT, d));
                }
                if let Some(p) = &f.programme_id {
                    keys.push(key(node, dim::PROGRAMME, p));
                }
            }
        }
    }
    keys
}

/// Resolution-hour deltas per key: hours → cases, the entries that cancel out dropped.
pub type HourDeltas = BTreeMap<Key, BTreeMap<i64, i64>>;

/// Kept-sum deltas per key.
pub type SumDeltas = BTreeMap<Key, Counters>;

/// Adds one case's (or one batch's) counter deltas into a running total.
pub fn add_sums(total: &mut SumDeltas, more: SumDeltas) {
    for (key, c) in more {
        total.entry(key).or_default().add(&c, 1);
    }
}

/// Adds one case's (or one batch's) hour deltas into a running total.
pub fn add_hours(total: &mut HourDeltas, more: HourDeltas) {
    for (key, changes) in more {
        let into = total.entry(key).or_default();
        for (h, n) in changes {
            *into.entry(h).or_default() += n;
        }
    }
}

/// The changes to the kept sums when a case goes from `before` (`None`: it is new) to `after`:
/// counter deltas per key, and resolution-hour histogram deltas per key. Entries that cancel out
/// are dropped.
pub fn delta(before: Option<&Facts>, after: &Facts) -> (SumDeltas, HourDeltas) {
    let mut sums: SumDeltas = BTreeMap::new();
    let mut hours: HourDeltas = BTreeMap::new();
    let sides = before.map(|b| (b, -1)).into_iter().chain(std::iter::once((after, 1)));
    for (facts, sign) in sides {
        let contribution = Counters::of(facts);
        let h = facts.resolution_hours();
        for key in keys(facts) {
            if let Some(h) = h {
                *hours.entry(key.clone()).or_default().entry(h).or_default() += sign;
            }
            if key.keeps_counters() {
                sums.entry(key).or_default().add(&contribution, sign);
            }
        }
    }
    sums.retain(|_, c| !c.is_zero());
    for changes in hours.values_mut() {
        changes.retain(|_, n| *n != 0);
    }
    hours.retain(|_, changes| !changes.is_empty());
    (sums, hours)
}

/// The statistical facts the lifecycle keeps on a case (see `lifecycle::apply`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptFacts {
    pub first_assigned_at: Option<DateTime<Utc>>,
    pub first_acknowledged_at: Option<DateTime<Utc>>,
    pub responded: bool,
    pub resolved_on_time: Option<bool>,
    pub resolution_secs: Option<i64>,
}

/// One event of an audit trail, as far as the kept facts need it.
#[derive(Debug, Clone)]
pub struct TrailEvent<'a> {
    pub action: &'a str,
    pub at: DateTime<Utc>,
    /// The event's `data`.
    pub data: &'a serde_json::Value,
}

/// Recomputes the kept facts of a case from its audit trail (events in order), by the rules the
/// lifecycle applies as it goes: an assignment is `assign`, `reassign` or `reopen`; the first
/// acknowledgement counts as a response when it came within `window` of the first assignment;
/// a resolution is on time as its event recorded (or, for an event without that record, when it
/// was no later than the deadline then in force), and a rejection or a reopening clears it.
pub fn replay(created_at: DateTime<Utc>, events: &[TrailEvent<'_>], window: Duration) -> KeptFacts {
    let timestamp = |v: &serde_json::Value| {
        v.as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| t.with_timezone(&Utc))
    };
    let mut f = KeptFacts {
        first_assigned_at: None,
        first_acknowledged_at: None,
        responded: false,
        resolved_on_time: None,
        resolution_secs: None,
    };
    let mut due: Option<DateTime<Utc>> = None;
    for e in events {
        match e.action {
            "create" | "extend" => due = timestamp(&e.data["due_at"]).or(due),
            "assign" | "reassign" => {
                f.first_assigned_at.get_or_insert(e.at);
            }
            "acknowledge" if f.first_acknowledged_at.is_none() => {
                f.first_acknowledged_at = Some(e.at);
                f.responded = f.first_assigned_at.is_some_and(|assigned| e.at - assigned <= window);
            }
            "resolve" => {
                let on_time = e.data["on_time"].as_bool().or_else(|| due.map(|d| e.at <= d));
                f.resolved_on_time = Some(on_time.unwrap_or(false));
                f.resolution_secs = Some((e.at - created_at).num_seconds().max(0));
            }
            "reject" => {
                f.resolved_on_time = None;
                f.resolution_secs = None;
            }
            "reopen" => {
                f.first_assigned_at.get_or_insert(e.at);
                due = timestamp(&e.data["due_at"]).or(due);
                f.resolved_on_time = None;
                f.resolution_secs = None;
            }
            _ => {}
        }
    }
    f
}

/// A rate with what it is made of; `value` is `null` when the denominator is 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    pub value: Option<f64>,
    pub numerator: i64,
    pub denominator: i64,
}

impl Rate {
    /// `numerator / denominator`, rounded to four decimals.
    pub fn of(numerator: i64, denominator: i64) -> Rate {
        let value = (denominator != 0).then(|| round(numerator as f64 / denominator as f64, 4));
        Rate { value, numerator, denominator }
    }
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// Median and mean hours from creation to resolution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ResolutionHours {
    pub median: Option<f64>,
    pub mean: Option<f64>,
}

/// The published figures of a scope.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub total: i64,
    pub dismissed: i64,
    pub effective: i64,
    pub resolution_rate: Rate,
    pub completion_rate: Rate,
    pub on_time_rate: Rate,
    pub overdue: i64,
    pub response_rate: Rate,
    pub satisfaction_rate: Rate,
    pub resolution_hours: ResolutionHours,
}

/// Resolved cases by whole hours from creation to resolution, the data of the exact median.
/// Dense (`counts[h]` cases took `h` hours), so that adding up hundreds of stored histograms of
/// a thousand hours each is a pass over arrays.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<i64>,
}

impl Histogram {
    /// The longest resolution a histogram holds (about 114 years); longer ones count here.
    pub const MAX_HOURS: i64 = 1_000_000;

    /// Adds `cases` cases that took `hours` hours.
    pub fn add(&mut self, hours: i64, cases: i64) {
        let h = hours.clamp(0, Self::MAX_HOURS) as usize;
        if h >= self.counts.len() {
            self.counts.resize(h + 1, 0);
        }
        if let Some(n) = self.counts.get_mut(h) {
            *n += cases;
        }
    }

    /// Adds `other` times `sign`.
    pub fn merge(&mut self, other: &Histogram, sign: i64) {
        for (h, n) in other.entries() {
            self.add(h, sign * n);
        }
    }

    /// The non-empty hours, shortest first, as `(hours, cases)`.
    pub fn entries(&self) -> impl Iterator<Item = (i64, i64)> + Clone + '_ {
        self.counts.iter().enumerate().filter(|(_, n)| **n != 0).map(|(h, n)| (h as i64, *n))
    }

    /// No hour holds a case.
    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|n| *n == 0)
    }

    /// Adds a stored histogram (see [`encode_hours`]) times `sign`; `Err` names what is malformed.
    pub fn add_stored(&mut self, text: &str, sign: i64) -> Result<(), String> {
        for entry in text.split(',').filter(|e| !e.is_empty()) {
            let parsed =
                entry.split_once(':').and_then(|(h, n)| Some((h.parse::<i64>().ok()?, n.parse::<i64>().ok()?)));
            match parsed {
                Some((h, n)) if (0..=Self::MAX_HOURS).contains(&h) => self.add(h, sign * n),
                _ => return Err(format!("malformed histogram entry {entry:?}")),
            }
        }
        Ok(())
    }

    /// The median in whole hours; the mean of the two middle values for an even count.
    pub fn median(&self) -> Option<f64> {
        median_of(self.entries())
    }
}

/// The median of `(hours, cases)` entries given shortest first (entries with no or a negative
/// count are left out), in whole hours; the mean of the two middle values for an even count.
pub fn median_of(entries: impl Iterator<Item = (i64, i64)> + Clone) -> Option<f64> {
    let counted = entries.filter(|(_, c)| *c > 0);
    let n: i64 = counted.clone().map(|(_, c)| c).sum();
    if n <= 0 {
        return None;
    }
    let (lo, hi) = ((n + 1) / 2, n / 2 + 1);
    let (mut seen, mut at_lo, mut at_hi) = (0, None, None);
    for (h, c) in counted {
        seen += c;
        if at_lo.is_none() && seen >= lo {
            at_lo = Some(h);
        }
        if seen >= hi {
            at_hi = Some(h);
            break;
        }
    }
    Some(round((at_lo.unwrap_or(0) + at_hi.unwrap_or(0)) as f64 / 2.0, 2))
}

/// The stored form of a histogram or of a change to one: the non-zero `hours:cases` pairs,
/// comma-separated (`0:3,5:1,17:2`; a change may hold negative counts).
pub fn encode_hours(entries: impl IntoIterator<Item = (i64, i64)>) -> String {
    use std::fmt::Write;
    let mut text = String::new();
    for (h, n) in entries.into_iter().filter(|(_, n)| *n != 0) {
        if !text.is_empty() {
            text.push(',');
        }
        let _ = write!(text, "{h}:{n}");
    }
    text
}

/// Makes the published figures from summed counters, the median of the resolution hours (see
/// [`Histogram::median`]) and the overdue count.
pub fn summarize(c: &Counters, median_hours: Option<f64>, overdue: i64) -> Summary {
    let effective = c.total - c.dismissed;
    Summary {
        total: c.total,
        dismissed: c.dismissed,
        effective,
        resolution_rate: Rate::of(c.resolved, effective),
        completion_rate: Rate::of(c.completed, effective),
        on_time_rate: Rate::of(c.on_time, c.resolved),
        overdue,
        response_rate: Rate::of(c.responded, c.assigned),
        satisfaction_rate: Rate::of(c.satisfied, c.rated),
        resolution_hours: ResolutionHours {
            median: median_hours,
            mean: (c.resolved > 0).then(|| round(c.resolution_secs as f64 / c.resolved as f64 / 3600.0, 2)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        let h = |pairs: &[(i64, i64)]| {
            let mut h = Histogram::default();
            for (hours, n) in pairs {
                h.add(*hours, *n);
            }
            h.median()
        };
        assert_eq!(h(&[]), None);
        assert_eq!(h(&[(5, 1)]), Some(5.0));
        assert_eq!(h(&[(1, 1), (4, 1)]), Some(2.5));
        assert_eq!(h(&[(1, 2), (9, 1)]), Some(1.0));
        assert_eq!(h(&[(1, 1), (3, 2), (8, 1)]), Some(3.0));
        assert_eq!(h(&[(0, 1), (7, 0), (9, 1)]), Some(4.5));
    }

    #[test]
    fn stored_histograms_round_trip_and_add_up() {
        let mut h = Histogram::default();
        assert_eq!(h.add_stored("0:3,5:1,17:2", 1), Ok(()));
        assert_eq!(encode_hours(h.entries()), "0:3,5:1,17:2");
        assert_eq!(h.add_stored("5:-1,2:4", 1), Ok(()));
        assert_eq!(encode_hours(h.entries()), "0:3,2:4,17:2");
        assert_eq!(h.add_stored("", 1), Ok(()));
        assert!(h.add_stored("3", 1).is_err());
        assert!(h.add_stored("-1:2", 1).is_err());
        assert!(h.add_stored("x:2", 1).is_err());
        assert_eq!(encode_hours([(4, 0), (6, -2)]), "6:-2");
    }

    #[test]
    fn rates_have_null_values_for_empty_denominators() {
        assert_eq!(Rate::of(0, 0).value, None);
        assert_eq!(Rate::of(2, 3).value, Some(0.6667));
    }

    #[test]
    fn months_are_china_standard_time() {
        let t = DateTime::parse_from_rfc3339("2026-01-31T17:00:00Z").map(|t| t.with_timezone(&Utc)).ok();
        assert_eq!(t.map(month_of).as_deref(), Some("2026-02"));
    }
}
