//! The tamper-evident operation log. Each prefecture has one hash chain (0 for national
//! organisations); every entry commits to the one before it. Hashes are computed here, in Rust,
//! so that SQLite and PostgreSQL produce and verify the same chain.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::storage::{Storage, StoreResult};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Audit actions. Stored as these strings.
pub mod action {
    pub const LOGIN: &str = "auth.login";
    pub const LOGIN_FAILED: &str = "auth.login_failed";
    pub const LOGOUT: &str = "auth.logout";
    pub const USER_CREATED: &str = "user.created";
    pub const PASSWORD_RESET: &str = "user.password_reset";
    /// A user's TOTP secret replaced by the operator (a lost or replaced phone).
    pub const TOTP_RESET: &str = "user.totp_reset";
    /// TOTP secrets stored before sealing, sealed at start (detail: how many).
    pub const TOTP_SEALED: &str = "user.totp_sealed";
    /// Every sealed TOTP secret sealed again under a new key (detail: how many).
    pub const TOTP_KEY_ROTATED: &str = "user.totp_key_rotated";
    pub const RECORD_CREATED: &str = "record.created";
    pub const RECORD_UPDATED: &str = "record.updated";
    pub const RESTRICTIONS_SET: &str = "record.restrictions_set";
    pub const RECORD_VIEWED: &str = "record.viewed";
    pub const HISTORY_VIEWED: &str = "record.history_viewed";
    /// A page of a case list that showed rows of other organisations' records.
    pub const CASES_LISTED: &str = "record.listed";
    pub const RECORD_SEEDED: &str = "record.seeded";
    pub const ORGS_LOADED: &str = "orgs.loaded";
    /// A person search: the query's shape and the hit count, never the names searched for.
    pub const SEARCHED: &str = "search.performed";
    pub const SEARCH_INDEX_REBUILT: &str = "search.index_rebuilt";
    /// A notification marked read or unread by its organisation.
    pub const NOTIFICATION_MARKED: &str = "notification.marked";
}

/// An entry before it is placed in its chain. `detail` holds no personal data: ids, versions,
/// tiers, counts.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditDraft {
    pub pref_code: i64,
    pub at: i64,
    pub actor_user: Option<i64>,
    pub actor_org: String,
    pub action: &'static str,
    pub record_id: Option<i64>,
    pub detail: serde_json::Value,
}

impl AuditDraft {
    /// An action of the operator at the server's command line (no user, no record).
    pub fn by_operator(
        pref_code: i64,
        at: i64,
        action: &'static str,
        detail: serde_json::Value,
    ) -> AuditDraft {
        AuditDraft {
            pref_code,
            at,
            actor_user: None,
            actor_org: "operator".into(),
            action,
            record_id: None,
            detail,
        }
    }
}

/// An entry in its chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub pref_code: i64,
    pub seq: i64,
    pub at: i64,
    pub actor_user: Option<i64>,
    pub actor_org: String,
    pub action: String,
    pub record_id: Option<i64>,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEntry {
    /// Places a draft after `(prev_seq, prev_hash)`.
    pub fn chain(draft: AuditDraft, prev_seq: i64, prev_hash: &str) -> AuditEntry {
        let mut e = AuditEntry {
            pref_code: draft.pref_code,
            seq: prev_seq + 1,
            at: draft.at,
            actor_user: draft.actor_user,
            actor_org: draft.actor_org,
            action: draft.action.to_string(),
            record_id: draft.record_id,
            detail: draft.detail.to_string(),
            prev_hash: prev_hash.to_string(),
            hash: String::new(),
        };
        e.hash = e.compute_hash();
        e
    }

    /// SHA-256 over an unambiguous (JSON array) encoding of every field but the hash itself.
    pub fn compute_hash(&self) -> String {
        let canonical = serde_json::json!([
            self.pref_code,
            self.seq,
            self.at,
            self.actor_user,
            self.actor_org,
            self.action,
            self.record_id,
            self.detail,
            self.prev_hash,
        ]);
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    }
}

/// The first problem found in a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub pref_code: i64,
    pub seq: i64,
    pub reason: String,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "chain {:02}, entry {}: {}",
            self.pref_code, self.seq, self.reason
        )
    }
}

/// Checks one chain's entries (in stored order) against each other and against its head.
/// Pure, so the rules are tested without a database.
#[derive(Debug, Default)]
pub struct ChainChecker {
    pref_code: i64,
    last_seq: i64,
    last_hash: String,
}

impl ChainChecker {
    pub fn new(pref_code: i64) -> Self {
        ChainChecker {
            pref_code,
            last_seq: 0,
            last_hash: GENESIS.to_string(),
        }
    }

    pub fn check(&mut self, e: &AuditEntry) -> Result<(), Break> {
        let brk = |reason: String| Break {
            pref_code: self.pref_code,
            seq: e.seq,
            reason,
        };
        if e.pref_code != self.pref_code {
            return Err(brk(format!("belongs to chain {}", e.pref_code)));
        }
        if e.seq != self.last_seq + 1 {
            return Err(brk(format!(
                "sequence jumps from {} to {} (entries removed or inserted)",
                self.last_seq, e.seq
            )));
        }
        if e.prev_hash != self.last_hash {
            return Err(brk(
                "does not commit to the entry before it (removed, inserted or reordered)".into(),
            ));
        }
        if e.compute_hash() != e.hash {
            return Err(brk("content does not match its hash (changed)".into()));
        }
        self.last_seq = e.seq;
        self.last_hash = e.hash.clone();
        Ok(())
    }

    /// After the last entry: the head must name it, so removing the newest entries shows.
    pub fn finish(&self, head_seq: i64, head_hash: &str) -> Result<(), Break> {
        if head_seq != self.last_seq || head_hash != self.last_hash {
            return Err(Break {
                pref_code: self.pref_code,
                seq: self.last_seq + 1,
                reason: format!(
                    "chain ends at entry {} but its head names entry {} (newest entries removed or added)",
                    self.last_seq, head_seq
                ),
            });
        }
        Ok(())
    }
}

/// Summary of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub chains: usize,
    pub entries: u64,
}

/// Walks every chain end to end; the first broken entry is the error.
pub async fn verify(store: &dyn Storage) -> StoreResult<Result<VerifyReport, Break>> {
    let heads = store.audit_heads().await?;
    let mut entries = 0u64;
    for (pref, head_seq, head_hash) in &heads {
        let mut checker = ChainChecker::new(*pref);
        let mut after = 0;
        loop {
            let page = store.audit_entries(*pref, after, 10_000).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for e in &page {
                if let Err(b) = checker.check(e) {
                    return Ok(Err(b));
                }
                entries += 1;
            }
        }
        if let Err(b) = checker.finish(*head_seq, head_hash) {
            return Ok(Err(b));
        }
    }
    Ok(Ok(VerifyReport {
        chains: heads.len(),
        entries,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(n: i64) -> AuditDraft {
        AuditDraft {
            pref_code: 13,
            at: 1_700_000_000_000_000 + n,
            actor_user: Some(1),
            actor_org: "cgc-13-01".into(),
            action: action::RECORD_UPDATED,
            record_id: Some(13_000_000_000_001),
            detail: serde_json::json!({"version": n}),
        }
    }

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for i in 0..n {
            let (s, h) = out
                .last()
                .map(|e| (e.seq, e.hash.clone()))
                .unwrap_or((0, GENESIS.into()));
            out.push(AuditEntry::chain(draft(i), s, &h));
        }
        out
    }

    fn check_all(entries: &[AuditEntry], head: (i64, &str)) -> Result<(), Break> {
        let mut c = ChainChecker::new(13);
        for e in entries {
            c.check(e)?;
        }
        c.finish(head.0, head.1)
    }

    #[test]
    fn an_intact_chain_verifies() {
        let c = chain(5);
        assert_eq!(check_all(&c, (5, &c[4].hash)), Ok(()));
    }

    #[test]
    fn each_kind_of_tampering_is_caught_at_the_right_entry() {
        let c = chain(5);
        let head = (5, c[4].hash.as_str());
        let mut changed = c.clone();
        changed[2].detail = r#"{"version":99}"#.into();
        assert_eq!(check_all(&changed, head).unwrap_err().seq, 3);

        let mut removed = c.clone();
        removed.remove(1);
        assert_eq!(check_all(&removed, head).unwrap_err().seq, 3);

        let mut reordered = c.clone();
        reordered.swap(1, 2);
        assert_eq!(check_all(&reordered, head).unwrap_err().seq, 3);

        let mut inserted = c.clone();
        let fake = AuditEntry::chain(draft(42), 2, &c[1].hash);
        inserted.insert(2, fake);
        assert!(check_all(&inserted, head).is_err());

        let truncated = &c[..4];
        let b = check_all(truncated, head).unwrap_err();
        assert_eq!(b.seq, 5);
    }
}

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
            let e = AuditEntry::chain(d.clone(), seq, &hash);
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
    if let Some(entries) = chain_from(heads, rest.iter().map(|(d, _)| d)) {
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
