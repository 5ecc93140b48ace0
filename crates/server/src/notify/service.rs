//! The use cases of an organisation's inbox: listing notifications and marking them read.

use std::collections::HashMap;

use serde_json::json;
use tsunagu_record::api::{Notification, NotificationList, NotificationSubject};

use crate::audit::action;
use crate::error::{AppError, AppResult};
use crate::state::{time, AppState, Viewer};
use crate::storage::NotificationRow;
use crate::tier::{self, Tier};

impl AppState {
    pub fn notification(
        &self,
        n: &NotificationRow,
        subjects: &HashMap<i64, NotificationSubject>,
    ) -> Notification {
        Notification {
            id: n.id,
            kind: n.kind,
            record_id: (n.record_id != 0).then_some(n.record_id),
            intake_id: n.intake_id,
            transfer_id: n.transfer_id,
            from_org_id: n.from_org_id.clone(),
            from_org_name: self
                .orgs
                .get(&n.from_org_id)
                .map(|o| o.name.clone())
                .unwrap_or_default(),
            at: time(n.at),
            read: n.read,
            subject: subjects.get(&n.record_id).cloned(),
        }
    }

    /// The child each notification's record is about, as the reader's tier shows it now (a
    /// restriction or transfer since the notification was sent applies). Naming the child of
    /// another organisation's record is a read of it: one read-audit entry lists those ids.
    pub async fn subjects(
        &self,
        v: &Viewer,
        rows: &[NotificationRow],
    ) -> AppResult<HashMap<i64, NotificationSubject>> {
        let mut out = HashMap::new();
        let mut others = Vec::new();
        for n in rows {
            if n.record_id == 0 || out.contains_key(&n.record_id) {
                continue;
            }
            let Some(r) = self.store.get_record(n.record_id).await? else {
                continue;
            };
            let Ok(owner) = self.org(&r.owner_org) else {
                continue;
            };
            let t = tier::decide(&v.org, owner, crate::records::service::facts(&r));
            if let Some(s) = tier::notification_subject(t, &r, owner) {
                if t != Tier::Owner {
                    others.push(r.id);
                }
                out.insert(r.id, s);
            }
        }
        if !others.is_empty() {
            let audit = v.audit(
                self.clock.now(),
                v.org.pref_code,
                action::NOTIFICATIONS_LISTED,
                None,
                json!({ "records": others }),
            );
            self.read_audit.append(audit).await?;
        }
        Ok(out)
    }

    pub async fn notifications(
        &self,
        v: &Viewer,
        after: i64,
        unread_only: bool,
        limit: i64,
    ) -> AppResult<NotificationList> {
        let limit = limit.clamp(1, self.config.limits.page_max);
        let rows = self
            .store
            .notifications(&v.org.id, after, unread_only, limit)
            .await?;
        let subjects = self.subjects(v, &rows).await?;
        Ok(NotificationList {
            items: rows
                .iter()
                .map(|n| self.notification(n, &subjects))
                .collect(),
            unread: self.store.unread_count(&v.org.id).await?,
        })
    }

    pub async fn mark_notification(&self, v: &Viewer, id: i64, read: bool) -> AppResult<()> {
        let audit = v.audit(
            self.clock.now(),
            v.org.pref_code,
            action::NOTIFICATION_MARKED,
            None,
            json!({ "notification_id": id, "read": read }),
        );
        if self
            .store
            .mark_notification(&v.org.id, id, read, audit)
            .await?
        {
            Ok(())
        } else {
            Err(AppError::NotFound("通知が見つかりません".into()))
        }
    }
}
