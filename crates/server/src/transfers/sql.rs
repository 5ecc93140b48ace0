//! The SQL of `TransferStore` (offers, their records, decisions), written once and expanded
//! for each engine in `storage/sqlite.rs` and `storage/postgres.rs`. Every write reads and
//! locks what it decides on in its own transaction and lets the use case's rules decide there:
//! the records of an offer (in id order), or the transfer and then its records. Locks are taken
//! transfer → records → intakes → id counter → audit heads (in prefecture order), the order
//! every other write that meets them keeps, so no two writes wait on each other.

macro_rules! impl_transfer_store {
    ($store:ty, $db:ty, $for_update:literal) => {
        fn transfer_status_from(s: &str) -> StoreResult<tsunagu_record::transfer::TransferStatus> {
            tsunagu_record::transfer::TransferStatus::from_code(s)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown transfer status {s}")))
        }

        fn transfer_from_row(r: &DbRow, records: Vec<TransferRecordRow>) -> StoreResult<StoredTransfer> {
            Ok(StoredTransfer {
                id: r.try_get("id")?,
                pref_code: r.try_get("pref_code")?,
                from_org: r.try_get("from_org")?,
                to_org: r.try_get("to_org")?,
                status: transfer_status_from(r.try_get::<&str, _>("status")?)?,
                message: r.try_get("message")?,
                withhold: serde_json::from_str(r.try_get::<&str, _>("withhold")?).map_err(StoreError::from_json)?,
                offered_at: r.try_get("offered_at")?,
                offered_by: r.try_get("offered_by")?,
                decided_at: r.try_get("decided_at")?,
                decided_by: r.try_get("decided_by")?,
                reason: r.try_get("reason")?,
                records,
            })
        }

        async fn transfer_records_of(conn: &mut Conn, id: i64) -> StoreResult<Vec<TransferRecordRow>> {
            let rows = sqlx::query(
                "SELECT record_id, new_record_id FROM transfer_records WHERE transfer_id = $1 ORDER BY position",
            )
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|r| Ok(TransferRecordRow { record_id: r.try_get("record_id")?, new_record_id: r.try_get("new_record_id")? }))
                .collect()
        }

        async fn fetch_transfer(conn: &mut Conn, id: i64, lock: bool) -> StoreResult<Option<StoredTransfer>> {
            let sql = format!("SELECT * FROM transfers WHERE id = $1{}", if lock { $for_update } else { "" });
            let Some(row) = sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await? else {
                return Ok(None);
            };
            let records = transfer_records_of(conn, id).await?;
            transfer_from_row(&row, records).map(Some)
        }

        /// Sets a record's `transfer` column; with `only_if_none`, only if it has none (the
        /// conditional UPDATE behind "one open offer per record"). Whether the row changed.
        async fn set_record_transfer(
            conn: &mut Conn,
            id: i64,
            transfer: Option<&RecordTransfer>,
            only_if_none: bool,
        ) -> StoreResult<bool> {
            let table = records_table(pref_of(id)).ok_or(StoreError::NotFound)?;
            let sql = format!(
                "UPDATE {table} SET transfer = $1 WHERE pref_code = $2 AND id = $3{}",
                if only_if_none { " AND transfer IS NULL" } else { "" }
            );
            let n = sqlx::query(&sql)
                .bind(transfer.map(json))
                .bind(pref_of(id))
                .bind(id)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            Ok(n == 1)
        }

        fn is_unique_violation(e: &sqlx::Error) -> bool {
            matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
        }

        /// Adds the transfer's id (and more) to an entry's detail.
        fn with_detail(mut audit: AuditDraft, extra: &[(&str, serde_json::Value)]) -> AuditDraft {
            if let Some(d) = audit.detail.as_object_mut() {
                for (k, v) in extra {
                    d.insert(k.to_string(), v.clone());
                }
            }
            audit
        }

        /// Appends entries in prefecture order (stable within one), so that two writes
        /// touching the same chains lock their heads in the same order.
        async fn append_in_chain_order(conn: &mut Conn, key: &MacKey, mut audits: Vec<AuditDraft>) -> StoreResult<()> {
            audits.sort_by_key(|a| a.pref_code);
            for a in audits {
                append_audit_tx(conn, key, a).await?;
            }
            Ok(())
        }

        #[async_trait::async_trait]
        impl TransferStore for $store {
            async fn offer_transfer(
                &self,
                record_ids: &[i64],
                prepare: PrepareOffer,
            ) -> StoreResult<Result<(StoredTransfer, Vec<NotificationRow>), crate::transfers::rules::Refusal>> {
                use crate::transfers::rules::Refusal;
                let key = self.mac.get()?;
                let mut tx = self.write.begin().await?;
                let mut sorted = record_ids.to_vec();
                sorted.sort_unstable();
                sorted.dedup();
                let mut locked = std::collections::HashMap::new();
                for id in sorted {
                    locked.insert(id, fetch_record(&mut tx, id, true).await?);
                }
                let current: Vec<Option<StoredRecord>> =
                    record_ids.iter().map(|id| locked.get(id).cloned().flatten()).collect();
                let w = match prepare(&current) {
                    Ok(w) => w,
                    Err(refusal) => {
                        tx.rollback().await?;
                        return Ok(Err(refusal));
                    }
                };
                let row = sqlx::query(
                    "INSERT INTO transfers (pref_code, from_org, to_org, status, message, withhold, offered_at, offered_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                )
                .bind(w.pref_code)
                .bind(&w.from_org)
                .bind(&w.to_org)
                .bind(tsunagu_record::transfer::TransferStatus::Pending.code())
                .bind(&w.message)
                .bind(json(&w.withhold))
                .bind(w.at)
                .bind(&w.by)
                .fetch_one(&mut *tx)
                .await?;
                let id: i64 = row.try_get("id")?;
                let to_name = w.to_name.clone();
                for (pos, &rid) in w.record_ids.iter().enumerate() {
                    let inserted = sqlx::query(
                        "INSERT INTO transfer_records (transfer_id, record_id, position, pending, new_record_id) \
                         VALUES ($1, $2, $3, $4, NULL)",
                    )
                    .bind(id)
                    .bind(rid)
                    .bind(pos as i64)
                    .bind(true)
                    .execute(&mut *tx)
                    .await;
                    match inserted {
                        Ok(_) => {}
                        // Another pending offer of the record: the unique index of open offers.
                        Err(e) if is_unique_violation(&e) => {
                            tx.rollback().await?;
                            return Ok(Err(Refusal::Pending { record_id: rid, transfer_id: None }));
                        }
                        Err(e) => return Err(e.into()),
                    }
                    let mark = RecordTransfer {
                        transfer_id: id,
                        to_org: w.to_org.clone(),
                        to_name: to_name.clone(),
                        withhold: w.withhold.clone(),
                        confirmed: None,
                    };
                    if !set_record_transfer(&mut tx, rid, Some(&mark), true).await? {
                        tx.rollback().await?;
                        return Ok(Err(Refusal::Pending { record_id: rid, transfer_id: None }));
                    }
                }
                let audits = w.audits.into_iter().map(|a| with_detail(a, &[("transfer", id.into())])).collect();
                append_in_chain_order(&mut tx, &key, audits).await?;
                let first = w.record_ids.first().copied().unwrap_or(0);
                let notes = insert_notifications_of(&mut tx, first, None, Some(id), w.at, &w.notify).await?;
                tx.commit().await?;
                Ok(Ok((
                    StoredTransfer {
                        id,
                        pref_code: w.pref_code,
                        from_org: w.from_org,
                        to_org: w.to_org,
                        status: tsunagu_record::transfer::TransferStatus::Pending,
                        message: w.message,
                        withhold: w.withhold,
                        offered_at: w.at,
                        offered_by: w.by,
                        decided_at: None,
                        decided_by: None,
                        reason: None,
                        records: w.record_ids.iter().map(|&record_id| TransferRecordRow { record_id, new_record_id: None }).collect(),
                    },
                    notes,
                )))
            }

            async fn get_transfer(&self, id: i64) -> StoreResult<Option<StoredTransfer>> {
                let mut conn = self.read.acquire().await?;
                fetch_transfer(&mut conn, id, false).await
            }

            async fn list_transfers(
                &self,
                org_id: &str,
                outgoing: bool,
                status: Option<tsunagu_record::transfer::TransferStatus>,
                limit: i64,
            ) -> StoreResult<Vec<StoredTransfer>> {
                let col = if outgoing { "from_org" } else { "to_org" };
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!("SELECT * FROM transfers WHERE {col} = "));
                qb.push_bind(org_id.to_string());
                if let Some(s) = status {
                    qb.push(" AND status = ").push_bind(s.code());
                }
                qb.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
                let mut conn = self.read.acquire().await?;
                let rows = qb.build().fetch_all(&mut *conn).await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    let records = transfer_records_of(&mut conn, r.try_get("id")?).await?;
                    out.push(transfer_from_row(r, records)?);
                }
                Ok(out)
            }

            async fn decide_transfer(
                &self,
                id: i64,
                prepare: PrepareDecision,
            ) -> StoreResult<Result<TransferDecided, crate::transfers::rules::Refusal>> {
                use crate::transfers::rules::Refusal;
                use tsunagu_record::transfer::TransferStatus;
                let key = self.mac.get()?;
                let mut tx = self.write.begin().await?;
                let Some(t) = fetch_transfer(&mut tx, id, true).await? else {
                    tx.rollback().await?;
                    return Err(StoreError::NotFound);
                };
                let mut ids: Vec<i64> = t.records.iter().map(|r| r.record_id).collect();
                ids.sort_unstable();
                let mut locked = std::collections::HashMap::new();
                for rid in ids {
                    let rec = fetch_record(&mut tx, rid, true)
                        .await?
                        .ok_or_else(|| StoreError::Corrupt(format!("transfer {id} names record {rid}, which is missing")))?;
                    locked.insert(rid, rec);
                }
                let records: Vec<StoredRecord> =
                    t.records.iter().map(|r| locked.remove(&r.record_id).expect("locked above")).collect();
                let d = match prepare(&t, &records) {
                    Ok(d) => d,
                    Err(refusal) => {
                        tx.rollback().await?;
                        return Ok(Err(refusal));
                    }
                };
                // The status moves from pending only, whatever the rules saw.
                let moved = sqlx::query(
                    "UPDATE transfers SET status = $1, decided_at = $2, decided_by = $3, reason = $4 \
                     WHERE id = $5 AND status = $6",
                )
                .bind(d.status.code())
                .bind(d.at)
                .bind(&d.by)
                .bind(&d.reason)
                .bind(id)
                .bind(TransferStatus::Pending.code())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if moved != 1 {
                    tx.rollback().await?;
                    return Ok(Err(Refusal::Decided(t.status)));
                }
                sqlx::query("UPDATE transfer_records SET pending = $1 WHERE transfer_id = $2")
                    .bind(false)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                let mut audits: Vec<AuditDraft> =
                    d.audits.into_iter().map(|a| with_detail(a, &[("transfer", id.into())])).collect();
                let mut notes = Vec::new();
                let mut new_records = Vec::new();
                let mut rows = t.records.clone();
                if d.confirm.is_empty() {
                    for r in &records {
                        set_record_transfer(&mut tx, r.id, None, false).await?;
                    }
                } else {
                    // The intakes that travel, locked before the id counter is.
                    for c in d.confirm.iter().filter(|c| c.move_intakes) {
                        sqlx::query(concat!("SELECT id FROM intakes WHERE record_id = $1", $for_update))
                            .bind(c.origin.id)
                            .fetch_all(&mut *tx)
                            .await?;
                    }
                    for (slot, c) in rows.iter_mut().zip(d.confirm) {
                        let before = records
                            .iter()
                            .find(|r| r.id == c.origin.id)
                            .ok_or_else(|| StoreError::Corrupt("a confirmed record is not the transfer's".into()))?;
                        let mut rec = insert_new_record(&mut tx, &c.new_record).await?;
                        let provenance = StoredProvenance {
                            transfer_id: id,
                            origin_org: t.from_org.clone(),
                            origin_name: c.origin_name.clone(),
                            origin_record_id: c.origin.id,
                            at: d.at,
                        };
                        let table = records_table(rec.pref_code).ok_or(StoreError::NotFound)?;
                        sqlx::query(&format!("UPDATE {table} SET provenance = $1 WHERE pref_code = $2 AND id = $3"))
                            .bind(json(&provenance))
                            .bind(rec.pref_code)
                            .bind(rec.id)
                            .execute(&mut *tx)
                            .await?;
                        rec.provenance = Some(provenance);
                        // The origin's record at its next version, transferred out.
                        let mut origin = c.origin;
                        origin.transfer = Some(RecordTransfer {
                            confirmed: Some(ConfirmedTransfer { record_id: rec.id, at: d.at }),
                            ..before.transfer.clone().ok_or_else(|| StoreError::Corrupt("a confirmed record has no offer".into()))?
                        });
                        update_index(&mut tx, &index_of(before), &index_of(&origin)).await?;
                        let sql = update_record_sql(&records_table(origin.pref_code).ok_or(StoreError::NotFound)?);
                        bind_record_update(sqlx::query(&sql), &origin, &c.origin_columns).execute(&mut *tx).await?;
                        set_record_transfer(&mut tx, origin.id, origin.transfer.as_ref(), false).await?;
                        insert_version(&mut tx, &origin).await?;
                        if c.move_intakes {
                            sqlx::query("UPDATE intakes SET record_id = $1 WHERE record_id = $2")
                                .bind(rec.id)
                                .bind(origin.id)
                                .execute(&mut *tx)
                                .await?;
                        }
                        sqlx::query("UPDATE transfer_records SET new_record_id = $1 WHERE transfer_id = $2 AND record_id = $3")
                            .bind(rec.id)
                            .bind(id)
                            .bind(origin.id)
                            .execute(&mut *tx)
                            .await?;
                        slot.new_record_id = Some(rec.id);
                        let mut created = c.new_record.audit.clone();
                        created.record_id = Some(rec.id);
                        audits.push(with_detail(created, &[("from_transfer", id.into())]));
                        let mut out = c.origin_audit;
                        out.record_id = Some(origin.id);
                        audits.push(with_detail(
                            out,
                            &[("transfer", id.into()), ("new_record", rec.id.into()), ("version", origin.version.into())],
                        ));
                        notes.extend(insert_notifications(&mut tx, rec.id, d.at, &c.new_record.notify).await?);
                        new_records.push(rec);
                    }
                }
                append_in_chain_order(&mut tx, &key, audits).await?;
                let first = t.records.first().map(|r| r.record_id).unwrap_or(0);
                notes.extend(insert_notifications_of(&mut tx, first, None, Some(id), d.at, &d.notify).await?);
                tx.commit().await?;
                Ok(Ok(TransferDecided {
                    transfer: StoredTransfer {
                        status: d.status,
                        decided_at: Some(d.at),
                        decided_by: Some(d.by),
                        reason: d.reason,
                        records: rows,
                        ..t
                    },
                    notes,
                    new_records,
                }))
            }
        }
    };
}

pub(crate) use impl_transfer_store;
