//! Who sees what: the one place where the tier of a viewer for a record is decided, and where the
//! record is projected into the type of that tier. Each view type has no field for what its tier
//! may not see, so nothing can be forgotten here and blanked later.

use chrono::{DateTime, Utc};
use tsunagu_record::api::{CaseSummary, RowMeta, VersionEntry, VersionWritten};
use tsunagu_record::restrict::{Field, Group};
use tsunagu_record::views::{
    FullRecord, OutsideRecord, RecordMeta, RecordView, SharedAdmin, SharedCasework, SharedCore,
    SharedFamily, Visible, WithheldReason,
};
use tsunagu_record::{OrgKind, Restrictions};

use crate::orgs::Org;
use crate::storage::{StoredRecord, VersionRow};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    Owner,
    Partner,
    Outside,
    Ministry,
    Transfer,
    None,
}

impl Tier {
    pub fn name(self) -> &'static str {
        match self {
            Tier::Owner => "owner",
            Tier::Partner => "partner",
            Tier::Outside => "outside",
            Tier::Ministry => "ministry",
            Tier::Transfer => "transfer",
            Tier::None => "none",
        }
    }
}

/// What the decision needs to know of the record besides its owner.
#[derive(Debug, Clone, Copy)]
pub struct RecordFacts<'a> {
    pub serious: bool,
    /// Destination of a pending transfer, if any.
    pub transfer_to: Option<&'a str>,
}

/// Whether `a` and `b` are partners: a centre and a municipality of its jurisdiction (either way
/// round), or two centres of the same prefecture.
pub fn are_partners(a: &Org, b: &Org) -> bool {
    match (a.kind, b.kind) {
        (OrgKind::Cgc, OrgKind::Municipality) => b.cgc_id.as_deref() == Some(a.id.as_str()),
        (OrgKind::Municipality, OrgKind::Cgc) => a.cgc_id.as_deref() == Some(b.id.as_str()),
        (OrgKind::Cgc, OrgKind::Cgc) => a.pref_code == b.pref_code && a.id != b.id,
        _ => false,
    }
}

/// The tier of `viewer` for a record owned by `owner`. Exactly one applies; the order below is
/// the precedence when several conditions hold (a partner that is also a transfer destination
/// already sees at least as much as a destination).
pub fn decide(viewer: &Org, owner: &Org, facts: RecordFacts<'_>) -> Tier {
    if viewer.id == owner.id {
        return Tier::Owner;
    }
    if are_partners(viewer, owner) {
        return Tier::Partner;
    }
    if facts.transfer_to == Some(viewer.id.as_str()) {
        return Tier::Transfer;
    }
    match viewer.kind {
        OrgKind::Cgc => {
            let other_prefecture = owner.pref_code != viewer.pref_code;
            let own_prefecture_municipality = owner.kind == OrgKind::Municipality;
            if other_prefecture || own_prefecture_municipality {
                Tier::Outside
            } else {
                Tier::None
            }
        }
        OrgKind::Ministry if facts.serious => Tier::Ministry,
        _ => Tier::None,
    }
}

fn time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

fn meta(r: &StoredRecord) -> RecordMeta {
    RecordMeta {
        version: r.version,
        created_at: time(r.created_at),
        created_by: r.created_by.clone(),
        updated_at: time(r.updated_at),
        updated_by: r.updated_by.clone(),
    }
}

/// Projects a record for a tier; `None` for [`Tier::None`].
pub fn project(tier: Tier, r: &StoredRecord, owner: &Org) -> Option<RecordView> {
    let view = match tier {
        Tier::Owner => RecordView::Owner(full(r, owner)),
        Tier::Ministry => RecordView::Ministry(full(r, owner)),
        Tier::Partner => RecordView::Partner(shared(r, owner)),
        Tier::Transfer => RecordView::Transfer(shared(r, owner)),
        Tier::Outside => RecordView::Outside(OutsideRecord {
            id: r.id,
            owner: owner.contact(),
            core: shared_core(r),
            family: shared_family(r),
        }),
        Tier::None => return None,
    };
    Some(view)
}

fn full(r: &StoredRecord, owner: &Org) -> FullRecord {
    FullRecord {
        id: r.id,
        owner: owner.contact(),
        meta: meta(r),
        core: r.body.core.clone(),
        family: r.body.family.clone(),
        casework: r.body.casework.clone(),
        admin: r.body.admin.clone(),
        restrictions: r.restrictions.clone(),
    }
}

fn group_visible<T>(rs: &Restrictions, g: Group, build: impl FnOnce() -> T) -> Visible<T> {
    if rs.group(g) {
        Visible::Withheld {
            reason: WithheldReason::OwnerRestriction,
        }
    } else {
        Visible::Shown(build())
    }
}

fn shared_core(r: &StoredRecord) -> SharedCore {
    let c = &r.body.core;
    let rs = &r.restrictions;
    SharedCore {
        child_name: c.child_name.clone(),
        sex: c.sex,
        birth_date: c.birth_date,
        address: Visible::unless(rs.field(Field::CoreAddress), c.address.clone()),
        guardians: c.guardians.clone(),
    }
}

fn shared_family(r: &StoredRecord) -> Visible<SharedFamily> {
    let f = &r.body.family;
    let rs = &r.restrictions;
    group_visible(rs, Group::Family, || SharedFamily {
        guardian_workplace: Visible::unless(
            rs.field(Field::GuardianWorkplace),
            f.guardian_workplace.clone(),
        ),
        household: Visible::unless(rs.field(Field::Household), f.household.clone()),
        schooling: Visible::unless(rs.field(Field::Schooling), f.schooling.clone()),
        upbringing: Visible::unless(rs.field(Field::Upbringing), f.upbringing.clone()),
        welfare_services: Visible::unless(
            rs.field(Field::WelfareServices),
            f.welfare_services.clone(),
        ),
    })
}

fn shared(r: &StoredRecord, owner: &Org) -> tsunagu_record::views::SharedRecord {
    let rs = &r.restrictions;
    let cw = &r.body.casework;
    let adm = &r.body.admin;
    tsunagu_record::views::SharedRecord {
        id: r.id,
        owner: owner.contact(),
        core: shared_core(r),
        family: shared_family(r),
        casework: group_visible(rs, Group::Casework, || SharedCasework {
            interview: Visible::unless(rs.field(Field::Interview), cw.interview.clone()),
            investigation: Visible::unless(
                rs.field(Field::Investigation),
                cw.investigation.clone(),
            ),
            findings: Visible::unless(rs.field(Field::Findings), cw.findings.clone()),
            support_plan: Visible::unless(rs.field(Field::SupportPlan), cw.support_plan.clone()),
            progress: Visible::unless(rs.field(Field::Progress), cw.progress.clone()),
            risk: cw.risk,
            next_review: cw.next_review,
            attachments: Visible::unless(rs.field(Field::Attachments), cw.attachments.clone()),
        }),
        // `admin` beyond the owner's contact follows `casework`.
        admin: group_visible(rs, Group::Casework, || SharedAdmin {
            case_number: adm.case_number.clone(),
            status: adm.status,
            consultation_type: adm.consultation_type,
            intake_reports: Visible::unless(
                rs.field(Field::IntakeReports),
                adm.intake_reports.clone(),
            ),
            serious_case: adm.serious_case,
            missing: adm.missing,
            meta: meta(r),
        }),
    }
}

/// Whether `tier` is kept from the record's casework and with it from its metadata (version,
/// times, authors, and the case number, status, risk and next review of a list row): the
/// rule behind every projection, list order and filter. An outside centre never sees them; a
/// partner does not when the owner restricted casework.
pub fn casework_withheld(tier: Tier, restrictions: &Restrictions) -> bool {
    match tier {
        Tier::Owner | Tier::Ministry => false,
        Tier::Partner | Tier::Transfer => restrictions.group(Group::Casework),
        Tier::Outside | Tier::None => true,
    }
}

/// The history of a record for a tier, oldest first; empty for [`Tier::None`]. Past versions
/// are shown under today's restrictions (restricting a field now also withholds what it held
/// before). Where the metadata is withheld, so are each version's number, time and author, and
/// consecutive versions that look the same to the viewer are shown once: otherwise the list
/// would tell how often the hidden parts changed.
pub fn history(
    tier: Tier,
    current: &StoredRecord,
    owner: &Org,
    versions: Vec<VersionRow>,
) -> Vec<VersionEntry> {
    let hide_meta = casework_withheld(tier, &current.restrictions);
    let mut out: Vec<VersionEntry> = Vec::new();
    for ver in versions {
        let restrictions = if tier == Tier::Owner {
            ver.restrictions
        } else {
            current.restrictions.clone()
        };
        let as_rec = StoredRecord {
            version: ver.version,
            updated_at: ver.at,
            updated_by: ver.author.clone(),
            restrictions,
            body: ver.body,
            ..current.clone()
        };
        let Some(record) = project(tier, &as_rec, owner) else {
            continue;
        };
        if hide_meta && out.last().is_some_and(|prev| prev.record == record) {
            continue;
        }
        out.push(VersionEntry {
            written: Visible::unless(
                hide_meta,
                VersionWritten {
                    version: ver.version,
                    at: time(ver.at),
                    author: ver.author,
                },
            ),
            record,
        });
    }
    out
}

/// One row of a case list. Lists hold the viewer's own, partners' and (for the ministry) serious
/// cases only; any other tier yields nothing.
pub fn summary(tier: Tier, r: &StoredRecord, owner: &Org) -> Option<CaseSummary> {
    if !matches!(tier, Tier::Owner | Tier::Ministry | Tier::Partner) {
        return None;
    }
    let withheld_casework = casework_withheld(tier, &r.restrictions);
    let withheld_address = tier == Tier::Partner && r.restrictions.field(Field::CoreAddress);
    let c = &r.body.core;
    let cw = &r.body.casework;
    let adm = &r.body.admin;
    let cas = |v| Visible::unless(withheld_casework, v);
    Some(CaseSummary {
        id: r.id,
        tier: tier.name().to_string(),
        owner: owner.contact(),
        child_name: c.child_name.clone(),
        sex: c.sex,
        birth_date: c.birth_date,
        municipality_code: Visible::unless(withheld_address, c.address.municipality_code.clone()),
        case_number: Visible::unless(withheld_casework, adm.case_number.clone()),
        status: Visible::unless(
            withheld_casework,
            adm.status.unwrap_or(tsunagu_record::CaseStatus::Open),
        ),
        risk: Visible::unless(withheld_casework, cw.risk),
        next_review: cas(cw.next_review),
        meta: Visible::unless(
            withheld_casework,
            RowMeta {
                version: r.version,
                updated_at: time(r.updated_at),
            },
        ),
    })
}

/// Which child a notification is about, for a reader of `tier`: exactly what that tier's case
/// list row shows of the name and case number; None where the tier has no row.
pub fn notification_subject(
    tier: Tier,
    r: &StoredRecord,
    owner: &Org,
) -> Option<tsunagu_record::api::NotificationSubject> {
    summary(tier, r, owner).map(|s| tsunagu_record::api::NotificationSubject {
        child_name: s.child_name,
        case_number: s.case_number,
    })
}

/// Whether `viewer` may read an intake received by `receiver`: the receiving organisation
/// always; once the intake is linked to a record, whoever sees that record's casework (a
/// report is casework of the child it concerns), with the record's tier and restrictions. An
/// unlinked intake is the receiver's alone, whatever it says about which child.
pub fn intake_readable(
    viewer: &Org,
    receiver: &str,
    linked: Option<(Tier, &Restrictions)>,
) -> bool {
    viewer.id == receiver
        || linked.is_some_and(|(t, r)| t != Tier::None && !casework_withheld(t, r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(id: &str, kind: OrgKind, pref: i64, cgc: Option<&str>) -> Org {
        Org {
            id: id.into(),
            kind,
            name: id.into(),
            pref_code: pref,
            lgcode: None,
            phone: "000".into(),
            cgc_id: cgc.map(Into::into),
        }
    }

    /// The whole table of system.md, one row per pair of organisation roles.
    #[test]
    fn the_tier_table() {
        let cgc_a = org("cgc-13-01", OrgKind::Cgc, 13, None);
        let cgc_b = org("cgc-13-02", OrgKind::Cgc, 13, None);
        let cgc_far = org("cgc-27-01", OrgKind::Cgc, 27, None);
        let muni_a = org("muni-a", OrgKind::Municipality, 13, Some("cgc-13-01"));
        let muni_a2 = org("muni-a2", OrgKind::Municipality, 13, Some("cgc-13-01"));
        let muni_b = org("muni-b", OrgKind::Municipality, 13, Some("cgc-13-02"));
        let muni_far = org("muni-far", OrgKind::Municipality, 27, Some("cgc-27-01"));
        let ministry = org("ministry", OrgKind::Ministry, 0, None);
        let operator = org("operator", OrgKind::Operator, 0, None);
        let plain = RecordFacts {
            serious: false,
            transfer_to: None,
        };
        let serious = RecordFacts {
            serious: true,
            transfer_to: None,
        };

        let cases: &[(&Org, &Org, RecordFacts, Tier)] = &[
            (&cgc_a, &cgc_a, plain, Tier::Owner),
            (&muni_a, &muni_a, plain, Tier::Owner),
            // partners
            (&cgc_a, &muni_a, plain, Tier::Partner),
            (&muni_a, &cgc_a, plain, Tier::Partner),
            (&cgc_a, &cgc_b, plain, Tier::Partner),
            // outside: a centre looking at another prefecture, or at a municipality of its own
            // prefecture outside its jurisdiction
            (&cgc_a, &muni_b, plain, Tier::Outside),
            (&cgc_a, &cgc_far, plain, Tier::Outside),
            (&cgc_a, &muni_far, plain, Tier::Outside),
            (&cgc_far, &muni_a, plain, Tier::Outside),
            // none: a municipality never opens another municipality's record, nor an outside
            // centre's
            (&muni_a, &muni_a2, plain, Tier::None),
            (&muni_a, &muni_b, plain, Tier::None),
            (&muni_a, &muni_far, plain, Tier::None),
            (&muni_a, &cgc_b, plain, Tier::None),
            (&muni_a, &cgc_far, plain, Tier::None),
            // ministry: serious cases only
            (&ministry, &muni_a, plain, Tier::None),
            (&ministry, &muni_a, serious, Tier::Ministry),
            (&ministry, &cgc_far, serious, Tier::Ministry),
            // the operator never reads case content
            (&operator, &muni_a, serious, Tier::None),
            // transfer destination
            (
                &muni_far,
                &muni_a,
                RecordFacts {
                    serious: false,
                    transfer_to: Some("muni-far"),
                },
                Tier::Transfer,
            ),
            (
                &muni_b,
                &muni_a,
                RecordFacts {
                    serious: false,
                    transfer_to: Some("muni-far"),
                },
                Tier::None,
            ),
            // a partner that is also the destination stays a partner
            (
                &cgc_a,
                &muni_a,
                RecordFacts {
                    serious: false,
                    transfer_to: Some("cgc-13-01"),
                },
                Tier::Partner,
            ),
        ];
        for (viewer, owner, facts, want) in cases {
            assert_eq!(
                decide(viewer, owner, *facts),
                *want,
                "{} viewing {}'s record",
                viewer.id,
                owner.id
            );
        }
    }

    #[test]
    fn an_intake_is_read_by_its_receiver_and_by_whoever_sees_the_records_casework() {
        let cgc = org("cgc-13-01", OrgKind::Cgc, 13, None);
        let muni = org("muni-a", OrgKind::Municipality, 13, Some("cgc-13-01"));
        let far = org("cgc-27-01", OrgKind::Cgc, 27, None);
        let ministry = org("ministry", OrgKind::Ministry, 0, None);
        let open = Restrictions::default();
        let mut closed = Restrictions::default();
        closed.groups.push(Group::Casework);
        // Unlinked: the receiver's alone.
        assert!(intake_readable(&muni, "muni-a", None));
        for v in [&cgc, &far, &ministry] {
            assert!(!intake_readable(v, "muni-a", None), "{}", v.id);
        }
        // Linked to a record: by its tier for that record's casework.
        let cases = [
            (Tier::Owner, &closed, true),
            (Tier::Partner, &open, true),
            (Tier::Partner, &closed, false),
            (Tier::Transfer, &open, true),
            (Tier::Outside, &open, false),
            (Tier::Ministry, &open, true),
            (Tier::None, &open, false),
        ];
        for (t, r, want) in cases {
            assert_eq!(intake_readable(&far, "muni-a", Some((t, r))), want, "{t:?}");
        }
    }
}
