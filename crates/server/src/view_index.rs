//! The who-viewed indexer. The owner of a record may list who from other organisations read it;
//! that list needs the log's read entries by record. Indexing them as they are written made
//! every batch of read audits, which each read waits for, also write a page per entry of an
//! index ordered by record id (docs/benchmarks.md, run 10). So the log is indexed behind its
//! head instead: this task moves a per-chain watermark forward a few times a second, and
//! `Storage::record_view_entries` reads the index up to the watermark and the log after it, so
//! the owner's list never lags behind the log.

use std::sync::Arc;
use std::time::Duration;

use crate::storage::Storage;

/// The most log entries of one chain that one pass reads (and one transaction indexes).
pub const PASS_ENTRIES: i64 = 4096;

/// How often the indexer looks for new entries. The tail it leaves behind is what an owner's
/// list of viewers reads from the log itself, so it is kept short.
pub const INTERVAL: Duration = Duration::from_millis(250);

/// Starts the indexer on the current runtime. It holds the store weakly and ends when the
/// store is gone.
pub fn start(store: &Arc<dyn Storage>) -> tokio::task::JoinHandle<()> {
    let store = Arc::downgrade(store);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(store) = store.upgrade() else { break };
            if let Err(e) = catch_up(store.as_ref()).await {
                // The list stays complete without the index (it reads more of the log), so
                // the next tick simply tries again.
                tracing::warn!(error = %e, "who-viewed indexer pass failed; retrying");
            }
        }
    })
}

/// Indexes until no chain had more than a pass's worth behind the index (new entries keep
/// coming under load; they wait for the next tick); returns the log entries passed.
pub async fn catch_up(store: &dyn Storage) -> crate::storage::StoreResult<u64> {
    let mut total = 0;
    loop {
        let passed = store.index_views(PASS_ENTRIES).await?;
        total += passed;
        if passed < PASS_ENTRIES as u64 {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}
