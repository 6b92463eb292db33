//! Webhooks: subscriptions to case events, a transactional outbox, and delivery.
//!
//! Every case change writes one outbox row per interested subscription in the same transaction
//! as the change — so an event is never lost when the process dies after the commit, and never
//! sent for a change that rolled back. A dispatcher (see `crate::background`) claims due rows —
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL, so several processes never send the same attempt —
//! delivers them in order per case, signs each body, records every attempt, and retries with
//! exponential backoff and jitter for more than 24 hours before giving up. A subscription that has
//! failed for 24 hours is disabled. Delivery is at least once; the event id is stable.

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use rand::Rng;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::Sha256;

use super::{encode_cursor, new_id, Page, PageRequest};
use crate::db::models::Case;
use crate::db::webhooks::{self as q, Attempt, OutboxRow, Webhook, WebhookChanges};
use crate::db::{write_tx, DbConn};
use crate::domain::access::{Principal, PrincipalKind};
use crate::domain::input::{need, Input};
use crate::domain::types::{Action, Role, Scope};
use crate::domain::util::{from_db, rfc3339, to_db, ts, ts_opt};
use crate::error::{AppError, AppResult};

/// The event types a subscription may ask for.
pub const EVENT_TYPES: &[&str] = &[
    "case.created",
    "case.assigned",
    "case.acknowledged",
    "case.returned",
    "case.resolved",
    "case.verified",
    "case.rejected",
    "case.closed",
    "case.dismissed",
    "case.reopened",
    "case.extended",
    "case.overdue",
];

/// The event an action emits (comments emit none).
pub fn event_type(action: Action) -> Option<&'static str> {
    Some(match action {
        Action::Create => "case.created",
        Action::Assign | Action::Reassign => "case.assigned",
        Action::Acknowledge => "case.acknowledged",
        Action::Return => "case.returned",
        Action::Resolve => "case.resolved",
        Action::Verify => "case.verified",
        Action::Reject => "case.rejected",
        Action::Close => "case.closed",
        Action::Dismiss => "case.dismissed",
        Action::Reopen => "case.reopened",
        Action::Extend => "case.extended",
        Action::Comment => return None,
    })
}

/// Longest subscription URL.
const MAX_URL: usize = 2000;
/// Deliveries are retried for this long after the event, then given up.
pub const GIVE_UP_AFTER_HOURS: i64 = 25;
/// A subscription failing for this long is disabled.
pub const DISABLE_AFTER_HOURS: i64 = 24;

/// A subscription as the API shows it (the secret only when created).
#[derive(Debug, Serialize)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub active: bool,
    pub disabled_reason: Option<String>,
    pub owner_id: String,
    #[serde(with = "ts")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "ts")]
    pub updated_at: DateTime<Utc>,
}

/// The answer to a new subscription: the secret appears here only.
#[derive(Debug, Serialize)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// Signs every delivery (see docs/INTEGRATION.md). Shown once.
    pub secret: String,
}

fn view(w: Webhook) -> WebhookView {
    WebhookView {
        id: w.id,
        url: w.url,
        events: w.events.split(' ').filter(|e| !e.is_empty()).map(str::to_owned).collect(),
        active: w.active,
        disabled_reason: w.disabled_reason,
        owner_id: w.owner_id,
        created_at: from_db(w.created_at),
        updated_at: from_db(w.updated_at),
    }
}

/// Who may manage subscriptions: admins, and API clients with `webhooks:manage`.
fn require_manager(p: &Principal) -> AppResult<()> {
    match p.role {
        Role::Admin => Ok(()),
        Role::Integration => p.require_scope(Scope::WebhooksManage),
        _ => Err(AppError::Forbidden {
            code: "role_not_permitted",
            detail: "webhooks are managed by admins and integration clients".to_owned(),
        }),
    }
}

/// Whether a subscription is the caller's to see: its own, or (for an admin) one in its subtree.
fn visible(conn: &mut DbConn, p: &Principal, id: &str) -> AppResult<Webhook> {
    require_manager(p)?;
    let w = q::get(conn, id)?.ok_or_else(|| AppError::not_found("webhook"))?;
    let mine = w.owner_id == p.id;
    let in_scope = p.role == Role::Admin
        && match (&p.scope_path, &w.scope_path) {
            (None, _) => true,
            (Some(mine), Some(theirs)) => theirs.starts_with(mine.as_str()),
            (Some(_), None) => false,
        };
    if mine || in_scope {
        Ok(w)
    } else {
        Err(AppError::not_found("webhook"))
    }
}

/// Body of `POST /webhooks` and `PATCH /webhooks/{id}`.
pub struct WebhookInput {
    url: Option<String>,
    events: Option<Vec<String>>,
    active: Option<bool>,
}

fn read_events(i: &mut Input<'_>, body: &Value) -> Option<Vec<String>> {
    let raw = body.get("events").filter(|v| !v.is_null())?;
    let Some(list) = raw.as_array().filter(|l| !l.is_empty()) else {
        i.error("events", "invalid_value", "a non-empty list of event types");
        return None;
    };
    let mut events = Vec::new();
    for e in list {
        match e.as_str().filter(|e| EVENT_TYPES.contains(e)) {
            Some(e) if !events.iter().any(|x: &String| x == e) => events.push(e.to_owned()),
            Some(_) => {}
            None => {
                i.error("events", "invalid_value", format!("each one of: {}", EVENT_TYPES.join(", ")));
                return None;
            }
        }
    }
    events.sort();
    Some(events)
}

impl WebhookInput {
    /// Reads a body; `create` requires url and events.
    pub fn parse(body: &Value, create: bool) -> AppResult<WebhookInput> {
        let mut i = Input::new(body);
        let url = if create { i.text("url", MAX_URL, false) } else { i.opt_text("url", MAX_URL, false) };
        if let Some(u) = &url {
            // The same rule as every other URL the service takes (`media_url`): scheme in any
            // case, a host, no spaces.
            if !crate::domain::input::is_web_url(u) {
                i.error("url", "invalid_format", "an absolute http or https URL");
            }
        }
        let events = read_events(&mut i, body);
        if create && events.is_none() && !i.has("events") {
            i.error("events", "required", "this field is required");
        }
        let active = if create { None } else { i.opt_bool("active") };
        i.finish()?;
        Ok(WebhookInput { url, events, active })
    }
}

/// Creates a subscription for the caller (scoped like the caller) with a fresh secret.
pub fn create(conn: &mut DbConn, p: &Principal, input: WebhookInput) -> AppResult<CreatedWebhook> {
    require_manager(p)?;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill(&mut bytes);
    let secret = format!("whsec_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
    let t = to_db(crate::domain::util::now());
    let w = Webhook {
        id: new_id(),
        owner_id: p.id.clone(),
        owner_kind: match p.kind {
            PrincipalKind::User => "user".to_owned(),
            PrincipalKind::ApiClient => "api_client".to_owned(),
        },
        owner_role: p.role.as_str().to_owned(),
        scope_path: p.scope_path.clone(),
        url: need(input.url, "url")?,
        events: need(input.events, "events")?.join(" "),
        secret: secret.clone(),
        active: true,
        disabled_reason: None,
        failing_since: None,
        created_at: t,
        updated_at: t,
    };
    write_tx(conn, |conn| {
        q::insert(conn, &w)?;
        super::audit::record(
            conn,
            p,
            "webhook.created",
            "webhook",
            &w.id,
            w.scope_path.as_deref(),
            json!({ "url": w.url, "events": w.events }),
        )
    })?;
    Ok(CreatedWebhook { webhook: view(w), secret })
}

/// The caller's subscriptions (admins: those in their subtree).
pub fn list(conn: &mut DbConn, p: &Principal) -> AppResult<Page<WebhookView>> {
    require_manager(p)?;
    let all = q::all(conn, false)?;
    let mut items = Vec::new();
    for w in all {
        if visible(conn, p, &w.id).is_ok() {
            items.push(view(w));
        }
    }
    Ok(Page { items, next_cursor: None })
}

/// One subscription.
pub fn get(conn: &mut DbConn, p: &Principal, id: &str) -> AppResult<WebhookView> {
    visible(conn, p, id).map(view)
}

/// Changes a subscription's URL, events, or turns it on or off (turning it on clears a disabling).
pub fn update(conn: &mut DbConn, p: &Principal, id: &str, input: WebhookInput) -> AppResult<WebhookView> {
    write_tx(conn, |conn| {
        let w = visible(conn, p, id)?;
        let url = input.url.clone().unwrap_or(w.url.clone());
        let events = input.events.clone().map(|e| e.join(" ")).unwrap_or(w.events.clone());
        let active = input.active.unwrap_or(w.active);
        let (reason, failing) = if active {
            (None, None)
        } else {
            (w.disabled_reason.as_deref().or(Some("disabled by its owner")), w.failing_since)
        };
        let changes = WebhookChanges {
            url: url.clone(),
            events: events.clone(),
            active,
            disabled_reason: reason.map(str::to_owned),
            failing_since: failing,
            updated_at: to_db(crate::domain::util::now()),
        };
        q::update(conn, id, &changes)?;
        super::audit::record(
            conn,
            p,
            "webhook.updated",
            "webhook",
            id,
            w.scope_path.as_deref(),
            json!({ "url": url, "events": events, "active": active }),
        )?;
        visible(conn, p, id).map(view)
    })
}

/// Whether a subscription may hear of a case: in its owner's subtree, and for an API client only
/// the cases it created.
fn may_see(w: &Webhook, case: &Case) -> bool {
    let in_scope = w.scope_path.as_deref().is_none_or(|s| case.jurisdiction_path.starts_with(s));
    in_scope && (w.owner_kind != "api_client" || case.created_by == w.owner_id)
}

/// Queues `event_type` about `case` for every interested subscription (in the caller's
/// transaction). The payload is the case as the API shows it, personal data masked.
pub fn enqueue(conn: &mut DbConn, case: &Case, event_type: &str, now: DateTime<Utc>) -> AppResult<()> {
    let subscribers: Vec<Webhook> = q::all(conn, true)?
        .into_iter()
        .filter(|w| w.events.split(' ').any(|e| e == event_type) && may_see(w, case))
        .collect();
    if subscribers.is_empty() {
        return Ok(());
    }
    let snapshot = super::cases::masked_view(case.clone(), now)?;
    let rows: Vec<OutboxRow> = subscribers
        .iter()
        .map(|w| {
            let id = new_id();
            let payload = json!({ "id": id, "type": event_type, "occurred_at": rfc3339(now), "case": snapshot });
            OutboxRow {
                id,
                webhook_id: w.id.clone(),
                case_id: case.id.clone(),
                event_type: event_type.to_owned(),
                payload: payload.to_string(),
                created_at: to_db(now),
                state: "pending".to_owned(),
                attempts: 0,
                next_attempt_at: to_db(now),
                locked_until: None,
                delivered_at: None,
                last_error: None,
            }
        })
        .collect();
    Ok(q::enqueue(conn, &rows)?)
}

/// Announces, once, each open case that has passed its deadline (`case.overdue`); returns how
/// many. A new deadline (extension, reopening) may be announced again when it passes.
pub fn announce_overdue(conn: &mut DbConn, now: DateTime<Utc>) -> AppResult<usize> {
    write_tx(conn, |conn| {
        let cases = q::newly_overdue(conn, to_db(now), 200)?;
        for case in &cases {
            q::mark_overdue_notified(conn, &case.id, to_db(now))?;
            enqueue(conn, case, "case.overdue", now)?;
        }
        Ok(cases.len())
    })
}

/// A claimed event and where it goes.
#[derive(Debug, Clone)]
pub struct Job {
    pub event: OutboxRow,
    pub url: String,
    pub secret: String,
}

/// Claims due events for this process; events waiting behind an earlier one for the same case
/// are left for later.
/// A claim lasts `lock`: long enough for one attempt, so an event claimed by a process that died
/// is sent again soon after.
pub fn claim(conn: &mut DbConn, now: DateTime<Utc>, limit: i64, lock: Duration) -> AppResult<Vec<Job>> {
    let claimed = write_tx(conn, |conn| Ok::<_, AppError>(q::claim_due(conn, to_db(now), to_db(now + lock), limit)?))?;
    let mut jobs = Vec::new();
    for event in claimed {
        match q::get(conn, &event.webhook_id)? {
            Some(w) if w.active => match q::earliest_pending_before(conn, &event)? {
                // Wait behind the case's earlier event: not due again before it is.
                Some(earlier_due) => {
                    q::postpone(conn, &event.id, earlier_due.max(to_db(now)) + Duration::milliseconds(1))?
                }
                None => jobs.push(Job { event, url: w.url, secret: w.secret }),
            },
            // A switched-off subscription: close the event (it can still be redelivered).
            _ => q::finish(
                conn,
                &event.id,
                "failed",
                event.attempts,
                event.next_attempt_at,
                None,
                Some("subscription is not active"),
            )?,
        }
    }
    Ok(jobs)
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// What one delivery attempt came to.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

impl Outcome {
    /// Whether the receiver answered 2xx.
    pub fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Sends one event (blocking; run it on the blocking pool).
pub fn deliver(agent: &ureq::Agent, job: &Job, now: DateTime<Utc>) -> Outcome {
    let started = std::time::Instant::now();
    let result = agent
        .post(&job.url)
        .set("Content-Type", "application/json")
        .set("User-Agent", "minsheng-webhooks/1")
        .set("Minsheng-Event-Id", &job.event.id)
        .set("Minsheng-Event-Type", &job.event.event_type)
        .set("Minsheng-Signature", &signature(&job.secret, now.timestamp(), &job.event.payload))
        .send_string(&job.event.payload);
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    match result {
        Ok(r) => Outcome { status: Some(r.status()), error: None, duration_ms },
        Err(ureq::Error::Status(code, _)) => {
            Outcome { status: Some(code), error: Some(format!("HTTP {code}")), duration_ms }
        }
        Err(e) => Outcome { status: None, error: Some(e.kind().to_string()), duration_ms },
    }
}

/// Records an attempt and schedules what comes next: delivered, retried after a backoff with
/// jitter, or given up; a subscription failing for a day is disabled.
pub fn record(
    conn: &mut DbConn,
    job: &Job,
    outcome: &Outcome,
    now: DateTime<Utc>,
    retry_base: Duration,
) -> AppResult<()> {
    write_tx(conn, |conn| {
        let e = &job.event;
        q::log_attempt(
            conn,
            &Attempt {
                id: new_id(),
                outbox_id: e.id.clone(),
                attempted_at: to_db(now),
                status_code: outcome.status.map(i32::from),
                error: outcome.error.clone(),
                duration_ms: outcome.duration_ms,
            },
        )?;
        let attempts = e.attempts + 1;
        let webhook = q::get(conn, &e.webhook_id)?;
        if outcome.delivered() {
            q::finish(conn, &e.id, "delivered", attempts, to_db(now), Some(to_db(now)), None)?;
            if let Some(w) = webhook.filter(|w| w.failing_since.is_some()) {
                let changes = WebhookChanges {
                    url: w.url,
                    events: w.events,
                    active: w.active,
                    disabled_reason: None,
                    failing_since: None,
                    updated_at: to_db(now),
                };
                q::update(conn, &w.id, &changes)?;
            }
            return Ok(());
        }
        // base, 2×base, 4×base, … after the 1st, 2nd, 3rd failure.
        let exp = retry_base * 2i32.saturating_pow(u32::try_from((attempts - 1).clamp(0, 12)).unwrap_or(12));
        let capped = exp.min(Duration::hours(1));
        let jitter = rand::thread_rng().gen_range(0.5..1.5);
        let next = now + Duration::milliseconds((capped.num_milliseconds() as f64 * jitter) as i64);
        let give_up = from_db(e.created_at) + Duration::hours(GIVE_UP_AFTER_HOURS) < next;
        let state = if give_up { "failed" } else { "pending" };
        q::finish(conn, &e.id, state, attempts, to_db(next), None, outcome.error.as_deref())?;
        if let Some(w) = webhook {
            let since = w.failing_since.map(from_db).unwrap_or(now);
            let disable = now - since > Duration::hours(DISABLE_AFTER_HOURS);
            let reason = disable.then_some("deliveries failed for 24 hours");
            let changes = WebhookChanges {
                url: w.url.clone(),
                events: w.events.clone(),
                active: w.active && !disable,
                disabled_reason: reason.map(str::to_owned).or(w.disabled_reason.clone()),
                failing_since: Some(to_db(since)),
                updated_at: to_db(now),
            };
            q::update(conn, &w.id, &changes)?;
            if disable {
                tracing::warn!(webhook_id = %w.id, "webhook {} disabled after a day of failures", w.id);
            }
        }
        Ok(())
    })
}

/// An event in the delivery log.
#[derive(Debug, Serialize)]
pub struct DeliveryView {
    pub event_id: String,
    pub event_type: String,
    pub case_id: String,
    pub state: String,
    pub attempts: i32,
    #[serde(with = "ts")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "ts_opt")]
    pub delivered_at: Option<DateTime<Utc>>,
    #[serde(with = "ts")]
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub log: Vec<AttemptView>,
}

/// One attempt in the delivery log.
#[derive(Debug, Serialize)]
pub struct AttemptView {
    #[serde(with = "ts")]
    pub at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// A subscription's delivery log, newest event first.
pub fn deliveries(conn: &mut DbConn, p: &Principal, id: &str, page: PageRequest) -> AppResult<Page<DeliveryView>> {
    visible(conn, p, id)?;
    let rows = q::events(conn, id, page.after.as_deref(), page.limit + 1)?;
    let more = rows.len() as i64 > page.limit;
    let rows: Vec<OutboxRow> = rows.into_iter().take(page.limit.max(0) as usize).collect();
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let attempts = q::attempts(conn, &ids)?;
    let next_cursor = if more { rows.last().map(|r| encode_cursor(&r.id)) } else { None };
    let items = rows
        .into_iter()
        .map(|r| DeliveryView {
            log: attempts
                .iter()
                .filter(|a| a.outbox_id == r.id)
                .map(|a| AttemptView {
                    at: from_db(a.attempted_at),
                    status_code: a.status_code,
                    error: a.error.clone(),
                    duration_ms: a.duration_ms,
                })
                .collect(),
            event_id: r.id,
            event_type: r.event_type,
            case_id: r.case_id,
            state: r.state,
            attempts: r.attempts,
            created_at: from_db(r.created_at),
            delivered_at: r.delivered_at.map(from_db),
            next_attempt_at: from_db(r.next_attempt_at),
            last_error: r.last_error,
        })
        .collect();
    Ok(Page { items, next_cursor })
}

/// Queues one event for delivery again, now.
pub fn redeliver(conn: &mut DbConn, p: &Principal, id: &str, event_id: &str) -> AppResult<DeliveryView> {
    write_tx(conn, |conn| {
        visible(conn, p, id)?;
        q::event(conn, id, event_id)?.ok_or_else(|| AppError::not_found("event"))?;
        q::requeue(conn, event_id, to_db(crate::domain::util::now()))?;
        let row = q::event(conn, id, event_id)?.ok_or_else(|| AppError::not_found("event"))?;
        Ok(DeliveryView {
            event_id: row.id,
            event_type: row.event_type,
            case_id: row.case_id,
            state: row.state,
            attempts: row.attempts,
            created_at: from_db(row.created_at),
            delivered_at: row.delivered_at.map(from_db),
            next_attempt_at: from_db(row.next_attempt_at),
            last_error: row.last_error,
            log: Vec::new(),
        })
    })
}
