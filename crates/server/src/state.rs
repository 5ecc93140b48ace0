//! What every use case shares: `AppState`, everything a request needs, and `Viewer`, the
//! authenticated caller. The use cases are `impl AppState` blocks in each area's `service.rs`
//! (`auth`, `records`, `search`, `notify`): each takes the caller and a request, applies the
//! rules and does the I/O through the store. Routes only translate HTTP to and from these.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tsunagu_record::api::Me;
use tsunagu_record::Role;

use crate::audit::AuditDraft;
use crate::clock::Clock;
use crate::config::Config;
use crate::error::{AppError, AppResult};
use crate::notify::Hub;
use crate::orgs::{Org, OrgDirectory};
use crate::storage::Storage;

/// Everything a request needs, shared by all requests.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Storage>,
    pub orgs: Arc<OrgDirectory>,
    pub config: Arc<Config>,
    pub hub: Hub,
    pub clock: Clock,
    /// A hash at the configured cost, verified against when a login is unknown so that unknown
    /// and known logins take the same time.
    pub dummy_hash: Arc<String>,
    /// Where the audit entries of reads go (batched; see `audit::AuditBatcher`).
    pub read_audit: crate::audit::AuditBatcher,
    /// Sessions read from the store in the last seconds (see `session_cache`).
    pub sessions: crate::session_cache::SessionCache,
    /// Opens the TOTP secrets sealed in the users table (see `totp_key`).
    pub totp_key: Arc<crate::totp_key::TotpKey>,
    /// Counts refused reads per account, to warn the operator (`audit::refusals`).
    pub refusals: Arc<crate::audit::refusals::RefusalWatch>,
    /// Signs checkpoints of the audit chain heads (`audit::checkpoint`).
    pub checkpoints: Arc<crate::audit::checkpoint::Checkpointer>,
    /// Set while the database is known to be unreachable (see `api::db_circuit`).
    pub db_circuit: Arc<crate::api::DbCircuit>,
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub user_id: i64,
    pub login: String,
    pub display_name: String,
    pub role: Role,
    pub org: Org,
    pub token_hash: String,
}

impl Viewer {
    pub(crate) fn audit(
        &self,
        at: i64,
        pref_code: i64,
        action: &'static str,
        record_id: Option<i64>,
        detail: serde_json::Value,
    ) -> AuditDraft {
        AuditDraft {
            pref_code,
            at,
            actor_user: Some(self.user_id),
            actor_org: self.org.id.clone(),
            action,
            record_id,
            detail,
        }
    }

    pub fn me(&self) -> Me {
        Me {
            user_id: self.user_id,
            login: self.login.clone(),
            display_name: self.display_name.clone(),
            role: self.role,
            org: self.org.summary(),
        }
    }
}

pub(crate) fn time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

impl AppState {
    pub(crate) fn org(&self, id: &str) -> AppResult<&Org> {
        self.orgs.get(id).ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!(
                "organisation {id} missing from the directory"
            ))
        })
    }
}
