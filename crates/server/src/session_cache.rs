//! A short memory of sessions already read from the store, so that a caseworker's burst of
//! requests costs one session query per interval instead of one per request.
//!
//! What this trades: a session ended *outside this process* (the `reset-password` command,
//! another server instance's logout) keeps working here for at most the configured seconds.
//! Everything this process does itself (logout, expiry) forgets the entry at once, and the
//! expiry rules are still checked on every request against the remembered times.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::storage::SessionRow;

/// More entries than this and the stale ones are dropped (a bound on memory, not a policy).
const CAP: usize = 50_000;

#[derive(Clone, Default)]
pub struct SessionCache {
    /// How long (µs of the app clock) a remembered session is trusted; 0 turns the cache off.
    ttl_micros: i64,
    entries: Arc<Mutex<HashMap<String, Entry>>>,
}

struct Entry {
    read_at: i64,
    session: Arc<SessionRow>,
}

impl SessionCache {
    pub fn new(ttl_secs: u64) -> SessionCache {
        SessionCache {
            ttl_micros: (ttl_secs as i64).saturating_mul(1_000_000),
            entries: Default::default(),
        }
    }

    /// The remembered session, if it was read from the store less than the TTL ago.
    pub fn get(&self, token_hash: &str, now: i64) -> Option<Arc<SessionRow>> {
        if self.ttl_micros == 0 {
            return None;
        }
        let map = self.entries.lock().expect("session cache poisoned");
        map.get(token_hash)
            .filter(|e| now - e.read_at < self.ttl_micros && now >= e.read_at)
            .map(|e| e.session.clone())
    }

    /// Remembers a session just read from the store.
    pub fn put(&self, session: SessionRow, now: i64) -> Arc<SessionRow> {
        let session = Arc::new(session);
        if self.ttl_micros == 0 {
            return session;
        }
        let mut map = self.entries.lock().expect("session cache poisoned");
        if map.len() >= CAP {
            let ttl = self.ttl_micros;
            map.retain(|_, e| now - e.read_at < ttl);
            if map.len() >= CAP {
                map.clear();
            }
        }
        map.insert(
            session.token_hash.clone(),
            Entry {
                read_at: now,
                session: session.clone(),
            },
        );
        session
    }

    /// The store's `last_seen_at` was moved to `at`: the remembered copy follows, so the idle
    /// rule sees what the store has.
    pub fn touched(&self, token_hash: &str, at: i64) {
        let mut map = self.entries.lock().expect("session cache poisoned");
        if let Some(e) = map.get_mut(token_hash) {
            let mut s = (*e.session).clone();
            s.last_seen_at = at;
            e.session = Arc::new(s);
        }
    }

    /// The session ended here (logout, expiry): never answer from memory for it again.
    pub fn forget(&self, token_hash: &str) {
        self.entries
            .lock()
            .expect("session cache poisoned")
            .remove(token_hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::UserRow;

    fn session(hash: &str) -> SessionRow {
        SessionRow {
            token_hash: hash.into(),
            created_at: 0,
            last_seen_at: 0,
            expires_at: i64::MAX,
            user: UserRow {
                id: 1,
                login: "u".into(),
                org_id: "o".into(),
                display_name: "u".into(),
                role: "staff".into(),
                password_hash: String::new(),
                totp_secret: String::new(),
                totp_last_step: 0,
                failed_count: 0,
                locked_until: 0,
            },
        }
    }

    #[test]
    fn answers_only_within_the_ttl() {
        let c = SessionCache::new(2);
        c.put(session("a"), 10_000_000);
        assert!(c.get("a", 10_000_000).is_some());
        assert!(c.get("a", 11_999_999).is_some());
        assert!(c.get("a", 12_000_000).is_none(), "stale after the TTL");
        assert!(
            c.get("a", 9_000_000).is_none(),
            "a clock set back is not trusted"
        );
        assert!(c.get("b", 10_000_000).is_none());
    }

    #[test]
    fn forget_and_touch_and_off() {
        let c = SessionCache::new(5);
        c.put(session("a"), 0);
        c.touched("a", 7);
        assert_eq!(c.get("a", 1).unwrap().last_seen_at, 7);
        c.forget("a");
        assert!(c.get("a", 1).is_none());

        let off = SessionCache::new(0);
        off.put(session("a"), 0);
        assert!(off.get("a", 0).is_none());
    }

    #[test]
    fn stays_bounded() {
        let c = SessionCache::new(1);
        for i in 0..CAP {
            c.put(session(&i.to_string()), 0);
        }
        c.put(session("late"), 2_000_000);
        let n = c.entries.lock().unwrap().len();
        assert_eq!(n, 1, "stale entries dropped when full");
        assert!(c.get("late", 2_000_000).is_some());
    }
}
