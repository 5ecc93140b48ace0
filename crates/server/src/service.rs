//! The use cases: each takes the caller and a request, applies the domain rules and does the
//! I/O through the store. Handlers only translate HTTP to and from these.

use std::sync::Arc;

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::json;
use tsunagu_record::api::{
    CaseList, LoginRequest, LoginResponse, Me, Notification, NotificationList, RecordViewEntry,
    SearchGroup, SearchHit, SearchResults, UpdateRecord, VersionEntry,
};
use tsunagu_record::validate::{validate, Context};
use tsunagu_record::{RecordBody, RecordView, Restrictions, Role};

use crate::audit::{action, AuditDraft};
use crate::auth;
use crate::clock::Clock;
use crate::config::Config;
use crate::domain;
use crate::error::{AppError, AppResult};
use crate::notify::Hub;
use crate::orgs::{Org, OrgDirectory};
use crate::storage::{
    Attempt, AttemptRule, CaseCursor, CaseQuery, CaseSort, LoginKey, NewNotification, NewSession,
    NotificationRow, PrepareWrite, RecordWrite, Storage, StoredRecord, Versioned,
};
use crate::tier::{self, RecordFacts, Tier};

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

/// What an owner's update replaces.
enum Change {
    Body(Box<RecordBody>),
    Restrictions(Restrictions),
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
    fn audit(
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

fn time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// A session's last use is written at most this often (a write per request would make every
/// read a write), and at least twice per idle timeout, so a session in continuous use never
/// reaches its idle timeout between writes.
fn session_touch_micros(idle_timeout_secs: u64) -> i64 {
    (idle_timeout_secs as i64 * 1_000_000 / 2).clamp(0, 60 * 1_000_000)
}

impl AppState {
    fn org(&self, id: &str) -> AppResult<&Org> {
        self.orgs.get(id).ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!(
                "organisation {id} missing from the directory"
            ))
        })
    }

    // ----- authentication -------------------------------------------------------------------

    /// A password check against the dummy hash: the time of a real check, for answers that
    /// must not be told apart from one by their timing.
    async fn hash_like_a_login(&self, password: &str) {
        let (password, dummy) = (password.to_string(), self.dummy_hash.clone());
        let _ = tokio::task::spawn_blocking(move || auth::verify_password(&password, &dummy)).await;
    }

    /// Every attempt is counted in the database before its password is checked
    /// (`Storage::reserve_login`), so concurrent attempts cannot get more than `max_failures`
    /// checks; a login that is no account is counted the same way, with the same answers and
    /// the same work, so neither the answers nor their timing tell which logins exist.
    pub async fn login(&self, req: LoginRequest) -> AppResult<LoginResponse> {
        let now = self.clock.now();
        let cfg = &self.config.auth;
        let rule = AttemptRule {
            now,
            max_failures: cfg.max_failures,
            lockout_micros: cfg.lockout_secs as i64 * 1_000_000,
        };
        let refused = |attempt: &Attempt| {
            if attempt.locked_until > now {
                AppError::Locked {
                    minutes: auth::minutes_left(attempt.locked_until, now),
                }
            } else {
                AppError::LoginFailed
            }
        };
        let login = req.login.trim();
        let Some(user) = self.store.user_by_login(login).await? else {
            let tag = self.totp_key.login_tag(login);
            let attempt = self
                .store
                .reserve_login(LoginKey::Unknown(&tag), &rule)
                .await?;
            self.hash_like_a_login(&req.password).await;
            self.store
                .append_audit(AuditDraft {
                    pref_code: 0,
                    at: now,
                    actor_user: None,
                    actor_org: "-".into(),
                    action: action::LOGIN_FAILED,
                    record_id: None,
                    detail: json!({ "reason": "unknown_user" }),
                })
                .await?;
            return Err(refused(&attempt));
        };
        let org = self.org(&user.org_id)?.clone();
        let draft = |action, detail| AuditDraft {
            pref_code: org.pref_code,
            at: now,
            actor_user: Some(user.id),
            actor_org: org.id.clone(),
            action,
            record_id: None,
            detail,
        };
        let attempt = self
            .store
            .reserve_login(LoginKey::User(user.id), &rule)
            .await?;
        if !attempt.checked {
            // Locked: the password is not checked, but the dummy hash costs what a check
            // costs, so the time taken tells nothing either.
            self.hash_like_a_login(&req.password).await;
            self.store
                .append_audit(draft(action::LOGIN_FAILED, json!({ "reason": "locked" })))
                .await?;
            return Err(refused(&attempt));
        }
        let (password, hash) = (req.password.clone(), user.password_hash.clone());
        let password_ok =
            tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
                .await
                .map_err(|e| AppError::Internal(e.into()))?;
        let step = if password_ok {
            // A secret the key does not open is the server's fault, not the user's: the
            // operator finds the reason in the log (never the secret). The attempt stays
            // counted, as it was counted before the password was checked.
            let secret = self
                .totp_key
                .open(&user.login, &user.totp_secret)
                .map_err(|e| {
                    tracing::error!(user_id = user.id, error = %e, "cannot open a TOTP secret");
                    AppError::Internal(anyhow::anyhow!("TOTP secret of user {}: {e}", user.id))
                })?;
            // The step read with the user only spares work here; the store decides.
            auth::check_totp(
                &secret,
                &req.otp,
                (now / 1_000_000) as u64,
                user.totp_last_step,
            )
        } else {
            None
        };
        if let Some(totp_step) = step {
            let (token, token_hash) = auth::new_token();
            let expires_at = now + cfg.absolute_timeout_secs as i64 * 1_000_000;
            let session = NewSession {
                token_hash,
                created_at: now,
                expires_at,
            };
            let opened = self
                .store
                .open_session(
                    user.id,
                    &attempt,
                    totp_step,
                    &session,
                    draft(action::LOGIN, json!({})),
                )
                .await?;
            if opened {
                return Ok(LoginResponse {
                    token,
                    expires_at: time(expires_at),
                    idle_timeout_secs: cfg.idle_timeout_secs,
                    me: Me {
                        user_id: user.id,
                        login: user.login.clone(),
                        display_name: user.display_name.clone(),
                        role: Role::from_code(&user.role).unwrap_or(Role::Staff),
                        org: org.summary(),
                    },
                });
            }
            // Another login used this code first: a replay, refused like a wrong code.
        }
        let reason = if password_ok { "otp" } else { "password" };
        let locked = attempt.locked_until > now;
        self.store
            .append_audit(draft(
                action::LOGIN_FAILED,
                json!({ "reason": reason, "locked": locked }),
            ))
            .await?;
        Err(refused(&attempt))
    }

    /// Whether a session is still good, without counting this as use: for open event streams,
    /// which must end when their session is logged out, expires or goes idle. Always reads the
    /// store, so a session ended by another process ends the stream too.
    pub async fn session_is_live(&self, token_hash: &str) -> AppResult<bool> {
        let Some(s) = self.store.session(token_hash).await? else {
            self.sessions.forget(token_hash, self.clock.now());
            return Ok(false);
        };
        Ok(!self.session_expired(&s, self.clock.now()))
    }

    /// Past its absolute expiry, or unused for longer than the idle timeout.
    fn session_expired(&self, s: &crate::storage::SessionRow, now: i64) -> bool {
        let idle = self.config.auth.idle_timeout_secs as i64 * 1_000_000;
        now >= s.expires_at || now - s.last_seen_at >= idle
    }

    /// Resolves a bearer token to the caller, enforcing idle and absolute expiry.
    pub async fn authenticate(&self, token: &str) -> AppResult<Viewer> {
        let unauth = |code, message: &str| AppError::Unauthenticated {
            code,
            message: message.into(),
        };
        let hash = auth::token_hash(token);
        let now = self.clock.now();
        let s = match self.sessions.get(&hash, now) {
            Some(s) => s,
            None => match self.store.session(&hash).await? {
                Some(s) => self.sessions.put(s, now),
                None => return Err(unauth("unauthenticated", "ログインしてください")),
            },
        };
        if self.session_expired(&s, now) {
            self.store.end_session(&hash, None).await?;
            self.sessions.forget(&hash, now);
            return Err(unauth(
                "session_expired",
                "セッションの有効期限が切れました。再度ログインしてください",
            ));
        }
        if now - s.last_seen_at >= session_touch_micros(self.config.auth.idle_timeout_secs) {
            self.store.touch_session(&hash, now).await?;
            self.sessions.touched(&hash, now);
        }
        let org = self.org(&s.user.org_id)?.clone();
        Ok(Viewer {
            user_id: s.user.id,
            login: s.user.login.clone(),
            display_name: s.user.display_name.clone(),
            role: Role::from_code(&s.user.role)
                .ok_or_else(|| AppError::Internal(anyhow::anyhow!("unknown role stored")))?,
            org,
            token_hash: hash,
        })
    }

    pub async fn logout(&self, v: &Viewer) -> AppResult<()> {
        let audit = v.audit(
            self.clock.now(),
            v.org.pref_code,
            action::LOGOUT,
            None,
            json!({}),
        );
        self.store.end_session(&v.token_hash, Some(audit)).await?;
        self.sessions.forget(&v.token_hash, self.clock.now());
        Ok(())
    }

    // ----- records ----------------------------------------------------------------------------

    fn check_body(&self, body: &RecordBody) -> AppResult<()> {
        let exists = |code: &str| {
            tsunagu_masterdata::localgov::municipality(code).is_some()
                || self.orgs.by_lgcode(code).is_some()
        };
        validate(
            body,
            &Context {
                today: self.clock.today(),
                municipality_exists: &exists,
            },
        )
        .map_err(AppError::Validation)
    }

    fn writer_check(&self, v: &Viewer) -> AppResult<()> {
        if domain::may_write_records(v.role, &v.org) {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "この利用者は記録を登録・更新できません".into(),
            ))
        }
    }

    fn write_for(
        &self,
        v: &Viewer,
        owner: &Org,
        body: RecordBody,
        restrictions: Restrictions,
        action: &'static str,
        detail: serde_json::Value,
    ) -> RecordWrite {
        let at = self.clock.now();
        let notify = domain::recipients(&v.org, owner, &body, &self.orgs)
            .into_iter()
            .map(|org_id| NewNotification {
                org_id,
                kind: if action == action::RECORD_CREATED {
                    tsunagu_record::api::NotificationKind::RecordCreated
                } else {
                    tsunagu_record::api::NotificationKind::RecordUpdated
                },
                from_org_id: v.org.id.clone(),
            })
            .collect();
        RecordWrite {
            pref_code: owner.pref_code,
            owner_org: owner.id.clone(),
            author: v.display_name.clone(),
            at,
            columns: domain::columns(&body, &restrictions),
            body,
            restrictions,
            audit: v.audit(at, owner.pref_code, action, None, detail),
            notify,
        }
    }

    pub async fn create_record(&self, v: &Viewer, body: RecordBody) -> AppResult<RecordView> {
        self.writer_check(v)?;
        self.check_body(&body)?;
        let write = self.write_for(
            v,
            &v.org,
            body,
            Restrictions::default(),
            action::RECORD_CREATED,
            json!({ "version": 1 }),
        );
        let (rec, notes) = self.store.create_record(write).await?;
        self.hub.publish(&notes);
        Ok(tier::project(Tier::Owner, &rec, &v.org).expect("owner sees everything"))
    }

    /// The check and the write of an owner's change, run by the store on the locked current row:
    /// anyone but the owner is refused.
    fn update_by_owner(
        &self,
        v: &Viewer,
        change: Change,
        action: &'static str,
        detail: serde_json::Value,
    ) -> PrepareWrite {
        let (state, v) = (self.clone(), v.clone());
        Box::new(move |current: &StoredRecord| {
            if current.owner_org != v.org.id {
                return None;
            }
            let (body, restrictions) = match change {
                Change::Body(b) => (*b, current.restrictions.clone()),
                Change::Restrictions(r) => (current.body.clone(), r),
            };
            let mut write = state.write_for(&v, &v.org, body, restrictions, action, detail);
            // An organisation is told of a change only if it can see one: a notice of a change
            // to parts it may not see would tell it when, and how often, they changed.
            let after = current.next_version(&write);
            write.notify.retain(|n| {
                state.orgs.get(&n.org_id).is_some_and(|viewer| {
                    let view = |r: &StoredRecord| {
                        tier::project(tier::decide(viewer, &v.org, facts(r)), r, &v.org)
                    };
                    view(current) != view(&after)
                })
            });
            Some(write)
        })
    }

    /// The owner's update of record `id` at `version`. Anyone else is refused: not found if they
    /// may not see the record (the same answer as for an id that does not exist), forbidden if
    /// they may.
    async fn versioned_write(
        &self,
        v: &Viewer,
        id: i64,
        version: i64,
        prepare: PrepareWrite,
    ) -> AppResult<StoredRecord> {
        let outcome = match self.store.update_record(id, version, prepare).await {
            Err(crate::storage::StoreError::NotFound) => return Err(not_found()),
            other => other?,
        };
        match outcome {
            Versioned::Done((rec, notes)) => {
                self.hub.publish(&notes);
                Ok(rec)
            }
            Versioned::Refused(current) => {
                // Whether the record exists is not told to those who may not see it.
                let owner = self.org(&current.owner_org)?;
                Err(match tier::decide(&v.org, owner, facts(&current)) {
                    Tier::None => not_found(),
                    _ => AppError::Forbidden("記録を更新できるのは所有機関のみです".into()),
                })
            }
            Versioned::Conflict(current) => {
                let owner = self.org(&current.owner_org)?;
                match tier::project(Tier::Owner, &current, owner) {
                    Some(RecordView::Owner(full)) => Err(AppError::Conflict(Box::new(full))),
                    _ => Err(AppError::Internal(anyhow::anyhow!(
                        "owner projection failed"
                    ))),
                }
            }
        }
    }

    pub async fn update_record(
        &self,
        v: &Viewer,
        id: i64,
        req: UpdateRecord,
    ) -> AppResult<RecordView> {
        self.writer_check(v)?;
        self.check_body(&req.record)?;
        let prepare = self.update_by_owner(
            v,
            Change::Body(Box::new(req.record)),
            action::RECORD_UPDATED,
            json!({ "from_version": req.version }),
        );
        let rec = self.versioned_write(v, id, req.version, prepare).await?;
        Ok(tier::project(Tier::Owner, &rec, &v.org).expect("owner sees everything"))
    }

    pub async fn set_restrictions(
        &self,
        v: &Viewer,
        id: i64,
        version: i64,
        r: Restrictions,
    ) -> AppResult<RecordView> {
        self.writer_check(v)?;
        let r = r.normalised();
        if r.reason.chars().count() > 200 {
            return Err(AppError::bad_field(
                "restrictions.reason",
                "制限の理由は200文字以内で入力してください",
            ));
        }
        if let Some(c) = tsunagu_record::validate::forbidden_char(&r.reason, false) {
            return Err(AppError::bad_field(
                "restrictions.reason",
                format!(
                    "制限の理由に使用できない文字（制御文字など、U+{:04X}）が含まれています",
                    c as u32
                ),
            ));
        }
        let detail = json!({ "from_version": version, "groups": r.groups, "fields": r.fields });
        let prepare =
            self.update_by_owner(v, Change::Restrictions(r), action::RESTRICTIONS_SET, detail);
        let rec = self.versioned_write(v, id, version, prepare).await?;
        Ok(tier::project(Tier::Owner, &rec, &v.org).expect("owner sees everything"))
    }

    /// Reads a record as the caller may see it. A read by another organisation is logged before
    /// anything is returned: if the log cannot be written, nothing leaves.
    pub async fn get_record(&self, v: &Viewer, id: i64) -> AppResult<RecordView> {
        if !domain::may_read_records(v.role) {
            return Err(AppError::Forbidden(
                "運用者は記録の内容を閲覧できません".into(),
            ));
        }
        let Some(rec) = self.store.get_record(id).await? else {
            return Err(self.refused(v, id, "record").await);
        };
        let owner = self.org(&rec.owner_org)?;
        let t = tier::decide(&v.org, owner, facts(&rec));
        let Some(view) = tier::project(t, &rec, owner) else {
            return Err(self.refused(v, id, "record").await);
        };
        if t != Tier::Owner {
            let audit = v.audit(
                self.clock.now(),
                rec.pref_code,
                action::RECORD_VIEWED,
                Some(rec.id),
                json!({ "tier": t.name(), "version": rec.version }),
            );
            self.read_audit.append(audit).await?;
        }
        Ok(view)
    }

    pub async fn list_versions(&self, v: &Viewer, id: i64) -> AppResult<Vec<VersionEntry>> {
        if !domain::may_read_records(v.role) {
            return Err(AppError::Forbidden(
                "運用者は記録の内容を閲覧できません".into(),
            ));
        }
        let Some(rec) = self.store.get_record(id).await? else {
            return Err(self.refused(v, id, "versions").await);
        };
        let owner = self.org(&rec.owner_org)?;
        let t = tier::decide(&v.org, owner, facts(&rec));
        if t == Tier::None {
            return Err(self.refused(v, id, "versions").await);
        }
        let versions = self.store.list_versions(id).await?;
        if t != Tier::Owner {
            let audit = v.audit(
                self.clock.now(),
                rec.pref_code,
                action::HISTORY_VIEWED,
                Some(rec.id),
                json!({ "tier": t.name(), "versions": versions.len() }),
            );
            self.read_audit.append(audit).await?;
        }
        Ok(tier::history(t, &rec, owner, versions))
    }

    /// Who from other organisations opened the record: for its owner only.
    pub async fn record_views(&self, v: &Viewer, id: i64) -> AppResult<Vec<RecordViewEntry>> {
        let Some(rec) = self.store.get_record(id).await? else {
            return Err(self.refused(v, id, "views").await);
        };
        if rec.owner_org != v.org.id {
            let owner = self.org(&rec.owner_org)?;
            return Err(match tier::decide(&v.org, owner, facts(&rec)) {
                Tier::None => self.refused(v, id, "views").await,
                _ => AppError::Forbidden("閲覧履歴を確認できるのは所有機関のみです".into()),
            });
        }
        let mut out = Vec::new();
        for a in [action::RECORD_VIEWED, action::HISTORY_VIEWED] {
            for e in self.store.audit_for_record(id, a).await? {
                let org = self.orgs.get(&e.actor_org);
                let tier = serde_json::from_str::<serde_json::Value>(&e.detail)
                    .ok()
                    .and_then(|d| d.get("tier").and_then(|t| t.as_str()).map(str::to_string))
                    .unwrap_or_default();
                out.push(RecordViewEntry {
                    at: time(e.at),
                    org_id: e.actor_org.clone(),
                    org_name: org.map(|o| o.name.clone()).unwrap_or_default(),
                    user: format!("利用者#{}", e.actor_user.unwrap_or_default()),
                    tier,
                });
            }
        }
        out.sort_by_key(|e| e.at);
        Ok(out)
    }

    pub async fn list_cases(&self, v: &Viewer, p: CaseListParams) -> AppResult<CaseList> {
        let limit = p.limit.unwrap_or(50).clamp(1, self.config.limits.page_max);
        let mut q = CaseQuery {
            owners: Vec::new(),
            pref_code: None,
            serious_only: false,
            status: p.status,
            municipality: p.municipality,
            viewer_org: v.org.id.clone(),
            mask_others: false,
            updated_since: p.updated_since,
            sort: p.sort,
            after: p.cursor,
            // One more than the page, to know whether another page follows.
            limit: limit + 1,
        };
        match v.org.kind {
            tsunagu_record::OrgKind::Cgc | tsunagu_record::OrgKind::Municipality => {
                q.owners.push(v.org.id.clone());
                q.owners.extend(
                    self.orgs
                        .partners_of(&v.org)
                        .into_iter()
                        .map(|o| o.id.clone()),
                );
                q.pref_code = Some(v.org.pref_code);
                // Other owners' rows in a centre's or municipality's list are partners' rows.
                q.mask_others = true;
            }
            tsunagu_record::OrgKind::Ministry => q.serious_only = true,
            tsunagu_record::OrgKind::Operator => {
                return Err(AppError::Forbidden(
                    "運用者は記録の内容を閲覧できません".into(),
                ))
            }
        }
        let mut rows = self.store.list_cases(&q).await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = match rows.last() {
            Some(r) if more => Some(self.cursor_for(v, r, q.sort)?),
            _ => None,
        };
        let mut items = Vec::with_capacity(rows.len());
        let mut others = Vec::new();
        for r in &rows {
            let owner = self.org(&r.owner_org)?;
            let t = tier::decide(&v.org, owner, facts(r));
            if let Some(s) = tier::summary(t, r, owner) {
                if t != Tier::Owner {
                    others.push(r.id);
                }
                items.push(s);
            }
        }
        // A list row of another organisation's record is a read of it: one entry per page
        // names the records shown (ids only), before the page leaves.
        if !others.is_empty() {
            let audit = v.audit(
                self.clock.now(),
                v.org.pref_code,
                action::CASES_LISTED,
                None,
                json!({ "records": others }),
            );
            self.read_audit.append(audit).await?;
        }
        Ok(CaseList { items, next_cursor })
    }

    // ----- search -----------------------------------------------------------------------------

    /// Nationwide person search for centres and municipalities. Candidates come from indexed
    /// lookups only (see `search/mod.rs`); hits carry only the search fields, whatever the tier.
    /// The search is audited (the query's shape and the hit count, never the names) before
    /// anything is returned.
    pub async fn search(&self, v: &Viewer, q: crate::search::Query) -> AppResult<SearchResults> {
        use crate::search::{self, CANDIDATE_CAP, GROUPS_PER_PAGE};
        if !matches!(
            v.org.kind,
            tsunagu_record::OrgKind::Cgc | tsunagu_record::OrgKind::Municipality
        ) {
            return Err(AppError::Forbidden(
                "全国検索を利用できるのは児童相談所と市区町村の職員のみです".into(),
            ));
        }
        let mut ids: Vec<i64> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut capped = false;
        let limit = CANDIDATE_CAP as i64 + 1;
        for (pass, lookups) in [search::plan(&q), search::fallback_plan(&q)]
            .into_iter()
            .enumerate()
        {
            if pass == 1 && ids.len() >= search::FALLBACK_BELOW {
                break;
            }
            // The pass's lookups run at once (each is one index range scan on the read pool);
            // their answers are then taken in plan order, so the result is what running them
            // one by one would give.
            let answers = futures::future::try_join_all(
                lookups.iter().map(|l| self.store.search_lookup(l, limit)),
            )
            .await?;
            for found in answers {
                if ids.len() >= CANDIDATE_CAP {
                    capped = true;
                    break;
                }
                // A lookup that filled its limit may have left matches out, in either pass.
                if found.len() as i64 >= limit {
                    capped = true;
                }
                for id in found {
                    if seen.insert(id) {
                        ids.push(id);
                    }
                }
            }
        }
        if ids.len() > CANDIDATE_CAP {
            ids.truncate(CANDIDATE_CAP);
            capped = true;
        }
        let docs = self.store.search_docs(&ids).await?;
        let ranked = search::rank_docs(&q, docs);
        let total_hits = ranked.len();
        let groups = search::group(ranked);
        let group_count = groups.len();
        let start = (q.page as usize - 1) * GROUPS_PER_PAGE;
        let has_more = group_count > start + GROUPS_PER_PAGE;
        // Ties are decided over all groups, so a page's first group knows whether it ties the
        // last group of the page before.
        let group_ties: Vec<bool> = (0..groups.len())
            .map(|i| {
                i > 0
                    && search::evidence_cmp(&groups[i - 1][0], &groups[i][0])
                        == std::cmp::Ordering::Equal
            })
            .collect();
        let mut out = Vec::new();
        for (g, group_tied) in groups
            .into_iter()
            .zip(group_ties)
            .skip(start)
            .take(GROUPS_PER_PAGE)
        {
            let mut hits = Vec::with_capacity(g.len());
            let ties: Vec<bool> = (0..g.len())
                .map(|i| {
                    i > 0 && search::evidence_cmp(&g[i - 1], &g[i]) == std::cmp::Ordering::Equal
                })
                .collect();
            for (h, tied_with_previous) in g.into_iter().zip(ties) {
                let owner = self.org(&h.doc.owner_org)?;
                let t = tier::decide(
                    &v.org,
                    owner,
                    RecordFacts {
                        serious: h.doc.serious,
                        transfer_to: None,
                    },
                );
                let f = h.doc.fields;
                hits.push(SearchHit {
                    record_id: h.doc.record_id,
                    score: h.score,
                    reasons: h.reasons,
                    child_name: f.child,
                    sex: f.sex.and_then(tsunagu_record::Sex::from_iso5218),
                    birth_date: f.birth_date,
                    guardians: f.guardians,
                    owner: owner.contact(),
                    tier: t.name().to_string(),
                    tied_with_previous,
                });
            }
            out.push(SearchGroup {
                score: hits.first().map(|h| h.score).unwrap_or(0.0),
                hits,
                tied_with_previous: group_tied,
            });
        }
        let mut detail = q.shape();
        detail["hits"] = json!(total_hits);
        detail["groups"] = json!(group_count);
        detail["capped"] = json!(capped);
        // Which records the page showed (ids only), so a search is traceable to the children
        // it revealed, as a case-list page is.
        let shown: Vec<i64> = out
            .iter()
            .flat_map(|g| g.hits.iter().map(|h| h.record_id))
            .collect();
        detail["records"] = json!(shown);
        self.read_audit
            .append(v.audit(
                self.clock.now(),
                v.org.pref_code,
                action::SEARCHED,
                None,
                detail,
            ))
            .await?;
        Ok(SearchResults {
            groups: out,
            total_hits,
            capped,
            page: q.page,
            has_more,
            address_withheld: true,
        })
    }

    // ----- notifications ------------------------------------------------------------------------

    pub fn notification(&self, n: &NotificationRow) -> Notification {
        Notification {
            id: n.id,
            kind: n.kind,
            record_id: n.record_id,
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

fn facts(r: &StoredRecord) -> RecordFacts<'static> {
    RecordFacts {
        serious: r.body.admin.serious_case,
        transfer_to: None,
    }
}

fn not_found() -> AppError {
    AppError::NotFound("記録が見つからないか、閲覧する権限がありません".into())
}

/// Filters, sort and page of a case list, parsed from the query string.
#[derive(Debug, Clone)]
pub struct CaseListParams {
    pub status: Option<String>,
    pub municipality: Option<String>,
    pub updated_since: Option<i64>,
    pub sort: CaseSort,
    pub cursor: Option<CaseCursor>,
    pub limit: Option<i64>,
}

impl AppState {
    /// Audits a refused read (no tier, or no such record: the caller gets the same 404 for
    /// both) in the reader's chain, and warns the operator when one account is refused again
    /// and again. The refusal is the answer unless the log cannot be written.
    async fn refused(&self, v: &Viewer, id: i64, read: &'static str) -> AppError {
        let now = self.clock.now();
        let audit = v.audit(
            now,
            v.org.pref_code,
            action::ACCESS_REFUSED,
            Some(id),
            json!({ "read": read }),
        );
        if let Some(n) = self.refusals.note(v.user_id, now) {
            tracing::warn!(
                user_id = v.user_id,
                org = %v.org.id,
                refusals = n,
                "repeated refused reads from one account within 10 minutes (tsunagu-server refused-reads lists them)"
            );
        }
        match self.read_audit.append(audit).await {
            Ok(_) => not_found(),
            Err(e) => e.into(),
        }
    }

    /// The cursor after row `r`, holding its sort key as the viewer sees it: a key the viewer
    /// may not see would leave in the cursor otherwise.
    fn cursor_for(&self, v: &Viewer, r: &StoredRecord, sort: CaseSort) -> AppResult<String> {
        let owner = self.org(&r.owner_org)?;
        let t = tier::decide(&v.org, owner, facts(r));
        let cursor = if tier::casework_withheld(t, &r.restrictions) {
            CaseCursor {
                key: crate::storage::masked_sort_key(sort).to_string(),
                id: r.id,
            }
        } else {
            cursor_of(r, sort)
        };
        Ok(encode_cursor(&cursor))
    }
}

fn cursor_of(r: &StoredRecord, sort: CaseSort) -> CaseCursor {
    let key = match sort {
        CaseSort::UpdatedDesc | CaseSort::UpdatedAsc => r.updated_at.to_string(),
        CaseSort::NextReview => domain::columns(&r.body, &r.restrictions).next_review,
        CaseSort::CaseNumber => r.body.admin.case_number.trim().to_string(),
    };
    CaseCursor { key, id: r.id }
}

pub fn encode_cursor(c: &CaseCursor) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(c).expect("plain data"))
}

impl CaseCursor {
    /// Whether this cursor could have come from a page in `sort` order: a client may send
    /// anything, and the store must get only keys of the sorted column's form.
    pub fn fits(&self, sort: CaseSort) -> bool {
        let key_ok = match sort {
            CaseSort::UpdatedDesc | CaseSort::UpdatedAsc => self
                .key
                .parse::<i64>()
                .is_ok_and(|k| k >= 0 && k.to_string() == self.key),
            CaseSort::NextReview | CaseSort::CaseNumber => {
                tsunagu_record::validate::forbidden_char(&self.key, false).is_none()
                    && self.key.chars().count() <= 200
            }
        };
        key_ok && self.id > 0
    }
}

pub fn decode_cursor(s: &str) -> Option<CaseCursor> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}
