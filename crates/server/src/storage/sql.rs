//! The SQL shared by every area of the storage, and the engine's own methods of `Storage`.
//!
//! One SQL body, two engines: each area's statements live beside the area (`auth/sql.rs`,
//! `orgs/sql.rs`, `records/sql.rs`, `audit/sql.rs`, `notify/sql.rs`, `search/sql.rs`), each in
//! one macro that `storage/sqlite.rs` and `storage/postgres.rs` expand for their sqlx driver,
//! after `impl_common!` here. All are expanded into the same module, so the helpers below
//! (appending to the audit chain inside a transaction, inserting notifications, the records
//! table of a prefecture, row decoding) are visible to every area's macro, and so are the
//! private helpers of one area to another (a record write also writes the search index).
//! Both engines accept `$n` placeholders, so statements are shared; where the dialects differ
//! (row locks) the engine passes the piece of SQL that differs.

/// Record id = prefecture code × 10^12 + a per-prefecture counter: the id names its partition.
pub const ID_BASE: i64 = 1_000_000_000_000;

pub fn pref_of(id: i64) -> i64 {
    id / ID_BASE
}

pub const RECORD_COLS: &str = "pref_code, id, owner_org, version, created_at, created_by, updated_at, updated_by, restrictions, body, transfer, provenance";

/// The most audit rows one INSERT carries (10 parameters each, within both engines' limits).
pub const AUDIT_ROWS_PER_STATEMENT: usize = 1000;

/// For each chain of a batch: where its head must stand for the entries to follow it, and where
/// they leave it, as ((seq, hash), (seq, hash)).
pub type ChainSpans<'a> = std::collections::BTreeMap<i64, ((i64, &'a str), (i64, &'a str))>;

macro_rules! impl_common {
    ($store:ty, $db:ty, $engine:literal, $for_update:literal) => {
        use $crate::audit::{AuditDraft, AuditEntry, MacKey};
        use $crate::search::{IndexEntry, IndexKey, KeyLookup, SearchDoc};
        use $crate::storage::sql::{pref_of, ChainSpans, AUDIT_ROWS_PER_STATEMENT, ID_BASE, RECORD_COLS};
        use $crate::storage::*;
        use sqlx::Row;
        use tsunagu_record::api::NotificationKind;

        type Conn = <$db as sqlx::Database>::Connection;
        type DbRow = <$db as sqlx::Database>::Row;

        /// PostgreSQL has what the faster paths use: partitions to name and data-modifying
        /// `WITH` (several writes in one statement, one round trip).
        fn postgres() -> bool {
            $engine == "postgres"
        }

        /// A notification just inserted with `id`: unread, as sent.
        fn new_notification_row(n: &NewNotification, id: i64, record_id: i64, at: i64) -> NotificationRow {
            NotificationRow {
                id,
                org_id: n.org_id.clone(),
                kind: n.kind,
                record_id,
                intake_id: None,
                transfer_id: None,
                from_org_id: n.from_org_id.clone(),
                at,
                read: false,
            }
        }

        fn kind_code(k: NotificationKind) -> &'static str {
            match k {
                NotificationKind::RecordCreated => "record_created",
                NotificationKind::RecordUpdated => "record_updated",
                NotificationKind::IntakeForwarded => "intake_forwarded",
                NotificationKind::SafetyDueSoon => "safety_due_soon",
                NotificationKind::SafetyOverdue => "safety_overdue",
                NotificationKind::TransferOffered => "transfer_offered",
                NotificationKind::TransferConfirmed => "transfer_confirmed",
                NotificationKind::TransferDeclined => "transfer_declined",
                NotificationKind::TransferWithdrawn => "transfer_withdrawn",
            }
        }

        fn record_from_row(r: &DbRow) -> StoreResult<StoredRecord> {
            Ok(StoredRecord {
                pref_code: r.try_get("pref_code")?,
                id: r.try_get("id")?,
                owner_org: r.try_get("owner_org")?,
                version: r.try_get("version")?,
                created_at: r.try_get("created_at")?,
                created_by: r.try_get("created_by")?,
                updated_at: r.try_get("updated_at")?,
                updated_by: r.try_get("updated_by")?,
                restrictions: serde_json::from_str(r.try_get::<&str, _>("restrictions")?)
                    .map_err(StoreError::from_json)?,
                body: serde_json::from_str(r.try_get::<&str, _>("body")?)
                    .map_err(StoreError::from_json)?,
                transfer: json_opt(r.try_get("transfer")?)?,
                provenance: json_opt(r.try_get("provenance")?)?,
            })
        }

        /// A nullable JSON column.
        fn json_opt<T: serde::de::DeserializeOwned>(v: Option<String>) -> StoreResult<Option<T>> {
            v.map(|s| serde_json::from_str(&s).map_err(StoreError::from_json)).transpose()
        }

        fn json<T: serde::Serialize>(v: &T) -> String {
            serde_json::to_string(v).expect("serialising plain data cannot fail")
        }

        /// Appends one entry to its chain inside the caller's transaction; the head row lock
        /// (PostgreSQL) or the single writer (SQLite) keeps the chain linear.
        async fn append_audit_tx(conn: &mut Conn, key: &MacKey, draft: AuditDraft) -> StoreResult<AuditEntry> {
            let head = sqlx::query(concat!(
                "SELECT seq, hash FROM audit_head WHERE pref_code = $1",
                $for_update
            ))
            .bind(draft.pref_code)
            .fetch_one(&mut *conn)
            .await?;
            let entry = AuditEntry::chain(draft, head.try_get("seq")?, head.try_get::<&str, _>("hash")?, key);
            write_chain(conn, std::slice::from_ref(&entry)).await?;
            Ok(entry)
        }

        /// Writes chained entries and moves each chain's head to its last entry. On PostgreSQL
        /// both are one statement (data-modifying `WITH`), one round trip; on SQLite the
        /// insert is all, as a trigger checks each entry against its head and moves it.
        async fn write_chain(conn: &mut Conn, entries: &[AuditEntry]) -> StoreResult<()> {
            if entries.is_empty() {
                return Ok(());
            }
            if !postgres() {
                return insert_audit_rows(conn, entries).await;
            }
            let mut heads = std::collections::BTreeMap::new();
            for e in entries {
                heads.insert(e.pref_code, (e.seq, e.hash.as_str()));
            }
            let mut qb = sqlx::QueryBuilder::<$db>::new("WITH moved AS (UPDATE audit_head SET seq = CASE pref_code");
            for (p, (seq, _)) in &heads {
                qb.push(" WHEN ").push_bind(*p).push(" THEN ").push_bind(*seq);
            }
            qb.push(" END, hash = CASE pref_code");
            for (p, (_, hash)) in &heads {
                qb.push(" WHEN ").push_bind(*p).push(" THEN ").push_bind(hash.to_string());
            }
            qb.push(" END WHERE pref_code IN (");
            let mut sep = qb.separated(", ");
            for p in heads.keys() {
                sep.push_bind(*p);
            }
            qb.push("))");
            if entries.len() <= AUDIT_ROWS_PER_STATEMENT {
                qb.push(" ");
                push_audit_insert(&mut qb, entries);
                qb.build().execute(&mut *conn).await?;
            } else {
                qb.push(" SELECT 1");
                qb.build().execute(&mut *conn).await?;
                insert_audit_rows(conn, entries).await?;
            }
            Ok(())
        }

        fn push_audit_insert(qb: &mut sqlx::QueryBuilder<'_, $db>, entries: &[AuditEntry]) {
            qb.push("INSERT INTO audit_log (pref_code, seq, at, actor_user, actor_org, action, record_id, detail, prev_hash, hash, mac) ");
            push_audit_values(qb, entries);
        }

        /// `VALUES (…), (…)` of entries, in `audit_log`'s column order.
        fn push_audit_values(qb: &mut sqlx::QueryBuilder<'_, $db>, entries: &[AuditEntry]) {
            qb.push_values(entries, |mut b, e| {
                b.push_bind(e.pref_code)
                    .push_bind(e.seq)
                    .push_bind(e.at)
                    .push_bind(e.actor_user)
                    .push_bind(e.actor_org.clone())
                    .push_bind(e.action.clone())
                    .push_bind(e.record_id)
                    .push_bind(e.detail.clone())
                    .push_bind(e.prev_hash.clone())
                    .push_bind(e.hash.clone())
                    .push_bind(e.mac.clone());
            });
        }

        async fn insert_audit_rows(conn: &mut Conn, entries: &[AuditEntry]) -> StoreResult<()> {
            for chunk in entries.chunks(AUDIT_ROWS_PER_STATEMENT) {
                let mut qb = sqlx::QueryBuilder::<$db>::new("");
                push_audit_insert(&mut qb, chunk);
                qb.build().execute(&mut *conn).await?;
            }
            Ok(())
        }

        /// The table to name for one prefecture's records. On PostgreSQL that is the partition
        /// itself: a statement on the partitioned parent is planned again at every execution
        /// (pruning to one partition), one on the partition is planned once per connection.
        /// `None` for a prefecture that has no partition (an id that cannot exist).
        fn records_table(pref: i64) -> Option<std::borrow::Cow<'static, str>> {
            if postgres() {
                (0..=47).contains(&pref).then(|| format!("records_p{pref:02}").into())
            } else {
                Some("records".into())
            }
        }

        async fn insert_notifications(
            conn: &mut Conn,
            record_id: i64,
            at: i64,
            notify: &[NewNotification],
        ) -> StoreResult<Vec<NotificationRow>> {
            insert_notifications_about(conn, record_id, None, at, notify).await
        }

        /// Notifications about a record (0: none yet) and, where given, an intake.
        async fn insert_notifications_about(
            conn: &mut Conn,
            record_id: i64,
            intake_id: Option<i64>,
            at: i64,
            notify: &[NewNotification],
        ) -> StoreResult<Vec<NotificationRow>> {
            insert_notifications_of(conn, record_id, intake_id, None, at, notify).await
        }

        /// Notifications about a record and, where given, an intake or a transfer.
        async fn insert_notifications_of(
            conn: &mut Conn,
            record_id: i64,
            intake_id: Option<i64>,
            transfer_id: Option<i64>,
            at: i64,
            notify: &[NewNotification],
        ) -> StoreResult<Vec<NotificationRow>> {
            let mut out = Vec::with_capacity(notify.len());
            for n in notify {
                let row = sqlx::query(
                    "INSERT INTO notifications (org_id, kind, record_id, from_org_id, at, read, intake_id, transfer_id) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                )
                .bind(&n.org_id)
                .bind(kind_code(n.kind))
                .bind(record_id)
                .bind(&n.from_org_id)
                .bind(at)
                .bind(false)
                .bind(intake_id)
                .bind(transfer_id)
                .fetch_one(&mut *conn)
                .await?;
                let mut note = new_notification_row(n, row.try_get("id")?, record_id, at);
                note.intake_id = intake_id;
                note.transfer_id = transfer_id;
                out.push(note);
            }
            Ok(out)
        }

        #[async_trait::async_trait]
        impl Storage for $store {
            fn engine(&self) -> &'static str {
                $engine
            }

            async fn migrate(&self) -> StoreResult<()> {
                self.run_migrations().await
            }

            fn install_audit_key(&self, key: std::sync::Arc<MacKey>) {
                self.mac.install(key)
            }

            fn audit_key(&self) -> StoreResult<std::sync::Arc<MacKey>> {
                self.mac.get()
            }

            async fn close(&self) {
                self.close_pools().await
            }

            async fn close_reader(&self) {
                self.close_reader_pools().await
            }

            async fn probe(&self) -> StoreResult<()> {
                self.probe_connection().await
            }

            async fn counts(&self) -> StoreResult<Counts> {
                let mut c = Counts::default();
                for (slot, table) in [
                    (&mut c.orgs, "orgs"),
                    (&mut c.users, "users"),
                    (&mut c.records, "records"),
                    (&mut c.audit_entries, "audit_log"),
                ] {
                    let row = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
                        .fetch_one(&self.read)
                        .await?;
                    *slot = row.try_get("n")?;
                }
                Ok(c)
            }
        }
    };
}

pub(crate) use impl_common;
