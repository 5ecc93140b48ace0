//! A short memory of sessions already read from the store, so that a caseworker's burst of
//! requests costs one session query per interval instead of one per request.
//!
//! What this trades: a session ended *outside this process* (the `reset-password` command,
//! another server instance's logout) keeps working here for at most the configured seconds.
//! Everything this process does itself (logout, expiry) forgets the entry at once and keeps a
//! tombstone for one interval, so a request that read the session just before it ended cannot
//! put it back. The expiry rules are still checked on every request against the remembered
//! times. Password hashes and TOTP secrets are not kept.

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
    /// `None`: ended here at `read_at`; not to be remembered again until the interval passes.
    session: Option<Arc<SessionRow>>,
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
            .filter(|e| self.fresh(e, now))
            .and_then(|e| e.session.clone())
    }

    /// Remembers a session just read from the store (unless it has just ended here).
    pub fn put(&self, mut session: SessionRow, now: i64) -> Arc<SessionRow> {
        session.user.password_hash.clear();
        session.user.totp_secret.clear();
        let session = Arc::new(session);
        if self.ttl_micros == 0 {
            return session;
        }
        let mut map = self.entries.lock().expect("session cache poisoned");
        let ended_recently = map
            .get(&session.token_hash)
            .is_some_and(|e| e.session.is_none() && self.fresh(e, now));
        if ended_recently {
            return session;
        }
        self.insert(
            &mut map,
            session.token_hash.clone(),
            Entry {
                read_at: now,
                session: Some(session.clone()),
            },
        );
        session
    }

    /// The store's `last_seen_at` was moved to `at`: the remembered copy follows, so the idle
    /// rule sees what the store has.
    pub fn touched(&self, token_hash: &str, at: i64) {
        let mut map = self.entries.lock().expect("session cache poisoned");
        if let Some(Entry {
            session: Some(s), ..
        }) = map.get_mut(token_hash)
        {
            let mut updated = (**s).clone();
            updated.last_seen_at = at;
            *s = Arc::new(updated);
        }
    }

    /// The session ended here (logout, expiry): never answer from memory for it again.
    pub fn forget(&self, token_hash: &str, now: i64) {
        if self.ttl_micros == 0 {
            return;
        }
        let mut map = self.entries.lock().expect("session cache poisoned");
        self.insert(
            &mut map,
            token_hash.to_string(),
            Entry {
                read_at: now,
                session: None,
            },
        );
    }

    /// Written less than the TTL ago (a clock set back is not trusted).
    fn fresh(&self, e: &Entry, now: i64) -> bool {
        now >= e.read_at && now - e.read_at < self.ttl_micros
    }

    /// Inserts, first dropping stale entries when full (a bound on memory, not a policy).
    fn insert(&self, map: &mut HashMap<String, Entry>, key: String, entry: Entry) {
        if map.len() >= CAP {
            let now = entry.read_at;
            map.retain(|_, e| self.fresh(e, now));
            if map.len() >= CAP {
                map.clear();
            }
        }
        map.insert(key, entry);
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
    fn keeps_no_secrets() {
        let c = SessionCache::new(2);
        let mut s = session("a");
        s.user.password_hash = "$argon2id$…".into();
        s.user.totp_secret = "JBSWY3DPEHPK3PXP".into();
        c.put(s, 0);
        let kept = c.get("a", 0).unwrap();
        assert!(kept.user.password_hash.is_empty() && kept.user.totp_secret.is_empty());
        assert_eq!(kept.user.login, "u");
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
        c.forget("a", 2);
        assert!(c.get("a", 2).is_none());
        // A request that read the session before it ended cannot put it back.
        c.put(session("a"), 3);
        assert!(c.get("a", 3).is_none());
        // After the interval the tombstone is gone (the store no longer has the session then).
        c.put(session("a"), 5_000_002);
        assert!(c.get("a", 5_000_002).is_some());

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
