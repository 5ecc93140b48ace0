//! The SQL of `IntakeStore` (intakes, their safety clocks, the organisation's clock setting),
//! written once and expanded for each engine in `storage/sqlite.rs` and `storage/postgres.rs`.
//! A change reads and locks the intake's row in its own transaction and lets the use case's
//! rules decide on it; a conversion creates its record (`records/sql.rs`) in the same
//! transaction.

macro_rules! impl_intake_store {
    ($store:ty, $db:ty, $for_update:literal) => {
        fn intake_status_from(s: &str) -> StoreResult<tsunagu_record::intake::IntakeStatus> {
            tsunagu_record::intake::IntakeStatus::from_code(s)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown intake status {s}")))
        }

        fn intake_from_row(r: &DbRow) -> StoreResult<StoredIntake> {
            let confirmation: Option<String> = r.try_get("confirmation")?;
            Ok(StoredIntake {
                id: r.try_get("id")?,
                pref_code: r.try_get("pref_code")?,
                org_id: r.try_get("org_id")?,
                status: intake_status_from(r.try_get::<&str, _>("status")?)?,
                record_id: r.try_get("record_id")?,
                version: r.try_get("version")?,
                received_at: r.try_get("received_at")?,
                safety_hours: r.try_get("safety_hours")?,
                due_at: r.try_get("due_at")?,
                confirmed_at: r.try_get("confirmed_at")?,
                confirmation: confirmation
                    .map(|c| serde_json::from_str(&c).map_err(StoreError::from_json))
                    .transpose()?,
                reminded_stage: r.try_get("reminded_stage")?,
                received_by: r.try_get("received_by")?,
                body: serde_json::from_str(r.try_get::<&str, _>("body")?)
                    .map_err(StoreError::from_json)?,
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
            })
        }

        #[async_trait::async_trait]
        impl IntakeStore for $store {
            async fn create_intake(&self, w: NewIntake) -> StoreResult<StoredIntake> {
                let key = self.mac.get()?;
                let mut tx = self.write.begin().await?;
                let received_at = w.body.received_at.timestamp_micros();
                let row = sqlx::query(
                    "INSERT INTO intakes (pref_code, org_id, status, record_id, version, received_at, \
                     safety_hours, due_at, confirmed_at, confirmation, reminded_stage, received_by, body, \
                     created_at, updated_at) \
                     VALUES ($1, $2, $3, NULL, 1, $4, $5, $6, NULL, NULL, 0, $7, $8, $9, $9) RETURNING id",
                )
                .bind(w.pref_code)
                .bind(&w.org_id)
                .bind(tsunagu_record::intake::IntakeStatus::Open.code())
                .bind(received_at)
                .bind(w.safety_hours)
                .bind(w.due_at)
                .bind(&w.received_by)
                .bind(json(&w.body))
                .bind(w.at)
                .fetch_one(&mut *tx)
                .await?;
                let id: i64 = row.try_get("id")?;
                let mut audit = w.audit;
                if let Some(d) = audit.detail.as_object_mut() {
                    d.insert("intake".into(), id.into());
                }
                append_audit_tx(&mut tx, &key, audit).await?;
                tx.commit().await?;
                Ok(StoredIntake {
                    id,
                    pref_code: w.pref_code,
                    org_id: w.org_id,
                    status: tsunagu_record::intake::IntakeStatus::Open,
                    record_id: None,
                    version: 1,
                    received_at,
                    safety_hours: w.safety_hours,
                    due_at: w.due_at,
                    confirmed_at: None,
                    confirmation: None,
                    reminded_stage: 0,
                    received_by: w.received_by,
                    body: w.body,
                    created_at: w.at,
                    updated_at: w.at,
                })
            }

            async fn get_intake(&self, id: i64) -> StoreResult<Option<StoredIntake>> {
                let row = sqlx::query("SELECT * FROM intakes WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.read)
                    .await?;
                row.as_ref().map(intake_from_row).transpose()
            }

            async fn list_intakes(&self, org_id: &str, unconfirmed_only: bool, limit: i64) -> StoreResult<Vec<StoredIntake>> {
                let sql = if unconfirmed_only {
                    "SELECT * FROM intakes WHERE org_id = $1 AND confirmed_at IS NULL ORDER BY due_at, id LIMIT $2"
                } else {
                    "SELECT * FROM intakes WHERE org_id = $1 ORDER BY id DESC LIMIT $2"
                };
                let rows = sqlx::query(sql).bind(org_id).bind(limit).fetch_all(&self.read).await?;
                rows.iter().map(intake_from_row).collect()
            }

            async fn intakes_of_record(&self, record_id: i64) -> StoreResult<Vec<StoredIntake>> {
                let rows = sqlx::query("SELECT * FROM intakes WHERE record_id = $1 ORDER BY received_at, id")
                    .bind(record_id)
                    .fetch_all(&self.read)
                    .await?;
                rows.iter().map(intake_from_row).collect()
            }

            async fn change_intake(
                &self,
                id: i64,
                prepare: PrepareIntake,
            ) -> StoreResult<Result<IntakeChanged, crate::intake::rules::Refusal>> {
                let key = self.mac.get()?;
                let mut tx = self.write.begin().await?;
                let row = sqlx::query(concat!("SELECT * FROM intakes WHERE id = $1", $for_update))
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(row) = row else {
                    tx.rollback().await?;
                    return Err(StoreError::NotFound);
                };
                let current = intake_from_row(&row)?;
                let w = match prepare(&current) {
                    Ok(w) => w,
                    Err(refusal) => {
                        tx.rollback().await?;
                        return Ok(Err(refusal));
                    }
                };
                let mut notes = Vec::new();
                let mut record = None;
                let mut record_id = w.record_id;
                if let Some(rw) = w.new_record {
                    let (rec, n) = create_record_tx(&mut tx, &key, rw).await?;
                    record_id = Some(rec.id);
                    notes.extend(n);
                    record = Some(rec);
                }
                let changed = StoredIntake {
                    status: w.status,
                    record_id,
                    version: current.version + 1,
                    received_at: w.body.received_at.timestamp_micros(),
                    due_at: w.due_at,
                    body: w.body,
                    confirmed_at: w.confirmed_at,
                    confirmation: w.confirmation,
                    updated_at: w.at,
                    ..current
                };
                sqlx::query(
                    "UPDATE intakes SET status = $1, record_id = $2, version = $3, body = $4, \
                     confirmed_at = $5, confirmation = $6, updated_at = $7, received_at = $9, due_at = $10 WHERE id = $8",
                )
                .bind(changed.status.code())
                .bind(changed.record_id)
                .bind(changed.version)
                .bind(json(&changed.body))
                .bind(changed.confirmed_at)
                .bind(changed.confirmation.as_ref().map(json))
                .bind(changed.updated_at)
                .bind(id)
                .bind(changed.received_at)
                .bind(changed.due_at)
                .execute(&mut *tx)
                .await?;
                let mut audit = w.audit;
                audit.record_id = record_id;
                if let Some(d) = audit.detail.as_object_mut() {
                    d.insert("intake".into(), id.into());
                    d.insert("version".into(), changed.version.into());
                }
                append_audit_tx(&mut tx, &key, audit).await?;
                notes.extend(
                    insert_notifications_about(&mut tx, record_id.unwrap_or(0), Some(id), w.at, &w.notify).await?,
                );
                tx.commit().await?;
                Ok(Ok(IntakeChanged {
                    intake: changed,
                    notes,
                    record,
                }))
            }

            async fn intakes_due_by(&self, horizon: i64, after: Option<(i64, i64)>, limit: i64) -> StoreResult<Vec<StoredIntake>> {
                let (due, id) = after.unwrap_or((i64::MIN, i64::MIN));
                let rows = sqlx::query(
                    "SELECT * FROM intakes WHERE confirmed_at IS NULL AND due_at <= $1 \
                     AND (due_at > $2 OR (due_at = $2 AND id > $3)) ORDER BY due_at, id LIMIT $4",
                )
                .bind(horizon)
                .bind(due)
                .bind(id)
                .bind(limit)
                .fetch_all(&self.read)
                .await?;
                rows.iter().map(intake_from_row).collect()
            }

            async fn mark_reminded(
                &self,
                id: i64,
                stage: i64,
                notify: &[NewNotification],
                audit: AuditDraft,
            ) -> StoreResult<Option<Vec<NotificationRow>>> {
                let key = self.mac.get()?;
                let mut tx = self.write.begin().await?;
                let row = sqlx::query(
                    "UPDATE intakes SET reminded_stage = $1 \
                     WHERE id = $2 AND reminded_stage < $1 AND confirmed_at IS NULL RETURNING record_id",
                )
                .bind(stage)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    // Confirmed meanwhile, or another server notified this stage first.
                    tx.rollback().await?;
                    return Ok(None);
                };
                let record_id: Option<i64> = row.try_get("record_id")?;
                let at = audit.at;
                let mut audit = audit;
                audit.record_id = record_id;
                append_audit_tx(&mut tx, &key, audit).await?;
                let notes = insert_notifications_about(&mut tx, record_id.unwrap_or(0), Some(id), at, notify).await?;
                tx.commit().await?;
                Ok(Some(notes))
            }

            async fn safety_hours(&self, org_id: &str) -> StoreResult<Option<i64>> {
                let row = sqlx::query("SELECT safety_hours FROM org_settings WHERE org_id = $1")
                    .bind(org_id)
                    .fetch_optional(&self.read)
                    .await?;
                Ok(match row {
                    Some(r) => r.try_get("safety_hours")?,
                    None => None,
                })
            }

            async fn set_safety_hours(&self, org_id: &str, hours: Option<i64>, audit: AuditDraft) -> StoreResult<()> {
                let key = self.mac.get()?;
                let mut tx = self.write.begin().await?;
                sqlx::query(
                    "INSERT INTO org_settings (org_id, safety_hours) VALUES ($1, $2) \
                     ON CONFLICT (org_id) DO UPDATE SET safety_hours = excluded.safety_hours",
                )
                .bind(org_id)
                .bind(hours)
                .execute(&mut *tx)
                .await?;
                append_audit_tx(&mut tx, &key, audit).await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

pub(crate) use impl_intake_store;
