//! The use cases of an organisation's inbox: listing notifications and marking them read.

use serde_json::json;
use tsunagu_record::api::{Notification, NotificationList};

use crate::audit::action;
use crate::error::{AppError, AppResult};
use crate::state::{time, AppState, Viewer};
use crate::storage::NotificationRow;

impl AppState {
    pub fn notification(&self, n: &NotificationRow) -> Notification {
        Notification {
            id: n.id,
            kind: n.kind,
            record_id: (n.record_id != 0).then_some(n.record_id),
            intake_id: n.intake_id,
            from_org_id: n.from_org_id.clone(),
            from_org_name: self
                .orgs
                .get(&n.from_org_id)
                .map(|o| o.name.clone())
                .unwrap_or_default(),
            at: time(n.at),
            read: n.read,
        }
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
        Ok(NotificationList {
            items: rows.iter().map(|n| self.notification(n)).collect(),
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
