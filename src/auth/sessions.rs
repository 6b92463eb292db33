//! Per-process memory of which sessions are live, so that checking an access token's session
//! costs a database read at most once per session every `ttl` (default 5 s). A revocation made by
//! this process takes effect at once; one made by another process within `ttl`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Largest number of remembered sessions before the memory is cleared.
const MAX_ENTRIES: usize = 50_000;

/// Remembered liveness of sessions.
pub struct SessionCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (bool, Instant)>>,
}

impl SessionCache {
    /// A cache whose answers are trusted for `ttl` (zero: always ask the database).
    pub fn new(ttl: Duration) -> Self {
        SessionCache { ttl, entries: Mutex::new(HashMap::new()) }
    }

    /// The remembered answer for a session, if still fresh.
    pub fn get(&self, session_id: &str) -> Option<bool> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        entries.get(session_id).filter(|(_, at)| at.elapsed() < self.ttl).map(|(live, _)| *live)
    }

    /// Remembers an answer.
    pub fn put(&self, session_id: &str, live: bool) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(session_id.to_owned(), (live, Instant::now()));
        }
    }

    /// Forgets sessions that were just revoked here.
    pub fn forget(&self, session_ids: &[String]) {
        if let Ok(mut entries) = self.entries.lock() {
            for id in session_ids {
                entries.remove(id);
            }
        }
    }
}
