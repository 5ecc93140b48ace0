//! The use cases of records: create, update and restrict (the owner only), read a record, its
//! versions and who viewed it as the caller's tier allows, and case lists with their cursors.

use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::json;
use tsunagu_record::api::{CaseList, RecordViewEntry, UpdateRecord, VersionEntry};
use tsunagu_record::lists::{ListChange, ListOpError};
use tsunagu_record::validate::{validate, Context};
use tsunagu_record::{RecordBody, RecordView, Restrictions};

use crate::audit::action;
use crate::domain;
use crate::error::{AppError, AppResult};
use crate::orgs::Org;
use crate::state::{time, AppState, Viewer};
use crate::storage::{
    CaseCursor, CaseQuery, CaseSort, NewNotification, PrepareWrite, RecordWrite, StoredRecord,
    Versioned,
};
use crate::tier::{self, RecordFacts, Tier};

/// What an owner's update replaces.
enum Change {
    Body(Box<RecordBody>),
    Restrictions(Restrictions),
    /// One operation on one list, applied to the current body.
    List(ListChange),
}

/// Where the check run on the locked row leaves the reason it refused a write that the caller
/// owns (a list operation that does not fit the list as it is now, or a body that no longer
/// validates): the store only learns that the write was refused.
type Failure = Arc<Mutex<Option<AppError>>>;

impl AppState {
    pub(crate) fn check_body(&self, body: &RecordBody) -> AppResult<()> {
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

    pub(crate) fn writer_check(&self, v: &Viewer) -> AppResult<()> {
        if domain::may_write_records(v.role, &v.org) {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "この利用者は記録を登録・更新できません".into(),
            ))
        }
    }

    /// The write of `body` by `v` over `base` (the version it replaces; none for a new
    /// record): the server's stamps put on it (`tsunagu_record::lists::stamp`: who wrote each
    /// progress entry and when, whatever the client sent), its columns, audit entry and
    /// notifications.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write_for(
        &self,
        v: &Viewer,
        owner: &Org,
        base: Option<&RecordBody>,
        mut body: RecordBody,
        restrictions: Restrictions,
        action: &'static str,
        detail: serde_json::Value,
    ) -> RecordWrite {
        let at = self.clock.now();
        tsunagu_record::lists::stamp(base, &mut body, &v.display_name, time(at));
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
            None,
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
        self.update_by_owner_or_fail(v, change, action, detail, Failure::default())
    }

    /// As [`Self::update_by_owner`]; a change the owner may make but that does not fit the
    /// current row is refused with its reason left in `failed`.
    fn update_by_owner_or_fail(
        &self,
        v: &Viewer,
        change: Change,
        action: &'static str,
        mut detail: serde_json::Value,
        failed: Failure,
    ) -> PrepareWrite {
        let (state, v) = (self.clone(), v.clone());
        Box::new(move |current: &StoredRecord| {
            // A record transferred out is kept as it was: read-only (refused in `finish_write`).
            if current.owner_org != v.org.id || current.transferred_out() {
                return None;
            }
            let fail = |e: AppError| {
                *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                None
            };
            let (body, restrictions) = match change {
                Change::Body(b) => (*b, current.restrictions.clone()),
                Change::Restrictions(r) => (current.body.clone(), r),
                Change::List(op) => {
                    let list = op.list();
                    let mut body = current.body.clone();
                    match op.apply_to(&mut body) {
                        Ok(at) => {
                            detail["from_version"] = json!(current.version);
                            detail["index"] = json!(at);
                        }
                        Err(e) => return fail(list_refusal(list, e)),
                    }
                    // The same rules as a whole save (a guardian too many, a text too long).
                    if let Err(e) = state.check_body(&body) {
                        return fail(e);
                    }
                    (body, current.restrictions.clone())
                }
            };
            let mut write = state.write_for(
                &v,
                &v.org,
                Some(&current.body),
                body,
                restrictions,
                action,
                detail,
            );
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
        let outcome = match self.store.update_record(id, Some(version), prepare).await {
            Err(crate::storage::StoreError::NotFound) => return Err(not_found()),
            other => other?,
        };
        self.finish_write(v, outcome)
    }

    /// One operation on one list of record `id`, by its owner, applied to the current version
    /// in the write's own transaction: no version is needed, and two appends at once both
    /// succeed. Validated as a whole save; a new version, audited and notified as any update.
    pub async fn change_list(&self, v: &Viewer, id: i64, op: ListChange) -> AppResult<RecordView> {
        self.writer_check(v)?;
        let failed = Failure::default();
        let detail = json!({ "list": op.list().name(), "op": op.op_name() });
        let prepare = self.update_by_owner_or_fail(
            v,
            Change::List(op),
            action::RECORD_UPDATED,
            detail,
            failed.clone(),
        );
        let outcome = match self.store.update_record(id, None, prepare).await {
            Err(crate::storage::StoreError::NotFound) => return Err(not_found()),
            other => other?,
        };
        if let Some(e) = failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(e);
        }
        let rec = self.finish_write(v, outcome)?;
        Ok(tier::project(Tier::Owner, &rec, &v.org).expect("owner sees everything"))
    }

    /// The 409 of a save that could not be merged: the record as it is now (owner's view) and
    /// the fields both sides changed.
    fn conflict(
        &self,
        current: &StoredRecord,
        fields: Vec<tsunagu_record::merge::FieldConflict>,
    ) -> AppResult<AppError> {
        let owner = self.org(&current.owner_org)?;
        match tier::project(Tier::Owner, current, owner) {
            Some(RecordView::Owner(full)) => Ok(AppError::Conflict(Box::new(full), fields)),
            _ => Err(AppError::Internal(anyhow::anyhow!(
                "owner projection failed"
            ))),
        }
    }

    pub async fn update_record(
        &self,
        v: &Viewer,
        id: i64,
        req: UpdateRecord,
    ) -> AppResult<RecordView> {
        Ok(self.update_record_merging(v, id, req).await?.0)
    }

    /// The owner's save at `req.version`. If the record moved on meanwhile, the change is
    /// merged with what was saved since (`tsunagu_record::merge`: different fields, appends to
    /// one list or text) and saved on top of it; only fields both changed differently are a
    /// 409, with base, mine and theirs in full. Returns the saved view and the fields where
    /// the other change was kept.
    pub async fn update_record_merging(
        &self,
        v: &Viewer,
        id: i64,
        req: UpdateRecord,
    ) -> AppResult<(RecordView, Vec<String>)> {
        self.writer_check(v)?;
        self.check_body(&req.record)?;
        let mine = req.record.clone();
        let mut body = req.record;
        let mut version = req.version;
        let mut kept: Vec<String> = Vec::new();
        // Each round merges with the newest version; a save between two rounds makes another.
        for _ in 0..5 {
            let prepare = self.update_by_owner(
                v,
                Change::Body(Box::new(body.clone())),
                action::RECORD_UPDATED,
                json!({ "from_version": req.version, "merged": kept }),
            );
            let outcome = match self.store.update_record(id, Some(version), prepare).await {
                Err(crate::storage::StoreError::NotFound) => return Err(not_found()),
                other => other?,
            };
            let current = match outcome {
                Versioned::Conflict(current) => current,
                done_or_refused => {
                    let rec = self.finish_write(v, done_or_refused)?;
                    let view =
                        tier::project(Tier::Owner, &rec, &v.org).expect("owner sees everything");
                    return Ok((view, kept));
                }
            };
            // The version the caller started from; without it (a version that never was)
            // nothing can be merged.
            let Some(base) = self
                .store
                .list_versions(id)
                .await?
                .into_iter()
                .find(|r| r.version == req.version)
            else {
                return Err(self.conflict(&current, Vec::new())?);
            };
            let to_value =
                |b: &RecordBody| serde_json::to_value(b).map_err(|e| AppError::Internal(e.into()));
            // The change as made from its version, with the server's stamps against that
            // version (an entry the caller added is new, one it corrected keeps its author):
            // what the client sent as stamps then neither merges nor conflicts.
            let mut stamped = mine.clone();
            tsunagu_record::lists::stamp(
                Some(&base.body),
                &mut stamped,
                &v.display_name,
                time(self.clock.now()),
            );
            match tsunagu_record::merge::merge_resolving(
                &to_value(&base.body)?,
                &to_value(&stamped)?,
                &to_value(&current.body)?,
                &req.resolve,
            ) {
                Err(fields) => return Err(self.conflict(&current, fields)?),
                Ok(m) => {
                    let merged: RecordBody = serde_json::from_value(m.value)
                        .map_err(|e| AppError::Internal(e.into()))?;
                    if merged == current.body {
                        // Nothing of this change is left beyond what was saved meanwhile.
                        let view =
                            tier::project(Tier::Owner, &current, &v.org).ok_or_else(not_found)?;
                        return Ok((view, m.merged));
                    }
                    // The merge of two valid bodies can break a rule across fields (too many
                    // guardians, a list over its limit): then it is the caller's to decide.
                    if self.check_body(&merged).is_err() {
                        return Err(self.conflict(&current, Vec::new())?);
                    }
                    body = merged;
                    kept = m.merged;
                    version = current.version;
                }
            }
        }
        Err(AppError::Unavailable)
    }

    /// A finished versioned write: done (its notifications published), refused (not found for
    /// those who may not see the record, whether it exists is not told; forbidden for the
    /// others), or a conflict.
    fn finish_write(
        &self,
        v: &Viewer,
        outcome: Versioned<(StoredRecord, Vec<crate::storage::NotificationRow>)>,
    ) -> AppResult<StoredRecord> {
        match outcome {
            Versioned::Done((rec, notes)) => {
                self.hub.publish(&notes);
                Ok(rec)
            }
            Versioned::Refused(current) if current.owner_org == v.org.id => {
                // The owner is refused only a record transferred out.
                Err(transferred_out(&current))
            }
            Versioned::Refused(current) => {
                // Whether the record exists is not told to those who may not see it.
                let owner = self.org(&current.owner_org)?;
                Err(match tier::decide(&v.org, owner, facts(&current)) {
                    Tier::None => not_found(),
                    _ => AppError::Forbidden("記録を更新できるのは所有機関のみです".into()),
                })
            }
            Versioned::Conflict(current) => Err(self.conflict(&current, Vec::new())?),
        }
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
}

pub(crate) fn facts(r: &StoredRecord) -> RecordFacts<'_> {
    tier::facts(r)
}

/// The 409 of a list operation whose entry is gone, the 400 of a place outside the list.
fn list_refusal(list: tsunagu_record::lists::ListName, e: ListOpError) -> AppError {
    let label = list.label_ja();
    match e {
        ListOpError::Gone { index } => AppError::State {
            code: "list_item_changed",
            message: format!(
                "{label}の{}件目（index {index}）は、表示した後に他の職員が変更または削除しました。最新の記録を読み込んでからやり直してください",
                index + 1
            ),
        },
        ListOpError::BadTarget { to, len } => AppError::bad_field(
            "to",
            format!(
                "移動先 to（{to}）は{label}の一覧の位置（0から{}まで、現在{len}件）で指定してください",
                len.saturating_sub(1)
            ),
        ),
    }
}

fn not_found() -> AppError {
    AppError::NotFound("記録が見つからないか、閲覧する権限がありません".into())
}

/// The 409 of a change to a record transferred out: it is read-only, and names where it went.
pub(crate) fn transferred_out(r: &StoredRecord) -> AppError {
    let to = r
        .transfer
        .as_ref()
        .and_then(|t| t.confirmed.map(|c| (t.to_name.clone(), c.record_id)));
    AppError::State {
        code: "transferred_out",
        message: match to {
            Some((name, id)) => {
                format!("この記録は{name}へ移管済みのため変更できません（移管先の記録: {id}）")
            }
            None => "この記録は移管済みのため変更できません".into(),
        },
    }
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
    pub(crate) async fn refused(&self, v: &Viewer, id: i64, read: &'static str) -> AppError {
        let audit = v.audit(
            self.clock.now(),
            v.org.pref_code,
            action::ACCESS_REFUSED,
            Some(id),
            json!({ "read": read }),
        );
        self.refusal_logged(v, audit, not_found()).await
    }

    /// Logs a refused read (`audit`) in the reader's chain, warns the operator of an account
    /// that keeps being refused, and answers `answer` (the same as for what does not exist).
    pub(crate) async fn refusal_logged(
        &self,
        v: &Viewer,
        audit: crate::audit::AuditDraft,
        answer: AppError,
    ) -> AppError {
        if let Some(n) = self.refusals.note(v.user_id, audit.at) {
            tracing::warn!(
                user_id = v.user_id,
                org = %v.org.id,
                refusals = n,
                "repeated refused reads from one account within 10 minutes (tsunagu-server refused-reads lists them)"
            );
        }
        match self.read_audit.append(audit).await {
            Ok(_) => answer,
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
