//! The audit log on both engines: every write and every outside read is logged, the database
//! refuses changes to the log, and verification finds every tampering by someone who can write
//! rows (with the triggers dropped), names the chain and the first bad entry, and holds under
//! live writes. Entries are MACed with a key the attacker lacks; signed checkpoints in a file
//! outside the database catch what a MAC cannot (a cut tail, a rewrite by a holder of the key).

mod support;

use std::path::Path;

use support::{record_json, Engine, TestDb, TestServer};
use tsunagu_server::audit::checkpoint::read_file;
use tsunagu_server::audit::keys::{public_keys_path, PublicKeys};
use tsunagu_server::audit::{
    action, verify, verify_with, AuditDraft, AuditEntry, Break, MacKey, VerifyReport, GENESIS,
};

/// Drops every trigger that guards the log, as someone with full database access could.
async fn disarm(db: &TestDb) {
    let sql = match db.engine {
        Engine::Sqlite => {
            "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete; \
             DROP TRIGGER audit_log_follows_head; DROP TRIGGER audit_head_no_delete; \
             DROP TRIGGER audit_head_no_insert;"
        }
        Engine::Postgres => {
            "DROP TRIGGER audit_log_no_update ON audit_log; DROP TRIGGER audit_log_no_truncate ON audit_log; \
             DROP TRIGGER audit_head_no_delete ON audit_head; DROP TRIGGER audit_head_no_truncate ON audit_head; \
             DO $$ BEGIN FOR p IN 0..47 LOOP \
               EXECUTE format('DROP TRIGGER audit_log_p%s_no_truncate ON audit_log_p%s', lpad(p::text, 2, '0'), lpad(p::text, 2, '0')); \
             END LOOP; END $$;"
        }
    };
    db.raw(sql).await.unwrap();
}

/// A server whose checkpoints are written only when a test asks (`checkpoint`), with records
/// created by a municipality and read by its centre.
async fn populated(db: TestDb) -> TestServer {
    let mut config = support::test_config();
    config.audit.checkpoint_secs = 3600;
    let s = TestServer::start_with(db, config).await;
    let muni = s.login("muni").await;
    let cgc = s.login("cgc").await;
    for i in 0..3 {
        let id = muni.create(&record_json("131016", &format!("A{i}"))).await;
        cgc.get(&format!("/api/v1/records/{id}")).await;
    }
    s
}

/// Signs a checkpoint of the heads now, as the server does every few seconds.
async fn checkpoint(s: &TestServer) {
    s.state()
        .checkpoints
        .checkpoint(s.state().clock.now())
        .await
        .unwrap();
}

/// What `verify-audit` checks: the MAC key from its file and the checkpoints of `file` (the
/// local checkpoint file unless a witness copy is named), every signature verified.
async fn full_verify(s: &TestServer, witness: Option<&Path>) -> VerifyReport {
    let config = &s.state().config;
    let keys = PublicKeys::read(&public_keys_path(&config.audit_signing_key_path())).unwrap();
    let local = config.audit_checkpoint_path();
    let file = witness.unwrap_or(&local);
    let checkpoints = if file.exists() {
        let read = read_file(file, &keys).unwrap();
        assert!(read.problems.is_empty(), "{:?}", read.problems);
        read.checkpoints
    } else {
        Vec::new()
    };
    let mac = MacKey::read(&config.audit_mac_key_path()).unwrap();
    verify_with(s.db.store.as_ref(), &mac, &checkpoints)
        .await
        .unwrap()
}

/// The first problem reported for `chain`; fails if the report has none there.
fn break_in(report: &VerifyReport, chain: i64) -> Break {
    report
        .breaks
        .iter()
        .find(|b| b.pref_code == chain)
        .cloned()
        .unwrap_or_else(|| panic!("no break reported in chain {chain}: {report:?}"))
}

async fn entries(s: &TestServer, chain: i64) -> Vec<AuditEntry> {
    s.db.store.audit_entries(chain, 0, 100_000).await.unwrap()
}

async fn head(s: &TestServer, chain: i64) -> i64 {
    s.db.scalar(Box::leak(
        format!("SELECT seq FROM audit_head WHERE pref_code = {chain}").into_boxed_str(),
    ))
    .await
}

fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn null_or(v: Option<i64>) -> String {
    v.map_or("NULL".into(), |n| n.to_string())
}

/// Inserts entries as raw rows.
async fn insert_rows(db: &TestDb, rows: &[AuditEntry]) {
    for e in rows {
        db.raw(&format!(
            "INSERT INTO audit_log (pref_code, seq, at, actor_user, actor_org, action, record_id, detail, prev_hash, hash, mac) \
             VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
            e.pref_code,
            e.seq,
            e.at,
            null_or(e.actor_user),
            sql_str(&e.actor_org),
            sql_str(&e.action),
            null_or(e.record_id),
            sql_str(&e.detail),
            sql_str(&e.prev_hash),
            sql_str(&e.hash),
            sql_str(&e.mac),
        ))
        .await
        .unwrap();
    }
}

async fn move_head(db: &TestDb, chain: i64, seq: i64, hash: &str) {
    db.raw(&format!(
        "UPDATE audit_head SET seq = {seq}, hash = {} WHERE pref_code = {chain}",
        sql_str(hash)
    ))
    .await
    .unwrap();
}

/// `e` as a draft again, with another detail if given.
fn redraft(e: &AuditEntry, detail: Option<serde_json::Value>) -> AuditDraft {
    AuditDraft {
        pref_code: e.pref_code,
        at: e.at,
        actor_user: e.actor_user,
        actor_org: e.actor_org.clone(),
        action: Box::leak(e.action.clone().into_boxed_str()),
        record_id: e.record_id,
        detail: detail.unwrap_or_else(|| serde_json::from_str(&e.detail).unwrap()),
    }
}

/// Chains `drafts` after (seq, hash) under `key`, renumbering from there.
fn rechain(
    drafts: Vec<AuditDraft>,
    mut seq: i64,
    mut hash: String,
    key: &MacKey,
) -> Vec<AuditEntry> {
    drafts
        .into_iter()
        .map(|d| {
            let e = AuditEntry::chain(d, seq, &hash, key);
            seq = e.seq;
            hash = e.hash.clone();
            e
        })
        .collect()
}

/// The key of someone who can write rows but was never given the server's.
fn attackers_key() -> MacKey {
    MacKey::from_bytes(&[0x5a; 32])
}

async fn delete_from(db: &TestDb, chain: i64, from_seq: i64) {
    db.raw(&format!(
        "DELETE FROM audit_log WHERE pref_code = {chain} AND seq >= {from_seq}"
    ))
    .await
    .unwrap();
}

/// Rewrites chain 13 from entry `from` on: the entries given replace everything from there,
/// chained with `key`, and the head follows.
async fn rewrite_suffix(
    s: &TestServer,
    from: i64,
    replacement: Vec<AuditDraft>,
    key: &MacKey,
) -> Vec<AuditEntry> {
    let all = entries(s, 13).await;
    let before = &all[(from - 2) as usize];
    let new = rechain(replacement, before.seq, before.hash.clone(), key);
    delete_from(&s.db, 13, from).await;
    insert_rows(&s.db, &new).await;
    let last = new.last().unwrap();
    move_head(&s.db, 13, last.seq, &last.hash).await;
    new
}

both_engines! {
    async fn writes_reads_and_logins_are_chained_and_macced(db) {
        let s = populated(db).await;
        let count = |a: &'static str| s.db.scalar(Box::leak(format!("SELECT COUNT(*) FROM audit_log WHERE action = '{a}'").into_boxed_str()));
        assert_eq!(count("record.created").await, 3);
        assert_eq!(count("record.viewed").await, 3, "each read by another organisation");
        assert_eq!(count("auth.login").await, 2);
        assert_eq!(s.db.scalar("SELECT COUNT(*) FROM audit_log WHERE mac = ''").await, 0, "every entry carries a MAC");
        let report = verify(s.db.store.as_ref()).await.unwrap().expect("intact");
        assert_eq!(report.chains, 48);
        assert!(report.entries >= 8 + 9, "{report:?}");
        // No personal data in the log.
        let details = s.db.scalar("SELECT COUNT(*) FROM audit_log WHERE detail LIKE '%試験%' OR detail LIKE '%A0%'").await;
        assert_eq!(details, 0);
        checkpoint(&s).await;
        let r = full_verify(&s, None).await;
        assert!(r.intact(), "{r:?}");
        assert_eq!(r.not_checkpointed, 0, "{r:?}");
        assert!(r.checkpoints >= 1);
        // Entries after the newest checkpoint are counted as not yet checkpointed.
        s.login("cgc2").await;
        let r = full_verify(&s, None).await;
        assert!(r.intact(), "{r:?}");
        assert_eq!((r.not_checkpointed, r.chains_not_checkpointed), (1, 1), "{r:?}");
    }

    async fn the_database_refuses_to_change_the_log_its_heads_and_checkpoints(db) {
        let s = populated(db).await;
        checkpoint(&s).await;
        assert!(s.db.raw("UPDATE audit_log SET detail = '{}' WHERE pref_code = 13 AND seq = 1").await.is_err());
        assert!(s.db.raw("DELETE FROM audit_log WHERE pref_code = 13 AND seq = 1").await.is_err());
        assert!(s.db.raw("DELETE FROM audit_head WHERE pref_code = 13").await.is_err());
        assert!(s.db.raw("INSERT INTO audit_head (pref_code, seq, hash) VALUES (99, 0, 'x')").await.is_err());
        assert!(s.db.raw("DELETE FROM audit_checkpoints").await.is_err());
        assert!(s.db.raw("UPDATE audit_checkpoints SET body = '{}'").await.is_err());
        if s.db.engine == Engine::Postgres {
            // Every partition refuses TRUNCATE, not only the parent.
            assert!(s.db.raw("TRUNCATE audit_log_p13").await.is_err());
            assert!(s.db.raw("TRUNCATE audit_log").await.is_err());
            assert!(s.db.raw("TRUNCATE audit_head").await.is_err());
            assert!(s.db.raw("TRUNCATE audit_checkpoints").await.is_err());
        }
        assert!(full_verify(&s, None).await.intact());
    }

    async fn an_entry_that_does_not_follow_its_chain_head_is_not_written(db) {
        let s = populated(db).await;
        let key = s.db.store.audit_key().unwrap();
        let head = head(&s, 13).await;
        let head_27 = s.db.scalar("SELECT seq FROM audit_head WHERE pref_code = 27").await;
        let entries = s.db.store.audit_entries(13, head - 1, 1).await.unwrap();
        let newest = entries[0].clone();
        // Chained from the entry before the newest: a fork of the chain.
        let before = s.db.store.audit_entries(13, head - 2, 1).await.unwrap()[0].clone();
        let draft = |pref_code: i64, n: i64| AuditDraft {
            pref_code,
            at: n,
            actor_user: None,
            actor_org: "cgc-13-01".into(),
            action: action::RECORD_VIEWED,
            record_id: None,
            detail: serde_json::json!({ "n": n }),
        };
        let fork = AuditEntry::chain(draft(13, 1), before.seq, &before.hash, &key);
        assert_eq!(s.db.store.append_chained(&[fork]).await.unwrap(), Vec::<i64>::new());
        // A chain that follows its head lands, in the same call as the fork or alone.
        let next = AuditEntry::chain(draft(13, 2), newest.seq, &newest.hash, &key);
        let stale_27 = AuditEntry::chain(draft(27, 3), head_27 + 40, "not the head", &key);
        let landed = s.db.store.append_chained(&[next.clone(), stale_27]).await.unwrap();
        assert!(!landed.contains(&27), "{landed:?}");
        if landed.is_empty() {
            // SQLite refuses the whole statement; PostgreSQL lands the chains that follow.
            assert_eq!(s.db.engine, Engine::Sqlite);
            assert_eq!(s.db.store.append_chained(std::slice::from_ref(&next)).await.unwrap(), vec![13]);
        } else {
            assert_eq!(landed, vec![13]);
        }
        assert_eq!(s.db.scalar("SELECT seq FROM audit_head WHERE pref_code = 13").await, head + 1);
        assert_eq!(s.db.scalar("SELECT seq FROM audit_head WHERE pref_code = 27").await, head_27);
        assert_eq!(s.db.scalar("SELECT COUNT(*) FROM audit_log WHERE pref_code = 27").await, head_27);
        // The right sequence number but another hash than the head's: refused too.
        let wrong_hash = AuditEntry::chain(draft(13, 6), next.seq, &before.hash, &key);
        assert_eq!(s.db.store.append_chained(&[wrong_hash]).await.unwrap(), Vec::<i64>::new());
        assert_eq!(s.db.scalar("SELECT seq FROM audit_head WHERE pref_code = 13").await, head + 1);
        verify(s.db.store.as_ref()).await.unwrap().expect("intact");
        assert_eq!(s.db.store.audit_entries(13, head, 10).await.unwrap(), vec![next.clone()]);
        // Entries that are not chained to each other are refused whatever the heads say.
        let after_next = AuditEntry::chain(draft(13, 4), next.seq, &next.hash, &key);
        let gap = AuditEntry::chain(draft(13, 5), after_next.seq + 1, &after_next.hash, &key);
        assert!(s.db.store.append_chained(&[after_next, gap]).await.is_err());
        assert_eq!(s.db.scalar("SELECT seq FROM audit_head WHERE pref_code = 13").await, head + 1);
    }

    async fn a_changed_entry_is_found(db) {
        let s = populated(db).await;
        disarm(&s.db).await;
        s.db.raw("UPDATE audit_log SET detail = '{\"version\":7}' WHERE pref_code = 13 AND seq = 4").await.unwrap();
        let b = break_in(&full_verify(&s, None).await, 13);
        assert_eq!((b.pref_code, b.seq), (13, 4), "{b}");
        assert!(b.reason.contains("changed"), "{b}");
    }

    async fn a_removed_entry_is_found(db) {
        let s = populated(db).await;
        disarm(&s.db).await;
        s.db.raw("DELETE FROM audit_log WHERE pref_code = 13 AND seq = 3").await.unwrap();
        let b = break_in(&full_verify(&s, None).await, 13);
        assert_eq!((b.pref_code, b.seq), (13, 3), "{b}");
        assert!(b.reason.contains("removed"), "{b}");
    }

    async fn removing_the_newest_entry_is_found(db) {
        let s = populated(db).await;
        disarm(&s.db).await;
        let last = s.db.scalar("SELECT MAX(seq) FROM audit_log WHERE pref_code = 13").await;
        s.db.raw(&format!("DELETE FROM audit_log WHERE pref_code = 13 AND seq = {last}")).await.unwrap();
        let b = break_in(&full_verify(&s, None).await, 13);
        assert_eq!((b.pref_code, b.seq), (13, last), "{b}");
    }

    async fn an_inserted_entry_is_found(db) {
        let s = populated(db).await;
        disarm(&s.db).await;
        // Make room after entry 2 and insert a forged entry that claims to follow it.
        let n = s.db.scalar("SELECT MAX(seq) FROM audit_log WHERE pref_code = 13").await;
        for seq in (3..=n).rev() {
            s.db.raw(&format!("UPDATE audit_log SET seq = {} WHERE pref_code = 13 AND seq = {seq}", seq + 1)).await.unwrap();
        }
        let prev = s.db.store.audit_entries(13, 1, 1).await.unwrap()[0].clone();
        let forged = AuditEntry::chain(redraft(&prev, Some(serde_json::json!({}))), 2, &prev.hash, &attackers_key());
        insert_rows(&s.db, &[forged]).await;
        let b = break_in(&full_verify(&s, None).await, 13);
        assert_eq!((b.pref_code, b.seq), (13, 3), "{b}");
        assert!(b.reason.contains("MAC"), "{b}");
    }

    async fn reordered_entries_are_found(db) {
        let s = populated(db).await;
        disarm(&s.db).await;
        s.db.raw("UPDATE audit_log SET seq = -1 WHERE pref_code = 13 AND seq = 2").await.unwrap();
        s.db.raw("UPDATE audit_log SET seq = 2 WHERE pref_code = 13 AND seq = 3").await.unwrap();
        s.db.raw("UPDATE audit_log SET seq = 3 WHERE pref_code = 13 AND seq = -1").await.unwrap();
        let b = break_in(&full_verify(&s, None).await, 13);
        assert_eq!((b.pref_code, b.seq), (13, 2), "{b}");
    }

    async fn an_entry_moved_to_another_chain_is_found_in_both(db) {
        let s = populated(db).await;
        disarm(&s.db).await;
        let last = head(&s, 13).await;
        let h27 = head(&s, 27).await;
        s.db.raw(&format!(
            "UPDATE audit_log SET pref_code = 27, seq = {} WHERE pref_code = 13 AND seq = {last}", h27 + 1
        )).await.unwrap();
        let r = full_verify(&s, None).await;
        assert_eq!(break_in(&r, 13).seq, last, "{r:?}");
        let b = break_in(&r, 27);
        assert_eq!(b.seq, h27 + 1, "{b}");
    }

    async fn a_deleted_head_is_found(db) {
        let s = populated(db).await;
        disarm(&s.db).await;
        s.db.raw("DELETE FROM audit_head WHERE pref_code = 13").await.unwrap();
        let r = full_verify(&s, None).await;
        let b = break_in(&r, 13);
        assert!(b.reason.contains("no head"), "{b}");
        assert_eq!(r.chains, 48, "the chains are fixed, not read from audit_head");
    }

    async fn entries_outside_the_chains_are_found(db) {
        let s = populated(db).await;
        disarm(&s.db).await;
        if s.db.engine == Engine::Postgres {
            s.db.raw("CREATE TABLE audit_log_p99 PARTITION OF audit_log FOR VALUES IN (99)").await.unwrap();
        }
        let forged = AuditEntry::chain(AuditDraft::by_operator(99, 0, action::LOGIN, serde_json::json!({})), 0, GENESIS, &attackers_key());
        insert_rows(&s.db, &[forged]).await;
        let b = break_in(&full_verify(&s, None).await, 99);
        assert_eq!(b.seq, 1);
    }

    async fn a_truncated_chain_with_its_head_reset_is_found_by_the_checkpoint(db) {
        let s = populated(db).await;
        checkpoint(&s).await;
        let before = head(&s, 13).await;
        disarm(&s.db).await;
        match s.db.engine {
            Engine::Postgres => s.db.raw("TRUNCATE audit_log_p13").await.unwrap(),
            Engine::Sqlite => s.db.raw("DELETE FROM audit_log WHERE pref_code = 13").await.unwrap(),
        };
        move_head(&s.db, 13, 0, GENESIS).await;
        // Without a checkpoint nothing says the chain ever had entries ...
        assert!(verify(s.db.store.as_ref()).await.unwrap().is_ok());
        // ... with one, the chain must reach it.
        let b = break_in(&full_verify(&s, None).await, 13);
        assert_eq!(b.seq, 1, "{b}");
        assert!(b.reason.contains(&format!("names entry {before}")), "{b}");
    }

    async fn a_forged_append_with_a_recomputed_hash_is_found(db) {
        let s = populated(db).await;
        disarm(&s.db).await;
        let last = entries(&s, 13).await.last().unwrap().clone();
        let forged = rechain(vec![redraft(&last, Some(serde_json::json!({"forged": true})))], last.seq, last.hash.clone(), &attackers_key());
        insert_rows(&s.db, &forged).await;
        move_head(&s.db, 13, forged[0].seq, &forged[0].hash).await;
        let b = break_in(&full_verify(&s, None).await, 13);
        assert_eq!(b.seq, last.seq + 1, "{b}");
        assert!(b.reason.contains("MAC"), "{b}");
        // The same entry with no MAC at all.
        let s2 = populated(TestDb::new(s.db.engine).await.unwrap()).await;
        disarm(&s2.db).await;
        let tip = entries(&s2, 13).await.last().unwrap().clone();
        let mut forged = rechain(vec![redraft(&tip, None)], tip.seq, tip.hash.clone(), &attackers_key());
        forged[0].mac.clear();
        insert_rows(&s2.db, &forged).await;
        move_head(&s2.db, 13, forged[0].seq, &forged[0].hash).await;
        let b = break_in(&full_verify(&s2, None).await, 13);
        assert_eq!(b.seq, tip.seq + 1, "{b}");
        assert!(b.reason.contains("no MAC"), "{b}");
    }

    async fn a_rewritten_suffix_is_found(db) {
        let s = populated(db).await;
        disarm(&s.db).await;
        let all = entries(&s, 13).await;
        let drafts = all[4..].iter().map(|e| redraft(e, Some(serde_json::json!({"rewritten": true})))).collect();
        rewrite_suffix(&s, 5, drafts, &attackers_key()).await;
        let b = break_in(&full_verify(&s, None).await, 13);
        assert_eq!(b.seq, 5, "{b}");
        assert!(b.reason.contains("MAC"), "{b}");
    }

    async fn a_cut_tail_with_the_head_moved_back_is_found_by_the_checkpoint(db) {
        let s = populated(db).await;
        checkpoint(&s).await;
        disarm(&s.db).await;
        let all = entries(&s, 13).await;
        let keep = all.len() as i64 - 3;
        delete_from(&s.db, 13, keep + 1).await;
        let tip = &all[(keep - 1) as usize];
        move_head(&s.db, 13, tip.seq, &tip.hash).await;
        assert!(verify(s.db.store.as_ref()).await.unwrap().is_ok(), "MACs alone cannot show a cut tail");
        let b = break_in(&full_verify(&s, None).await, 13);
        assert_eq!(b.seq, keep + 1, "{b}");
        assert!(b.reason.contains("checkpoint"), "{b}");
    }

    async fn renumbered_entries_are_found(db) {
        let s = populated(db).await;
        disarm(&s.db).await;
        // Entry 3 deleted and the rest renumbered down, rechained without the key.
        let all = entries(&s, 13).await;
        let drafts = all[3..].iter().map(|e| redraft(e, None)).collect();
        rewrite_suffix(&s, 3, drafts, &attackers_key()).await;
        let b = break_in(&full_verify(&s, None).await, 13);
        assert_eq!(b.seq, 3, "{b}");
    }

    async fn a_rewrite_by_a_holder_of_the_mac_key_is_found_by_the_witness_copy(db) {
        let s = populated(db).await;
        checkpoint(&s).await;
        let config = s.state().config.clone();
        let witness = s.db.keys.path().join("witness");
        let keys = PublicKeys::read(&public_keys_path(&config.audit_signing_key_path())).unwrap();
        tsunagu_server::audit::checkpoint::copy_new(&config.audit_checkpoint_path(), &witness, &keys).unwrap();
        disarm(&s.db).await;
        let key = MacKey::read(&config.audit_mac_key_path()).unwrap();
        let all = entries(&s, 13).await;
        let drafts = all[5..].iter().map(|e| redraft(e, Some(serde_json::json!({"rewritten": true})))).collect();
        rewrite_suffix(&s, 6, drafts, &key).await;
        // The insider also removes the local checkpoint file: the witness's copy still holds.
        std::fs::remove_file(config.audit_checkpoint_path()).unwrap();
        assert!(break_in_opt(&full_verify(&s, None).await, 13).is_none(), "with the key and no checkpoint, the rewrite passes");
        let b = break_in(&full_verify(&s, Some(&witness)).await, 13);
        assert!(b.reason.contains("signed checkpoint"), "{b}");
    }

    async fn verification_under_live_writes_agrees_with_verification_at_rest(db) {
        let mut config = support::test_config();
        config.audit.checkpoint_secs = 1;
        let s = TestServer::start_with(db, config).await;
        let muni = s.login("muni").await;
        let cgc = s.login("cgc").await;
        let id = muni.create(&record_json("131016", "L0")).await;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut load = Vec::new();
        for w in 0..4 {
            let (muni, cgc, stop) = (muni.clone(), cgc.clone(), stop.clone());
            load.push(tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if w % 2 == 0 {
                        muni.create(&record_json("131016", &format!("L{w}{n}"))).await;
                    } else {
                        cgc.get(&format!("/api/v1/records/{id}")).await;
                    }
                    n += 1;
                }
                n
            }));
        }
        let mut runs = 0;
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_secs(4) {
            let r = full_verify(&s, None).await;
            assert!(r.intact(), "verification during writes: {:?}", r.breaks);
            runs += 1;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut writes = 0;
        for l in load {
            writes += l.await.unwrap();
        }
        assert!(runs >= 2 && writes >= 20, "runs {runs}, writes {writes}");
        checkpoint(&s).await;
        let r = full_verify(&s, None).await;
        assert!(r.intact() && r.not_checkpointed == 0, "{r:?}");
    }

    async fn stripped_macs_are_never_laundered_by_a_later_start(db) {
        // A database writer without any key removes every MAC and adds entries of its own in a
        // chain nobody used; a later start (or any command) must not vouch for them.
        let s = populated(db).await;
        checkpoint(&s).await;
        disarm(&s.db).await;
        s.db.raw("UPDATE audit_log SET mac = ''").await.unwrap();
        let forged = rechain(
            (0..3).map(|i| AuditDraft::by_operator(5, i, action::RECORD_VIEWED, serde_json::json!({"n": i}))).collect(),
            head(&s, 5).await,
            entries(&s, 5).await.last().map(|e| e.hash.clone()).unwrap_or_else(|| GENESIS.into()),
            &attackers_key(),
        );
        let mut forged = forged;
        for e in &mut forged {
            e.mac.clear();
        }
        insert_rows(&s.db, &forged).await;
        let last = forged.last().unwrap();
        move_head(&s.db, 5, last.seq, &last.hash).await;
        let keyed_before = s.db.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'audit.keyed'").await;
        tsunagu_server::app::install_audit_key(s.db.store.as_ref(), &s.state().config.audit_mac_key_path()).await.unwrap();
        assert_eq!(s.db.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'audit.keyed'").await, keyed_before, "nothing vouched for");
        let r = full_verify(&s, None).await;
        assert!(break_in(&r, 5).reason.contains("no MAC"), "{r:?}");
        assert!(break_in(&r, 13).reason.contains("no MAC"), "{r:?}");
    }

    async fn entries_numbered_zero_or_below_are_found(db) {
        let s = populated(db).await;
        disarm(&s.db).await;
        let key = MacKey::read(&s.state().config.audit_mac_key_path()).unwrap();
        for seq in [0, -5] {
            let mut e = AuditEntry::chain(AuditDraft::by_operator(13, 0, action::RECORD_VIEWED, serde_json::json!({})), seq - 1, GENESIS, &key);
            e.record_id = Some(13_000_000_000_001);
            e.hash = e.compute_hash();
            e.mac = key.mac(&e.hash);
            insert_rows(&s.db, &[e]).await;
        }
        let b = break_in(&full_verify(&s, None).await, 13);
        assert_eq!(b.seq, -5, "{b}");
    }

    async fn a_head_row_of_a_chain_that_does_not_exist_is_found(db) {
        let s = populated(db).await;
        disarm(&s.db).await;
        s.db.raw(&format!("INSERT INTO audit_head (pref_code, seq, hash) VALUES (48, 0, '{GENESIS}')")).await.unwrap();
        assert_eq!(break_in(&full_verify(&s, None).await, 48).seq, 0);
    }

    async fn a_value_of_the_wrong_type_is_a_broken_entry_not_an_unverifiable_log(db) {
        let s = populated(db).await;
        if s.db.engine == Engine::Postgres {
            return; // PostgreSQL enforces column types.
        }
        disarm(&s.db).await;
        s.db.raw("UPDATE audit_log SET at = 'yesterday' WHERE pref_code = 13 AND seq = 3").await.unwrap();
        let b = break_in(&full_verify(&s, None).await, 13);
        assert!(b.reason.contains("wrong type"), "{b}");
    }

    async fn a_database_keyed_after_an_upgrade_verifies_and_its_old_entries_are_vouched_for(db) {
        // Entries written before the audit key existed carry no MAC; the first start with the
        // key appends one keying entry per chain, and only then. (Inserts are what the log
        // allows; no trigger needs dropping.)
        let k = MacKey::from_bytes(&[2; 32]);
        let mut old = rechain(
            (0..3).map(|i| AuditDraft::by_operator(13, i, action::ORGS_LOADED, serde_json::json!({"n": i}))).collect(),
            0,
            GENESIS.into(),
            &k,
        );
        for e in &mut old {
            e.mac.clear();
        }
        // A database written by the version before this one: entries without a MAC only.
        assert_eq!(db.scalar("SELECT COUNT(*) FROM audit_log").await, 0);
        insert_rows(&db, &old).await;
        move_head(&db, 13, 3, &old[2].hash).await;
        let path = db.keys.path().join("upgraded.key");
        tsunagu_server::app::install_audit_key(db.store.as_ref(), &path).await.unwrap();
        let after = db.store.audit_entries(13, 0, 10).await.unwrap();
        assert_eq!(after.len(), 4);
        assert_eq!(after[3].action, action::KEYED);
        assert!(verify(db.store.as_ref()).await.unwrap().is_ok());
        // A second start vouches for nothing more.
        tsunagu_server::app::install_audit_key(db.store.as_ref(), &path).await.unwrap();
        assert_eq!(db.store.audit_entries(13, 0, 10).await.unwrap().len(), 4);
        // A key from another database is refused.
        let other = db.keys.path().join("other.key");
        MacKey::create(&other).unwrap();
        let e = tsunagu_server::app::install_audit_key(db.store.as_ref(), &other).await.unwrap_err();
        assert!(e.to_string().contains("does not verify"), "{e}");
        // A missing key is never replaced once entries carry MACs.
        let missing = db.keys.path().join("missing.key");
        let e = tsunagu_server::app::install_audit_key(db.store.as_ref(), &missing).await.unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        assert!(!missing.exists());
        // An entry without a MAC added after the keying is reported.
        let mut late = rechain(vec![AuditDraft::by_operator(13, 9, action::ORGS_LOADED, serde_json::json!({}))], 4, after[3].hash.clone(), &k);
        late[0].mac.clear();
        insert_rows(&db, &late).await;
        move_head(&db, 13, 5, &late[0].hash).await;
        let b = verify(db.store.as_ref()).await.unwrap().unwrap_err();
        assert_eq!((b.pref_code, b.seq), (13, 5), "{b}");
    }
}

fn break_in_opt(report: &VerifyReport, chain: i64) -> Option<Break> {
    report.breaks.iter().find(|b| b.pref_code == chain).cloned()
}
