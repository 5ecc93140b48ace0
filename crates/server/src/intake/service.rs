//! The use cases of intakes: receive a report (saved at once), read and list it as the tier
//! allows, correct it while open, attach it to a record (or send it to the owner of another
//! organisation's record), convert it into a new record, confirm the child's safety, and the
//! server's reminders of the safety clock.

use chrono::{DateTime, Utc};
use serde_json::json;
use tsunagu_record::api::NotificationKind;
use tsunagu_record::intake::{
    validate_confirmation, validate_intake, AttachIntake, ConfirmSafety, IntakeInput, IntakeList,
    IntakeStatus, IntakeSummary, IntakeView, SafetyClock, SafetyConfirmation, UpdateIntake,
};
use tsunagu_record::validate::FieldError;
use tsunagu_record::Restrictions;

use crate::audit::{action, AuditDraft};
use crate::error::{AppError, AppResult};
use crate::intake::rules::{self, Refusal};
use crate::records::service::facts;
pub use tsunagu_record::intake::{ConvertIntake, Converted};

use crate::state::{time, AppState, Viewer};
use crate::storage::{
    IntakeChanged, IntakeWrite, NewIntake, NewNotification, StoreError, StoredIntake,
};
use crate::tier;

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// A time as the store keeps it (microseconds), so what is shown is what is stored.
fn to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    time(micros(t))
}

fn not_found() -> AppError {
    AppError::NotFound("通告が見つからないか、閲覧する権限がありません".into())
}

fn refusal_error(r: Refusal) -> AppError {
    match r {
        Refusal::NotFound => not_found(),
        Refusal::NotReceiver => {
            AppError::Forbidden("この操作は通告を受理した機関のみが行えます".into())
        }
        Refusal::Conflict { version } => AppError::State {
            code: "version_conflict",
            message: format!(
                "他の職員がこの通告を更新しました（現在の版: {version}）。最新の内容を確認してから操作してください"
            ),
        },
        Refusal::NotOpen(s) => AppError::State {
            code: "intake_not_open",
            message: format!("この通告は処理済みです（{}）", s.label_ja()),
        },
        Refusal::AlreadyConfirmed => AppError::State {
            code: "already_confirmed",
            message: "この通告の安全確認は記録済みです".into(),
        },
        Refusal::NoSuchRecord => AppError::Validation(vec![FieldError::new(
            "record_id",
            "unknown",
            "指定された記録が見つからないか、この機関からは送付できません",
        )]),
        Refusal::Invalid(fields) => AppError::Validation(fields),
    }
}

impl AppState {
    /// The intake as its readers see it, with the clock as of now.
    fn intake_view(&self, i: &StoredIntake) -> AppResult<IntakeView> {
        let org = self.org(&i.org_id)?;
        let now = time(self.clock.now());
        let due = time(i.due_at);
        Ok(IntakeView {
            id: i.id,
            org: org.contact(),
            status: i.status,
            record_id: i.record_id,
            input: i.body.clone(),
            safety: SafetyClock {
                hours: i.safety_hours as u32,
                due_at: due,
                state: rules::state(now, due, i.confirmed_at.map(time)),
                confirmation: i.confirmation.clone(),
            },
            received_by: i.received_by.clone(),
            created_at: time(i.created_at),
            updated_at: time(i.updated_at),
            version: i.version,
        })
    }

    fn intake_summary(&self, i: &StoredIntake) -> IntakeSummary {
        let now = time(self.clock.now());
        let due = time(i.due_at);
        IntakeSummary {
            id: i.id,
            status: i.status,
            record_id: i.record_id,
            received_at: time(i.received_at),
            channel: i.body.channel,
            urgency: i.body.urgency,
            child_name: i.body.child.name.clone(),
            due_at: due,
            state: rules::state(now, due, i.confirmed_at.map(time)),
        }
    }

    fn check_intake(&self, input: &IntakeInput) -> AppResult<()> {
        let mut errors = match validate_intake(input, time(self.clock.now()), self.clock.today()) {
            Ok(()) => Vec::new(),
            Err(e) => e,
        };
        let code = input.child.municipality_code.trim();
        if !code.is_empty()
            && !errors.iter().any(|e| e.field == "child.municipality_code")
            && tsunagu_masterdata::localgov::municipality(code).is_none()
            && self.orgs.by_lgcode(code).is_none()
        {
            errors.push(FieldError::new(
                "child.municipality_code",
                "unknown",
                format!("市区町村コード {code} に該当する市区町村がありません"),
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(AppError::Validation(errors))
        }
    }

    /// Whether `v` may read intake `i`, deciding its linked record's tier.
    async fn may_read_intake(&self, v: &Viewer, i: &StoredIntake) -> AppResult<bool> {
        if v.org.id == i.org_id {
            return Ok(true);
        }
        let Some(rid) = i.record_id else {
            return Ok(false);
        };
        let Some(rec) = self.store.get_record(rid).await? else {
            return Ok(false);
        };
        let owner = self.org(&rec.owner_org)?;
        let t = tier::decide(&v.org, owner, facts(&rec));
        Ok(tier::intake_readable(
            &v.org,
            &i.org_id,
            Some((t, &tier::restrictions_seen(t, &rec))),
        ))
    }

    /// Whether the caller may read intake `id` now (false if there is none).
    async fn readable_intake(&self, v: &Viewer, id: i64) -> AppResult<bool> {
        match self.store.get_intake(id).await? {
            Some(i) => self.may_read_intake(v, &i).await,
            None => Ok(false),
        }
    }

    async fn intake_refused(&self, v: &Viewer, id: i64) -> AppError {
        let audit = v.audit(
            self.clock.now(),
            v.org.pref_code,
            action::INTAKE_ACCESS_REFUSED,
            None,
            json!({ "intake": id }),
        );
        self.refusal_logged(v, audit, not_found()).await
    }

    /// Saves a report the moment it is typed: only the content and the time are required.
    pub async fn create_intake(&self, v: &Viewer, mut input: IntakeInput) -> AppResult<IntakeView> {
        self.intake_writer_check(v)?;
        input.received_at = to_micros(input.received_at);
        self.check_intake(&input)?;
        let hours = self
            .store
            .safety_hours(&v.org.id)
            .await?
            .unwrap_or(rules::DEFAULT_SAFETY_HOURS as i64);
        let now = self.clock.now();
        let due = rules::due_at(input.received_at, hours as u32);
        let stored = self
            .store
            .create_intake(NewIntake {
                pref_code: v.org.pref_code,
                org_id: v.org.id.clone(),
                received_by: v.display_name.clone(),
                at: now,
                safety_hours: hours,
                due_at: micros(due),
                body: input,
                audit: v.audit(
                    now,
                    v.org.pref_code,
                    action::INTAKE_RECEIVED,
                    None,
                    json!({}),
                ),
            })
            .await?;
        self.intake_view(&stored)
    }

    fn intake_writer_check(&self, v: &Viewer) -> AppResult<()> {
        if crate::domain::may_write_records(v.role, &v.org) {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "この利用者は通告を受理・処理できません".into(),
            ))
        }
    }

    pub async fn get_intake(&self, v: &Viewer, id: i64) -> AppResult<IntakeView> {
        let Some(i) = self.store.get_intake(id).await? else {
            return Err(self.intake_refused(v, id).await);
        };
        if !crate::domain::may_read_records(v.role) || !self.may_read_intake(v, &i).await? {
            return Err(self.intake_refused(v, id).await);
        }
        self.read_audit
            .append(v.audit(
                self.clock.now(),
                v.org.pref_code,
                action::INTAKE_VIEWED,
                i.record_id,
                json!({ "intake": id }),
            ))
            .await?;
        self.intake_view(&i)
    }

    /// The caller's organisation's intakes: the duty list (unconfirmed, earliest deadline
    /// first) or all of them, newest first.
    pub async fn list_intakes(
        &self,
        v: &Viewer,
        unconfirmed_only: bool,
        limit: i64,
    ) -> AppResult<IntakeList> {
        if !crate::domain::may_read_records(v.role) {
            return Err(AppError::Forbidden(
                "この利用者は通告を閲覧できません".into(),
            ));
        }
        let limit = limit.clamp(1, self.config.limits.page_max);
        let rows = self
            .store
            .list_intakes(&v.org.id, unconfirmed_only, limit)
            .await?;
        let items: Vec<IntakeSummary> = rows.iter().map(|i| self.intake_summary(i)).collect();
        self.read_audit
            .append(v.audit(
                self.clock.now(),
                v.org.pref_code,
                action::INTAKES_LISTED,
                None,
                json!({
                    "unconfirmed_only": unconfirmed_only,
                    "intakes": items.iter().map(|i| i.id).collect::<Vec<_>>(),
                }),
            ))
            .await?;
        Ok(IntakeList { items })
    }

    /// The intakes linked to record `record_id` that the caller may read (the record's
    /// casework tier): its intake list.
    pub async fn record_intakes(&self, v: &Viewer, record_id: i64) -> AppResult<IntakeList> {
        // A record that does not exist and one the caller has no tier for get the same
        // answer, the record's own refusal, logged like a refused read of the record or its
        // history: before, no such record answered with the intake's 404 message and a record
        // without a tier with the record's, which told anyone which record ids exist; and
        // neither refusal was in the log.
        let Some(rec) = self.store.get_record(record_id).await? else {
            return Err(self.refused(v, record_id, "intakes").await);
        };
        let owner = self.org(&rec.owner_org)?;
        let t = tier::decide(&v.org, owner, facts(&rec));
        if !crate::domain::may_read_records(v.role) || t == tier::Tier::None {
            return Err(self.refused(v, record_id, "intakes").await);
        }
        let mut items = Vec::new();
        let seen = tier::restrictions_seen(t, &rec);
        for i in self.store.intakes_of_record(record_id).await? {
            if tier::intake_readable(&v.org, &i.org_id, Some((t, &seen))) {
                items.push(self.intake_summary(&i));
            }
        }
        self.read_audit
            .append(v.audit(
                self.clock.now(),
                v.org.pref_code,
                action::INTAKES_LISTED,
                Some(record_id),
                json!({ "intakes": items.iter().map(|i| i.id).collect::<Vec<_>>() }),
            ))
            .await?;
        Ok(IntakeList { items })
    }

    /// Runs an intake change decided on the locked row; the receiver's check, the version and
    /// the intake's state are the rules' to decide there.
    async fn change_intake(
        &self,
        v: &Viewer,
        id: i64,
        prepare: crate::storage::PrepareIntake,
    ) -> AppResult<IntakeChanged> {
        self.intake_writer_check(v)?;
        match self.store.change_intake(id, prepare).await {
            Err(StoreError::NotFound) => Err(self.intake_refused(v, id).await),
            Err(e) => Err(e.into()),
            Ok(Err(Refusal::NotFound)) => Err(self.intake_refused(v, id).await),
            Ok(Err(r)) => Err(refusal_error(r)),
            Ok(Ok(changed)) => {
                self.hub.publish(&changed.notes);
                Ok(changed)
            }
        }
    }

    /// The receiver's correction of an open intake.
    pub async fn update_intake(
        &self,
        v: &Viewer,
        id: i64,
        mut req: UpdateIntake,
    ) -> AppResult<IntakeView> {
        req.input.received_at = to_micros(req.input.received_at);
        self.check_intake(&req.input)?;
        let readable = self.readable_intake(v, id).await?;
        let (v2, at) = (v.clone(), self.clock.now());
        let changed = self
            .change_intake(
                v,
                id,
                Box::new(move |cur: &StoredIntake| {
                    receiver_open_at(&v2, cur, req.version, readable)?;
                    let audit =
                        v2.audit(at, cur.pref_code, action::INTAKE_UPDATED, None, json!({}));
                    Ok(IntakeWrite {
                        due_at: micros(rules::due_at(
                            req.input.received_at,
                            cur.safety_hours as u32,
                        )),
                        body: req.input,
                        ..IntakeWrite::keeping(cur, at, audit)
                    })
                }),
            )
            .await?;
        self.intake_view(&changed.intake)
    }

    /// Attaches an open intake to a record: the caller's own (attached), or another
    /// organisation's, to whose owner the intake is then sent (forwarded) with a notification;
    /// the owner reads it from then on as casework of its record.
    pub async fn attach_intake(
        &self,
        v: &Viewer,
        id: i64,
        req: AttachIntake,
    ) -> AppResult<IntakeView> {
        // Only to a record the caller has a tier on: for any other, the answer is that of an id
        // that does not exist (and the refusal is logged), or attaching would tell which ids
        // exist. A report about a child of an organisation out of reach goes by phone to the
        // owner whose contact the search shows.
        let rec = self.store.get_record(req.record_id).await?;
        let owner = match &rec {
            Some(r) => {
                let owner = self.org(&r.owner_org)?.clone();
                if tier::decide(&v.org, &owner, facts(r)) == tier::Tier::None {
                    match self.refused(v, req.record_id, "intake_attach").await {
                        AppError::NotFound(_) => None,
                        other => return Err(other),
                    }
                } else {
                    Some(owner)
                }
            }
            None => None,
        };
        let readable = self.readable_intake(v, id).await?;
        let (v2, at) = (v.clone(), self.clock.now());
        let changed = self
            .change_intake(
                v,
                id,
                Box::new(move |cur: &StoredIntake| {
                    receiver_open_at(&v2, cur, req.version, readable)?;
                    let owner = owner.ok_or(Refusal::NoSuchRecord)?;
                    let own = owner.id == v2.org.id;
                    let (status, act, notify) = if own {
                        (IntakeStatus::Attached, action::INTAKE_ATTACHED, vec![])
                    } else {
                        (
                            IntakeStatus::Forwarded,
                            action::INTAKE_FORWARDED,
                            vec![NewNotification {
                                org_id: owner.id.clone(),
                                kind: NotificationKind::IntakeForwarded,
                                from_org_id: v2.org.id.clone(),
                            }],
                        )
                    };
                    let audit = v2.audit(
                        at,
                        cur.pref_code,
                        act,
                        Some(req.record_id),
                        json!({ "owner": owner.id }),
                    );
                    Ok(IntakeWrite {
                        status,
                        record_id: Some(req.record_id),
                        notify,
                        ..IntakeWrite::keeping(cur, at, audit)
                    })
                }),
            )
            .await?;
        self.intake_view(&changed.intake)
    }

    /// Converts an open intake into a new record owned by the caller's organisation, in one
    /// transaction: the record exists and the intake links it, or neither changed.
    pub async fn convert_intake(
        &self,
        v: &Viewer,
        id: i64,
        req: ConvertIntake,
    ) -> AppResult<Converted> {
        self.writer_check(v)?;
        self.check_body(&req.record)?;
        let write = self.write_for(
            v,
            &v.org,
            None,
            req.record,
            Restrictions::default(),
            action::RECORD_CREATED,
            json!({ "version": 1, "from_intake": id }),
        );
        let readable = self.readable_intake(v, id).await?;
        let (v2, at) = (v.clone(), self.clock.now());
        let changed = self
            .change_intake(
                v,
                id,
                Box::new(move |cur: &StoredIntake| {
                    receiver_open_at(&v2, cur, req.version, readable)?;
                    let audit =
                        v2.audit(at, cur.pref_code, action::INTAKE_CONVERTED, None, json!({}));
                    Ok(IntakeWrite {
                        status: IntakeStatus::Converted,
                        // The store links the record it creates.
                        record_id: None,
                        new_record: Some(write),
                        ..IntakeWrite::keeping(cur, at, audit)
                    })
                }),
            )
            .await?;
        let record_id = changed
            .intake
            .record_id
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("converted intake has no record")))?;
        Ok(Converted {
            intake: self.intake_view(&changed.intake)?,
            record_id,
        })
    }

    /// Records the safety confirmation, by the receiver or by the owner of the record the
    /// intake is linked to (the one who went to see the child), once.
    pub async fn confirm_safety(
        &self,
        v: &Viewer,
        id: i64,
        req: ConfirmSafety,
    ) -> AppResult<IntakeView> {
        let linked_owner = match self.store.get_intake(id).await? {
            Some(i) => match i.record_id {
                Some(rid) => self.store.get_record(rid).await?.map(|r| r.owner_org),
                None => None,
            },
            None => None,
        };
        let (v2, now) = (v.clone(), self.clock.now());
        let changed = self
            .change_intake(
                v,
                id,
                Box::new(move |cur: &StoredIntake| {
                    let may = cur.org_id == v2.org.id
                        || (linked_owner.as_deref() == Some(v2.org.id.as_str())
                            && cur.record_id.is_some());
                    if !may {
                        return Err(Refusal::NotFound);
                    }
                    if cur.version != req.version {
                        return Err(Refusal::Conflict {
                            version: cur.version,
                        });
                    }
                    if cur.confirmed_at.is_some() {
                        return Err(Refusal::AlreadyConfirmed);
                    }
                    let mut c = req.confirmation;
                    c.confirmed_at = to_micros(c.confirmed_at);
                    validate_confirmation(&c, time(cur.received_at), time(now))
                        .map_err(Refusal::Invalid)?;
                    let late = micros(c.confirmed_at) > cur.due_at;
                    let audit = v2.audit(
                        now,
                        cur.pref_code,
                        action::SAFETY_CONFIRMED,
                        None,
                        json!({ "method": c.method.code(), "late": late }),
                    );
                    Ok(IntakeWrite {
                        confirmed_at: Some(micros(c.confirmed_at)),
                        confirmation: Some(SafetyConfirmation {
                            confirmed_at: c.confirmed_at,
                            method: c.method,
                            note: c.note,
                            recorded_by: v2.display_name.clone(),
                            recorded_at: time(now),
                        }),
                        ..IntakeWrite::keeping(cur, now, audit)
                    })
                }),
            )
            .await?;
        self.intake_view(&changed.intake)
    }

    /// Sends the safety clock's reminders that are due at the server's now: for each
    /// unconfirmed intake whose next reminder point has passed, one notification to the
    /// receiving organisation (and to the owner of the record it was sent to), once per point
    /// even with several servers. Returns how many reminders were sent.
    pub async fn send_safety_reminders(&self) -> AppResult<usize> {
        self.send_safety_reminders_paged(500).await
    }

    /// As [`send_safety_reminders`](Self::send_safety_reminders), reading the due intakes
    /// `page` at a time (every page, so intakes reminded long ago never hide later ones).
    pub async fn send_safety_reminders_paged(&self, page: i64) -> AppResult<usize> {
        let now = self.clock.now();
        let horizon = now + rules::REMINDER_HOURS[0] as i64 * 3_600_000_000;
        let mut sent = 0;
        let mut after = None;
        loop {
            let due = self.store.intakes_due_by(horizon, after, page).await?;
            let n = due.len() as i64;
            after = due.last().map(|i| (i.due_at, i.id));
            for i in due {
                let stage = rules::stage(time(now), time(i.received_at), time(i.due_at));
                if stage as i64 <= i.reminded_stage {
                    continue;
                }
                let deadline = rules::is_deadline(stage, time(i.received_at), time(i.due_at));
                let kind = if deadline {
                    NotificationKind::SafetyOverdue
                } else {
                    NotificationKind::SafetyDueSoon
                };
                let mut to = vec![i.org_id.clone()];
                if i.status == IntakeStatus::Forwarded {
                    if let Some(rid) = i.record_id {
                        if let Some(r) = self.store.get_record(rid).await? {
                            to.push(r.owner_org);
                        }
                    }
                }
                to.dedup();
                let notify: Vec<NewNotification> = to
                    .into_iter()
                    .map(|org_id| NewNotification {
                        org_id,
                        kind,
                        from_org_id: i.org_id.clone(),
                    })
                    .collect();
                let audit = AuditDraft {
                    pref_code: i.pref_code,
                    at: now,
                    actor_user: None,
                    actor_org: i.org_id.clone(),
                    action: action::SAFETY_REMINDED,
                    record_id: i.record_id,
                    detail: json!({ "intake": i.id, "stage": stage, "deadline": deadline }),
                };
                if let Some(notes) = self
                    .store
                    .mark_reminded(i.id, stage as i64, &notify, audit)
                    .await?
                {
                    self.hub.publish(&notes);
                    sent += 1;
                }
            }
            if n < page {
                break;
            }
        }
        Ok(sent)
    }
}

/// The checks every change by the receiver makes on the current row: the receiver only, at
/// the version the caller saw, while the intake is open.
/// `readable`: whether the caller may read the intake (then a refusal says it is not theirs to
/// change; else it is not found, as for an intake that does not exist).
fn receiver_open_at(
    v: &Viewer,
    cur: &StoredIntake,
    version: i64,
    readable: bool,
) -> Result<(), Refusal> {
    if cur.org_id != v.org.id {
        return Err(if readable {
            Refusal::NotReceiver
        } else {
            Refusal::NotFound
        });
    }
    if cur.version != version {
        return Err(Refusal::Conflict {
            version: cur.version,
        });
    }
    if !rules::is_open(cur.status) {
        return Err(Refusal::NotOpen(cur.status));
    }
    Ok(())
}
