//! The audit chain on both engines: every write and every outside read is logged, the database
//! refuses changes to the log, and `verify` finds any changed, removed, inserted or reordered
//! entry — and says which.

mod support;

use support::{record_json, Engine, TestDb, TestServer};
use tsunagu_server::audit::verify;

/// Drops the append-only triggers, as someone with full database access could.
async fn disarm(db: &TestDb) {
    let sql = match db.engine {
        Engine::Sqlite => "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;",
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
