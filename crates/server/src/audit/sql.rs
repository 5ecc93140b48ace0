//! The SQL of `AuditStore` (appending to the chains, reading them, checkpoints, refused reads),
//! written once and expanded for each engine in `storage/sqlite.rs` and `storage/postgres.rs`.
//! The append every other write makes in its own transaction (`append_audit_tx`) is in
//! `storage/sql.rs`.

macro_rules! impl_audit_store {
    ($store:ty, $db:ty, $for_update:literal) => {
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

        #[async_trait::async_trait]
        impl AuditStore for $store {
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
        }
    };
}

pub(crate) use impl_audit_store;
