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
//!
//! A passive checkpoint alone does not bound the log under sustained writes: the log starts over
//! only when a writer finds every frame copied and no reader still reading from it, which never
//! happens while transactions overlap without pause (eight writers grew it by 300 MB a second,
//! to 3 GB in ten seconds, each create appending some forty whole pages). So when the log passes
//! [`RESTART_AT_PAGES`], the thread takes the process's write turn (writers queue for a few
//! milliseconds) and runs a restarting checkpoint, which copies the rest and waits — at most
//! [`RESTART_WAIT_MS`] — for the readers to move to the database file; the next writer then
//! starts the log over, and `journal_size_limit` trims the file.

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
/// A log this long (pages: 64 MiB, the `journal_size_limit`) is restarted (see the module docs).
const RESTART_AT_PAGES: i32 = 16_384;
/// How long a restarting checkpoint waits for readers (SQLite's busy handler) before giving up
/// until the next period; writers of the process wait at most this long for it.
const RESTART_WAIT_MS: u32 = 200;
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
    let busy_ms = factory.busy_timeout_ms();
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
                let passive = diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result::<Outcome>(&mut conn);
                let passive = match passive {
                    Ok(o) if o.log >= RESTART_AT_PAGES => restart(&mut conn, busy_ms).map(|_| o),
                    other => other,
                };
                match passive {
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

/// Copies the rest of a long log and waits (briefly) until no reader needs it, holding the
/// process's write turn, so the next writer starts the log over. Busy is not an error: readers
/// or another process's writer kept it from finishing, and the next period tries again.
fn restart(conn: &mut diesel::SqliteConnection, busy_ms: u32) -> QueryResult<()> {
    let _writes = super::hold_sqlite_writes();
    conn.batch_execute(&format!("PRAGMA busy_timeout = {RESTART_WAIT_MS}"))?;
    let done = diesel::sql_query("PRAGMA wal_checkpoint(RESTART)").get_result::<Outcome>(conn);
    conn.batch_execute(&format!("PRAGMA busy_timeout = {busy_ms}"))?;
    match done {
        Ok(o) if o.busy != 0 => tracing::debug!(log_pages = o.log, "SQLite log restart deferred: still in use"),
        Ok(o) => tracing::debug!(log_pages = o.log, "SQLite log restarted"),
        Err(e) => return Err(e),
    }
    Ok(())
}
