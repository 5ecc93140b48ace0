//! The audit chain on both engines: every write and every outside read is logged, the database
//! refuses changes to the log, and `verify` finds any changed, removed, inserted or reordered
//! entry — and says which.

mod support;

use support::{record_json, Engine, TestDb, TestServer};
use tsunagu_server::audit::verify;

/// Drops the append-only triggers (and on SQLite the one that keeps each chain linear), as
/// someone with full database access could.
async fn disarm(db: &TestDb) {
    let sql = match db.engine {
        Engine::Sqlite => "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete; DROP TRIGGER audit_log_follows_head;",
        Engine::Postgres => "DROP TRIGGER audit_log_no_update ON audit_log; DROP TRIGGER audit_log_no_truncate ON audit_log;",
    };
    db.raw(sql).await.unwrap();
}

async fn populated(
) -> impl FnOnce(TestDb) -> std::pin::Pin<Box<dyn std::future::Future<Output = TestServer>>> {
    |db| {
        Box::pin(async move {
            let s = TestServer::start(db).await;
            let muni = s.login("muni").await;
            let cgc = s.login("cgc").await;
            for i in 0..3 {
                let id = muni.create(&record_json("131016", &format!("A{i}"))).await;
                cgc.get(&format!("/api/v1/records/{id}")).await;
            }
            s
        })
    }
}

both_engines! {
    async fn writes_reads_and_logins_are_chained(db) {
        let s = populated().await(db).await;
        let count = |a: &'static str| s.db.scalar(Box::leak(format!("SELECT COUNT(*) FROM audit_log WHERE action = '{a}'").into_boxed_str()));
        assert_eq!(count("record.created").await, 3);
        assert_eq!(count("record.viewed").await, 3, "each read by another organisation");
        assert_eq!(count("auth.login").await, 2);
        let report = verify(s.db.store.as_ref()).await.unwrap().expect("intact");
        assert_eq!(report.chains, 48);
        assert!(report.entries >= 8 + 9, "{report:?}");
        // No personal data in the log.
        let details = s.db.scalar("SELECT COUNT(*) FROM audit_log WHERE detail LIKE '%試験%' OR detail LIKE '%A0%'").await;
        assert_eq!(details, 0);
    }

    async fn the_database_refuses_to_change_the_log(db) {
        let s = populated().await(db).await;
        assert!(s.db.raw("UPDATE audit_log SET detail = '{}' WHERE pref_code = 13 AND seq = 1").await.is_err());
        assert!(s.db.raw("DELETE FROM audit_log WHERE pref_code = 13 AND seq = 1").await.is_err());
        assert!(verify(s.db.store.as_ref()).await.unwrap().is_ok());
    }

    async fn an_entry_that_does_not_follow_its_chain_head_is_not_written(db) {
        let s = populated().await(db).await;
        let head = s.db.scalar("SELECT seq FROM audit_head WHERE pref_code = 13").await;
        let head_27 = s.db.scalar("SELECT seq FROM audit_head WHERE pref_code = 27").await;
        let entries = s.db.store.audit_entries(13, head - 1, 1).await.unwrap();
        let newest = entries[0].clone();
        // Chained from the entry before the newest: a fork of the chain.
        let before = s.db.store.audit_entries(13, head - 2, 1).await.unwrap()[0].clone();
        let draft = |pref_code: i64, n: i64| tsunagu_server::audit::AuditDraft {
            pref_code,
            at: n,
            actor_user: None,
            actor_org: "cgc-13-01".into(),
            action: tsunagu_server::audit::action::RECORD_VIEWED,
            record_id: None,
            detail: serde_json::json!({ "n": n }),
        };
        let fork = tsunagu_server::audit::AuditEntry::chain(draft(13, 1), before.seq, &before.hash);
        assert_eq!(s.db.store.append_chained(&[fork]).await.unwrap(), Vec::<i64>::new());
        // A chain that follows its head lands, in the same call as the fork or alone.
        let next = tsunagu_server::audit::AuditEntry::chain(draft(13, 2), newest.seq, &newest.hash);
        let stale_27 = tsunagu_server::audit::AuditEntry::chain(draft(27, 3), head_27 + 40, "not the head");
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
        let wrong_hash = tsunagu_server::audit::AuditEntry::chain(draft(13, 6), next.seq, &before.hash);
        assert_eq!(s.db.store.append_chained(&[wrong_hash]).await.unwrap(), Vec::<i64>::new());
        assert_eq!(s.db.scalar("SELECT seq FROM audit_head WHERE pref_code = 13").await, head + 1);
        verify(s.db.store.as_ref()).await.unwrap().expect("intact");
        assert_eq!(s.db.store.audit_entries(13, head, 10).await.unwrap(), vec![next.clone()]);
        // Entries that are not chained to each other are refused whatever the heads say.
        let after_next = tsunagu_server::audit::AuditEntry::chain(draft(13, 4), next.seq, &next.hash);
        let gap = tsunagu_server::audit::AuditEntry::chain(draft(13, 5), after_next.seq + 1, &after_next.hash);
        assert!(s.db.store.append_chained(&[after_next, gap]).await.is_err());
        assert_eq!(s.db.scalar("SELECT seq FROM audit_head WHERE pref_code = 13").await, head + 1);
    }

    async fn a_changed_entry_is_found(db) {
        let s = populated().await(db).await;
        disarm(&s.db).await;
        s.db.raw("UPDATE audit_log SET detail = '{\"version\":7}' WHERE pref_code = 13 AND seq = 4").await.unwrap();
        let b = verify(s.db.store.as_ref()).await.unwrap().unwrap_err();
        assert_eq!((b.pref_code, b.seq), (13, 4), "{b}");
        assert!(b.reason.contains("changed"));
    }

    async fn a_removed_entry_is_found(db) {
        let s = populated().await(db).await;
        disarm(&s.db).await;
        s.db.raw("DELETE FROM audit_log WHERE pref_code = 13 AND seq = 3").await.unwrap();
        let b = verify(s.db.store.as_ref()).await.unwrap().unwrap_err();
        assert_eq!((b.pref_code, b.seq), (13, 4), "{b}");
    }

    async fn removing_the_newest_entry_is_found(db) {
        let s = populated().await(db).await;
        disarm(&s.db).await;
        let last = s.db.scalar("SELECT MAX(seq) FROM audit_log WHERE pref_code = 13").await;
        s.db.raw(&format!("DELETE FROM audit_log WHERE pref_code = 13 AND seq = {last}")).await.unwrap();
        let b = verify(s.db.store.as_ref()).await.unwrap().unwrap_err();
        assert_eq!((b.pref_code, b.seq), (13, last), "{b}");
    }

    async fn an_inserted_entry_is_found(db) {
        let s = populated().await(db).await;
        disarm(&s.db).await;
        // Make room after entry 2 and insert a forged entry that claims to follow it.
        let n = s.db.scalar("SELECT MAX(seq) FROM audit_log WHERE pref_code = 13").await;
        for seq in (3..=n).rev() {
            s.db.raw(&format!("UPDATE audit_log SET seq = {} WHERE pref_code = 13 AND seq = {seq}", seq + 1)).await.unwrap();
        }
        let prev: String = {
            let e = s.db.store.audit_entries(13, 1, 1).await.unwrap();
            e[0].hash.clone()
        };
        s.db.raw(&format!(
            "INSERT INTO audit_log (pref_code, seq, at, actor_user, actor_org, action, record_id, detail, prev_hash, hash) \
             VALUES (13, 3, 0, NULL, 'cgc-13-01', 'record.viewed', NULL, '{{}}', '{prev}', 'forged')"
        )).await.unwrap();
        let b = verify(s.db.store.as_ref()).await.unwrap().unwrap_err();
        assert_eq!((b.pref_code, b.seq), (13, 3), "{b}");
    }

    async fn reordered_entries_are_found(db) {
        let s = populated().await(db).await;
        disarm(&s.db).await;
        s.db.raw("UPDATE audit_log SET seq = -1 WHERE pref_code = 13 AND seq = 2").await.unwrap();
        s.db.raw("UPDATE audit_log SET seq = 2 WHERE pref_code = 13 AND seq = 3").await.unwrap();
        s.db.raw("UPDATE audit_log SET seq = 3 WHERE pref_code = 13 AND seq = -1").await.unwrap();
        let b = verify(s.db.store.as_ref()).await.unwrap().unwrap_err();
        assert_eq!((b.pref_code, b.seq), (13, 2), "{b}");
    }
}
