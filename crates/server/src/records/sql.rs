//! The SQL of `RecordStore` (records, their versions, case lists, demo seeding, the benchmark
//! baselines), written once and expanded for each engine in `storage/sqlite.rs` and
//! `storage/postgres.rs`. A record write also writes the search index (`search/sql.rs`), the
//! audit entry and the notifications (`storage/sql.rs`) in the same transaction.

macro_rules! impl_record_store {
    ($store:ty, $db:ty, $for_update:literal) => {
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
                transfer: None,
                provenance: None,
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

        /// A new record's row, first version and index entry, inside the caller's transaction
        /// (without its audit entry and notifications).
        async fn insert_new_record(conn: &mut Conn, w: &RecordWrite) -> StoreResult<StoredRecord> {
            let id = next_ids(conn, w.pref_code, 1).await?;
            let rec = new_stored(id, w);
            let mut qb = sqlx::QueryBuilder::<$db>::new(RECORD_INSERT);
            qb.push_values(std::iter::once(&rec), |mut b, r| push_record_values(&mut b, r, &w.columns));
            qb.build().execute(&mut *conn).await?;
            insert_version(conn, &rec).await?;
            insert_index(conn, &[index_of(&rec)]).await?;
            Ok(rec)
        }

        /// A new record with its version, index entry, audit entry and notifications, inside
        /// the caller's transaction (a record of its own, or one converted from an intake).
        async fn create_record_tx(conn: &mut Conn, key: &MacKey, w: RecordWrite) -> StoreResult<(StoredRecord, Vec<NotificationRow>)> {
            let rec = insert_new_record(conn, &w).await?;
            let id = rec.id;
            let mut audit = w.audit;
            audit.record_id = Some(id);
            append_audit_tx(conn, key, audit).await?;
            let notes = insert_notifications(conn, id, w.at, &w.notify).await?;
            Ok((rec, notes))
        }

        #[async_trait::async_trait]
        impl RecordStore for $store {
            async fn create_record(&self, w: RecordWrite) -> StoreResult<(StoredRecord, Vec<NotificationRow>)> {
                let key = self.mac.get()?;
                let mut tx = self.write.begin().await?;
                let out = create_record_tx(&mut tx, &key, w).await?;
                tx.commit().await?;
                Ok(out)
            }

            async fn update_record(
                &self,
                id: i64,
                expected_version: Option<i64>,
                prepare: PrepareWrite,
            ) -> StoreResult<Versioned<(StoredRecord, Vec<NotificationRow>)>> {
                let mut tx = self.write.begin().await?;
                let Some(current) = fetch_record(&mut tx, id, true).await? else {
                    return Err(StoreError::NotFound);
                };
                let Some(w) = prepare(&current) else {
                    return Ok(Versioned::Refused(Box::new(current)));
                };
                if expected_version.is_some_and(|v| v != current.version) {
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
        }
    };
}

pub(crate) use impl_record_store;
