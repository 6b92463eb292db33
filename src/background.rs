//! Work the service does on its own, beside the requests: delivering webhooks, announcing cases
//! that passed their deadline, and purging expired idempotency keys. One loop per process; every
//! step is a unit of work on the blocking pool, so it never blocks an HTTP worker. Several
//! processes on one PostgreSQL share the work safely (claims use `FOR UPDATE SKIP LOCKED`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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

/// The running loop: [`Background::stop`] asks it to finish what it is doing and waits for it.
pub struct Background {
    stopping: Arc<AtomicBool>,
    task: actix_web::rt::task::JoinHandle<()>,
}

impl Background {
    /// Asks the loop to stop after the delivery (or scan) in progress, and waits for it at most
    /// `grace`; past that the loop is abandoned (an interrupted delivery is sent again later, see
    /// the claim in `dispatch`).
    pub async fn stop(self, grace: Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        let mut task = self.task;
        let deadline = actix_web::rt::time::sleep(grace);
        futures_util::pin_mut!(deadline);
        match futures_util::future::select(&mut task, deadline).await {
            futures_util::future::Either::Left(_) => tracing::info!("webhook dispatcher stopped"),
            futures_util::future::Either::Right(_) => {
                task.abort();
                tracing::warn!("webhook dispatcher did not stop within the grace period; abandoned");
            }
        }
    }
}

/// Starts the loop on the current actix runtime.
pub fn start(state: web::Data<AppState>) -> Background {
    let stopping = Arc::new(AtomicBool::new(false));
    let flag = stopping.clone();
    let task = actix_web::rt::spawn(async move { run(state, flag).await });
    Background { stopping, task }
}

/// Sleeps `period`, waking early (within 100 ms) when asked to stop; `true` when stopping.
async fn pause(period: Duration, stopping: &AtomicBool) -> bool {
    let until = Instant::now() + period;
    while !stopping.load(Ordering::SeqCst) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        actix_web::rt::time::sleep(left.min(Duration::from_millis(100))).await;
    }
    true
}

async fn run(state: web::Data<AppState>, stopping: Arc<AtomicBool>) {
    let agent = ureq::AgentBuilder::new().timeout(state.config.webhook_timeout).redirects(0).build();
    let mut last_overdue: Option<Instant> = None;
    let mut last_purge: Option<Instant> = None;
    loop {
        if pause(state.config.webhook_poll, &stopping).await {
            return;
        }
        if let Err(e) = dispatch(&state, &agent, &stopping).await {
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
async fn dispatch(state: &web::Data<AppState>, agent: &ureq::Agent, stopping: &AtomicBool) -> AppResult<()> {
    // A claim outlives one attempt (the delivery timeout) by a margin, no more.
    let lock = chrono::Duration::from_std(state.config.webhook_timeout).unwrap_or(chrono::Duration::seconds(10))
        + chrono::Duration::seconds(5);
    let jobs = state.db(move |conn| webhooks::claim(conn, now(), BATCH, lock)).await?;
    let base = chrono::Duration::from_std(state.config.webhook_retry_base).unwrap_or(chrono::Duration::seconds(5));
    for job in jobs {
        // Stopping: the claims left unsent lapse and another round (or process) sends them.
        if stopping.load(Ordering::SeqCst) {
            break;
        }
        let (agent, sent) = (agent.clone(), job.clone());
        let outcome = web::block(move || webhooks::deliver(&agent, &sent, now())).await?;
        tracing::info!(webhook_id = %job.event.webhook_id, event_id = %job.event.id, status = ?outcome.status, "webhook delivery");
        state.metrics.webhook_attempt(outcome.delivered());
        state.db(move |conn| webhooks::record(conn, &job, &outcome, now(), base)).await?;
    }
    Ok(())
}
