//! SQLite write-ahead-log checkpoints off the request path.
//!
//! By default SQLite copies the log back into the database file inside whichever commit takes
//! the log past 1,000 pages: that request waits for the copy and its fsync (the p99 of writes),
//! and the copy runs under the write gate, so every queued writer waits with it. The service's
//! pool instead turns those automatic checkpoints off ([`ConnectionFactory::with_background_checkpoints`])
//! and this thread runs a passive checkpoint on its own connection every period: it copies what
//! no reader still needs, never takes the write lock, and never waits. When the whole log is
//! copied, the next writer starts it over from the beginning (and `journal_size_limit` trims the
//! file). Once an hour (and at start) it also runs `PRAGMA optimize`, so the query planner's
//! statistics follow the data (see `db::refresh_planner_statistics`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Integer;

use super::{ConnectionFactory, DbConn};

/// A log this long (pages, 4 KiB each: 1 GiB) means checkpoints are not keeping up — a reader
/// that never ends holds the old pages — and is logged as a warning.
const LONG_LOG_PAGES: i32 = 262_144;
/// At most one such warning per this long.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// How often the planner's statistics are brought up to date (`PRAGMA optimize`, which analyses
/// only the tables whose statistics are missing or stale). Each such table is analysed whole
/// (about a second per million cases, once the table has grown tenfold): an `analysis_limit`
/// makes it cheaper but guesses a status's 200,000 cases as 1,001, and the planner then counted
/// overdue cases through the status index (33 ms instead of 1 ms at a million cases).
const OPTIMIZE_EVERY: Duration = Duration::from_secs(3600);

/// The running checkpoint thread; it stops when this is dropped (with the state that owns it).
#[derive(Debug)]
pub struct Checkpointer {
    stopping: Arc<AtomicBool>,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
    }
}

#[derive(QueryableByName)]
struct Outcome {
    #[diesel(sql_type = Integer)]
    busy: i32,
    #[diesel(sql_type = Integer)]
    log: i32,
    #[diesel(sql_type = Integer)]
    checkpointed: i32,
}

/// Starts checkpointing the database `factory` opens every `period`, on a connection of its own
/// (opened here, so a database that cannot be opened fails start-up rather than later).
pub fn start(factory: &ConnectionFactory, period: Duration) -> Result<Checkpointer, String> {
    let conn = factory.clone().with_background_checkpoints(false).open().map_err(|e| e.to_string())?;
    let DbConn::Sqlite(mut conn) = conn else {
        return Err("checkpoints are for SQLite databases".to_owned());
    };
    let stopping = Arc::new(AtomicBool::new(false));
    let flag = stopping.clone();
    std::thread::Builder::new()
        .name("sqlite-checkpoint".to_owned())
        .spawn(move || {
            let mut warned: Option<Instant> = None;
            let mut optimized: Option<Instant> = None;
            loop {
                if optimized.is_none_or(|t| t.elapsed() >= OPTIMIZE_EVERY) {
                    optimized = Some(Instant::now());
                    if let Err(e) = conn.batch_execute("PRAGMA optimize = 0x10002") {
                        tracing::warn!(error = %e, "SQLite PRAGMA optimize failed");
                    }
                }
                let until = Instant::now() + period;
                while Instant::now() < until && !flag.load(Ordering::SeqCst) {
                    std::thread::sleep(until.saturating_duration_since(Instant::now()).min(Duration::from_millis(100)));
                }
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                match diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result::<Outcome>(&mut conn) {
                    Ok(o) if o.log >= LONG_LOG_PAGES && warned.is_none_or(|t| t.elapsed() >= WARN_EVERY) => {
                        warned = Some(Instant::now());
                        tracing::warn!(
                            log_pages = o.log,
                            checkpointed = o.checkpointed,
                            busy = o.busy,
                            "the SQLite write-ahead log is not being emptied: a long-running reader holds it"
                        );
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "SQLite checkpoint failed"),
                }
            }
        })
        .map_err(|e| format!("cannot start the checkpoint thread: {e}"))?;
    Ok(Checkpointer { stopping })
}
