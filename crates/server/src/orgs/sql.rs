//! The SQL of `OrgStore` (the organisation master), written once and expanded for each engine
//! in `storage/sqlite.rs` and `storage/postgres.rs`.

macro_rules! impl_org_store {
    ($store:ty, $db:ty, $for_update:literal) => {
        #[async_trait::async_trait]
        impl OrgStore for $store {
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
        }
    };
}

pub(crate) use impl_org_store;
