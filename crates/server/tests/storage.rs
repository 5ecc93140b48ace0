//! The storage trait's own suite, run against both implementations: ids and partitions,
//! versioned writes, concurrency on the audit chain, bulk seeding, case-list paging with ties.

mod support;

use std::sync::Arc;

use serde_json::json;
use tsunagu_masterdata::orgs as master;
use tsunagu_record::api::NotificationKind;
use tsunagu_server::audit::{action, verify, AuditDraft};
use tsunagu_server::orgs::{rows_from_master, OrgDirectory};
use tsunagu_server::storage::{
    unconditionally, CaseCursor, CaseQuery, CaseSort, NewNotification, NewTransfer, RecordWrite,
    Storage, TransferDecision, Versioned,
};
use tsunagu_server::transfers::rules::Refusal;
use tsunagu_server::{domain, seed};

async fn with_orgs(store: &Arc<dyn Storage>) -> OrgDirectory {
    store
        .upsert_orgs(&rows_from_master(&master::synthetic()))
        .await
        .unwrap();
    OrgDirectory::from_rows(store.list_orgs().await.unwrap()).unwrap()
}

fn write(dir: &OrgDirectory, owner: &str, case: &str, at: i64) -> RecordWrite {
    let o = dir.get(owner).unwrap();
    let mut body: tsunagu_record::RecordBody =
        serde_json::from_value(support::record_json("131016", case)).unwrap();
    body.admin.case_number = case.to_string();
    RecordWrite {
        pref_code: o.pref_code,
        owner_org: o.id.clone(),
        author: "t".into(),
        at,
        columns: domain::columns(&body, &Default::default()),
        body,
        restrictions: Default::default(),
        audit: AuditDraft {
            pref_code: o.pref_code,
            at,
            actor_user: None,
            actor_org: o.id.clone(),
            action: action::RECORD_CREATED,
            record_id: None,
            detail: json!({}),
        },
        notify: vec![],
    }
}

/// The `n`th read audit of record `record_id` (prefecture 13) by a centre of another prefecture.
fn viewed(record_id: i64, n: i64) -> AuditDraft {
    AuditDraft {
        pref_code: 13,
        at: 100 + n,
        actor_user: None,
        actor_org: "cgc-14-01".into(),
        action: action::RECORD_VIEWED,
        record_id: Some(record_id),
        detail: json!({ "n": n }),
    }
}

/// An offer of `ids` from cgc-13-01 to cgc-27-01 whose caller checks nothing: what the store
/// itself keeps is all that stands between two offers.
fn blind_offer(ids: Vec<i64>) -> tsunagu_server::storage::PrepareOffer {
    Box::new(move |_| {
        Ok(NewTransfer {
            pref_code: 13,
            from_org: "cgc-13-01".into(),
            to_org: "cgc-27-01".into(),
            to_name: "大阪".into(),
            message: String::new(),
            withhold: vec![],
            at: 1,
            by: "t".into(),
            audits: ids
                .iter()
                .map(|&id| AuditDraft {
                    pref_code: 13,
                    at: 1,
                    actor_user: None,
                    actor_org: "cgc-13-01".into(),
                    action: action::TRANSFER_OFFERED,
                    record_id: Some(id),
                    detail: json!({}),
                })
                .collect(),
            record_ids: ids,
            notify: vec![],
        })
    })
}

both_engines! {
    async fn the_store_keeps_one_open_offer_per_record_whatever_its_caller_checks(db) {
        let store = db.store.clone();
        let dir = with_orgs(&store).await;
        let (a, _) = store.create_record(write(&dir, "cgc-13-01", "A", 1)).await.unwrap();
        let (b, _) = store.create_record(write(&dir, "cgc-13-01", "B", 2)).await.unwrap();
        // A burst of offers of one record, none checked by its caller: exactly one is made.
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (store, id) = (store.clone(), a.id);
            tasks.push(tokio::spawn(async move { store.offer_transfer(&[id], blind_offer(vec![id])).await.unwrap() }));
        }
        let mut made = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok((t, _)) => made.push(t.id),
                Err(Refusal::Pending { record_id, .. }) => assert_eq!(record_id, a.id),
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(made.len(), 1, "{made:?}");
        // A family including it is refused too, and leaves the other record free.
        let r = store.offer_transfer(&[b.id, a.id], blind_offer(vec![b.id, a.id])).await.unwrap();
        assert!(matches!(r, Err(Refusal::Pending { record_id, .. }) if record_id == a.id), "{r:?}");
        assert!(store.get_record(b.id).await.unwrap().unwrap().transfer.is_none());
        assert_eq!(
            db.scalar(&format!("SELECT COUNT(*) FROM audit_log WHERE action = 'transfer.offered' AND record_id = {}", b.id)).await,
            0,
            "a refused offer leaves no entry"
        );
        // And the database refuses a second open row for the record whoever writes it.
        let sql = format!(
            "INSERT INTO transfers (id, pref_code, from_org, to_org, status, message, withhold, offered_at, offered_by) \
             VALUES (9000, 13, 'cgc-13-01', 'cgc-13-02', 'pending', '', '[]', 1, 't'); \
             INSERT INTO transfer_records (transfer_id, record_id, position, pending) VALUES (9000, {}, 0, {})",
            a.id,
            if db.engine == support::Engine::Postgres { "true" } else { "1" }
        );
        assert!(db.raw(&sql).await.is_err(), "a second open offer of one record was stored");
        // (A closed one is stored: it is the open offer the index refuses.)
        let closed = sql.replace("9000", "9001").replace(", true)", ", false)").replace(", 1)", ", 0)");
        db.raw(&closed).await.unwrap();
        // Decisions move the status from pending once, whatever their caller checks.
        let id = made[0];
        let mut tasks = Vec::new();
        for n in 0..6 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .decide_transfer(id, Box::new(move |_, recs| {
                        Ok(TransferDecision {
                            status: tsunagu_record::transfer::TransferStatus::Withdrawn,
                            at: 10 + n,
                            by: "t".into(),
                            reason: None,
                            audits: recs.iter().map(|r| AuditDraft {
                                pref_code: 13,
                                at: 10,
                                actor_user: None,
                                actor_org: "cgc-13-01".into(),
                                action: action::TRANSFER_WITHDRAWN,
                                record_id: Some(r.id),
                                detail: json!({}),
                            }).collect(),
                            notify: vec![],
                            confirm: vec![],
                        })
                    }))
                    .await
                    .unwrap()
            }));
        }
        let mut decided = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => decided += 1,
                Err(Refusal::Decided(_)) => {}
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(decided, 1);
        assert_eq!(db.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'transfer.withdrawn'").await, 1);
        let t = store.get_transfer(id).await.unwrap().unwrap();
        assert_eq!(t.status, tsunagu_record::transfer::TransferStatus::Withdrawn);
        assert!(store.get_record(a.id).await.unwrap().unwrap().transfer.is_none(), "the record is free again");
        assert!(store.offer_transfer(&[a.id], blind_offer(vec![a.id])).await.unwrap().is_ok());
        assert!(matches!(store.decide_transfer(999_999, Box::new(|_, _| Err(Refusal::NotFound))).await, Err(tsunagu_server::storage::StoreError::NotFound)));
    }

    async fn ids_name_their_prefecture_and_versions_are_checked(db) {
        let store = db.store.clone();
        let dir = with_orgs(&store).await;
        let (a, _) = store.create_record(write(&dir, "cgc-13-01", "A", 1)).await.unwrap();
        let (b, _) = store.create_record(write(&dir, "cgc-27-01", "B", 2)).await.unwrap();
        let (c, _) = store.create_record(write(&dir, "cgc-13-02", "C", 3)).await.unwrap();
        assert_eq!((a.id, b.id, c.id), (13_000_000_000_001, 27_000_000_000_001, 13_000_000_000_002));
        assert_eq!(store.get_record(b.id).await.unwrap().unwrap().body.admin.case_number, "B");
        assert!(store.get_record(27_000_000_000_002).await.unwrap().is_none());

        let Versioned::Done((a2, _)) = store.update_record(a.id, Some(1), unconditionally(write(&dir, "cgc-13-01", "A2", 4))).await.unwrap() else { panic!("update") };
        assert_eq!(a2.version, 2);
        assert_eq!(a2.created_at, 1, "creation facts survive updates");
        match store.update_record(a.id, Some(1), unconditionally(write(&dir, "cgc-13-01", "A3", 5))).await.unwrap() {
            Versioned::Conflict(cur) => assert_eq!((cur.version, cur.body.admin.case_number.as_str()), (2, "A2")),
            _ => panic!("a stale version must not win"),
        }
        let versions = store.list_versions(a.id).await.unwrap();
        assert_eq!(versions.iter().map(|v| v.body.admin.case_number.as_str()).collect::<Vec<_>>(), vec!["A", "A2"]);
        // A refusing check sees the current row before the version is looked at, and nothing
        // is written: even with a stale version the answer is a refusal, not a conflict.
        let entries = verify(store.as_ref()).await.unwrap().unwrap().entries;
        for version in [1, 2] {
            let w = write(&dir, "cgc-13-01", "A4", 6);
            let seen = std::sync::Arc::new(std::sync::Mutex::new(0));
            let seen2 = seen.clone();
            let refuse: tsunagu_server::storage::PrepareWrite = Box::new(move |cur| {
                *seen2.lock().unwrap() = cur.version;
                drop(w);
                None
            });
            match store.update_record(a.id, Some(version), refuse).await.unwrap() {
                Versioned::Refused(cur) => assert_eq!(cur.version, 2),
                _ => panic!("the check refused"),
            }
            assert_eq!(*seen.lock().unwrap(), 2);
        }
        assert_eq!(store.get_record(a.id).await.unwrap().unwrap().version, 2);
        assert_eq!(store.list_versions(a.id).await.unwrap().len(), 2);
        assert_eq!(verify(store.as_ref()).await.unwrap().unwrap().entries, entries, "no audit entry either");
    }

    async fn an_update_stores_what_it_returns_with_any_number_of_notifications(db) {
        let store = db.store.clone();
        let dir = with_orgs(&store).await;
        let (a, _) = store.create_record(write(&dir, "cgc-13-01", "A", 1)).await.unwrap();
        let note = |org: &str| NewNotification {
            org_id: org.into(),
            kind: NotificationKind::RecordUpdated,
            from_org_id: "cgc-13-01".into(),
        };
        let fanouts = [vec![], vec![note("muni-131016")], vec![note("muni-131016"), note("cgc-27-01")]];
        for (i, notify) in fanouts.into_iter().enumerate() {
            let version = i as i64 + 1;
            let mut w = write(&dir, "cgc-13-01", &format!("A{version}"), 10 + version);
            w.notify = notify.clone();
            let Versioned::Done((rec, notes)) = store.update_record(a.id, Some(version), unconditionally(w)).await.unwrap() else { panic!("update") };
            assert_eq!(rec.version, version + 1);
            assert_eq!(notes.len(), notify.len());
            for (n, want) in notes.iter().zip(&notify) {
                assert_eq!((n.org_id.as_str(), n.record_id, n.at), (want.org_id.as_str(), a.id, 10 + version));
                let stored = store.notifications(&n.org_id, n.id - 1, false, 1).await.unwrap();
                assert_eq!(stored.first(), Some(n), "the returned id is the stored row");
            }
            let stored = store.get_record(a.id).await.unwrap().unwrap();
            assert_eq!((stored.version, stored.body.admin.case_number.clone()), (version + 1, format!("A{version}")));
            let versions = store.list_versions(a.id).await.unwrap();
            assert_eq!(versions.last().map(|v| (v.version, v.at)), Some((version + 1, 10 + version)));
        }
        assert_eq!(store.audit_for_record(a.id, action::RECORD_CREATED).await.unwrap().len(), 4);
        assert!(verify(store.as_ref()).await.unwrap().is_ok());
        // An id whose prefecture part names no prefecture is simply not there.
        assert!(store.get_record(99_000_000_000_001).await.unwrap().is_none());
        assert!(matches!(
            store.update_record(99_000_000_000_001, Some(1), unconditionally(write(&dir, "cgc-13-01", "X", 20))).await,
            Err(tsunagu_server::storage::StoreError::NotFound)
        ));
    }

    async fn concurrent_writes_keep_every_chain_linear(db) {
        let store = db.store.clone();
        let dir = Arc::new(with_orgs(&store).await);
        let mut tasks = Vec::new();
        for t in 0..8 {
            let (store, dir) = (store.clone(), dir.clone());
            tasks.push(tokio::spawn(async move {
                let owner = if t % 2 == 0 { "cgc-13-01" } else { "muni-131016" };
                for i in 0..10 {
                    let (r, _) = store.create_record(write(&dir, owner, &format!("P{t}-{i}"), 10)).await.unwrap();
                    let Versioned::Done(_) = store.update_record(r.id, Some(1), unconditionally(write(&dir, owner, "U", 11))).await.unwrap() else { panic!() };
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let report = verify(store.as_ref()).await.unwrap().expect("chains intact after concurrent writes");
        assert_eq!(report.entries, 160);
        assert_eq!(store.counts().await.unwrap().records, 80);
    }

    async fn batched_read_audits_chain_in_order_across_prefectures(db) {
        let store = db.store.clone();
        let draft = |pref: i64, n: i64| AuditDraft {
            pref_code: pref,
            at: n,
            actor_user: None,
            actor_org: "cgc-13-01".into(),
            action: action::RECORD_VIEWED,
            record_id: Some(n),
            detail: serde_json::json!({ "n": n }),
        };
        // One batch over three chains, interleaved: each chain gets its entries in order.
        let batch: Vec<AuditDraft> = (0..9).map(|n| draft([13, 27, 0][n as usize % 3], n)).collect();
        let entries = store.append_audits(batch.clone()).await.unwrap();
        assert_eq!(entries.len(), 9);
        for (e, d) in entries.iter().zip(&batch) {
            assert_eq!((e.pref_code, e.record_id), (d.pref_code, d.record_id));
        }
        let seqs: Vec<i64> = entries.iter().filter(|e| e.pref_code == 27).map(|e| e.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3]);
        // Through the batcher, from many tasks at once: every entry lands, the chains hold.
        let batcher = tsunagu_server::audit::AuditBatcher::start(store.clone()).unwrap();
        let mut tasks = Vec::new();
        for t in 0..16 {
            let b = batcher.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..20 {
                    b.append(draft([13, 27][(t + i) as usize % 2], 100 + t * 20 + i)).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let report = verify(store.as_ref()).await.unwrap().expect("chains intact after batched appends");
        assert_eq!(report.entries, 9 + 16 * 20);
        // Only batches with a chain the writer had not seen yet (13, then 27) went the slow way.
        let slow = batcher.slow_batches();
        assert!(slow <= 2, "{slow} slow batches");
        // Another writer moves chain 13 behind the batcher's back: the batcher's next entry
        // there still lands (after its one-statement try is refused), and later ones land in
        // one statement again.
        let moved = store.append_audit(draft(13, 900)).await.unwrap();
        for n in 901..905 {
            let e = batcher.append(draft(13, n)).await.unwrap();
            assert_eq!(e.seq, moved.seq + (n - 900), "entry {n}");
        }
        assert_eq!(batcher.slow_batches(), slow + 1);
        let report = verify(store.as_ref()).await.unwrap().expect("chains intact after a head moved elsewhere");
        assert_eq!(report.entries, 9 + 16 * 20 + 5);
    }

    async fn read_audits_do_not_queue_behind_reads_for_a_connection(db) {
        // PostgreSQL only: there reads and writes share one pool, and another session's lock
        // can hold a read (and its pooled connection) indefinitely. SQLite's readers have a pool
        // of their own, and no other connection can make a WAL reader wait.
        if db.engine != support::Engine::Postgres {
            return;
        }
        let store = db.store.clone();
        let dir = with_orgs(&store).await;
        let (rec, _) = store.create_record(write(&dir, "cgc-13-01", "HELD", 10)).await.unwrap();
        let draft = |n: i64| viewed(rec.id, n);
        let batcher = tsunagu_server::audit::AuditBatcher::start(store.clone()).unwrap();
        // The writer learns chain 13's head, so the next entry takes the one-statement path.
        let first = batcher.append(draft(0)).await.unwrap();

        // Another session locks the records; reads pile up until every pooled connection
        // (the test store has 8) is stuck in one.
        let other = sqlx::postgres::PgPoolOptions::new().max_connections(2).connect(&db.url).await.unwrap();
        let mut lock = other.begin().await.unwrap();
        sqlx::query("LOCK TABLE records IN ACCESS EXCLUSIVE MODE").execute(&mut *lock).await.unwrap();
        let reads: Vec<_> = (0..10)
            .map(|_| {
                let s = store.clone();
                tokio::spawn(async move { s.get_record(rec.id).await })
            })
            .collect();
        let waiting = || async {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&other)
            .await
            .unwrap()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while waiting().await < 8 {
            assert!(std::time::Instant::now() < deadline, "the reads never filled the pool");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }

        // The read audit still lands at once: it has a connection of its own.
        let next = tokio::time::timeout(std::time::Duration::from_secs(5), batcher.append(draft(1)))
            .await
            .expect("the read audit waited for a pooled connection behind blocked reads")
            .unwrap();
        assert_eq!(next.seq, first.seq + 1);
        assert_eq!(next.prev_hash, first.hash);

        lock.rollback().await.unwrap();
        for r in reads {
            assert_eq!(r.await.unwrap().unwrap().expect("record").id, rec.id);
        }
        assert_eq!(batcher.slow_batches(), 1, "only the first entry went the slow way");
        verify(store.as_ref()).await.unwrap().expect("chain intact");
    }

    async fn read_audits_land_while_every_runtime_worker_is_busy(db) {
        // Both workers of the request runtime (these tests run with 2) are stuck in work that
        // does not yield. An audited read must still get its entry at once: the writer has a
        // thread and a runtime of its own, and on PostgreSQL a connection served by that
        // runtime, not by the stuck one.
        let store = db.store.clone();
        let dir = with_orgs(&store).await;
        let (rec, _) = store.create_record(write(&dir, "cgc-13-01", "BUSY", 10)).await.unwrap();
        let draft = |n: i64| viewed(rec.id, n);
        let batcher = tsunagu_server::audit::AuditBatcher::start(store.clone()).unwrap();
        let first = batcher.append(draft(0)).await.unwrap();

        // Each task waits for the other at the barrier, so the two hold both workers at once.
        let both = Arc::new(std::sync::Barrier::new(2));
        let stuck = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let hold = std::time::Duration::from_secs(3);
        let blockers: Vec<_> = (0..2)
            .map(|_| {
                let (both, stuck) = (both.clone(), stuck.clone());
                tokio::spawn(async move {
                    both.wait();
                    stuck.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    std::thread::sleep(hold);
                })
            })
            .collect();
        // The test body runs on the thread that started the runtime, not on a worker.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while stuck.load(std::sync::atomic::Ordering::SeqCst) < 2 {
            assert!(std::time::Instant::now() < deadline, "the workers were never both stuck");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }

        let started = std::time::Instant::now();
        let next = batcher.append(draft(1)).await.unwrap();
        let took = started.elapsed();
        assert!(
            took < std::time::Duration::from_secs(1),
            "the read audit took {took:?}: it waited for the request runtime's workers"
        );
        assert_eq!(next.seq, first.seq + 1);
        assert_eq!(next.prev_hash, first.hash);
        for b in blockers {
            b.await.unwrap();
        }
        assert_eq!(batcher.slow_batches(), 1, "only the first entry went the slow way");
        verify(store.as_ref()).await.unwrap().expect("chain intact");
    }

    async fn bulk_seed_assigns_ids_and_chains_entries(db) {
        let store = db.store.clone();
        let dir = with_orgs(&store).await;
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        seed::seed_bulk_records(store.as_ref(), &dir, 1500, 42, today, 100, |_| {}).await.unwrap();
        // A normal write after the bulk load continues the same counters and chains.
        store.create_record(write(&dir, "cgc-13-01", "after", 200)).await.unwrap();
        let counts = store.counts().await.unwrap();
        assert_eq!(counts.records, 1501);
        let report = verify(store.as_ref()).await.unwrap().expect("intact");
        assert_eq!(report.entries, 1501);
        // Every record's body survived the round trip and passes validation.
        let q = CaseQuery { owners: vec![], pref_code: Some(1), serious_only: false, status: None, municipality: None, viewer_org: "x".into(), mask_others: false, updated_since: None, sort: CaseSort::CaseNumber, after: None, limit: 1000 };
        let rows = store.list_cases(&q).await.unwrap();
        assert!(!rows.is_empty());
        for r in rows {
            assert_eq!(r.pref_code, 1);
            let exists = |c: &str| tsunagu_masterdata::localgov::municipality(c).is_some();
            tsunagu_record::validate::validate(&r.body, &tsunagu_record::validate::Context { today, municipality_exists: &exists })
                .unwrap_or_else(|e| panic!("seeded record {} invalid: {e:?}", r.id));
        }
    }

    async fn paging_is_stable_when_sort_keys_tie(db) {
        let store = db.store.clone();
        let dir = with_orgs(&store).await;
        // Same update time and same case number for all: only the id breaks ties.
        for _ in 0..9 {
            store.create_record(write(&dir, "cgc-13-01", "SAME", 50)).await.unwrap();
        }
        for sort in [CaseSort::UpdatedDesc, CaseSort::UpdatedAsc, CaseSort::CaseNumber, CaseSort::NextReview] {
            let mut after: Option<CaseCursor> = None;
            let mut ids = Vec::new();
            loop {
                let q = CaseQuery { owners: vec!["cgc-13-01".into()], pref_code: Some(13), serious_only: false, status: None, municipality: None, viewer_org: "cgc-13-01".into(), mask_others: false, updated_since: None, sort, after: after.clone(), limit: 4 };
                let rows = store.list_cases(&q).await.unwrap();
                let Some(last) = rows.last() else { break };
                let key = match sort {
                    CaseSort::UpdatedDesc | CaseSort::UpdatedAsc => last.updated_at.to_string(),
                    CaseSort::CaseNumber => "SAME".into(),
                    CaseSort::NextReview => "2026-12-01".into(),
                };
                after = Some(CaseCursor { key, id: last.id });
                ids.extend(rows.iter().map(|r| r.id));
            }
            let mut dedup = ids.clone();
            dedup.sort();
            dedup.dedup();
            assert_eq!((ids.len(), dedup.len()), (9, 9), "{sort:?}: {ids:?}");
        }
    }
}
