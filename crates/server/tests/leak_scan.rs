//! No leak, checked against the tier table: a generated population of records with random owner
//! restrictions and flags, owned across centres and municipalities of two prefectures, read by
//! every kind of organisation through every read endpoint. Each free-text field carries a marker
//! naming its record and field; every response is scanned for markers the viewer may not see,
//! and checked to contain the ones it may (so the scan is known to look at real content).

mod support;

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::json;
use support::{record_json, TestServer, USERS};
use tsunagu_masterdata::orgs as master;

/// Markers per field: (marker prefix, group, restrictable field key).
const MARKERS: &[(&str, &str, &str)] = &[
    ("ADDR", "core", "core.address"),
    ("WORK", "family", "family.guardian_workplace"),
    ("HOUSE", "family", "family.household"),
    ("SCHOOL", "family", "family.schooling"),
    ("UPBRING", "family", "family.upbringing"),
    ("WELFARE", "family", "family.welfare_services"),
    ("INTERVIEW", "casework", "casework.interview"),
    ("INVEST", "casework", "casework.investigation"),
    ("FINDINGS", "casework", "casework.findings"),
    ("PLAN", "casework", "casework.support_plan"),
    ("PROGRESS", "casework", "casework.progress"),
    ("CASE", "admin", ""),
    ("INTAKE", "admin", "admin.intake_reports"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    All,
    Shared,
    Outside,
    Nothing,
}

/// The tier table of system.md, written again here independently of the server's module.
fn oracle(m: &master::OrgMaster, viewer: &str, owner: &str, serious: bool) -> Expect {
    use tsunagu_record::OrgKind::*;
    let v = m.get(viewer).unwrap();
    let o = m.get(owner).unwrap();
    if v.id == o.id {
        return Expect::All;
    }
    let partners = match (v.kind, o.kind) {
        (Cgc, Municipality) => o.cgc_id.as_deref() == Some(&v.id),
        (Municipality, Cgc) => v.cgc_id.as_deref() == Some(&o.id),
        (Cgc, Cgc) => v.pref_code == o.pref_code,
        _ => false,
    };
    match v.kind {
        _ if partners => Expect::Shared,
        Cgc if o.pref_code != v.pref_code || o.kind == Municipality => Expect::Outside,
        Ministry if serious => Expect::All,
        _ => Expect::Nothing,
    }
}

struct Rec {
    id: i64,
    tag: String,
    owner: String,
    serious: bool,
    groups: Vec<&'static str>,
    fields: Vec<&'static str>,
}

impl Rec {
    /// Whether the marker may appear for this expectation.
    fn visible(&self, e: Expect, prefix: &str) -> bool {
        let (_, group, field) = MARKERS.iter().find(|(p, ..)| *p == prefix).unwrap();
        let restricted = self.fields.contains(field)
            || self.groups.contains(group)
            || (*group == "admin" && self.groups.contains(&"casework"));
        match e {
            Expect::All => true,
            Expect::Shared => !restricted,
            Expect::Outside => matches!(*group, "core" | "family") && !restricted,
            Expect::Nothing => false,
        }
    }
}

fn check(text: &str, r: &Rec, e: Expect, what: &str) {
    for (prefix, ..) in MARKERS {
        let marker = format!("{prefix}{}", r.tag);
        let present = text.contains(&marker);
        let allowed = r.visible(e, prefix);
        assert!(
            !present || allowed,
            "{what}: {marker} leaked ({e:?}, groups {:?}, fields {:?})",
            r.groups,
            r.fields
        );
        assert!(
            present || !allowed,
            "{what}: {marker} missing though allowed ({e:?})"
        );
    }
}

both_engines! {
    async fn no_response_carries_what_the_viewer_may_not_see(db) {
        let s = TestServer::start(db).await;
        let m = master::synthetic();
        let mut clients = HashMap::new();
        for (login, org, _) in USERS {
            clients.insert(*org, s.login(login).await);
        }
        let writers = ["cgc-13-01", "cgc-13-02", "muni-131016", "muni-131024", "muni-131211", "cgc-27-01", "muni-271004"];
        let groups_pool = [vec![], vec!["family"], vec!["casework"], vec!["family", "casework"]];
        let fields_pool = [vec![], vec!["core.address"], vec!["family.household", "casework.findings"], vec!["core.address", "admin.intake_reports", "casework.progress"]];
        let mut rng = StdRng::seed_from_u64(7);
        let mut recs = Vec::new();
        for (w, owner) in writers.iter().enumerate() {
            let c = &clients[owner];
            let lgcode = m.get(owner).unwrap().lgcode.clone().unwrap_or_else(|| m.jurisdiction(owner).next().unwrap().lgcode.clone().unwrap());
            for i in 0..6 {
                let tag = format!("Q{w}x{i}Z");
                let mut body = record_json(&lgcode, &tag);
                let serious = rng.gen_bool(0.3);
                body["admin"]["serious_case"] = json!(serious);
                let id = c.create(&body).await;
                let groups = groups_pool[rng.gen_range(0..groups_pool.len())].clone();
                let fields = fields_pool[rng.gen_range(0..fields_pool.len())].clone();
                let (st, v) = c.put(&format!("/api/v1/records/{id}/restrictions"), &json!({ "version": 1, "restrictions": { "groups": groups, "fields": fields, "reason": "テスト" } })).await;
                assert_eq!(st, StatusCode::OK, "{v}");
                recs.push(Rec { id, tag, owner: owner.to_string(), serious, groups, fields });
            }
        }

        let mut checked = HashMap::new();
        for (login, viewer, _) in USERS {
            let c = &clients[viewer];
            let mut listed = Vec::new();
            let (st, list) = c.get("/api/v1/records?limit=200").await;
            if *viewer == "operator" {
                assert_eq!(st, StatusCode::FORBIDDEN);
            } else {
                assert_eq!(st, StatusCode::OK);
                listed = list["items"].as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect();
            }
            let list_text = list.to_string();
            for r in &recs {
                let e = if *viewer == "operator" { Expect::Nothing } else { oracle(&m, viewer, &r.owner, r.serious) };
                *checked.entry(format!("{e:?}")).or_insert(0) += 1;
                let (st, v) = c.get(&format!("/api/v1/records/{}", r.id)).await;
                let text = v.to_string();
                match e {
                    Expect::Nothing => assert!(matches!(st, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN), "{login} on {}: {st}", r.id),
                    _ => assert_eq!(st, StatusCode::OK, "{login} on {}", r.id),
                }
                check(&text, r, e, &format!("{login} GET {}", r.id));
                assert_eq!(text.contains(&format!("花子{}", r.tag)), e != Expect::Nothing, "{login}: child name on {}", r.id);

                let (_, h) = c.get(&format!("/api/v1/records/{}/versions", r.id)).await;
                check(&h.to_string(), r, e, &format!("{login} versions {}", r.id));

                // Lists: own, partners' and (for the ministry) serious cases, and never free text
                // beyond the case number that the tier allows.
                let should_list = matches!(e, Expect::All | Expect::Shared) && *viewer != "operator";
                assert_eq!(listed.contains(&r.id), should_list, "{login} list / {}", r.id);
                for (prefix, ..) in MARKERS {
                    let marker = format!("{prefix}{}", r.tag);
                    let allowed = *prefix == "CASE" && should_list && r.visible(e, "CASE");
                    assert_eq!(list_text.contains(&marker), allowed, "{login} list: {marker}");
                }
            }
            // Inboxes and view logs never carry record content.
            let (_, inbox) = c.get("/api/v1/notifications?limit=200").await;
            let (_, views) = c.get(&format!("/api/v1/records/{}/views", recs[0].id)).await;
            for r in &recs {
                for text in [inbox.to_string(), views.to_string()] {
                    assert!(!text.contains(&r.tag), "{login}: inbox or views carry {}", r.tag);
                }
            }
        }
        // The population exercised every tier.
        for e in ["All", "Shared", "Outside", "Nothing"] {
            assert!(checked.get(e).copied().unwrap_or(0) > 5, "{checked:?}");
        }
    }
}
