//! Who sees what: the one place where the tier of a viewer for a record is decided, and where the
//! record is projected into the type of that tier. Each view type has no field for what its tier
//! may not see, so nothing can be forgotten here and blanked later.

use chrono::{DateTime, Utc};
use tsunagu_record::api::{CaseSummary, RowMeta, VersionEntry, VersionWritten};
use tsunagu_record::restrict::{Field, Group};
use tsunagu_record::transfer::{Provenance, TransferParty, TransferredTo};
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
    /// Destination of a pending transfer, if any, or of the confirmed transfer that moved the
    /// record out (the origin's record stays readable to it as far as was provided).
    pub transfer_to: Option<&'a str>,
}

/// The facts of a stored record, from its row.
pub fn facts(r: &StoredRecord) -> RecordFacts<'_> {
    RecordFacts {
        serious: r.body.admin.serious_case,
        transfer_to: r.transfer.as_ref().map(|t| t.to_org.as_str()),
    }
}

/// What a transfer of the record provides: the owner's restrictions and, beyond them, the
/// fields the offer withholds. With no transfer, the owner's restrictions.
pub fn provided(r: &StoredRecord) -> Restrictions {
    let mut rs = r.restrictions.clone();
    if let Some(t) = &r.transfer {
        rs.fields.extend(t.withhold.iter().copied());
    }
    rs.normalised()
}

/// The restrictions `tier` sees the record under: for the destination of its transfer, what
/// the transfer provides; for every other tier, the owner's.
pub fn restrictions_seen(tier: Tier, r: &StoredRecord) -> std::borrow::Cow<'_, Restrictions> {
    if tier == Tier::Transfer {
        std::borrow::Cow::Owned(provided(r))
    } else {
        std::borrow::Cow::Borrowed(&r.restrictions)
    }
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

fn party(org_id: &str, name: &str) -> TransferParty {
    TransferParty {
        org_id: org_id.to_string(),
        name: name.to_string(),
    }
}

fn meta(r: &StoredRecord) -> RecordMeta {
    RecordMeta {
        version: r.version,
        created_at: time(r.created_at),
        created_by: r.created_by.clone(),
        updated_at: time(r.updated_at),
        updated_by: r.updated_by.clone(),
        provenance: r.provenance.as_ref().map(|p| Provenance {
            transfer_id: p.transfer_id,
            origin: party(&p.origin_org, &p.origin_name),
            origin_record_id: p.origin_record_id,
            transferred_at: time(p.at),
        }),
        transferred_to: r.transfer.as_ref().and_then(|t| {
            t.confirmed.map(|c| TransferredTo {
                transfer_id: t.transfer_id,
                destination: party(&t.to_org, &t.to_name),
                record_id: c.record_id,
                transferred_at: time(c.at),
            })
        }),
    }
}

/// Projects a record for a tier; `None` for [`Tier::None`]. The destination of the record's
/// transfer sees it as a partner would under what the transfer provides (the owner's
/// restrictions and what the offer withholds).
pub fn project(tier: Tier, r: &StoredRecord, owner: &Org) -> Option<RecordView> {
    let rs = restrictions_seen(tier, r);
    let view = match tier {
        Tier::Owner => RecordView::Owner(full(r, owner)),
        Tier::Ministry => RecordView::Ministry(full(r, owner)),
        Tier::Partner => RecordView::Partner(shared(r, owner, &rs)),
        Tier::Transfer => RecordView::Transfer(shared(r, owner, &rs)),
        Tier::Outside => RecordView::Outside(OutsideRecord {
            id: r.id,
            owner: owner.contact(),
            core: shared_core(r, &rs),
            family: shared_family(r, &rs),
        }),
        Tier::None => return None,
    };
    Some(view)
}

/// The body a confirmed transfer registers for the destination: exactly what the transfer
/// provides, read from the destination's own projection (a withheld part is left empty), so
/// nothing the destination could not read while deciding reaches its record.
pub fn provided_body(r: &StoredRecord, owner: &Org) -> tsunagu_record::RecordBody {
    use tsunagu_record::schema::{AdminInput, Casework, Core, Family};
    let Some(RecordView::Transfer(s)) = project(Tier::Transfer, r, owner) else {
        unreachable!("the transfer tier always projects a shared record")
    };
    fn take<T: Default>(v: Visible<T>) -> T {
        match v {
            Visible::Shown(t) => t,
            Visible::Withheld { .. } => T::default(),
        }
    }
    let core = Core {
        child_name: s.core.child_name,
        sex: s.core.sex,
        birth_date: s.core.birth_date,
        address: take(s.core.address),
        guardians: s.core.guardians,
    };
    let family = match s.family {
        Visible::Shown(f) => Family {
            guardian_workplace: take(f.guardian_workplace),
            household: take(f.household),
            schooling: take(f.schooling),
            upbringing: take(f.upbringing),
            welfare_services: take(f.welfare_services),
        },
        Visible::Withheld { .. } => Family::default(),
    };
    let casework = match s.casework {
        Visible::Shown(c) => Casework {
            interview: take(c.interview),
            investigation: take(c.investigation),
            findings: take(c.findings),
            support_plan: take(c.support_plan),
            progress: take(c.progress),
            risk: c.risk,
            next_review: c.next_review,
            attachments: take(c.attachments),
        },
        Visible::Withheld { .. } => Casework::default(),
    };
    let admin = match s.admin {
        Visible::Shown(a) => AdminInput {
            case_number: a.case_number,
            status: a.status,
            consultation_type: a.consultation_type,
            intake_reports: take(a.intake_reports),
            serious_case: a.serious_case,
            missing: a.missing,
        },
        Visible::Withheld { .. } => AdminInput::default(),
    };
    tsunagu_record::RecordBody {
        core,
        family,
        casework,
        admin,
    }
}

/// Whether the intakes linked to a record travel with it to the destination of its transfer:
/// only where the destination reads them while deciding (their casework is provided).
pub fn intakes_travel(r: &StoredRecord) -> bool {
    !casework_withheld(Tier::Transfer, &provided(r))
}

/// Which child a transfer's record is, for a list of transfers: the child's name wherever the
/// viewer has a tier for the record (every tier shows `core`), else nothing.
pub fn transfer_child(tier: Tier, r: &StoredRecord) -> Option<tsunagu_record::schema::PersonName> {
    (tier != Tier::None).then(|| r.body.core.child_name.clone())
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

fn shared_core(r: &StoredRecord, rs: &Restrictions) -> SharedCore {
    let c = &r.body.core;
    SharedCore {
        child_name: c.child_name.clone(),
        sex: c.sex,
        birth_date: c.birth_date,
        address: Visible::unless(rs.field(Field::CoreAddress), c.address.clone()),
        guardians: c.guardians.clone(),
    }
}

fn shared_family(r: &StoredRecord, rs: &Restrictions) -> Visible<SharedFamily> {
    let f = &r.body.family;
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

fn shared(r: &StoredRecord, owner: &Org, rs: &Restrictions) -> tsunagu_record::views::SharedRecord {
    let cw = &r.body.casework;
    let adm = &r.body.admin;
    tsunagu_record::views::SharedRecord {
        id: r.id,
        owner: owner.contact(),
        core: shared_core(r, rs),
        family: shared_family(r, rs),
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
///
/// Each entry's `changes` compares it with the entry before as the viewer sees both (the first
/// has none): a field the viewer sees, with its values from the two projections; a field it
/// may not see, named as withheld at what is withheld (`casework.findings`, `family`), and only
/// where the metadata is shown. Where it is withheld, a withheld change would tell what the
/// collapsed entries hide, so none is named.
pub fn history(
    tier: Tier,
    current: &StoredRecord,
    owner: &Org,
    versions: Vec<VersionRow>,
) -> Vec<VersionEntry> {
    let hide_meta = casework_withheld(tier, &restrictions_seen(tier, current));
    let mut out: Vec<VersionEntry> = Vec::new();
    // The entry before, as compared: the viewer's projection and the body behind it.
    let mut prev: Option<(serde_json::Value, tsunagu_record::RecordBody)> = None;
    for ver in versions {
        let restrictions = if tier == Tier::Owner {
            ver.restrictions
        } else {
            current.restrictions.clone()
        };
        // The version as a row of its own: the destination of a transfer sees every version
        // under what the transfer provides (`project` adds the offer's withheld fields).
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
        let seen = comparable(&record);
        let changes = match &prev {
            None => Vec::new(),
            Some((before, body)) => {
                changes(before, &seen, (!hide_meta).then_some((body, &as_rec.body)))
            }
        };
        prev = Some((seen, as_rec.body));
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
            changes,
        });
    }
    out
}

/// What stands for a withheld part in [`comparable`]: a key no record can hold (validation and
/// the JSON parser refuse control characters).
const WITHHELD: &str = "\u{0}withheld";

/// A projection as compared between versions: `Visible` unwrapped, a withheld part a marker,
/// and what is not the record's content (tier, id, owner, metadata) left out. Relies on no
/// part of a record being an object whose only key is `shown` or `withheld`.
fn comparable(view: &RecordView) -> serde_json::Value {
    use serde_json::Value;
    fn unwrap(v: Value) -> Value {
        match v {
            Value::Object(m) if m.len() == 1 && m.contains_key("shown") => {
                unwrap(m.into_iter().next().map(|(_, v)| v).unwrap_or_default())
            }
            Value::Object(m) if m.len() == 1 && m.contains_key("withheld") => {
                serde_json::json!({ WITHHELD: true })
            }
            Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, unwrap(v))).collect()),
            Value::Array(a) => Value::Array(a.into_iter().map(unwrap).collect()),
            other => other,
        }
    }
    let mut v = serde_json::to_value(view).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        for k in ["tier", "id", "owner", "meta"] {
            m.remove(k);
        }
    }
    let mut v = unwrap(v);
    if let Some(admin) = v.get_mut("admin").and_then(|a| a.as_object_mut()) {
        admin.remove("meta");
    }
    v
}

fn holds_withheld(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Object(m) => m.contains_key(WITHHELD) || m.values().any(holds_withheld),
        serde_json::Value::Array(a) => a.iter().any(holds_withheld),
        _ => false,
    }
}

/// Where `field` of the body is withheld in `seen` (a [`comparable`] projection): the path of
/// the withheld part, or of the group the tier's type has no field for; `None` if it is shown.
fn withheld_at(seen: &serde_json::Value, field: &str) -> Option<String> {
    use tsunagu_record::diff::{steps, Step};
    let mut cur = seen;
    let mut path = String::new();
    for (depth, step) in steps(field)?.into_iter().enumerate() {
        if cur.get(WITHHELD).is_some() {
            return Some(path);
        }
        match step {
            Step::Key(k) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&k);
                match cur.get(k.as_str()) {
                    Some(next) => cur = next,
                    // A group the tier's type does not have (an outside centre's casework).
                    // Deeper, an absent key is a value left out when empty: shown.
                    None if depth == 0 => return Some(path),
                    None => return None,
                }
            }
            Step::Index(i) => {
                path.push_str(&format!("[{i}]"));
                match cur.get(i) {
                    Some(next) => cur = next,
                    None => return None,
                }
            }
        }
    }
    cur.get(WITHHELD).is_some().then_some(path)
}

/// The changes from one history entry to the next as the viewer sees them. `bodies` (the
/// versions' bodies) is given only where withheld changes may be named.
fn changes(
    before: &serde_json::Value,
    after: &serde_json::Value,
    bodies: Option<(&tsunagu_record::RecordBody, &tsunagu_record::RecordBody)>,
) -> Vec<tsunagu_record::diff::FieldChange> {
    use tsunagu_record::diff::{diff, diff_values, FieldChange};
    let mut out: Vec<FieldChange> = Vec::new();
    let mut withheld: Vec<String> = Vec::new();
    for c in diff_values(before, after) {
        if c.before.as_ref().is_some_and(holds_withheld)
            || c.after.as_ref().is_some_and(holds_withheld)
        {
            // Shown in one and withheld in the other cannot happen (one set of restrictions
            // applies to every past version); if it did, no value would leave.
            if bodies.is_some() && !withheld.contains(&c.field) {
                withheld.push(c.field);
            }
            continue;
        }
        out.push(c);
    }
    if let Some((b, a)) = bodies {
        for c in diff(b, a) {
            let Some(field) =
                withheld_at(after, &c.field).or_else(|| withheld_at(before, &c.field))
            else {
                continue;
            };
            if !withheld.contains(&field) {
                withheld.push(field);
            }
        }
    }
    out.extend(withheld.into_iter().map(FieldChange::withheld));
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

    /// Versions of a centre's record changing the findings, then the address and upbringing,
    /// seen by a partner municipality (findings restricted), the same partner once casework is
    /// restricted, and an outside centre.
    #[test]
    fn history_changes_follow_the_tier() {
        let cgc = org("cgc-13-01", OrgKind::Cgc, 13, None);
        let mut body = tsunagu_record::RecordBody::default();
        body.casework.findings = "所見1".into();
        body.family.upbringing = "養育1".into();
        body.core.address.street = "住所1".into();
        let mut v2 = body.clone();
        v2.casework.findings = "所見2".into();
        let mut v3 = v2.clone();
        v3.core.address.street = "住所2".into();
        v3.family.upbringing = "養育2".into();
        let row = |version: i64, body: &tsunagu_record::RecordBody| VersionRow {
            version,
            at: version,
            author: "職員".into(),
            restrictions: Restrictions::default(),
            body: body.clone(),
        };
        let versions = vec![row(1, &body), row(2, &v2), row(3, &v3)];
        let mut current = StoredRecord {
            id: 13_000_000_000_001,
            pref_code: 13,
            owner_org: cgc.id.clone(),
            version: 3,
            created_at: 1,
            created_by: "職員".into(),
            updated_at: 3,
            updated_by: "職員".into(),
            restrictions: Restrictions::default(),
            body: v3.clone(),
            transfer: None,
            provenance: None,
        };
        current.restrictions.fields.push(Field::Findings);
        let named = |h: &[VersionEntry]| -> Vec<Vec<(String, bool)>> {
            h.iter()
                .map(|e| {
                    e.changes
                        .iter()
                        .map(|c| (c.field.clone(), c.withheld))
                        .collect()
                })
                .collect()
        };
        let s = |f: &str, w: bool| (f.to_string(), w);

        let h = history(Tier::Owner, &current, &cgc, versions.clone());
        assert_eq!(
            named(&h),
            [
                vec![],
                vec![s("casework.findings", false)],
                vec![
                    s("core.address.street", false),
                    s("family.upbringing", false)
                ]
            ]
        );
        assert_eq!(h[1].changes[0].before, Some(serde_json::json!("所見1")));

        let h = history(Tier::Partner, &current, &cgc, versions.clone());
        assert_eq!(
            named(&h),
            [
                vec![],
                vec![s("casework.findings", true)],
                vec![
                    s("core.address.street", false),
                    s("family.upbringing", false)
                ]
            ]
        );
        assert_eq!(
            (&h[1].changes[0].before, &h[1].changes[0].after),
            (&None, &None)
        );

        // Without the metadata: the findings' version is not shown, and not named.
        current.restrictions.groups.push(Group::Casework);
        for t in [Tier::Partner, Tier::Outside] {
            let h = history(t, &current, &cgc, versions.clone());
            assert_eq!(
                named(&h),
                [
                    vec![],
                    vec![
                        s("core.address.street", false),
                        s("family.upbringing", false)
                    ]
                ],
                "{t:?}"
            );
        }
        current.restrictions.groups.push(Group::Family);
        let h = history(Tier::Outside, &current, &cgc, versions);
        assert_eq!(named(&h), [vec![], vec![s("core.address.street", false)]]);
    }

    /// The destination of a transfer reads the record under the owner's restrictions and what
    /// the offer withholds, and a confirmation registers exactly that: never a withheld part.
    #[test]
    fn a_transfer_provides_what_the_owner_does_not_restrict_or_withhold() {
        use crate::storage::{ConfirmedTransfer, RecordTransfer};
        let owner = org("muni-a", OrgKind::Municipality, 13, Some("cgc-13-01"));
        let dest = org("muni-far", OrgKind::Municipality, 27, Some("cgc-27-01"));
        let mut body = tsunagu_record::RecordBody::default();
        body.core.address.street = "住所".into();
        body.family.upbringing = "養育".into();
        body.family.guardian_workplace = "勤務先".into();
        body.casework.findings = "所見".into();
        body.casework.interview = "面接".into();
        body.casework.progress = vec![tsunagu_record::schema::ProgressEntry::new(
            chrono::NaiveDate::from_ymd_opt(2026, 1, 10).unwrap(),
            "経過",
        )];
        body.admin.case_number = "R8-1".into();
        let mut r = StoredRecord {
            id: 13_000_000_000_001,
            pref_code: 13,
            owner_org: owner.id.clone(),
            version: 1,
            created_at: 1,
            created_by: "職員".into(),
            updated_at: 1,
            updated_by: "職員".into(),
            restrictions: Restrictions {
                groups: vec![],
                fields: vec![Field::CoreAddress],
                reason: "DV".into(),
            },
            body,
            transfer: None,
            provenance: None,
        };
        // No transfer: the would-be destination has no tier.
        assert_eq!(decide(&dest, &owner, facts(&r)), Tier::None);
        r.transfer = Some(RecordTransfer {
            transfer_id: 7,
            to_org: dest.id.clone(),
            to_name: dest.name.clone(),
            withhold: vec![Field::Findings, Field::Upbringing],
            confirmed: None,
        });
        assert_eq!(decide(&dest, &owner, facts(&r)), Tier::Transfer);
        let seen = serde_json::to_string(&project(Tier::Transfer, &r, &owner).unwrap()).unwrap();
        for shown in ["勤務先", "面接", "経過", "R8-1"] {
            assert!(seen.contains(shown), "{shown} missing: {seen}");
        }
        for withheld in ["住所", "養育", "所見"] {
            assert!(!seen.contains(withheld), "{withheld} leaked: {seen}");
        }
        // A partner of the owner still sees what the offer withholds (not the owner's restriction).
        let partner = org("cgc-13-01", OrgKind::Cgc, 13, None);
        let p = serde_json::to_string(&project(Tier::Partner, &r, &partner).unwrap()).unwrap();
        assert!(p.contains("所見") && !p.contains("住所"), "{p}");
        // The registered body is the same, with withheld parts empty.
        let b = provided_body(&r, &owner);
        assert_eq!(b.core.address, Default::default());
        assert_eq!(
            (b.family.upbringing.as_str(), b.casework.findings.as_str()),
            ("", "")
        );
        assert_eq!(b.family.guardian_workplace, "勤務先");
        assert_eq!(b.casework.progress, r.body.casework.progress);
        assert_eq!(b.admin.case_number, "R8-1");
        assert!(intakes_travel(&r));
        // Casework withheld altogether: no intake travels, the admin part stays behind too.
        r.restrictions.groups.push(Group::Casework);
        let b = provided_body(&r, &owner);
        assert_eq!(b.casework, Default::default());
        assert_eq!(b.admin, Default::default());
        assert!(!intakes_travel(&r));
        // Confirmed: the origin's record stays readable to the destination as provided, and
        // says where it went.
        r.transfer.as_mut().unwrap().confirmed = Some(ConfirmedTransfer {
            record_id: 27_000_000_000_001,
            at: 5,
        });
        assert_eq!(decide(&dest, &owner, facts(&r)), Tier::Transfer);
        let Some(RecordView::Owner(full)) = project(Tier::Owner, &r, &owner) else {
            panic!()
        };
        let to = full.meta.transferred_to.unwrap();
        assert_eq!(
            (to.record_id, to.destination.org_id.as_str()),
            (27_000_000_000_001, "muni-far")
        );
    }

    #[test]
    fn a_body_field_is_withheld_where_its_projection_is() {
        let seen = serde_json::json!({
            "core": { "address": { WITHHELD: true }, "guardians": [{ "name": "x" }] },
            "family": { WITHHELD: true }
        });
        assert_eq!(
            withheld_at(&seen, "core.address.street"),
            Some("core.address".into())
        );
        assert_eq!(
            withheld_at(&seen, "family.household[2].name"),
            Some("family".into())
        );
        assert_eq!(
            withheld_at(&seen, "casework.findings"),
            Some("casework".into()),
            "a group the type lacks"
        );
        assert_eq!(withheld_at(&seen, "core.guardians[0].name"), None);
        assert_eq!(
            withheld_at(&seen, "core.guardians[5]"),
            None,
            "an entry one version lacks is shown"
        );
        assert_eq!(
            withheld_at(&seen, "core.guardians[0].relationship"),
            None,
            "a value left out when empty"
        );
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
