//! The SQL of the storage trait, written once and compiled for each engine by `impl_storage!`.
//! Both engines accept `$n` placeholders, so statements are shared; where the dialects differ
//! (row locks) the engine passes the piece of SQL that differs.

/// Record id = prefecture code × 10^12 + a per-prefecture counter: the id names its partition.
pub const ID_BASE: i64 = 1_000_000_000_000;

pub fn pref_of(id: i64) -> i64 {
    id / ID_BASE
}

pub const RECORD_COLS: &str = "pref_code, id, owner_org, version, created_at, created_by, updated_at, updated_by, restrictions, body";

/// The most audit rows one INSERT carries (10 parameters each, within both engines' limits).
pub const AUDIT_ROWS_PER_STATEMENT: usize = 1000;

/// `LIKE` pattern of a sealed TOTP secret.
pub fn sealed_pattern() -> String {
    format!("{}%", crate::totp_key::SEALED_PREFIX)
}

/// The most forgotten rows of unknown logins one attempt deletes: more than one attempt adds,
/// so they cannot pile up, and little enough that no attempt waits on a long delete.
pub const LOGIN_FAILURES_SWEEP: i64 = 100;

/// The SET list that counts a login attempt on a row of table `t` (`users` or
/// `login_failures`), written once for both. `$1` now, `$2` max_failures, `$3` the time at or
/// before which a run of failures is forgotten, `$4` the end of a lockout that starts now.
/// Every expression reads the row as it was before this statement, so the row itself decides:
/// locked → counted, not checked, lockout unchanged; else the count goes on, or restarts at 1
/// when the last lockout has ended, the count already reached the limit, or the run is
/// forgotten; reaching `max_failures` locks.
pub fn reserve_set(t: &str) -> String {
    let locked = format!("{t}.locked_until > $1");
    let restart =
        format!("({t}.locked_until > 0 OR {t}.failed_count >= $2 OR {t}.failed_at <= $3)");
    let next = format!("(CASE WHEN {restart} THEN 1 ELSE {t}.failed_count + 1 END)");
    format!(
        "failed_count = CASE WHEN {locked} THEN {t}.failed_count + 1 ELSE {next} END, \
         locked_until = CASE WHEN {locked} THEN {t}.locked_until WHEN {next} >= $2 THEN $4 ELSE 0 END, \
         failed_at = $1, \
         attempt_checked = CASE WHEN {locked} THEN 0 ELSE 1 END"
    )
}

/// For each chain of a batch: where its head must stand for the entries to follow it, and where
/// they leave it, as ((seq, hash), (seq, hash)).
pub type ChainSpans<'a> = std::collections::BTreeMap<i64, ((i64, &'a str), (i64, &'a str))>;

macro_rules! impl_storage {
    ($store:ty, $db:ty, $engine:literal, $for_update:literal, $clear_search:literal) => {
        use $crate::audit::{AuditDraft, AuditEntry, MacKey};
        use $crate::search::{IndexEntry, IndexKey, KeyLookup, SearchDoc};
        use $crate::storage::sql::{pref_of, reserve_set, sealed_pattern, ChainSpans, AUDIT_ROWS_PER_STATEMENT, ID_BASE, LOGIN_FAILURES_SWEEP, RECORD_COLS};
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
                from_org_id: n.from_org_id.clone(),
                at,
                read: false,
            }
        }

        fn kind_code(k: NotificationKind) -> &'static str {
            match k {
                NotificationKind::RecordCreated => "record_created",
                NotificationKind::RecordUpdated => "record_updated",
            }
        }

        fn kind_from(s: &str) -> StoreResult<NotificationKind> {
            match s {
                "record_created" => Ok(NotificationKind::RecordCreated),
                "record_updated" => Ok(NotificationKind::RecordUpdated),
                other => Err(StoreError::Corrupt(format!("unknown notification kind {other}"))),
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
            })
        }

        fn audit_from_row(r: &DbRow) -> StoreResult<AuditEntry> {
            Ok(AuditEntry {
                pref_code: r.try_get("pref_code")?,
                seq: r.try_get("seq")?,
                at: r.try_get("at")?,
                actor_user: r.try_get("actor_user")?,
                actor_org: r.try_get("actor_org")?,
                action: r.try_get("action")?,
                record_id: r.try_get("record_id")?,
                detail: r.try_get("detail")?,
                prev_hash: r.try_get("prev_hash")?,
                hash: r.try_get("hash")?,
                mac: r.try_get("mac")?,
            })
        }

        fn notification_from_row(r: &DbRow) -> StoreResult<NotificationRow> {
            Ok(NotificationRow {
                id: r.try_get("id")?,
                org_id: r.try_get("org_id")?,
                kind: kind_from(r.try_get::<&str, _>("kind")?)?,
                record_id: r.try_get("record_id")?,
                from_org_id: r.try_get("from_org_id")?,
                at: r.try_get("at")?,
                read: r.try_get("read")?,
            })
        }

        fn user_from_row(r: &DbRow) -> StoreResult<UserRow> {
            Ok(UserRow {
                id: r.try_get("id")?,
                org_id: r.try_get("org_id")?,
                login: r.try_get("login")?,
                display_name: r.try_get("display_name")?,
                role: r.try_get("role")?,
                password_hash: r.try_get("password_hash")?,
                totp_secret: r.try_get("totp_secret")?,
                totp_last_step: r.try_get("totp_last_step")?,
                failed_count: r.try_get("failed_count")?,
                locked_until: r.try_get("locked_until")?,
            })
        }

        fn json<T: serde::Serialize>(v: &T) -> String {
            serde_json::to_string(v).expect("serialising plain data cannot fail")
        }

        /// Sets one of a user's credentials (`set`, whose `$1` is `value`), clears the failure
        /// count and any lockout, ends the user's sessions and appends `audit`, inside the
        /// caller's transaction.
        async fn reset_credential(conn: &mut Conn, key: &MacKey, set: &str, value: &str, user_id: i64, audit: AuditDraft) -> StoreResult<()> {
            let sql = format!("UPDATE users SET {set}, failed_count = 0, locked_until = 0 WHERE id = $2");
            let n = sqlx::query(&sql).bind(value).bind(user_id).execute(&mut *conn).await?.rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *conn)
                .await?;
            append_audit_tx(conn, key, audit).await?;
            Ok(())
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

        /// For each chain in `entries`: where its head must stand for them to follow it, and
        /// where they leave it. Refuses entries of one chain that are not chained to each other,
        /// since only the first of a chain is checked against the head.
        fn chain_spans(entries: &[AuditEntry]) -> StoreResult<ChainSpans<'_>> {
            let mut spans = ChainSpans::new();
            for e in entries {
                let start = (e.seq - 1, e.prev_hash.as_str());
                let end = (e.seq, e.hash.as_str());
                match spans.get_mut(&e.pref_code) {
                    Some(span) if span.1 == start => span.1 = end,
                    Some(_) => {
                        return Err(StoreError::Corrupt(format!(
                            "audit entry {} of chain {} does not follow the entry before it in its batch",
                            e.seq, e.pref_code
                        )))
                    }
                    None => {
                        spans.insert(e.pref_code, (start, end));
                    }
                }
            }
            Ok(spans)
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

        fn update_record_sql(table: &str) -> String {
            format!(
                "UPDATE {table} SET version = $1, status = $2, case_number = $3, municipality_code = $4, \
                 serious = $5, missing = $6, risk_level = $7, next_review = $8, address_restricted = $9, \
                 name_key = $10, kana_key = $11, birth_date = $12, updated_at = $13, updated_by = $14, \
                 restrictions = $15, body = $16, casework_restricted = $19 WHERE pref_code = $17 AND id = $18"
            )
        }

        fn bind_record_update<'q>(
            q: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>,
            rec: &'q StoredRecord,
            c: &'q RecordColumns,
        ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>> {
            q.bind(rec.version)
                .bind(&c.status)
                .bind(&c.case_number)
                .bind(&c.municipality_code)
                .bind(c.serious)
                .bind(c.missing)
                .bind(&c.risk_level)
                .bind(&c.next_review)
                .bind(c.address_restricted)
                .bind(&c.name_key)
                .bind(&c.kana_key)
                .bind(&c.birth_date)
                .bind(rec.updated_at)
                .bind(&rec.updated_by)
                .bind(json(&rec.restrictions))
                .bind(json(&rec.body))
                .bind(rec.pref_code)
                .bind(rec.id)
                .bind(c.casework_restricted)
        }

        /// PostgreSQL: the record row, its version row, the notifications and the locked head
        /// of the audit chain `audit_pref`, in one statement (data-modifying `WITH`): one round
        /// trip instead of four or more. Returns the notifications and the head (seq, hash).
        async fn update_row_version_notify(
            conn: &mut Conn,
            rec: &StoredRecord,
            c: &RecordColumns,
            notify: &[NewNotification],
            audit_pref: i64,
        ) -> StoreResult<(Vec<NotificationRow>, (i64, String))> {
            use std::fmt::Write as _;
            let table = records_table(rec.pref_code).ok_or(StoreError::NotFound)?;
            let mut sql = format!(
                "WITH updated AS ({} RETURNING pref_code, id, version, updated_at, updated_by, restrictions, body), \
                 versioned AS (INSERT INTO record_versions (pref_code, record_id, version, at, author, restrictions, body) \
                 SELECT pref_code, id, version, updated_at, updated_by, restrictions, body FROM updated)",
                update_record_sql(&table)
            );
            if !notify.is_empty() {
                // $13 is the time of the change and $18 the record id, as in update_record_sql
                // (which takes $1 to $19).
                sql.push_str(", notified AS (INSERT INTO notifications (org_id, kind, record_id, from_org_id, at, read) VALUES ");
                for i in 0..notify.len() {
                    let p = 20 + 3 * i;
                    let sep = if i == 0 { "" } else { ", " };
                    write!(sql, "{sep}(${p}, ${}, $18, ${}, $13, false)", p + 1, p + 2).expect("writing to a String");
                }
                sql.push_str(" RETURNING id, org_id)");
            }
            let head_param = 20 + 3 * notify.len();
            write!(sql, ", head AS (SELECT seq, hash FROM audit_head WHERE pref_code = ${head_param} FOR UPDATE) ")
                .expect("writing to a String");
            sql.push_str(if notify.is_empty() {
                "SELECT head.seq, head.hash FROM head"
            } else {
                "SELECT head.seq, head.hash, notified.id, notified.org_id FROM head CROSS JOIN notified"
            });
            let mut q = bind_record_update(sqlx::query(&sql), rec, c);
            for n in notify {
                q = q.bind(&n.org_id).bind(kind_code(n.kind)).bind(&n.from_org_id);
            }
            let rows = q.bind(audit_pref).fetch_all(&mut *conn).await?;
            let first = rows
                .first()
                .ok_or_else(|| StoreError::Corrupt(format!("no audit head for prefecture {audit_pref}")))?;
            let head = (first.try_get::<i64, _>("seq")?, first.try_get::<String, _>("hash")?);
            let mut ids: Vec<(String, i64)> = if notify.is_empty() {
                Vec::new()
            } else {
                rows.iter()
                    .map(|r| Ok((r.try_get::<String, _>("org_id")?, r.try_get::<i64, _>("id")?)))
                    .collect::<StoreResult<_>>()?
            };
            let notes = notify
                .iter()
                .map(|n| {
                    let at = ids
                        .iter()
                        .position(|(org, _)| org == &n.org_id)
                        .ok_or_else(|| StoreError::Corrupt("a notification was not inserted".into()))?;
                    let (_, id) = ids.swap_remove(at);
                    Ok(new_notification_row(n, id, rec.id, rec.updated_at))
                })
                .collect::<StoreResult<_>>()?;
            Ok((notes, head))
        }

        async fn insert_version(conn: &mut Conn, rec: &StoredRecord) -> StoreResult<()> {
            sqlx::query(
                "INSERT INTO record_versions (pref_code, record_id, version, at, author, restrictions, body) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(rec.pref_code)
            .bind(rec.id)
            .bind(rec.version)
            .bind(rec.updated_at)
            .bind(&rec.updated_by)
            .bind(json(&rec.restrictions))
            .bind(json(&rec.body))
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        async fn insert_notifications(
            conn: &mut Conn,
            record_id: i64,
            at: i64,
            notify: &[NewNotification],
        ) -> StoreResult<Vec<NotificationRow>> {
            let mut out = Vec::with_capacity(notify.len());
            for n in notify {
                let row = sqlx::query(
                    "INSERT INTO notifications (org_id, kind, record_id, from_org_id, at, read) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(&n.org_id)
                .bind(kind_code(n.kind))
                .bind(record_id)
                .bind(&n.from_org_id)
                .bind(at)
                .bind(false)
                .fetch_one(&mut *conn)
                .await?;
                out.push(new_notification_row(n, row.try_get("id")?, record_id, at));
            }
            Ok(out)
        }

        async fn fetch_record(conn: &mut Conn, id: i64, lock: bool) -> StoreResult<Option<StoredRecord>> {
            let Some(table) = records_table(pref_of(id)) else {
                return Ok(None);
            };
            let sql = format!(
                "SELECT {RECORD_COLS} FROM {table} WHERE pref_code = $1 AND id = $2{}",
                if lock { $for_update } else { "" }
            );
            let row = sqlx::query(&sql)
                .bind(pref_of(id))
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
            row.as_ref().map(record_from_row).transpose()
        }

        fn push_record_values(b: &mut sqlx::query_builder::Separated<'_, '_, $db, &'static str>, r: &StoredRecord, c: &RecordColumns) {
            b.push_bind(r.pref_code)
                .push_bind(r.id)
                .push_bind(r.owner_org.clone())
                .push_bind(r.version)
                .push_bind(c.status.clone())
                .push_bind(c.case_number.clone())
                .push_bind(c.municipality_code.clone())
                .push_bind(c.serious)
                .push_bind(c.missing)
                .push_bind(c.risk_level.clone())
                .push_bind(c.next_review.clone())
                .push_bind(c.address_restricted)
                .push_bind(c.name_key.clone())
                .push_bind(c.kana_key.clone())
                .push_bind(c.birth_date.clone())
                .push_bind(r.created_at)
                .push_bind(r.created_by.clone())
                .push_bind(r.updated_at)
                .push_bind(r.updated_by.clone())
                .push_bind(json(&r.restrictions))
                .push_bind(json(&r.body))
                .push_bind(c.casework_restricted);
        }

        // ----- search index: written in the caller's transaction ---------------------------

        fn index_of(rec: &StoredRecord) -> IndexEntry {
            $crate::search::index_entry(rec.pref_code, rec.id, &rec.owner_org, &rec.body)
        }

        async fn insert_index(conn: &mut Conn, entries: &[IndexEntry]) -> StoreResult<()> {
            for chunk in entries.chunks(500) {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO search_docs (pref_code, record_id, owner_org, serious, birth, fields) ",
                );
                qb.push_values(chunk, |mut b, e| {
                    b.push_bind(e.doc.pref_code)
                        .push_bind(e.doc.record_id)
                        .push_bind(e.doc.owner_org.clone())
                        .push_bind(e.doc.serious)
                        .push_bind(e.doc.birth)
                        .push_bind(json(&e.doc.fields));
                });
                qb.push(
                    " ON CONFLICT (pref_code, record_id) DO UPDATE SET owner_org = excluded.owner_org, \
                     serious = excluded.serious, birth = excluded.birth, fields = excluded.fields",
                );
                qb.build().execute(&mut *conn).await?;
            }
            let rows: Vec<(i64, i64, &IndexKey)> = entries
                .iter()
                .flat_map(|e| e.keys.iter().map(move |k| (e.doc.pref_code, e.doc.record_id, k)))
                .collect();
            insert_keys(conn, &rows).await
        }

        async fn insert_keys(conn: &mut Conn, rows: &[(i64, i64, &IndexKey)]) -> StoreResult<()> {
            for chunk in rows.chunks(1000) {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO search_keys (kind, key, birth, record_id, pref_code) ",
                );
                qb.push_values(chunk, |mut b, (pref, id, k)| {
                    b.push_bind(k.kind)
                        .push_bind(k.key.clone())
                        .push_bind(k.birth)
                        .push_bind(*id)
                        .push_bind(*pref);
                });
                qb.push(" ON CONFLICT DO NOTHING");
                qb.build().execute(&mut *conn).await?;
            }
            Ok(())
        }

        /// Moves a record's index from `old` to `new`: only the keys that changed are touched
        /// (most updates change no name, and then nothing is written here).
        async fn update_index(conn: &mut Conn, old: &IndexEntry, new: &IndexEntry) -> StoreResult<()> {
            if old == new {
                return Ok(());
            }
            let (pref, id) = (new.doc.pref_code, new.doc.record_id);
            let gone: Vec<&IndexKey> = old.keys.iter().filter(|k| new.keys.binary_search(k).is_err()).collect();
            for chunk in gone.chunks(200) {
                let mut qb = sqlx::QueryBuilder::<$db>::new("DELETE FROM search_keys WHERE pref_code = ");
                qb.push_bind(pref).push(" AND record_id = ").push_bind(id).push(" AND (");
                for (i, k) in chunk.iter().enumerate() {
                    if i > 0 {
                        qb.push(" OR ");
                    }
                    qb.push("(kind = ").push_bind(k.kind);
                    qb.push(" AND key = ").push_bind(k.key.clone());
                    qb.push(" AND birth = ").push_bind(k.birth).push(")");
                }
                qb.push(")");
                qb.build().execute(&mut *conn).await?;
            }
            let added: Vec<(i64, i64, &IndexKey)> = new
                .keys
                .iter()
                .filter(|k| old.keys.binary_search(k).is_err())
                .map(|k| (pref, id, k))
                .collect();
            insert_keys(conn, &added).await?;
            if old.doc != new.doc {
                insert_index(conn, &[IndexEntry { doc: new.doc.clone(), keys: Vec::new() }]).await?;
            }
            Ok(())
        }

        fn doc_from_row(r: &DbRow) -> StoreResult<SearchDoc> {
            Ok(SearchDoc {
                pref_code: r.try_get("pref_code")?,
                record_id: r.try_get("record_id")?,
                owner_org: r.try_get("owner_org")?,
                serious: r.try_get("serious")?,
                birth: r.try_get("birth")?,
                fields: serde_json::from_str(r.try_get::<&str, _>("fields")?).map_err(StoreError::from_json)?,
            })
        }

        const RECORD_INSERT: &str = "INSERT INTO records (pref_code, id, owner_org, version, status, case_number, \
            municipality_code, serious, missing, risk_level, next_review, address_restricted, name_key, kana_key, \
            birth_date, created_at, created_by, updated_at, updated_by, restrictions, body, casework_restricted) ";

        fn new_stored(id: i64, w: &RecordWrite) -> StoredRecord {
            StoredRecord {
                id,
                pref_code: w.pref_code,
                owner_org: w.owner_org.clone(),
                version: 1,
                created_at: w.at,
                created_by: w.author.clone(),
                updated_at: w.at,
                updated_by: w.author.clone(),
                restrictions: w.restrictions.clone(),
                body: w.body.clone(),
            }
        }

        async fn next_ids(conn: &mut Conn, pref: i64, n: i64) -> StoreResult<i64> {
            let row = sqlx::query(
                "UPDATE pref_counters SET next_record = next_record + $1 WHERE pref_code = $2 RETURNING next_record",
            )
            .bind(n)
            .bind(pref)
            .fetch_one(&mut *conn)
            .await?;
            let last: i64 = row.try_get("next_record")?;
            Ok(pref * ID_BASE + last - n + 1)
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

            async fn upsert_orgs(&self, orgs: &[OrgRow]) -> StoreResult<()> {
                let mut tx = self.write.begin().await?;
                // Centres and national organisations first: municipalities refer to their centre.
                let mut sorted: Vec<&OrgRow> = orgs.iter().collect();
                sorted.sort_by_key(|o| o.cgc_id.is_some());
                for chunk in sorted.chunks(500) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO orgs (id, kind, name, pref_code, lgcode, phone, cgc_id) ",
                    );
                    qb.push_values(chunk, |mut b, o| {
                        b.push_bind(o.id.clone())
                            .push_bind(o.kind.clone())
                            .push_bind(o.name.clone())
                            .push_bind(o.pref_code)
                            .push_bind(o.lgcode.clone())
                            .push_bind(o.phone.clone())
                            .push_bind(o.cgc_id.clone());
                    });
                    qb.push(
                        " ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name, \
                         pref_code = excluded.pref_code, lgcode = excluded.lgcode, phone = excluded.phone, \
                         cgc_id = excluded.cgc_id",
                    );
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn list_orgs(&self) -> StoreResult<Vec<OrgRow>> {
                let rows = sqlx::query("SELECT id, kind, name, pref_code, lgcode, phone, cgc_id FROM orgs ORDER BY id")
                    .fetch_all(&self.read)
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok(OrgRow {
                            id: r.try_get("id")?,
                            kind: r.try_get("kind")?,
                            name: r.try_get("name")?,
                            pref_code: r.try_get("pref_code")?,
                            lgcode: r.try_get("lgcode")?,
                            phone: r.try_get("phone")?,
                            cgc_id: r.try_get("cgc_id")?,
                        })
                    })
                    .collect()
            }

            async fn create_user(&self, u: &NewUser, mut audit: AuditDraft) -> StoreResult<i64> {
                let mut tx = self.write.begin().await?;
                let row = sqlx::query(
                    "INSERT INTO users (org_id, login, display_name, role, password_hash, totp_secret, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                )
                .bind(&u.org_id)
                .bind(&u.login)
                .bind(&u.display_name)
                .bind(&u.role)
                .bind(&u.password_hash)
                .bind(&u.totp_secret)
                .bind(audit.at)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_unique)?;
                let id: i64 = row.try_get("id")?;
                audit.detail = serde_json::json!({ "user_id": id, "role": u.role });
                append_audit_tx(&mut tx, &*self.mac.get()?, audit).await?;
                tx.commit().await?;
                Ok(id)
            }

            async fn user_by_login(&self, login: &str) -> StoreResult<Option<UserRow>> {
                let row = sqlx::query("SELECT * FROM users WHERE login = $1")
                    .bind(login)
                    .fetch_optional(&self.read)
                    .await?;
                row.as_ref().map(user_from_row).transpose()
            }

            async fn set_totp_secret(&self, user_id: i64, sealed: &str, audit: AuditDraft) -> StoreResult<()> {
                let mut tx = self.write.begin().await?;
                reset_credential(&mut tx, &*self.mac.get()?, "totp_secret = $1, totp_last_step = 0", sealed, user_id, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn sealed_totp_sample(&self) -> StoreResult<Option<(String, String)>> {
                let row = sqlx::query("SELECT login, totp_secret FROM users WHERE totp_secret LIKE $1 ORDER BY id LIMIT 1")
                    .bind(sealed_pattern())
                    .fetch_optional(&self.read)
                    .await?;
                row.map(|r| Ok((r.try_get("login")?, r.try_get("totp_secret")?))).transpose()
            }

            async fn rewrite_totp_secrets(
                &self,
                which: TotpSecrets,
                rewrite: &(dyn for<'a, 'b> Fn(&'a str, &'b str) -> Result<String, String> + Send + Sync),
                mut audit: AuditDraft,
            ) -> StoreResult<u64> {
                let mut tx = self.write.begin().await?;
                let filter = match which {
                    TotpSecrets::Plain => "NOT LIKE",
                    TotpSecrets::Sealed => "LIKE",
                };
                let rows = sqlx::query(&format!("SELECT id, login, totp_secret FROM users WHERE totp_secret {filter} $1 ORDER BY id"))
                    .bind(sealed_pattern())
                    .fetch_all(&mut *tx)
                    .await?;
                if rows.is_empty() {
                    return Ok(0);
                }
                for r in &rows {
                    let (id, login, stored): (i64, String, String) = (r.try_get("id")?, r.try_get("login")?, r.try_get("totp_secret")?);
                    let new = rewrite(&login, &stored)
                        .map_err(|why| StoreError::Corrupt(format!("the TOTP secret of user {id}: {why}")))?;
                    sqlx::query("UPDATE users SET totp_secret = $1 WHERE id = $2")
                        .bind(new)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                audit.detail = serde_json::json!({ "users": rows.len() });
                append_audit_tx(&mut tx, &*self.mac.get()?, audit).await?;
                tx.commit().await?;
                Ok(rows.len() as u64)
            }

            async fn set_password(&self, user_id: i64, hash: &str, audit: AuditDraft) -> StoreResult<()> {
                let mut tx = self.write.begin().await?;
                reset_credential(&mut tx, &*self.mac.get()?, "password_hash = $1", hash, user_id, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn reserve_login(&self, key: LoginKey<'_>, rule: &AttemptRule) -> StoreResult<Attempt> {
                let (now, stale, until) = (rule.now, rule.now - rule.lockout_micros, rule.now + rule.lockout_micros);
                // Forgotten runs of unknown logins go first, a few per attempt, for every login
                // alike (so that an unknown login costs no statement more than an account);
                // SKIP LOCKED so that no attempt waits for (or deadlocks with) another's sweep.
                let lock = if postgres() { " FOR UPDATE SKIP LOCKED" } else { "" };
                sqlx::query(&format!(
                    "DELETE FROM login_failures WHERE login_tag IN (SELECT login_tag FROM login_failures \
                     WHERE failed_at <= $1 AND locked_until <= $2 LIMIT $3{lock})"
                ))
                .bind(stale)
                .bind(now)
                .bind(LOGIN_FAILURES_SWEEP)
                .execute(&self.write)
                .await?;
                let row = match key {
                    LoginKey::User(id) => {
                        sqlx::query(&format!(
                            "UPDATE users SET {} WHERE id = $5 RETURNING failed_count, locked_until, attempt_checked",
                            reserve_set("users")
                        ))
                        .bind(now)
                        .bind(rule.max_failures)
                        .bind(stale)
                        .bind(until)
                        .bind(id)
                        .fetch_optional(&self.write)
                        .await?
                        .ok_or(StoreError::NotFound)?
                    }
                    LoginKey::Unknown(tag) => {
                        sqlx::query(&format!(
                            "INSERT INTO login_failures (login_tag, failed_count, locked_until, failed_at, attempt_checked) \
                             VALUES ($5, 1, CASE WHEN 1 >= $2 THEN $4 ELSE 0 END, $1, 1) \
                             ON CONFLICT (login_tag) DO UPDATE SET {} \
                             RETURNING failed_count, locked_until, attempt_checked",
                            reserve_set("login_failures")
                        ))
                        .bind(now)
                        .bind(rule.max_failures)
                        .bind(stale)
                        .bind(until)
                        .bind(tag)
                        .fetch_one(&self.write)
                        .await?
                    }
                };
                Ok(Attempt {
                    number: row.try_get("failed_count")?,
                    locked_until: row.try_get("locked_until")?,
                    checked: row.try_get::<i64, _>("attempt_checked")? == 1,
                })
            }

            async fn open_session(
                &self,
                user_id: i64,
                attempt: &Attempt,
                totp_step: i64,
                session: &NewSession,
                audit: AuditDraft,
            ) -> StoreResult<bool> {
                let mut tx = self.write.begin().await?;
                // The step only moves forward: of concurrent logins with one code, one moves it.
                let moved = sqlx::query(
                    "UPDATE users SET totp_last_step = $1, \
                     failed_count = CASE WHEN failed_count = $2 THEN 0 \
                                         WHEN failed_count > $2 AND locked_until <= $3 THEN failed_count - $2 \
                                         ELSE failed_count END, \
                     locked_until = CASE WHEN failed_count = $2 THEN 0 ELSE locked_until END \
                     WHERE id = $4 AND totp_last_step < $1",
                )
                .bind(totp_step)
                .bind(attempt.number)
                .bind(session.created_at)
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if moved == 0 {
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at) \
                     VALUES ($1, $2, $3, $3, $4)",
                )
                .bind(&session.token_hash)
                .bind(user_id)
                .bind(session.created_at)
                .bind(session.expires_at)
                .execute(&mut *tx)
                .await?;
                append_audit_tx(&mut tx, &*self.mac.get()?, audit).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn session(&self, token_hash: &str) -> StoreResult<Option<SessionRow>> {
                let row = sqlx::query(
                    "SELECT s.token_hash, s.created_at AS s_created_at, s.last_seen_at, s.expires_at, u.* \
                     FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&self.read)
                .await?;
                row.as_ref()
                    .map(|r| {
                        Ok(SessionRow {
                            token_hash: r.try_get("token_hash")?,
                            created_at: r.try_get("s_created_at")?,
                            last_seen_at: r.try_get("last_seen_at")?,
                            expires_at: r.try_get("expires_at")?,
                            user: user_from_row(r)?,
                        })
                    })
                    .transpose()
            }

            async fn touch_session(&self, token_hash: &str, at: i64) -> StoreResult<()> {
                sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2")
                    .bind(at)
                    .bind(token_hash)
                    .execute(&self.write)
                    .await?;
                Ok(())
            }

            async fn end_session(&self, token_hash: &str, audit: Option<AuditDraft>) -> StoreResult<()> {
                let mut tx = self.write.begin().await?;
                sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                    .bind(token_hash)
                    .execute(&mut *tx)
                    .await?;
                if let Some(a) = audit {
                    append_audit_tx(&mut tx, &*self.mac.get()?, a).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn create_record(&self, w: RecordWrite) -> StoreResult<(StoredRecord, Vec<NotificationRow>)> {
                let mut tx = self.write.begin().await?;
                let id = next_ids(&mut tx, w.pref_code, 1).await?;
                let rec = new_stored(id, &w);
                let mut qb = sqlx::QueryBuilder::<$db>::new(RECORD_INSERT);
                qb.push_values(std::iter::once(&rec), |mut b, r| push_record_values(&mut b, r, &w.columns));
                qb.build().execute(&mut *tx).await?;
                insert_version(&mut tx, &rec).await?;
                insert_index(&mut tx, &[index_of(&rec)]).await?;
                let mut audit = w.audit;
                audit.record_id = Some(id);
                append_audit_tx(&mut tx, &*self.mac.get()?, audit).await?;
                let notes = insert_notifications(&mut tx, id, w.at, &w.notify).await?;
                tx.commit().await?;
                Ok((rec, notes))
            }

            async fn update_record(
                &self,
                id: i64,
                expected_version: i64,
                prepare: PrepareWrite,
            ) -> StoreResult<Versioned<(StoredRecord, Vec<NotificationRow>)>> {
                let mut tx = self.write.begin().await?;
                let Some(current) = fetch_record(&mut tx, id, true).await? else {
                    return Err(StoreError::NotFound);
                };
                let Some(w) = prepare(&current) else {
                    return Ok(Versioned::Refused(Box::new(current)));
                };
                if current.version != expected_version {
                    return Ok(Versioned::Conflict(Box::new(current)));
                }
                let rec = current.next_version(&w);
                update_index(&mut tx, &index_of(&current), &index_of(&rec)).await?;
                let mut audit = w.audit;
                audit.record_id = Some(id);
                let notes = if postgres() {
                    let (notes, head) = update_row_version_notify(&mut tx, &rec, &w.columns, &w.notify, audit.pref_code).await?;
                    let entry = AuditEntry::chain(audit, head.0, &head.1, &*self.mac.get()?);
                    write_chain(&mut tx, std::slice::from_ref(&entry)).await?;
                    notes
                } else {
                    let sql = update_record_sql(&records_table(rec.pref_code).ok_or(StoreError::NotFound)?);
                    bind_record_update(sqlx::query(&sql), &rec, &w.columns)
                        .execute(&mut *tx)
                        .await?;
                    insert_version(&mut tx, &rec).await?;
                    let notes = insert_notifications(&mut tx, id, w.at, &w.notify).await?;
                    // The chain's head is locked last, so it is held only until the commit.
                    append_audit_tx(&mut tx, &*self.mac.get()?, audit).await?;
                    notes
                };
                tx.commit().await?;
                Ok(Versioned::Done((rec, notes)))
            }

            async fn get_record(&self, id: i64) -> StoreResult<Option<StoredRecord>> {
                let mut conn = self.read.acquire().await?;
                fetch_record(&mut conn, id, false).await
            }

            async fn list_cases(&self, q: &CaseQuery) -> StoreResult<Vec<StoredRecord>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!("SELECT {RECORD_COLS} FROM records WHERE 1 = 1"));
                if let Some(p) = q.pref_code {
                    qb.push(" AND pref_code = ").push_bind(p);
                }
                if !q.owners.is_empty() {
                    qb.push(" AND owner_org IN (");
                    let mut sep = qb.separated(", ");
                    for o in &q.owners {
                        sep.push_bind(o.clone());
                    }
                    qb.push(")");
                }
                if q.serious_only {
                    qb.push(" AND serious = ").push_bind(true);
                }
                // Rows whose casework (and with it the metadata) the viewer may not see: their
                // hidden values must not decide whether a filter keeps them or where they sort.
                // `tier::casework_withheld` is the rule; `casework_restricted` its column.
                let masked = |qb: &mut sqlx::QueryBuilder<'_, $db>| {
                    qb.push("(owner_org <> ").push_bind(q.viewer_org.clone()).push(" AND casework_restricted = ").push_bind(true).push(")");
                };
                let visible_only = |qb: &mut sqlx::QueryBuilder<'_, $db>| {
                    if q.mask_others {
                        qb.push(" AND NOT ");
                        masked(qb);
                    }
                };
                if let Some(s) = &q.status {
                    qb.push(" AND status = ").push_bind(s.clone());
                    visible_only(&mut qb);
                }
                if let Some(m) = &q.municipality {
                    qb.push(" AND municipality_code = ").push_bind(m.clone());
                    qb.push(" AND (owner_org = ").push_bind(q.viewer_org.clone());
                    qb.push(" OR address_restricted = ").push_bind(false).push(")");
                }
                if let Some(t) = q.updated_since {
                    qb.push(" AND updated_at >= ").push_bind(t);
                    visible_only(&mut qb);
                }
                let (col, desc, numeric) = match q.sort {
                    CaseSort::UpdatedDesc => ("updated_at", true, true),
                    CaseSort::UpdatedAsc => ("updated_at", false, true),
                    CaseSort::NextReview => ("next_review", false, false),
                    CaseSort::CaseNumber => ("case_number", false, false),
                };
                // The sort key as the viewer may see it: a masked row sorts as `MASKED_SORT_KEY`.
                let key = |qb: &mut sqlx::QueryBuilder<'_, $db>| {
                    if q.mask_others {
                        qb.push("(CASE WHEN ");
                        masked(qb);
                        qb.push(format!(" THEN {} ELSE {col} END)", if numeric { "0" } else { "''" }));
                    } else {
                        qb.push(col);
                    }
                };
                if let Some(c) = &q.after {
                    let op = if desc { "<" } else { ">" };
                    qb.push(" AND (");
                    key(&mut qb);
                    qb.push(format!(" {op} "));
                    if numeric {
                        let k: i64 = c.key.parse().map_err(|_| StoreError::Corrupt("cursor".into()))?;
                        qb.push_bind(k).push(" OR (");
                        key(&mut qb);
                        qb.push(" = ").push_bind(k);
                    } else {
                        qb.push_bind(c.key.clone()).push(" OR (");
                        key(&mut qb);
                        qb.push(" = ").push_bind(c.key.clone());
                    }
                    qb.push(format!(" AND id {op} ")).push_bind(c.id).push("))");
                }
                let dir = if desc { "DESC" } else { "ASC" };
                qb.push(" ORDER BY ");
                key(&mut qb);
                qb.push(format!(" {dir}, id {dir} LIMIT ")).push_bind(q.limit);
                let rows = qb.build().fetch_all(&self.read).await?;
                rows.iter().map(record_from_row).collect()
            }

            async fn list_versions(&self, id: i64) -> StoreResult<Vec<VersionRow>> {
                let rows = sqlx::query(
                    "SELECT version, at, author, restrictions, body FROM record_versions \
                     WHERE pref_code = $1 AND record_id = $2 ORDER BY version",
                )
                .bind(pref_of(id))
                .bind(id)
                .fetch_all(&self.read)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(VersionRow {
                            version: r.try_get("version")?,
                            at: r.try_get("at")?,
                            author: r.try_get("author")?,
                            restrictions: serde_json::from_str(r.try_get::<&str, _>("restrictions")?)
                                .map_err(StoreError::from_json)?,
                            body: serde_json::from_str(r.try_get::<&str, _>("body")?)
                                .map_err(StoreError::from_json)?,
                        })
                    })
                    .collect()
            }

            async fn seed_records(&self, writes: Vec<RecordWrite>) -> StoreResult<()> {
                let key = self.mac.get()?;
                let mut tx = self.write.begin().await?;
                // Ids: one counter bump per prefecture for the whole batch.
                let mut per_pref: std::collections::BTreeMap<i64, i64> = Default::default();
                for w in &writes {
                    *per_pref.entry(w.pref_code).or_default() += 1;
                }
                let mut next: std::collections::BTreeMap<i64, i64> = Default::default();
                let mut heads: std::collections::BTreeMap<i64, (i64, String)> = Default::default();
                for (&pref, &n) in &per_pref {
                    next.insert(pref, next_ids(&mut tx, pref, n).await?);
                    let h = sqlx::query(concat!("SELECT seq, hash FROM audit_head WHERE pref_code = $1", $for_update))
                        .bind(pref)
                        .fetch_one(&mut *tx)
                        .await?;
                    heads.insert(pref, (h.try_get("seq")?, h.try_get("hash")?));
                }
                let mut recs = Vec::with_capacity(writes.len());
                let mut audits = Vec::with_capacity(writes.len());
                for w in writes {
                    let slot = next.get_mut(&w.pref_code).expect("counted above");
                    let id = *slot;
                    *slot += 1;
                    let rec = new_stored(id, &w);
                    let head = heads.get_mut(&w.pref_code).expect("read above");
                    let mut draft = w.audit.clone();
                    draft.record_id = Some(id);
                    let e = AuditEntry::chain(draft, head.0, &head.1, &key);
                    *head = (e.seq, e.hash.clone());
                    audits.push(e);
                    recs.push((rec, w.columns));
                }
                for chunk in recs.chunks(400) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(RECORD_INSERT);
                    qb.push_values(chunk, |mut b, (r, c)| push_record_values(&mut b, r, c));
                    qb.build().execute(&mut *tx).await?;
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO record_versions (pref_code, record_id, version, at, author, restrictions, body) ",
                    );
                    qb.push_values(chunk, |mut b, (r, _)| {
                        b.push_bind(r.pref_code)
                            .push_bind(r.id)
                            .push_bind(r.version)
                            .push_bind(r.updated_at)
                            .push_bind(r.updated_by.clone())
                            .push_bind(json(&r.restrictions))
                            .push_bind(json(&r.body));
                    });
                    qb.build().execute(&mut *tx).await?;
                    let entries: Vec<IndexEntry> = chunk.iter().map(|(r, _)| index_of(r)).collect();
                    insert_index(&mut tx, &entries).await?;
                }
                write_chain(&mut tx, &audits).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn append_audit(&self, audit: AuditDraft) -> StoreResult<AuditEntry> {
                let mut tx = self.write.begin().await?;
                let e = append_audit_tx(&mut tx, &*self.mac.get()?, audit).await?;
                tx.commit().await?;
                Ok(e)
            }

            async fn append_audits(&self, audits: Vec<AuditDraft>) -> StoreResult<Vec<AuditEntry>> {
                if audits.is_empty() {
                    return Ok(Vec::new());
                }
                let key = self.mac.get()?;
                let mut prefs: Vec<i64> = audits.iter().map(|a| a.pref_code).collect();
                prefs.sort_unstable();
                prefs.dedup();
                let mut tx = self.write.begin().await?;
                // Every head of the batch in one statement; locked in prefecture order
                // (PostgreSQL locks rows as it returns them), so two batches cannot deadlock.
                let mut qb = sqlx::QueryBuilder::<$db>::new("SELECT pref_code, seq, hash FROM audit_head WHERE pref_code IN (");
                let mut sep = qb.separated(", ");
                for p in &prefs {
                    sep.push_bind(*p);
                }
                qb.push(") ORDER BY pref_code").push($for_update);
                let mut heads = std::collections::BTreeMap::new();
                for row in qb.build().fetch_all(&mut *tx).await? {
                    heads.insert(row.try_get::<i64, _>("pref_code")?, (row.try_get::<i64, _>("seq")?, row.try_get::<String, _>("hash")?));
                }
                let mut entries = Vec::with_capacity(audits.len());
                for a in audits {
                    let head = heads
                        .get_mut(&a.pref_code)
                        .ok_or_else(|| StoreError::Corrupt(format!("no audit head for prefecture {}", a.pref_code)))?;
                    let e = AuditEntry::chain(a, head.0, &head.1, &key);
                    *head = (e.seq, e.hash.clone());
                    entries.push(e);
                }
                write_chain(&mut tx, &entries).await?;
                tx.commit().await?;
                Ok(entries)
            }

            async fn append_chained(&self, entries: &[AuditEntry]) -> StoreResult<Vec<i64>> {
                let spans = chain_spans(entries)?;
                if entries.is_empty() {
                    return Ok(Vec::new());
                }
                if entries.len() > AUDIT_ROWS_PER_STATEMENT {
                    return Err(StoreError::Corrupt(format!(
                        "append_chained takes at most {AUDIT_ROWS_PER_STATEMENT} entries"
                    )));
                }
                if !postgres() {
                    // One statement is one transaction: the trigger refuses the whole insert
                    // if any entry does not follow its head.
                    let mut qb = sqlx::QueryBuilder::<$db>::new("");
                    push_audit_insert(&mut qb, entries);
                    return match qb.build().execute(&self.audit).await {
                        Ok(_) => Ok(spans.keys().copied().collect()),
                        // The trigger's refusal, or a sequence number already taken: a head moved.
                        Err(sqlx::Error::Database(d))
                            if d.is_unique_violation() || d.message().contains("does not follow its chain head") =>
                        {
                            Ok(Vec::new())
                        }
                        Err(e) => Err(e.into()),
                    };
                }
                // Each chain's head moves only from where its entries start; the entries of a
                // chain whose head did not move are not inserted. One statement, committed on its
                // own. (Heads are locked in the plan's order, not by prefecture as in
                // `append_audits`: with another process's multi-chain batch this can deadlock,
                // which PostgreSQL breaks by failing one side; the batcher then retries.)
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "WITH expected (pref_code, old_seq, old_hash, new_seq, new_hash) AS (",
                );
                qb.push_values(&spans, |mut b, (pref, ((old_seq, old_hash), (new_seq, new_hash)))| {
                    b.push_bind(*pref)
                        .push_bind(*old_seq)
                        .push_bind(old_hash.to_string())
                        .push_bind(*new_seq)
                        .push_bind(new_hash.to_string());
                });
                qb.push(
                    "), moved AS (UPDATE audit_head h SET seq = e.new_seq, hash = e.new_hash FROM expected e \
                     WHERE h.pref_code = e.pref_code AND h.seq = e.old_seq AND h.hash = e.old_hash \
                     RETURNING h.pref_code) \
                     INSERT INTO audit_log (pref_code, seq, at, actor_user, actor_org, action, record_id, detail, prev_hash, hash, mac) \
                     SELECT * FROM (",
                );
                push_audit_values(&mut qb, entries);
                qb.push(
                    ") AS v (pref_code, seq, at, actor_user, actor_org, action, record_id, detail, prev_hash, hash, mac) \
                     WHERE v.pref_code IN (SELECT pref_code FROM moved) RETURNING pref_code",
                );
                let rows = qb.build().fetch_all(&self.audit).await?;
                let mut landed: Vec<i64> = rows
                    .iter()
                    .map(|r| r.try_get::<i64, _>("pref_code"))
                    .collect::<Result<_, _>>()?;
                landed.sort_unstable();
                landed.dedup();
                Ok(landed)
            }

            async fn audit_entries(&self, pref: i64, after_seq: i64, limit: i64) -> StoreResult<Vec<AuditEntry>> {
                let rows = sqlx::query(
                    "SELECT * FROM audit_log WHERE pref_code = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                )
                .bind(pref)
                .bind(after_seq)
                .bind(limit)
                .fetch_all(&self.read)
                .await?;
                rows.iter().map(audit_from_row).collect()
            }

            async fn audit_heads(&self) -> StoreResult<Vec<(i64, i64, String)>> {
                let rows = sqlx::query("SELECT pref_code, seq, hash FROM audit_head ORDER BY pref_code")
                    .fetch_all(&self.read)
                    .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get("pref_code")?, r.try_get("seq")?, r.try_get("hash")?)))
                    .collect()
            }

            async fn audit_entries_outside(&self, chains: std::ops::RangeInclusive<i64>) -> StoreResult<Vec<(i64, i64)>> {
                let rows = sqlx::query(
                    "SELECT pref_code, seq FROM audit_log WHERE pref_code < $1 OR pref_code > $2 ORDER BY pref_code, seq LIMIT 100",
                )
                .bind(*chains.start())
                .bind(*chains.end())
                .fetch_all(&self.read)
                .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get("pref_code")?, r.try_get("seq")?)))
                    .collect()
            }

            async fn has_keyed_audit_entries(&self) -> StoreResult<bool> {
                let row = sqlx::query("SELECT 1 AS one FROM audit_log WHERE mac <> '' LIMIT 1")
                    .fetch_optional(&self.read)
                    .await?;
                Ok(row.is_some())
            }

            async fn refused_reads(&self, since: i64) -> StoreResult<Vec<RefusedReads>> {
                let rows = sqlx::query(
                    "SELECT actor_user, actor_org, COUNT(*) AS n, MIN(at) AS first_at, MAX(at) AS last_at \
                     FROM audit_log WHERE action = 'record.access_refused' AND at >= $1 \
                     GROUP BY actor_user, actor_org ORDER BY n DESC, actor_org, actor_user LIMIT 1000",
                )
                .bind(since)
                .fetch_all(&self.read)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(RefusedReads {
                            user_id: r.try_get("actor_user")?,
                            org_id: r.try_get("actor_org")?,
                            count: r.try_get("n")?,
                            first_at: r.try_get("first_at")?,
                            last_at: r.try_get("last_at")?,
                        })
                    })
                    .collect()
            }

            async fn append_checkpoint(&self, at: i64, key_id: &str, body: &str, signature: &str) -> StoreResult<()> {
                sqlx::query("INSERT INTO audit_checkpoints (at, key_id, body, signature) VALUES ($1, $2, $3, $4)")
                    .bind(at)
                    .bind(key_id)
                    .bind(body)
                    .bind(signature)
                    .execute(&self.write)
                    .await?;
                Ok(())
            }

            async fn stored_checkpoints(&self) -> StoreResult<Vec<(String, String)>> {
                let rows = sqlx::query("SELECT body, signature FROM audit_checkpoints ORDER BY id")
                    .fetch_all(&self.read)
                    .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get("body")?, r.try_get("signature")?)))
                    .collect()
            }

            async fn audit_for_record(&self, record_id: i64, action: &str) -> StoreResult<Vec<AuditEntry>> {
                let rows = sqlx::query(
                    "SELECT * FROM audit_log WHERE pref_code = $1 AND record_id = $2 AND action = $3 ORDER BY seq",
                )
                .bind(pref_of(record_id))
                .bind(record_id)
                .bind(action)
                .fetch_all(&self.read)
                .await?;
                rows.iter().map(audit_from_row).collect()
            }

            async fn notifications(
                &self,
                org_id: &str,
                after_id: i64,
                unread_only: bool,
                limit: i64,
            ) -> StoreResult<Vec<NotificationRow>> {
                let q = if unread_only {
                    sqlx::query("SELECT * FROM notifications WHERE org_id = $1 AND id > $2 AND read = $3 ORDER BY id LIMIT $4")
                        .bind(org_id)
                        .bind(after_id)
                        .bind(false)
                } else {
                    sqlx::query("SELECT * FROM notifications WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3")
                        .bind(org_id)
                        .bind(after_id)
                };
                let rows = q.bind(limit).fetch_all(&self.read).await?;
                rows.iter().map(notification_from_row).collect()
            }

            async fn unread_count(&self, org_id: &str) -> StoreResult<i64> {
                let row = sqlx::query("SELECT COUNT(*) AS n FROM notifications WHERE org_id = $1 AND read = $2")
                    .bind(org_id)
                    .bind(false)
                    .fetch_one(&self.read)
                    .await?;
                Ok(row.try_get("n")?)
            }

            async fn mark_notification(&self, org_id: &str, id: i64, read: bool, audit: AuditDraft) -> StoreResult<bool> {
                let mut tx = self.write.begin().await?;
                let n = sqlx::query("UPDATE notifications SET read = $1 WHERE org_id = $2 AND id = $3")
                    .bind(read)
                    .bind(org_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n == 0 {
                    // Not this organisation's notification: nothing changed, nothing logged.
                    tx.rollback().await?;
                    return Ok(false);
                }
                append_audit_tx(&mut tx, &*self.mac.get()?, audit).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn bare_read(&self, pref: i64, id: i64) -> StoreResult<Option<String>> {
                let Some(table) = records_table(pref) else {
                    return Ok(None);
                };
                let sql = format!("SELECT body FROM {table} WHERE pref_code = $1 AND id = $2");
                let row = sqlx::query(&sql)
                    .bind(pref)
                    .bind(id)
                    .fetch_optional(&self.read)
                    .await?;
                row.map(|r| r.try_get("body")).transpose().map_err(Into::into)
            }

            async fn bare_update(&self, pref: i64, id: i64, at: i64) -> StoreResult<()> {
                let table = records_table(pref).ok_or(StoreError::NotFound)?;
                sqlx::query(&format!("UPDATE {table} SET updated_at = $1 WHERE pref_code = $2 AND id = $3"))
                    .bind(at)
                    .bind(pref)
                    .bind(id)
                    .execute(&self.write)
                    .await?;
                Ok(())
            }

            async fn search_lookup(&self, l: &KeyLookup, limit: i64) -> StoreResult<Vec<i64>> {
                let (lo, hi) = l.birth.unwrap_or((i64::MIN, i64::MAX));
                if let Some((kind, prefix, upper)) = l.also_range() {
                    // Two range scans of the primary key, intersected by the engine.
                    let rows = sqlx::query(
                        "SELECT record_id FROM search_keys WHERE kind = $1 AND key >= $2 AND key < $3 \
                         AND birth >= $4 AND birth <= $5 \
                         INTERSECT \
                         SELECT record_id FROM search_keys WHERE kind = $6 AND key >= $7 AND key < $8 \
                         AND birth >= $9 AND birth <= $10 \
                         ORDER BY 1 LIMIT $11",
                    )
                    .bind(l.kind)
                    .bind(&l.prefix)
                    .bind(l.upper())
                    .bind(lo)
                    .bind(hi)
                    .bind(kind)
                    .bind(prefix)
                    .bind(upper)
                    .bind(lo)
                    .bind(hi)
                    .bind(limit)
                    .fetch_all(&self.read)
                    .await?;
                    return rows.iter().map(|r| Ok(r.try_get("record_id")?)).collect();
                }
                let rows = sqlx::query(
                    "SELECT record_id FROM search_keys WHERE kind = $1 AND key >= $2 AND key < $3 \
                     AND birth >= $4 AND birth <= $5 ORDER BY kind, key, birth LIMIT $6",
                )
                .bind(l.kind)
                .bind(&l.prefix)
                .bind(l.upper())
                .bind(lo)
                .bind(hi)
                .bind(limit)
                .fetch_all(&self.read)
                .await?;
                rows.iter().map(|r| Ok(r.try_get("record_id")?)).collect()
            }

            async fn search_docs(&self, ids: &[i64]) -> StoreResult<Vec<SearchDoc>> {
                let mut out = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(500) {
                    // One arm per prefecture, each probing only its own ids: `pref_code IN
                    // (…) AND record_id IN (…)` would probe every (prefecture, id) pair, and
                    // with 200 candidates from 47 prefectures that is 9,400 probes for 200 rows.
                    let mut by_pref: std::collections::BTreeMap<i64, Vec<i64>> =
                        std::collections::BTreeMap::new();
                    for id in chunk {
                        by_pref.entry(pref_of(*id)).or_default().push(*id);
                    }
                    let mut qb = sqlx::QueryBuilder::<$db>::new("");
                    for (i, (pref, ids)) in by_pref.iter().enumerate() {
                        if i > 0 {
                            qb.push(" UNION ALL ");
                        }
                        qb.push(
                            "SELECT pref_code, record_id, owner_org, serious, birth, fields \
                             FROM search_docs WHERE pref_code = ",
                        );
                        qb.push_bind(*pref);
                        qb.push(" AND record_id IN (");
                        let mut sep = qb.separated(", ");
                        for id in ids {
                            sep.push_bind(*id);
                        }
                        qb.push(")");
                    }
                    for r in qb.build().fetch_all(&self.read).await? {
                        out.push(doc_from_row(&r)?);
                    }
                }
                Ok(out)
            }

            async fn rebuild_search_index(&self) -> StoreResult<u64> {
                let mut tx = self.write.begin().await?;
                for stmt in $clear_search.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                    sqlx::query(stmt).execute(&mut *tx).await?;
                }
                let (mut pref, mut id, mut n) = (-1i64, -1i64, 0u64);
                let page = format!(
                    "SELECT {RECORD_COLS} FROM records WHERE pref_code > $1 OR (pref_code = $1 AND id > $2) \
                     ORDER BY pref_code, id LIMIT 2000"
                );
                loop {
                    let rows = sqlx::query(&page)
                    .bind(pref)
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
                    let Some(last) = rows.last() else { break };
                    pref = last.try_get("pref_code")?;
                    id = last.try_get("id")?;
                    let mut entries = Vec::with_capacity(rows.len());
                    for r in &rows {
                        entries.push(index_of(&record_from_row(r)?));
                    }
                    insert_index(&mut tx, &entries).await?;
                    n += rows.len() as u64;
                }
                tx.commit().await?;
                Ok(n)
            }

            async fn search_index_snapshot(&self) -> StoreResult<IndexSnapshot> {
                let mut snap = IndexSnapshot::default();
                for r in sqlx::query(
                    "SELECT pref_code, record_id, kind, key, birth FROM search_keys \
                     ORDER BY pref_code, record_id, kind, key, birth",
                )
                .fetch_all(&self.read)
                .await?
                {
                    snap.keys.push((
                        r.try_get("pref_code")?,
                        r.try_get("record_id")?,
                        r.try_get("kind")?,
                        r.try_get("key")?,
                        r.try_get("birth")?,
                    ));
                }
                for r in sqlx::query(
                    "SELECT pref_code, record_id, owner_org, serious, birth, fields FROM search_docs \
                     ORDER BY pref_code, record_id",
                )
                .fetch_all(&self.read)
                .await?
                {
                    snap.docs.push((
                        r.try_get("pref_code")?,
                        r.try_get("record_id")?,
                        r.try_get("owner_org")?,
                        r.try_get("serious")?,
                        r.try_get("birth")?,
                        r.try_get("fields")?,
                    ));
                }
                Ok(snap)
            }

            async fn like_scan(&self, needle: &str, limit: i64) -> StoreResult<Vec<i64>> {
                let pattern = format!("%{needle}%");
                let rows = sqlx::query(
                    "SELECT id FROM records WHERE name_key LIKE $1 OR kana_key LIKE $1 LIMIT $2",
                )
                .bind(&pattern)
                .bind(limit)
                .fetch_all(&self.read)
                .await?;
                rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
            }
        }

        fn map_unique(e: sqlx::Error) -> StoreError {
            match &e {
                sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Duplicate,
                _ => StoreError::Db(e),
            }
        }
    };
}

pub(crate) use impl_storage;
