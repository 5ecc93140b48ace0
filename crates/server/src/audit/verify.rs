//! Verification of the whole log. It trusts nothing the database says about itself: the set of
//! chains is fixed (the 47 prefectures and chain 0), every entry must carry a valid MAC, every
//! chain must reach its head and pass through every signed checkpoint exactly. Entries are
//! append-only, so reading the heads first and the entries after gives the same answer under
//! live writes as at rest: entries written meanwhile lie beyond the heads read, and are
//! checked like the others.

use std::collections::BTreeMap;

use super::checkpoint::Checkpoint;
use super::keys::MacKey;
use super::{action, AuditEntry, GENESIS};
use crate::storage::{Storage, StoreResult};

/// Every chain there is: 0 (national bodies) and the 47 prefectures.
pub const CHAINS: std::ops::RangeInclusive<i64> = 0..=47;

/// Entries read per query while walking a chain.
const PAGE: i64 = 10_000;

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

fn time(at: i64) -> String {
    chrono::DateTime::from_timestamp_micros(at)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| at.to_string())
}

/// What one checkpoint says of one chain.
#[derive(Debug, Clone)]
struct Claim {
    hash: String,
    at: i64,
}

/// Checks one chain's entries (in stored order) against each other, their MACs, the chain's
/// head and the checkpoints. Pure, so the rules are tested without a database.
#[derive(Debug)]
pub struct ChainChecker<'k> {
    pref_code: i64,
    mac: &'k MacKey,
    head: Option<(i64, String)>,
    claims: BTreeMap<i64, Claim>,
    last_seq: i64,
    last_hash: String,
    /// Entries without a MAC before the first keyed one (written before the key existed).
    unkeyed: i64,
    keyed: bool,
    /// The newest entry a checkpoint vouched for and the chain matched.
    last_claim_matched: i64,
}

impl<'k> ChainChecker<'k> {
    /// `head`: the chain's `audit_head` row as (seq, hash), `None` if it has none.
    pub fn new(pref_code: i64, mac: &'k MacKey, head: Option<(i64, String)>) -> Self {
        ChainChecker {
            pref_code,
            mac,
            head,
            claims: BTreeMap::new(),
            last_seq: 0,
            last_hash: GENESIS.to_string(),
            unkeyed: 0,
            keyed: false,
            last_claim_matched: 0,
        }
    }

    /// Adds what a verified checkpoint says of this chain.
    pub fn claim(&mut self, seq: i64, hash: &str, at: i64) {
        self.claims.insert(
            seq,
            Claim {
                hash: hash.to_string(),
                at,
            },
        );
    }

    /// The sequence number the next entry must have.
    pub fn next_seq(&self) -> i64 {
        self.last_seq + 1
    }

    fn brk(&self, seq: i64, reason: String) -> Break {
        Break {
            pref_code: self.pref_code,
            seq,
            reason,
        }
    }

    pub fn check(&mut self, e: &AuditEntry) -> Result<(), Break> {
        if e.pref_code != self.pref_code {
            return Err(self.brk(e.seq, format!("belongs to chain {}", e.pref_code)));
        }
        if e.seq <= 0 {
            return Err(self.brk(
                e.seq,
                format!(
                    "numbered {}: sequence numbers start at 1 (added outside the chain)",
                    e.seq
                ),
            ));
        }
        if e.seq != self.last_seq + 1 {
            return Err(self.brk(
                self.last_seq + 1,
                format!(
                    "sequence jumps from {} to {} (entries removed or inserted)",
                    self.last_seq, e.seq
                ),
            ));
        }
        if e.prev_hash != self.last_hash {
            return Err(self.brk(
                e.seq,
                "does not commit to the entry before it (removed, inserted or reordered)".into(),
            ));
        }
        if e.compute_hash() != e.hash {
            return Err(self.brk(e.seq, "content does not match its hash (changed)".into()));
        }
        if e.mac.is_empty() {
            if self.keyed {
                return Err(self.brk(e.seq, "carries no MAC (added without the audit key)".into()));
            }
            self.unkeyed += 1;
        } else {
            if !self.mac.verify(&e.hash, &e.mac) {
                return Err(self.brk(
                    e.seq,
                    "its MAC does not verify (written, recomputed or renumbered without the audit key)"
                        .into(),
                ));
            }
            if !self.keyed && self.unkeyed > 0 {
                let vouches = serde_json::from_str::<serde_json::Value>(&e.detail)
                    .ok()
                    .and_then(|d| d.get("unkeyed_entries").and_then(|n| n.as_i64()));
                if e.action != action::KEYED || vouches != Some(self.unkeyed) {
                    return Err(self.brk(
                        e.seq,
                        format!(
                            "entries 1 to {} carry no MAC, and this first entry with one is not the keying entry that vouches for them",
                            self.unkeyed
                        ),
                    ));
                }
            }
            self.keyed = true;
        }
        if let Some(claim) = self.claims.get(&e.seq) {
            if claim.hash != e.hash {
                return Err(self.brk(
                    e.seq,
                    format!(
                        "differs from the signed checkpoint of {} (the chain was rewritten after entry {})",
                        time(claim.at),
                        self.last_claim_matched
                    ),
                ));
            }
            self.last_claim_matched = e.seq;
        }
        if let Some((head_seq, head_hash)) = &self.head {
            if e.seq == *head_seq && e.hash != *head_hash {
                return Err(self.brk(
                    e.seq,
                    "its head names this entry with another hash (entry replaced or head moved)"
                        .into(),
                ));
            }
        }
        self.last_seq = e.seq;
        self.last_hash = e.hash.clone();
        Ok(())
    }

    /// After the last entry: the chain must reach its head and every checkpoint, so removing
    /// the newest entries shows. Returns how many entries no checkpoint covers yet.
    pub fn finish(&self) -> Result<i64, Break> {
        let Some((head_seq, _)) = &self.head else {
            return Err(self.brk(
                1,
                format!(
                    "the chain has no head row (audit_head deleted); {} entries found",
                    self.last_seq
                ),
            ));
        };
        if *head_seq > self.last_seq {
            return Err(self.brk(
                self.last_seq + 1,
                format!(
                    "chain ends at entry {} but its head names entry {} (newest entries removed)",
                    self.last_seq, head_seq
                ),
            ));
        }
        if let Some((seq, claim)) = self.claims.last_key_value() {
            if *seq > self.last_seq {
                return Err(self.brk(
                    self.last_seq + 1,
                    format!(
                        "chain ends at entry {} but the signed checkpoint of {} names entry {} (entries removed)",
                        self.last_seq,
                        time(claim.at),
                        seq
                    ),
                ));
            }
        }
        if self.unkeyed > 0 && !self.keyed {
            return Err(self.brk(
                1,
                format!(
                    "entries 1 to {} carry no MAC and no keying entry vouches for them (MACs removed, or written without the key)",
                    self.unkeyed
                ),
            ));
        }
        let covered = self.claims.last_key_value().map_or(0, |(s, _)| *s);
        Ok(self.last_seq - covered)
    }
}

/// What a verification found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub chains: usize,
    pub entries: u64,
    /// Checkpoints checked against the chains.
    pub checkpoints: usize,
    pub newest_checkpoint_at: Option<i64>,
    /// Entries after the newest checkpoint of their chain: checked against their MACs, but a
    /// cut of these alone would not show.
    pub not_checkpointed: u64,
    pub chains_not_checkpointed: usize,
    /// The first problem of each broken chain.
    pub breaks: Vec<Break>,
}

impl VerifyReport {
    pub fn intact(&self) -> bool {
        self.breaks.is_empty()
    }
}

/// Walks every chain end to end, with the store's own MAC key and no checkpoints; the first
/// broken entry is the error. For tests and quick checks; `verify-audit` uses `verify_with`.
pub async fn verify(store: &dyn Storage) -> StoreResult<Result<VerifyReport, Break>> {
    let key = store.audit_key()?;
    let report = verify_with(store, &key, &[]).await?;
    match report.breaks.first() {
        Some(b) => Ok(Err(b.clone())),
        None => Ok(Ok(report)),
    }
}

/// Walks every chain against the MAC key and the (already signature-checked) checkpoints, and
/// reports the first problem of every broken chain.
pub async fn verify_with(
    store: &dyn Storage,
    mac: &MacKey,
    checkpoints: &[Checkpoint],
) -> StoreResult<VerifyReport> {
    let mut report = VerifyReport {
        checkpoints: checkpoints.len(),
        newest_checkpoint_at: checkpoints.iter().map(|c| c.at).max(),
        ..VerifyReport::default()
    };
    // Entries outside the fixed chains belong to no chain the verifier walks.
    for (pref, seq) in store.audit_entries_outside(CHAINS).await? {
        report.breaks.push(Break {
            pref_code: pref,
            seq,
            reason: "entry of a chain that does not exist (there are chains 0 to 47 only)".into(),
        });
    }
    let heads: BTreeMap<i64, (i64, String)> = store
        .audit_heads()
        .await?
        .into_iter()
        .map(|(p, s, h)| (p, (s, h)))
        .collect();
    for (pref, (seq, _)) in heads
        .range(..*CHAINS.start())
        .chain(heads.range(CHAINS.end() + 1..))
    {
        report.breaks.push(Break {
            pref_code: *pref,
            seq: *seq,
            reason: "a head row of a chain that does not exist (there are chains 0 to 47 only)"
                .into(),
        });
    }
    for pref in CHAINS {
        report.chains += 1;
        let mut checker = ChainChecker::new(pref, mac, heads.get(&pref).cloned());
        for cp in checkpoints {
            for (_, seq, hash) in cp.heads.iter().filter(|(p, _, _)| *p == pref) {
                checker.claim(*seq, hash, cp.at);
            }
        }
        match walk(store, &mut checker, pref, &mut report.entries).await? {
            Err(b) => report.breaks.push(b),
            Ok(()) => match checker.finish() {
                Err(b) => report.breaks.push(b),
                Ok(0) => {}
                Ok(n) => {
                    report.not_checkpointed += n as u64;
                    report.chains_not_checkpointed += 1;
                }
            },
        }
    }
    Ok(report)
}

async fn walk(
    store: &dyn Storage,
    checker: &mut ChainChecker<'_>,
    pref: i64,
    entries: &mut u64,
) -> StoreResult<Result<(), Break>> {
    // From the lowest sequence number there is, not from 1: an entry numbered 0 or below would
    // otherwise never be checked (and other readers of the log would still see it).
    let mut after = i64::MIN;
    loop {
        let page = match store.audit_entries(pref, after, PAGE).await {
            Ok(page) => page,
            // A value of the wrong type in a row (SQLite does not enforce column types): the
            // chain is broken there, not unverifiable.
            Err(crate::storage::StoreError::Db(sqlx::Error::ColumnDecode { index, source })) => {
                return Ok(Err(Break {
                    pref_code: pref,
                    seq: checker.next_seq(),
                    reason: format!(
                        "an entry holds a value of the wrong type in column {index} ({source})"
                    ),
                }));
            }
            Err(e) => return Err(e),
        };
        let Some(last) = page.last() else {
            return Ok(Ok(()));
        };
        after = last.seq;
        for e in &page {
            if let Err(b) = checker.check(e) {
                return Ok(Err(b));
            }
            *entries += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditDraft;

    fn key() -> MacKey {
        MacKey::from_bytes(&[3; 32])
    }

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

    fn chain_with(n: i64, k: &MacKey) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for i in 0..n {
            let (s, h) = out
                .last()
                .map(|e| (e.seq, e.hash.clone()))
                .unwrap_or((0, GENESIS.into()));
            out.push(AuditEntry::chain(draft(i), s, &h, k));
        }
        out
    }

    fn check_all(
        entries: &[AuditEntry],
        head: Option<(i64, &str)>,
        claims: &[(i64, &str)],
    ) -> Result<i64, Break> {
        let k = key();
        let mut c = ChainChecker::new(13, &k, head.map(|(s, h)| (s, h.to_string())));
        for (s, h) in claims {
            c.claim(*s, h, 1_700_000_000_000_000);
        }
        for e in entries {
            c.check(e)?;
        }
        c.finish()
    }

    /// Rechains `entries[from..]` after `entries[from - 1]` (recomputed hashes), MACed with `k`.
    fn rechain(entries: &mut [AuditEntry], from: usize, k: &MacKey) {
        for i in from..entries.len() {
            let (s, h) = if i == 0 {
                (0, GENESIS.to_string())
            } else {
                (entries[i - 1].seq, entries[i - 1].hash.clone())
            };
            let e = &entries[i];
            let d = AuditDraft {
                pref_code: e.pref_code,
                at: e.at,
                actor_user: e.actor_user,
                actor_org: e.actor_org.clone(),
                action: action::RECORD_UPDATED,
                record_id: e.record_id,
                detail: serde_json::from_str(&e.detail).unwrap(),
            };
            entries[i] = AuditEntry::chain(d, s, &h, k);
        }
    }

    #[test]
    fn an_intact_chain_verifies_and_counts_what_no_checkpoint_covers() {
        let c = chain_with(5, &key());
        assert_eq!(check_all(&c, Some((5, &c[4].hash)), &[]), Ok(5));
        assert_eq!(
            check_all(&c, Some((5, &c[4].hash)), &[(3, &c[2].hash)]),
            Ok(2)
        );
        // Entries beyond the head were written after the head was read: still checked, fine.
        assert_eq!(check_all(&c, Some((3, &c[2].hash)), &[]), Ok(5));
    }

    #[test]
    fn each_kind_of_tampering_is_caught_at_the_right_entry() {
        let k = key();
        let c = chain_with(6, &k);
        let head = Some((6, c[5].hash.as_str()));
        let attacker = MacKey::from_bytes(&[9; 32]);

        let mut changed = c.clone();
        changed[2].detail = r#"{"version":99}"#.into();
        assert_eq!(check_all(&changed, head, &[]).unwrap_err().seq, 3);

        let mut removed = c.clone();
        removed.remove(1);
        assert_eq!(check_all(&removed, head, &[]).unwrap_err().seq, 2);

        let mut reordered = c.clone();
        reordered.swap(1, 2);
        assert_eq!(check_all(&reordered, head, &[]).unwrap_err().seq, 2);

        // Rewritten from entry 3 with recomputed hashes but without the key.
        let mut rewritten = c.clone();
        rewritten[2].detail = r#"{"version":99}"#.into();
        rechain(&mut rewritten, 2, &attacker);
        let new_head = Some((6, rewritten[5].hash.as_str()));
        let b = check_all(&rewritten, new_head, &[]).unwrap_err();
        assert_eq!(b.seq, 3);
        assert!(b.reason.contains("MAC"), "{b}");

        // The same with the MACs stripped: refused as entries without a MAC after keyed ones.
        let mut stripped = rewritten.clone();
        for e in &mut stripped[2..] {
            e.mac.clear();
        }
        assert_eq!(check_all(&stripped, new_head, &[]).unwrap_err().seq, 3);

        // Renumbered after deleting entry 2, rechained without the key.
        let mut renumbered = c.clone();
        renumbered.remove(1);
        for (i, e) in renumbered.iter_mut().enumerate() {
            e.seq = i as i64 + 1;
        }
        rechain(&mut renumbered, 1, &attacker);
        let h = Some((5, renumbered[4].hash.as_str()));
        assert_eq!(check_all(&renumbered, h, &[]).unwrap_err().seq, 2);

        // A forged append, correctly chained, without the key.
        let mut appended = c.clone();
        appended.push(AuditEntry::chain(draft(7), 6, &c[5].hash, &attacker));
        let h = Some((7, appended[6].hash.as_str()));
        assert_eq!(check_all(&appended, h, &[]).unwrap_err().seq, 7);

        // The newest entries cut and the head moved back: only a checkpoint shows it.
        let cut = &c[..4];
        let moved_back = Some((4, cut[3].hash.as_str()));
        assert!(check_all(cut, moved_back, &[]).is_ok());
        let b = check_all(cut, moved_back, &[(5, &c[4].hash)]).unwrap_err();
        assert_eq!(b.seq, 5);
        assert!(b.reason.contains("checkpoint"), "{b}");

        // Cut without moving the head.
        assert_eq!(check_all(cut, head, &[]).unwrap_err().seq, 5);

        // Rewritten by someone holding the MAC key: the checkpoint still shows it.
        let mut with_key = c.clone();
        with_key[3].detail = r#"{"version":77}"#.into();
        rechain(&mut with_key, 3, &k);
        let h = Some((6, with_key[5].hash.as_str()));
        assert!(check_all(&with_key, h, &[]).is_ok());
        let b = check_all(&with_key, h, &[(2, &c[1].hash), (5, &c[4].hash)]).unwrap_err();
        assert_eq!(b.seq, 5);
        assert!(b.reason.contains("after entry 2"), "{b}");

        // No head row.
        let b = check_all(&c, None, &[]).unwrap_err();
        assert!(b.reason.contains("no head"), "{b}");

        // A head naming the right seq with another hash.
        assert_eq!(
            check_all(&c, Some((6, c[4].hash.as_str())), &[])
                .unwrap_err()
                .seq,
            6
        );
    }

    #[test]
    fn entries_from_before_the_key_are_vouched_for_by_the_keying_entry_only() {
        let k = key();
        let mut c = chain_with(3, &k);
        for e in &mut c {
            e.mac.clear();
        }
        // Without a keying entry: reported.
        let b = check_all(&c, Some((3, &c[2].hash)), &[]).unwrap_err();
        assert!(b.reason.contains("carry no MAC"), "{b}");
        // With the keying entry that vouches for exactly those 3: intact.
        let keyed = AuditEntry::chain(
            AuditDraft::by_operator(
                13,
                5,
                action::KEYED,
                serde_json::json!({"unkeyed_entries": 3}),
            ),
            3,
            &c[2].hash,
            &k,
        );
        let mut with = c.clone();
        with.push(keyed.clone());
        with.push(AuditEntry::chain(draft(9), 4, &keyed.hash, &k));
        assert!(check_all(&with, Some((5, &with[4].hash)), &[]).is_ok());
        // A keyed entry that is not the keying entry does not vouch for them.
        let mut other = c.clone();
        other.push(AuditEntry::chain(draft(9), 3, &c[2].hash, &k));
        assert_eq!(
            check_all(&other, Some((4, &other[3].hash)), &[])
                .unwrap_err()
                .seq,
            4
        );
    }
}
