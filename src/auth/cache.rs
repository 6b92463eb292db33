//! Per-process memory of principals verified a moment ago, keyed by what proved them (an API key's
//! hash, an access token), so a busy caller does not pay the full check on every request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::access::Principal;

/// Verified credentials and the principal they stand for, each until a deadline: at most the
/// cache's time-to-live, shorter for a credential that expires sooner. For API keys the
/// time-to-live is a few seconds, so that a revocation, rotation or scope change made by another
/// process takes effect within it (the process that made it forgets at once); for access tokens it
/// is the token's own life. A time-to-live of zero turns the cache off. When full, the expired
/// entries go first, and if every one is still live the memory starts over.
pub struct PrincipalCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, Cached>>,
}

struct Cached {
    principal: Principal,
    until: Instant,
}

impl PrincipalCache {
    /// A cache keeping entries for `ttl`, at most `capacity` of them.
    pub fn new(ttl: Duration, capacity: usize) -> PrincipalCache {
        PrincipalCache { ttl, capacity: capacity.max(1), entries: Mutex::new(HashMap::new()) }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        // A panic while holding the lock leaves nothing half-written worth refusing over.
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The principal of a credential verified less than its time-to-live ago.
    pub fn get(&self, key: &str) -> Option<Principal> {
        if self.ttl.is_zero() {
            return None;
        }
        let now = Instant::now();
        let mut entries = self.entries();
        match entries.get(key) {
            Some(c) if c.until > now => Some(c.principal.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Remembers a verified credential; `valid_for` shortens the entry for one about to expire.
    pub fn put(&self, key: String, principal: Principal, valid_for: Option<Duration>) {
        if self.ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let ttl = valid_for.map_or(self.ttl, |v| v.min(self.ttl));
        let mut entries = self.entries();
        if entries.len() >= self.capacity {
            entries.retain(|_, c| c.until > now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, Cached { principal, until: now + ttl });
    }

    /// Forgets every credential of a principal (an API client's keys after a revocation, rotation
    /// or change of scopes).
    pub fn forget_principal(&self, principal_id: &str) {
        self.entries().retain(|_, c| c.principal.id != principal_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::access::PrincipalKind;
    use crate::domain::types::Role;

    fn someone() -> Principal {
        Principal {
            id: "u-1".to_owned(),
            name: "li.si".to_owned(),
            kind: PrincipalKind::User,
            role: Role::Supervisor,
            jurisdiction_code: None,
            scope_path: None,
            department_id: None,
            session_id: None,
            scopes: Vec::new(),
        }
    }

    #[test]
    fn the_memory_is_bounded() {
        const CAPACITY: usize = 10_000;
        let cache = PrincipalCache::new(Duration::from_secs(900), CAPACITY);
        for i in 0..CAPACITY {
            let valid_for = if i % 2 == 0 { Duration::ZERO } else { Duration::from_secs(600) };
            cache.put(format!("t{i}"), someone(), Some(valid_for));
        }
        // Full: the expired half goes first.
        cache.put("one-more".to_owned(), someone(), None);
        assert_eq!(cache.entries().len(), CAPACITY / 2 + 1);
        for i in 0..CAPACITY {
            cache.put(format!("u{i}"), someone(), None);
        }
        assert!(cache.entries().len() <= CAPACITY);
    }
}
