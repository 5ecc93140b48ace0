//! Appends the entries of reads in batches (see `AuditBatcher`).

use super::{AuditDraft, AuditEntry, MacKey};
use crate::storage::{Storage, StoreResult};

/// Appends the audit entries of reads (views, lists, searches) in batches: requests that
/// arrive while one batch commits go together in the next transaction, so a busy prefecture
/// chain costs one commit per batch instead of one per read. Each caller still waits until its
/// own entry is durable: if the log cannot be written, the read fails and nothing leaves.
///
/// The writer remembers where it left each chain and chains the next batch in memory, so a
/// batch is one statement (`Storage::append_chained`) that the database accepts only if each
/// head is still there. Other writers (record updates, logins) move heads too. Entries the
/// statement did not write (those of a moved chain; on SQLite the whole batch) are appended
/// the slower way, which reads the heads in its own transaction (`Storage::append_audits`),
/// and their chains are remembered again from there.
#[derive(Clone)]
pub struct AuditBatcher {
    tx: tokio::sync::mpsc::Sender<Pending>,
    slow_batches: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

type Pending = (
    AuditDraft,
    tokio::sync::oneshot::Sender<StoreResult<AuditEntry>>,
);

/// The most entries in one transaction.
const BATCH_MAX: usize = 256;

/// Where the writer last left each chain: (seq, hash) of its newest entry.
type Heads = std::collections::HashMap<i64, (i64, String)>;

impl AuditBatcher {
    /// Starts the writer on a thread of its own, with a runtime of its own; it ends when the
    /// last `AuditBatcher` is dropped.
    ///
    /// Every audited read waits for its batch, and the next batch starts only when the last one
    /// is answered. On the request runtime the writer's wake-up waited its turn behind every
    /// request task ready to run, and the database sat idle meanwhile (docs/benchmarks.md,
    /// run 9). A thread of its own is woken by the OS at once. The PostgreSQL store opens the
    /// writer's connection lazily, so that the connection's socket is served by this runtime
    /// too, not by the busy one.
    pub fn start(store: std::sync::Arc<dyn Storage>) -> std::io::Result<AuditBatcher> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Pending>(4 * BATCH_MAX);
        let slow_batches = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let slow = slow_batches.clone();
        let writer = async move {
            let mut heads = Heads::new();
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < BATCH_MAX {
                    match rx.try_recv() {
                        Ok(p) => batch.push(p),
                        Err(_) => break,
                    }
                }
                if !write_batch(store.as_ref(), &mut heads, batch).await {
                    slow.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || runtime.block_on(writer))?;
        Ok(AuditBatcher { tx, slow_batches })
    }

    /// Batches so far that were not written whole by the one-statement path: a chain was new
    /// to the writer, had moved, or the statement failed.
    pub fn slow_batches(&self) -> u64 {
        self.slow_batches.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub async fn append(&self, draft: AuditDraft) -> StoreResult<AuditEntry> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let gone = || crate::storage::StoreError::Corrupt("the audit writer has stopped".into());
        self.tx.send((draft, reply)).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// Chains a batch from the remembered heads, or `None` if a chain of the batch is not known.
fn chain_from<'a>(
    heads: &Heads,
    key: &MacKey,
    drafts: impl IntoIterator<Item = &'a AuditDraft>,
) -> Option<Vec<AuditEntry>> {
    let mut ahead = Heads::new();
    drafts
        .into_iter()
        .map(|d| {
            let (seq, hash) = match ahead.get(&d.pref_code) {
                Some(h) => h.clone(),
                None => heads.get(&d.pref_code)?.clone(),
            };
            let e = AuditEntry::chain(d.clone(), seq, &hash, key);
            ahead.insert(e.pref_code, (e.seq, e.hash.clone()));
            Some(e)
        })
        .collect()
}

fn remember(heads: &mut Heads, e: &AuditEntry) {
    heads.insert(e.pref_code, (e.seq, e.hash.clone()));
}

/// Writes a batch and answers each caller; true if the one statement wrote all of it.
async fn write_batch(store: &dyn Storage, heads: &mut Heads, batch: Vec<Pending>) -> bool {
    let mut rest = batch;
    let chained = match store.audit_key() {
        Ok(key) => chain_from(heads, &key, rest.iter().map(|(d, _)| d)),
        Err(_) => None,
    };
    if let Some(entries) = chained {
        let landed = match store.append_chained(&entries).await {
            Ok(landed) => landed,
            // Not the callers' failure yet: the slower way below may still write them.
            Err(e) => {
                tracing::warn!(error = %e, "one-statement audit append failed; appending the slower way");
                Vec::new()
            }
        };
        let mut missed = Vec::new();
        for ((draft, reply), e) in rest.into_iter().zip(entries) {
            if landed.contains(&e.pref_code) {
                remember(heads, &e);
                let _ = reply.send(Ok(e));
            } else {
                heads.remove(&e.pref_code);
                missed.push((draft, reply));
            }
        }
        rest = missed;
    }
    if rest.is_empty() {
        return true;
    }
    let drafts = rest.iter().map(|(d, _)| d.clone()).collect();
    match store.append_audits(drafts).await {
        Ok(entries) => {
            for ((_, reply), e) in rest.into_iter().zip(entries) {
                remember(heads, &e);
                let _ = reply.send(Ok(e));
            }
        }
        // The batch is all or nothing; each entry gets its own try and its own answer, so one
        // caller's failure is not everyone's.
        Err(_) => {
            for (draft, reply) in rest {
                let answer = store.append_audit(draft).await;
                match &answer {
                    Ok(e) => remember(heads, e),
                    Err(_) => heads.clear(),
                }
                let _ = reply.send(answer);
            }
        }
    }
    false
}
