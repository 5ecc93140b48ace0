//! The SQL of `SearchStore` (the lookups, the documents, rebuilding the index), and the index
//! writes every record write makes in its own transaction, written once and expanded for each
//! engine in `storage/sqlite.rs` and `storage/postgres.rs`.

macro_rules! impl_search_store {
    ($store:ty, $db:ty, $for_update:literal, $clear_search:literal) => {
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

        #[async_trait::async_trait]
        impl SearchStore for $store {
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
    };
}

pub(crate) use impl_search_store;
