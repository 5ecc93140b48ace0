//! Domain rules without I/O: who may write, what a record's list columns are, whom a change
//! notifies. The service layer calls these and does the I/O.

use tsunagu_record::normalize::search_key;
use tsunagu_record::restrict::Field;
use tsunagu_record::{OrgKind, RecordBody, Restrictions, Role};

use crate::orgs::{Org, OrgDirectory};
use crate::storage::RecordColumns;

/// Whether a person may create and change records of their own organisation.
pub fn may_write_records(role: Role, org: &Org) -> bool {
    matches!(role, Role::Staff | Role::Supervisor | Role::OrgAdmin)
        && matches!(org.kind, OrgKind::Cgc | OrgKind::Municipality)
}

/// Whether a person may read case content at all (the operator never does).
pub fn may_read_records(role: Role) -> bool {
    role != Role::Operator
}

/// The list and filter columns derived from a body.
pub fn columns(body: &RecordBody, restrictions: &Restrictions) -> RecordColumns {
    let c = &body.core;
    let name = &c.child_name;
    RecordColumns {
        status: body
            .admin
            .status
            .unwrap_or(tsunagu_record::CaseStatus::Open)
            .code()
            .to_string(),
        case_number: body.admin.case_number.trim().to_string(),
        municipality_code: c.address.municipality_code.trim().to_string(),
        serious: body.admin.serious_case,
        missing: body.admin.missing,
        risk_level: body.casework.risk.map(|r| r.level.code().to_string()),
        // '9999-12-31' sorts "no review date" last without NULL ordering differences.
        next_review: body
            .casework
            .next_review
            .map(|d| d.to_string())
            .unwrap_or_else(|| "9999-12-31".to_string()),
        address_restricted: restrictions.field(Field::CoreAddress),
        casework_restricted: restrictions.group(tsunagu_record::restrict::Group::Casework),
        name_key: search_key(&format!("{}{}", name.family, name.given)),
        kana_key: search_key(&format!(
            "{}{}",
            name.family_kana.as_deref().unwrap_or(""),
            name.given_kana.as_deref().unwrap_or("")
        )),
        birth_date: c.birth_date.map(|b| b.date.to_string()).unwrap_or_default(),
    }
}

/// Organisations told about a change made by `actor` to a record: a municipality's change goes
/// to its centre; a centre's change goes to the municipality of the child's address when that
/// municipality is in the centre's jurisdiction (one outside it could not open the record, so a
/// notice would only tell it that the record exists). The owner is told when someone else
/// changed its record. The actor itself never is.
pub fn recipients(actor: &Org, owner: &Org, body: &RecordBody, dir: &OrgDirectory) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    match actor.kind {
        OrgKind::Municipality => out.extend(actor.cgc_id.clone()),
        OrgKind::Cgc => {
            if let Some(m) = body
                .address_municipality()
                .and_then(|code| dir.by_lgcode(code))
            {
                if crate::tier::are_partners(actor, m) {
                    out.push(m.id.clone());
                }
            }
        }
        OrgKind::Ministry | OrgKind::Operator => {}
    }
    if owner.id != actor.id {
        out.push(owner.id.clone());
    }
    out.retain(|id| id != &actor.id);
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::OrgRow;

    fn dir() -> OrgDirectory {
        let row = |id: &str, kind: &str, pref: i64, lg: Option<&str>, cgc: Option<&str>| OrgRow {
            id: id.into(),
            kind: kind.into(),
            name: id.into(),
            pref_code: pref,
            lgcode: lg.map(Into::into),
            phone: "0".into(),
            cgc_id: cgc.map(Into::into),
        };
        OrgDirectory::from_rows(vec![
            row("cgc-13-01", "cgc", 13, None, None),
            row(
                "muni-131016",
                "municipality",
                13,
                Some("131016"),
                Some("cgc-13-01"),
            ),
            row(
                "muni-131024",
                "municipality",
                13,
                Some("131024"),
                Some("cgc-13-01"),
            ),
        ])
        .unwrap()
    }

    #[test]
    fn municipality_change_notifies_its_centre_and_centre_change_the_address_municipality() {
        let d = dir();
        let cgc = d.get("cgc-13-01").unwrap();
        let m1 = d.get("muni-131016").unwrap();
        let mut body = RecordBody::default();
        body.core.address.municipality_code = "131024".into();
        assert_eq!(recipients(m1, m1, &body, &d), vec!["cgc-13-01"]);
        assert_eq!(recipients(cgc, cgc, &body, &d), vec!["muni-131024"]);
        // A centre's change to a record whose child lives in no known municipality: nobody.
        body.core.address.municipality_code = "999999".into();
        assert!(recipients(cgc, cgc, &body, &d).is_empty());
        // Never the actor itself.
        body.core.address.municipality_code = "131016".into();
        assert_eq!(recipients(m1, m1, &body, &d), vec!["cgc-13-01"]);
    }

    #[test]
    fn columns_fold_names_for_search_and_sort_missing_review_last() {
        let mut body = RecordBody::default();
        body.core.child_name.family = "山田".into();
        body.core.child_name.given = "花子".into();
        body.core.child_name.family_kana = Some("やまだ".into());
        body.core.child_name.given_kana = Some("ﾊﾅｺ".into());
        let c = columns(&body, &Restrictions::default());
        assert_eq!(c.name_key, "山田花子");
        assert_eq!(c.kana_key, "ヤマダハナコ");
        assert_eq!(c.next_review, "9999-12-31");
        assert_eq!(c.status, "open");
        assert!(!c.address_restricted);
    }
}
