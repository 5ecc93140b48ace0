//! The rules of transfers without I/O: who may offer what to whom, and which step of a pending
//! transfer is whose. Every check that must hold at the moment of the write runs on the rows
//! the store has locked in the write's own transaction.

use tsunagu_record::transfer::TransferStatus;
use tsunagu_record::validate::FieldError;
use tsunagu_record::OrgKind;

use crate::orgs::Org;
use crate::storage::{StoredRecord, StoredTransfer};

/// A step of a pending transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Confirm,
    Decline,
    Withdraw,
}

impl Step {
    pub fn label_ja(self) -> &'static str {
        match self {
            Step::Confirm => "受入",
            Step::Decline => "辞退",
            Step::Withdraw => "取下げ",
        }
    }

    /// The status the step leaves the transfer in.
    pub fn status(self) -> TransferStatus {
        match self {
            Step::Confirm => TransferStatus::Confirmed,
            Step::Decline => TransferStatus::Declined,
            Step::Withdraw => TransferStatus::Withdrawn,
        }
    }

    /// Whether the destination takes the step (else the origin).
    pub fn by_destination(self) -> bool {
        self != Step::Withdraw
    }
}

/// Why an offer or a step was not made, decided on the current rows: nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The caller may not see it: the same answer as for a record or transfer that does not
    /// exist.
    NotFound,
    /// The caller sees the record but does not own it.
    NotOwner,
    /// The step is the other organisation's.
    OtherParty(Step),
    /// The record was transferred out already.
    TransferredOut {
        record_id: i64,
        to_name: String,
        new_record_id: i64,
    },
    /// The record already has an open offer (its id, where known).
    Pending {
        record_id: i64,
        transfer_id: Option<i64>,
    },
    /// The transfer is no longer pending.
    Decided(TransferStatus),
    /// A record of the transfer is not as its pending offer left it (never expected).
    Inconsistent,
    Invalid(Vec<FieldError>),
}

fn to_org_error(message: String) -> Refusal {
    Refusal::Invalid(vec![FieldError::new("to_org_id", "invalid", message)])
}

/// The destination of an offer by `from`: an organisation of the master (`to`, looked up by
/// `to_id`) that is a centre or a municipality, of any prefecture, and not the origin itself.
pub fn check_destination(from: &Org, to_id: &str, to: Option<&Org>) -> Result<(), Refusal> {
    let Some(to) = to else {
        return Err(to_org_error(format!(
            "移管先の機関「{to_id}」が見つかりません（機関の一覧にあるIDで指定してください）"
        )));
    };
    if to.id == from.id {
        return Err(to_org_error(
            "自機関には移管できません（移管先は他の児童相談所または市区町村です）".into(),
        ));
    }
    match to.kind {
        OrgKind::Cgc | OrgKind::Municipality => Ok(()),
        other => Err(to_org_error(format!(
            "移管先は児童相談所または市区町村です（{}には移管できません）",
            other.label_ja()
        ))),
    }
}

/// Whether each record may be offered by `owner`: `records` as the store read and locked them,
/// the one offered first (`visible`: whether the caller has a tier for it, for the answer to a
/// record it does not own), then the siblings by their index in `siblings`.
pub fn check_offerable(
    owner: &str,
    records: &[Option<StoredRecord>],
    ids: &[i64],
    visible: bool,
) -> Result<(), Refusal> {
    let first = match records.first() {
        Some(Some(r)) => r,
        _ => return Err(Refusal::NotFound),
    };
    if first.owner_org != owner {
        return Err(if visible {
            Refusal::NotOwner
        } else {
            Refusal::NotFound
        });
    }
    let mut errors = Vec::new();
    for (i, (r, id)) in records.iter().zip(ids).enumerate().skip(1) {
        let field = format!("siblings[{}]", i - 1);
        if ids[..i].contains(id) {
            errors.push(FieldError::new(
                field,
                "duplicate",
                format!("記録 {id} が重複しています（移管する記録と兄弟姉妹は別々の記録です）"),
            ));
        } else if r.as_ref().is_none_or(|r| r.owner_org != owner) {
            // Whether another organisation's record exists is not told.
            errors.push(FieldError::new(
                field,
                "unknown",
                format!("記録 {id} が見つからないか、自機関の記録ではありません"),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(Refusal::Invalid(errors));
    }
    for r in records.iter().flatten() {
        if let Some(t) = &r.transfer {
            return Err(match t.confirmed {
                Some(c) => Refusal::TransferredOut {
                    record_id: r.id,
                    to_name: t.to_name.clone(),
                    new_record_id: c.record_id,
                },
                None => Refusal::Pending {
                    record_id: r.id,
                    transfer_id: Some(t.transfer_id),
                },
            });
        }
    }
    Ok(())
}

/// Whether `org` may take `step` on transfer `t` now: a party to it (else it is not found),
/// the destination to confirm or decline and the origin to withdraw, while it is pending.
pub fn check_step(t: &StoredTransfer, org: &str, step: Step) -> Result<(), Refusal> {
    if org != t.from_org && org != t.to_org {
        return Err(Refusal::NotFound);
    }
    let theirs = if step.by_destination() {
        &t.to_org
    } else {
        &t.from_org
    };
    if org != theirs {
        return Err(Refusal::OtherParty(step));
    }
    if t.status != TransferStatus::Pending {
        return Err(Refusal::Decided(t.status));
    }
    Ok(())
}

/// Whether `org` may read transfer `t`: its two organisations only.
pub fn is_party(t: &StoredTransfer, org: &str) -> bool {
    org == t.from_org || org == t.to_org
}

/// Seconds from the offer to `now`.
pub fn age_secs(now: i64, offered_at: i64) -> i64 {
    (now - offered_at).max(0) / 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{ConfirmedTransfer, RecordTransfer, TransferRecordRow};

    fn org(id: &str, kind: OrgKind) -> Org {
        Org {
            id: id.into(),
            kind,
            name: format!("機関{id}"),
            pref_code: 13,
            lgcode: None,
            phone: "0".into(),
            cgc_id: None,
        }
    }

    fn rec(id: i64, owner: &str) -> StoredRecord {
        StoredRecord {
            id,
            pref_code: 13,
            owner_org: owner.into(),
            version: 1,
            created_at: 0,
            created_by: String::new(),
            updated_at: 0,
            updated_by: String::new(),
            restrictions: Default::default(),
            body: Default::default(),
            transfer: None,
            provenance: None,
        }
    }

    fn field_of(r: Result<(), Refusal>) -> Vec<String> {
        match r {
            Err(Refusal::Invalid(e)) => e.into_iter().map(|e| e.field).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_destination_is_another_centre_or_municipality_of_the_master() {
        let a = org("muni-a", OrgKind::Municipality);
        for to in [
            org("muni-b", OrgKind::Municipality),
            org("cgc-x", OrgKind::Cgc),
        ] {
            assert_eq!(check_destination(&a, &to.id, Some(&to)), Ok(()));
        }
        assert_eq!(
            field_of(check_destination(&a, "muni-a", Some(&a))),
            ["to_org_id"]
        );
        let m = org("ministry", OrgKind::Ministry);
        assert_eq!(
            field_of(check_destination(&a, "ministry", Some(&m))),
            ["to_org_id"]
        );
        let op = org("operator", OrgKind::Operator);
        assert_eq!(
            field_of(check_destination(&a, "operator", Some(&op))),
            ["to_org_id"]
        );
        assert_eq!(
            field_of(check_destination(&a, "nowhere", None)),
            ["to_org_id"]
        );
    }

    #[test]
    fn only_the_owners_records_without_a_transfer_are_offered() {
        let mine = rec(1, "a");
        let ids = [1, 2, 3];
        let ok = [Some(mine.clone()), Some(rec(2, "a")), Some(rec(3, "a"))];
        assert_eq!(check_offerable("a", &ok, &ids, true), Ok(()));
        assert_eq!(
            check_offerable("b", &ok, &ids, true),
            Err(Refusal::NotOwner)
        );
        assert_eq!(
            check_offerable("b", &ok, &ids, false),
            Err(Refusal::NotFound)
        );
        assert_eq!(
            check_offerable("a", &[None], &[1], true),
            Err(Refusal::NotFound)
        );
        // Siblings: not found and another's are one answer; duplicates are named.
        let bad = [
            Some(mine.clone()),
            None,
            Some(rec(3, "b")),
            Some(mine.clone()),
        ];
        assert_eq!(
            field_of(check_offerable("a", &bad, &[1, 2, 3, 1], true)),
            ["siblings[0]", "siblings[1]", "siblings[2]"]
        );
        // A record with an open offer, or transferred out.
        let mut pending = rec(2, "a");
        pending.transfer = Some(RecordTransfer {
            transfer_id: 9,
            to_org: "c".into(),
            to_name: "C".into(),
            withhold: vec![],
            confirmed: None,
        });
        assert_eq!(
            check_offerable(
                "a",
                &[Some(mine.clone()), Some(pending.clone())],
                &[1, 2],
                true
            ),
            Err(Refusal::Pending {
                record_id: 2,
                transfer_id: Some(9)
            })
        );
        pending.transfer.as_mut().unwrap().confirmed = Some(ConfirmedTransfer {
            record_id: 77,
            at: 1,
        });
        assert!(matches!(
            check_offerable("a", &[Some(pending)], &[2], true),
            Err(Refusal::TransferredOut {
                new_record_id: 77,
                ..
            })
        ));
    }

    #[test]
    fn each_step_is_one_partys_while_pending() {
        let mut t = StoredTransfer {
            id: 1,
            pref_code: 13,
            from_org: "a".into(),
            to_org: "b".into(),
            status: TransferStatus::Pending,
            message: String::new(),
            withhold: vec![],
            offered_at: 0,
            offered_by: String::new(),
            decided_at: None,
            decided_by: None,
            reason: None,
            records: vec![TransferRecordRow {
                record_id: 1,
                new_record_id: None,
            }],
        };
        assert_eq!(check_step(&t, "b", Step::Confirm), Ok(()));
        assert_eq!(check_step(&t, "b", Step::Decline), Ok(()));
        assert_eq!(check_step(&t, "a", Step::Withdraw), Ok(()));
        assert_eq!(
            check_step(&t, "a", Step::Confirm),
            Err(Refusal::OtherParty(Step::Confirm))
        );
        assert_eq!(
            check_step(&t, "b", Step::Withdraw),
            Err(Refusal::OtherParty(Step::Withdraw))
        );
        assert_eq!(check_step(&t, "c", Step::Confirm), Err(Refusal::NotFound));
        assert!(is_party(&t, "a") && is_party(&t, "b") && !is_party(&t, "c"));
        t.status = TransferStatus::Withdrawn;
        assert_eq!(
            check_step(&t, "b", Step::Confirm),
            Err(Refusal::Decided(TransferStatus::Withdrawn))
        );
        assert_eq!(age_secs(5_000_000, 1_000_000), 4);
    }
}
