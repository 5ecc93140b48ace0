//! The use cases of transfers: offer a record (with its siblings) to another organisation, read
//! a transfer and the records it carries as the caller's tier allows, list the outgoing (送付)
//! and incoming (受付) transfers, and the three steps of a pending one: confirm (one
//! transaction registers the destination's records from what was provided and moves the
//! origin's to transferred out), decline with a reason, withdraw.

use serde_json::json;
use tsunagu_record::api::NotificationKind;
use tsunagu_record::transfer::{
    validate_decline, validate_offer, DeclineTransfer, OfferTransfer, TransferBox, TransferItem,
    TransferList, TransferListItem, TransferStatus, TransferSummary, TransferView,
};
use tsunagu_record::CaseStatus;

use crate::audit::action;
use crate::domain;
use crate::error::{AppError, AppResult};
use crate::state::{time, AppState, Viewer};
use crate::storage::{
    ConfirmRecord, NewNotification, NewTransfer, PrepareDecision, PrepareOffer, RecordWrite,
    StoreError, StoredRecord, StoredTransfer, TransferDecision,
};
use crate::tier::{self, Tier};
use crate::transfers::rules::{self, Refusal, Step};

fn not_found() -> AppError {
    AppError::NotFound("移管が見つからないか、閲覧する権限がありません".into())
}

/// The answer to a refusal other than "not found" (which is logged first, by the caller).
fn refusal_error(r: Refusal) -> AppError {
    match r {
        Refusal::NotFound => not_found(),
        Refusal::NotOwner => {
            AppError::Forbidden("移管を申し出られるのは記録の所有機関のみです".into())
        }
        Refusal::OtherParty(step) => AppError::Forbidden(format!(
            "{}できるのは移管{}の機関のみです",
            step.label_ja(),
            if step.by_destination() { "先" } else { "元" }
        )),
        Refusal::TransferredOut {
            record_id,
            to_name,
            new_record_id,
        } => AppError::State {
            code: "transferred_out",
            message: format!(
                "記録 {record_id} は{to_name}へ移管済みです（移管先の記録: {new_record_id}）。さらに移管するときは移管先の機関がその記録から申し出ます"
            ),
        },
        Refusal::Pending {
            record_id,
            transfer_id,
        } => AppError::State {
            code: "transfer_pending",
            message: match transfer_id {
                Some(t) => format!(
                    "記録 {record_id} には回答待ちの移管の申出があります（移管ID: {t}）。取り下げるか、回答を待ってください"
                ),
                None => format!("記録 {record_id} には回答待ちの移管の申出があります"),
            },
        },
        Refusal::Decided(status) => AppError::State {
            code: "transfer_decided",
            message: format!(
                "この移管はすでに「{}」です。操作できるのは回答待ちの移管のみです",
                status.label_ja()
            ),
        },
        Refusal::Inconsistent => AppError::State {
            code: "transfer_inconsistent",
            message: "移管の申出と記録の状態が一致しません。移管を確認してください".into(),
        },
        Refusal::Invalid(fields) => AppError::Validation(fields),
    }
}

impl AppState {
    fn transfer_writer_check(&self, v: &Viewer) -> AppResult<()> {
        if domain::may_write_records(v.role, &v.org) {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "この利用者は記録の移管を扱えません".into(),
            ))
        }
    }

    /// Logs a refused read of transfer `id` (not one of its organisations, or no such
    /// transfer: the same answer) in the reader's chain.
    async fn transfer_refused(&self, v: &Viewer, id: i64) -> AppError {
        let audit = v.audit(
            self.clock.now(),
            v.org.pref_code,
            action::TRANSFER_ACCESS_REFUSED,
            None,
            json!({ "transfer": id }),
        );
        self.refusal_logged(v, audit, not_found()).await
    }

    /// The transfer as the caller sees it, each record as the caller's tier shows it now;
    /// every record shown to another organisation than its owner is a logged read of it,
    /// durable before anything is returned.
    async fn transfer_view(&self, v: &Viewer, t: &StoredTransfer) -> AppResult<TransferView> {
        let now = self.clock.now();
        let mut records = Vec::with_capacity(t.records.len());
        let mut reads = Vec::new();
        for row in &t.records {
            let record = match self.store.get_record(row.record_id).await? {
                Some(rec) => {
                    let owner = self.org(&rec.owner_org)?;
                    let tier = tier::decide(&v.org, owner, tier::facts(&rec));
                    let view = tier::project(tier, &rec, owner);
                    if view.is_some() && tier != Tier::Owner {
                        reads.push(v.audit(
                            now,
                            rec.pref_code,
                            action::RECORD_VIEWED,
                            Some(rec.id),
                            json!({ "tier": tier.name(), "version": rec.version, "transfer": t.id }),
                        ));
                    }
                    view
                }
                None => None,
            };
            records.push(TransferItem {
                record_id: row.record_id,
                new_record_id: row.new_record_id,
                record,
            });
        }
        futures::future::try_join_all(reads.into_iter().map(|a| self.read_audit.append(a))).await?;
        Ok(TransferView {
            id: t.id,
            status: t.status,
            from: self.org(&t.from_org)?.contact(),
            to: self.org(&t.to_org)?.contact(),
            message: t.message.clone(),
            withhold: t.withhold.clone(),
            offered_at: time(t.offered_at),
            offered_by: t.offered_by.clone(),
            age_secs: rules::age_secs(now, t.offered_at),
            decided_at: t.decided_at.map(time),
            decided_by: t.decided_by.clone(),
            reason: t.reason.clone(),
            records,
        })
    }

    /// Offers record `record_id` (and `req.siblings`) to `req.to_org_id`. The records are
    /// checked on their locked rows in the offer's own transaction: only the owner's, none
    /// transferred out, none with an open offer; so of two offers at once only one is made.
    pub async fn offer_transfer(
        &self,
        v: &Viewer,
        record_id: i64,
        req: OfferTransfer,
    ) -> AppResult<TransferView> {
        self.transfer_writer_check(v)?;
        validate_offer(&req).map_err(AppError::Validation)?;
        let to = self.orgs.get(&req.to_org_id);
        rules::check_destination(&v.org, &req.to_org_id, to).map_err(refusal_error)?;
        let to = to.expect("checked above").clone();
        // Whether the caller has a tier for the record: a refusal then says it is not its to
        // offer; else the record is not found, as one that does not exist.
        let visible = match self.store.get_record(record_id).await? {
            Some(r) => {
                let owner = self.org(&r.owner_org)?;
                tier::decide(&v.org, owner, tier::facts(&r)) != Tier::None
            }
            None => false,
        };
        let mut ids = vec![record_id];
        ids.extend(req.siblings.iter().copied());
        let mut withhold = req.withhold.clone();
        withhold.sort();
        withhold.dedup();
        let (v2, at, ids2) = (v.clone(), self.clock.now(), ids.clone());
        let message = req.message.trim_end().to_string();
        let prepare: PrepareOffer = Box::new(move |rows: &[Option<StoredRecord>]| {
            rules::check_offerable(&v2.org.id, rows, &ids2, visible)?;
            let audits = rows
                .iter()
                .flatten()
                .map(|r| {
                    v2.audit(
                        at,
                        r.pref_code,
                        action::TRANSFER_OFFERED,
                        Some(r.id),
                        json!({ "to": to.id, "withhold": withhold, "records": ids2.len() }),
                    )
                })
                .collect();
            Ok(NewTransfer {
                pref_code: v2.org.pref_code,
                from_org: v2.org.id.clone(),
                to_org: to.id.clone(),
                to_name: to.name.clone(),
                message,
                withhold,
                at,
                by: v2.display_name.clone(),
                record_ids: ids2,
                audits,
                notify: vec![NewNotification {
                    org_id: to.id.clone(),
                    kind: NotificationKind::TransferOffered,
                    from_org_id: v2.org.id.clone(),
                }],
            })
        });
        match self.store.offer_transfer(&ids, prepare).await? {
            Err(Refusal::NotFound) => Err(self.refused(v, record_id, "transfer_offer").await),
            Err(r) => Err(refusal_error(r)),
            Ok((t, notes)) => {
                self.hub.publish(&notes);
                self.transfer_view(v, &t).await
            }
        }
    }

    /// A transfer, for its two organisations only.
    pub async fn get_transfer(&self, v: &Viewer, id: i64) -> AppResult<TransferView> {
        match self.store.get_transfer(id).await? {
            Some(t) if domain::may_read_records(v.role) && rules::is_party(&t, &v.org.id) => {
                self.transfer_view(v, &t).await
            }
            _ => Err(self.transfer_refused(v, id).await),
        }
    }

    /// The organisation's outgoing (送付) or incoming (受付) transfers, newest first, with their
    /// status and age; each record named by its child only where the caller's tier shows it.
    pub async fn list_transfers(
        &self,
        v: &Viewer,
        which: TransferBox,
        status: Option<TransferStatus>,
        limit: i64,
    ) -> AppResult<TransferList> {
        if !domain::may_read_records(v.role)
            || !matches!(
                v.org.kind,
                tsunagu_record::OrgKind::Cgc | tsunagu_record::OrgKind::Municipality
            )
        {
            return Err(AppError::Forbidden(
                "この利用者は記録の移管を扱えません".into(),
            ));
        }
        let limit = limit.clamp(1, self.config.limits.page_max);
        let rows = self
            .store
            .list_transfers(&v.org.id, which == TransferBox::Outgoing, status, limit)
            .await?;
        let now = self.clock.now();
        let mut others = Vec::new();
        let mut items = Vec::with_capacity(rows.len());
        for t in &rows {
            let mut records = Vec::with_capacity(t.records.len());
            for row in &t.records {
                let child_name = match self.store.get_record(row.record_id).await? {
                    Some(rec) => {
                        let owner = self.org(&rec.owner_org)?;
                        let tier = tier::decide(&v.org, owner, tier::facts(&rec));
                        let name = tier::transfer_child(tier, &rec);
                        if name.is_some() && tier != Tier::Owner {
                            others.push(rec.id);
                        }
                        name
                    }
                    None => None,
                };
                records.push(TransferListItem {
                    record_id: row.record_id,
                    new_record_id: row.new_record_id,
                    child_name,
                });
            }
            items.push(TransferSummary {
                id: t.id,
                status: t.status,
                from: self.org(&t.from_org)?.contact(),
                to: self.org(&t.to_org)?.contact(),
                offered_at: time(t.offered_at),
                age_secs: rules::age_secs(now, t.offered_at),
                decided_at: t.decided_at.map(time),
                records,
            });
        }
        // Naming the child of another organisation's record is a read of it.
        if !others.is_empty() {
            others.sort_unstable();
            others.dedup();
            let audit = v.audit(
                now,
                v.org.pref_code,
                action::TRANSFERS_LISTED,
                None,
                json!({ "records": others }),
            );
            self.read_audit.append(audit).await?;
        }
        Ok(TransferList { items })
    }

    /// The destination takes the records: in one transaction, each record registered as its
    /// own from what was provided (with provenance), the origin's moved to its next version
    /// transferred out (read-only, pointing to the new one), the intakes whose casework was
    /// provided linked to the new one, with every entry and notification.
    pub async fn confirm_transfer(&self, v: &Viewer, id: i64) -> AppResult<TransferView> {
        self.decide_transfer(v, id, Step::Confirm, None).await
    }

    pub async fn decline_transfer(
        &self,
        v: &Viewer,
        id: i64,
        req: DeclineTransfer,
    ) -> AppResult<TransferView> {
        self.transfer_writer_check(v)?;
        validate_decline(&req).map_err(AppError::Validation)?;
        self.decide_transfer(v, id, Step::Decline, Some(req.reason.trim().to_string()))
            .await
    }

    pub async fn withdraw_transfer(&self, v: &Viewer, id: i64) -> AppResult<TransferView> {
        self.decide_transfer(v, id, Step::Withdraw, None).await
    }

    async fn decide_transfer(
        &self,
        v: &Viewer,
        id: i64,
        step: Step,
        reason: Option<String>,
    ) -> AppResult<TransferView> {
        self.transfer_writer_check(v)?;
        // A confirmation across prefectures holds two chain heads (in prefecture order); a
        // writer elsewhere that locks several heads in another order can make PostgreSQL end
        // one of the two as a deadlock. The transaction then changed nothing, and is tried
        // again.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let prepare = self.decision(v, step, reason.clone());
            let outcome = self.store.decide_transfer(id, prepare).await;
            if let Err(StoreError::Db(e)) = &outcome {
                if attempt < 3 && is_deadlock(e) {
                    tracing::warn!(
                        transfer = id,
                        "a transfer's step met a deadlock; trying again"
                    );
                    continue;
                }
            }
            return match outcome {
                Err(StoreError::NotFound) | Ok(Err(Refusal::NotFound)) => {
                    Err(self.transfer_refused(v, id).await)
                }
                Err(e) => Err(e.into()),
                Ok(Err(r)) => Err(refusal_error(r)),
                Ok(Ok(d)) => {
                    self.hub.publish(&d.notes);
                    self.transfer_view(v, &d.transfer).await
                }
            };
        }
    }

    /// The check and the decision of `step` by `v`, run by the store on the locked rows.
    fn decision(&self, v: &Viewer, step: Step, reason: Option<String>) -> PrepareDecision {
        let (state, v2, at) = (self.clone(), v.clone(), self.clock.now());
        Box::new(move |t: &StoredTransfer, recs: &[StoredRecord]| {
            rules::check_step(t, &v2.org.id, step)?;
            let (notify_org, kind) = match step {
                Step::Confirm => (&t.from_org, NotificationKind::TransferConfirmed),
                Step::Decline => (&t.from_org, NotificationKind::TransferDeclined),
                Step::Withdraw => (&t.to_org, NotificationKind::TransferWithdrawn),
            };
            let notify = vec![NewNotification {
                org_id: notify_org.clone(),
                kind,
                from_org_id: v2.org.id.clone(),
            }];
            for r in recs {
                let ours = r.owner_org == t.from_org
                    && r.pending_transfer().map(|p| p.transfer_id) == Some(t.id);
                if !ours {
                    return Err(Refusal::Inconsistent);
                }
            }
            if step != Step::Confirm {
                let act = if step == Step::Decline {
                    action::TRANSFER_DECLINED
                } else {
                    action::TRANSFER_WITHDRAWN
                };
                let audits = recs
                    .iter()
                    .map(|r| v2.audit(at, r.pref_code, act, Some(r.id), json!({})))
                    .collect();
                return Ok(TransferDecision {
                    status: step.status(),
                    at,
                    by: v2.display_name.clone(),
                    reason,
                    audits,
                    notify,
                    confirm: Vec::new(),
                });
            }
            let origin_org = state.orgs.get(&t.from_org).ok_or(Refusal::Inconsistent)?;
            let dest = &v2.org;
            let confirm = recs
                .iter()
                .map(|r| confirm_record(&state, &v2, dest, origin_org, r, at))
                .collect();
            Ok(TransferDecision {
                status: TransferStatus::Confirmed,
                at,
                by: v2.display_name.clone(),
                reason: None,
                audits: Vec::new(),
                notify,
                confirm,
            })
        })
    }
}

/// PostgreSQL ended the transaction to break a deadlock (or a serialisation failure).
fn is_deadlock(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().is_some_and(|c| c == "40P01" || c == "40001"))
}

/// What confirming does to record `r` (its locked row): the destination's new record from
/// exactly what the transfer provides (`tier::provided_body`; progress entries keep who wrote
/// them and when), under the owner's restrictions carried over (a restricted address stays
/// restricted once the destination fills it in); and the origin's next version, transferred
/// out.
fn confirm_record(
    state: &AppState,
    v: &Viewer,
    dest: &crate::orgs::Org,
    origin_org: &crate::orgs::Org,
    r: &StoredRecord,
    at: i64,
) -> ConfirmRecord {
    let body = tier::provided_body(r, origin_org);
    let restrictions = r.restrictions.clone();
    let notify = domain::recipients(dest, dest, &body, &state.orgs)
        .into_iter()
        .map(|org_id| NewNotification {
            org_id,
            kind: NotificationKind::RecordCreated,
            from_org_id: dest.id.clone(),
        })
        .collect();
    let new_record = RecordWrite {
        pref_code: dest.pref_code,
        owner_org: dest.id.clone(),
        author: v.display_name.clone(),
        at,
        columns: domain::columns(&body, &restrictions),
        body,
        restrictions,
        audit: v.audit(
            at,
            dest.pref_code,
            action::RECORD_CREATED,
            None,
            json!({ "version": 1, "origin_record": r.id }),
        ),
        notify,
    };
    let mut out = r.body.clone();
    out.admin.status = Some(CaseStatus::TransferredOut);
    let origin = StoredRecord {
        version: r.version + 1,
        updated_at: at,
        updated_by: v.display_name.clone(),
        body: out,
        ..r.clone()
    };
    ConfirmRecord {
        origin_columns: domain::columns(&origin.body, &origin.restrictions),
        origin,
        origin_name: origin_org.name.clone(),
        origin_audit: v.audit(at, r.pref_code, action::TRANSFER_CONFIRMED, None, json!({})),
        new_record,
        move_intakes: tier::intakes_travel(r),
    }
}
