//! Time, in microseconds since the Unix epoch. Tests move it forward to reach expiries.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_micros: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> i64 {
        chrono::Utc::now().timestamp_micros() + self.offset_micros.load(Ordering::Relaxed)
    }

    pub fn today(&self) -> chrono::NaiveDate {
        // Dates of records are Japanese dates.
        let jst = chrono::FixedOffset::east_opt(9 * 3600).expect("JST offset");
        chrono::DateTime::from_timestamp_micros(self.now())
            .unwrap_or_default()
            .with_timezone(&jst)
            .date_naive()
    }

    pub fn advance_secs(&self, secs: i64) {
        self.offset_micros
            .fetch_add(secs * 1_000_000, Ordering::Relaxed);
    }
}
