//! The SQL of `NotificationStore` (each organisation's inbox), written once and expanded for
//! each engine in `storage/sqlite.rs` and `storage/postgres.rs`. Notifications are inserted by
//! the record writes that cause them (`insert_notifications` in `storage/sql.rs`).

macro_rules! impl_notification_store {
    ($store:ty, $db:ty, $for_update:literal) => {
        fn kind_from(s: &str) -> StoreResult<NotificationKind> {
            match s {
                "record_created" => Ok(NotificationKind::RecordCreated),
                "record_updated" => Ok(NotificationKind::RecordUpdated),
                "intake_forwarded" => Ok(NotificationKind::IntakeForwarded),
                "safety_due_soon" => Ok(NotificationKind::SafetyDueSoon),
                "safety_overdue" => Ok(NotificationKind::SafetyOverdue),
                "transfer_offered" => Ok(NotificationKind::TransferOffered),
                "transfer_confirmed" => Ok(NotificationKind::TransferConfirmed),
                "transfer_declined" => Ok(NotificationKind::TransferDeclined),
                "transfer_withdrawn" => Ok(NotificationKind::TransferWithdrawn),
                other => Err(StoreError::Corrupt(format!("unknown notification kind {other}"))),
            }
        }

        fn notification_from_row(r: &DbRow) -> StoreResult<NotificationRow> {
            Ok(NotificationRow {
                id: r.try_get("id")?,
                org_id: r.try_get("org_id")?,
                kind: kind_from(r.try_get::<&str, _>("kind")?)?,
                record_id: r.try_get("record_id")?,
                intake_id: r.try_get("intake_id")?,
                transfer_id: r.try_get("transfer_id")?,
                from_org_id: r.try_get("from_org_id")?,
                at: r.try_get("at")?,
                read: r.try_get("read")?,
            })
        }

        #[async_trait::async_trait]
        impl NotificationStore for $store {
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
        }
    };
}

pub(crate) use impl_notification_store;
