//! The database gauges of `GET /metrics`: cheap at any size (an indexed count per outbox state,
//! and the kept statistics sums of the root jurisdictions rather than a count over `cases`).

use crate::db::{stats, webhooks, DbConn};
use crate::error::AppResult;
use crate::metrics::DbGauges;

/// Reads the outbox depth and the cases by status group.
pub fn db_gauges(conn: &mut DbConn) -> AppResult<DbGauges> {
    let outbox_pending = webhooks::count_in_state(conn, "pending")?;
    let outbox_failed = webhooks::count_in_state(conn, "failed")?;
    let (mut total, mut dismissed, mut resolved, mut completed) = (0i64, 0i64, 0i64, 0i64);
    for (t, d, r, c) in stats::tree_totals(conn)? {
        total += t;
        dismissed += d;
        resolved += r;
        completed += c;
    }
    // `resolved` counts cases that reached resolution (now resolved, verified or closed
    // completed); `completed` those verified or closed completed (docs/STATISTICS.md).
    Ok(DbGauges {
        outbox_pending,
        outbox_failed,
        cases_open: (total - dismissed - resolved).max(0),
        cases_resolved: (resolved - completed).max(0),
        cases_completed: completed,
        cases_dismissed: dismissed,
    })
}
