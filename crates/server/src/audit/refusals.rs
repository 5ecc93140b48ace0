//! Refused reads (no tier, or no such record) are audited like views, so enumeration shows in
//! the log. This watch also tells the operator at once when one account is refused again and
//! again: a warning in the server log at every `WARN_EVERY`th refusal within `WINDOW`.
//! `tsunagu-server refused-reads` lists them from the log afterwards.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// The window over which refusals of one account are counted.
pub const WINDOW_MICROS: i64 = 10 * 60 * 1_000_000;
/// A warning at every this many refusals of one account within the window.
pub const WARN_EVERY: usize = 20;
/// Accounts tracked at once; the quietest are forgotten first beyond this.
const MAX_ACCOUNTS: usize = 10_000;

#[derive(Debug, Default)]
pub struct RefusalWatch {
    recent: Mutex<HashMap<i64, VecDeque<i64>>>,
}

impl RefusalWatch {
    /// Counts a refusal of `user_id` at `now`; returns how many fell within the window when
    /// that count is a multiple of `WARN_EVERY` (time to warn), else `None`.
    pub fn note(&self, user_id: i64, now: i64) -> Option<usize> {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() >= MAX_ACCOUNTS && !recent.contains_key(&user_id) {
            recent.retain(|_, times| times.back().is_some_and(|t| now - t < WINDOW_MICROS));
            if recent.len() >= MAX_ACCOUNTS {
                return None;
            }
        }
        let times = recent.entry(user_id).or_default();
        while times.front().is_some_and(|t| now - t >= WINDOW_MICROS) {
            times.pop_front();
        }
        times.push_back(now);
        (times.len() % WARN_EVERY == 0).then_some(times.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_at_every_twentieth_refusal_within_the_window_only() {
        let w = RefusalWatch::default();
        let warned: Vec<usize> = (0..45).filter_map(|i| w.note(7, i)).collect();
        assert_eq!(warned, vec![20, 40]);
        // Another account counts apart.
        assert_eq!((0..19).filter_map(|i| w.note(8, i)).count(), 0);
        // Refusals spread wider than the window never add up.
        let w = RefusalWatch::default();
        let spread: Vec<usize> = (0..100)
            .filter_map(|i| w.note(7, i * (WINDOW_MICROS / 10)))
            .collect();
        assert!(spread.is_empty(), "{spread:?}");
    }
}
