//! Work the service does on its own, beside the requests: delivering webhooks, announcing cases
//! that passed their deadline, and purging expired idempotency keys. One loop per process; every
//! step is a unit of work on the blocking pool, so it never blocks an HTTP worker. Several
//! processes on one PostgreSQL share the work safely (claims use `FOR UPDATE SKIP LOCKED`).

use std::time::{Duration, Instant};

use actix_web::web;

use crate::domain::util::now;
use crate::error::AppResult;
use crate::service::{idempotency, webhooks};
use crate::state::AppState;

/// Deliveries claimed per round.
const BATCH: i64 = 20;
/// How often expired idempotency keys are purged.
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// Starts the loop on the current actix runtime.
pub fn start(state: web::Data<AppState>) {
    actix_web::rt::spawn(async move { run(state).await });
}

async fn run(state: web::Data<AppState>) {
    let agent = ureq::AgentBuilder::new().timeout(state.config.webhook_timeout).redirects(0).build();
    let mut last_overdue: Option<Instant> = None;
    let mut last_purge: Option<Instant> = None;
    loop {
        actix_web::rt::time::sleep(state.config.webhook_poll).await;
        if let Err(e) = dispatch(&state, &agent).await {
            tracing::warn!(error = %e, "webhook dispatch round failed");
        }
        if last_overdue.is_none_or(|t| t.elapsed() >= state.config.overdue_scan) {
            last_overdue = Some(Instant::now());
            match state.db(|conn| webhooks::announce_overdue(conn, now())).await {
                Ok(n) if n > 0 => tracing::info!(cases = n, "announced {n} overdue cases"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "overdue scan failed"),
            }
        }
        if last_purge.is_none_or(|t| t.elapsed() >= PURGE_EVERY) {
            last_purge = Some(Instant::now());
            if let Err(e) = state.db(|conn| idempotency::purge_expired(conn, now())).await {
                tracing::warn!(error = %e, "idempotency purge failed");
            }
        }
    }
}

/// One round: claim due deliveries, send each, record each.
async fn dispatch(state: &web::Data<AppState>, agent: &ureq::Agent) -> AppResult<()> {
    // A claim outlives one attempt (the delivery timeout) by a margin, no more.
    let lock = chrono::Duration::from_std(state.config.webhook_timeout).unwrap_or(chrono::Duration::seconds(10))
        + chrono::Duration::seconds(5);
    let jobs = state.db(move |conn| webhooks::claim(conn, now(), BATCH, lock)).await?;
    let base = chrono::Duration::from_std(state.config.webhook_retry_base).unwrap_or(chrono::Duration::seconds(5));
    for job in jobs {
        let (agent, sent) = (agent.clone(), job.clone());
        let outcome = web::block(move || webhooks::deliver(&agent, &sent, now())).await?;
        tracing::info!(webhook_id = %job.event.webhook_id, event_id = %job.event.id, status = ?outcome.status, "webhook delivery");
        state.metrics.webhook_attempt(outcome.delivered());
        state.db(move |conn| webhooks::record(conn, &job, &outcome, now(), base)).await?;
    }
    Ok(())
}
