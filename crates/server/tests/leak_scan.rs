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
    /// Whether the record's metadata (version, times, authors) may reach this viewer: it
    /// follows casework.
    fn meta_visible(&self, e: Expect) -> bool {
        match e {
            Expect::All => true,
            Expect::Shared => !self.groups.contains(&"casework"),
            Expect::Outside | Expect::Nothing => false,
        }
    }

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
        let mut expected_refusals = 0i64;
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
                // The operator is refused by role (403) before any record is looked at; every
                // other refusal is a 404 and two entries (record, history) in the log.
                if e == Expect::Nothing && *viewer != "operator" {
                    expected_refusals += 2;
                }
                match e {
                    Expect::Nothing => assert!(matches!(st, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN), "{login} on {}: {st}", r.id),
                    _ => assert_eq!(st, StatusCode::OK, "{login} on {}", r.id),
                }
                check(&text, r, e, &format!("{login} GET {}", r.id));
                assert_eq!(text.contains(&format!("花子{}", r.tag)), e != Expect::Nothing, "{login}: child name on {}", r.id);

                let (_, h) = c.get(&format!("/api/v1/records/{}/versions", r.id)).await;
                check(&h.to_string(), r, e, &format!("{login} versions {}", r.id));
                // The history's metadata follows the record's: who wrote each version, when,
                // and how many versions there were.
                if e != Expect::Nothing {
                    let entries = h.as_array().unwrap_or_else(|| panic!("{login} versions {}: {h}", r.id));
                    let meta = r.meta_visible(e);
                    for v in entries {
                        assert_eq!(v["written"].get("withheld").is_none(), meta, "{login} versions {} written: {v}", r.id);
                    }
                    assert_eq!(h.to_string().contains("テスト利用者"), meta, "{login} versions {}: authors", r.id);
                    // Two versions (created, then restricted); the second changed only what
                    // a viewer without the metadata cannot see, or nothing it can.
                    let want = if meta { 2 } else { 1 };
                    assert_eq!(entries.len(), want, "{login} versions {}: count", r.id);
                }

                // Lists: own, partners' and (for the ministry) serious cases, and never free text
                // beyond the case number that the tier allows.
                let should_list = matches!(e, Expect::All | Expect::Shared) && *viewer != "operator";
                assert_eq!(listed.contains(&r.id), should_list, "{login} list / {}", r.id);
                if should_list {
                    let row = list["items"].as_array().unwrap().iter().find(|i| i["id"].as_i64() == Some(r.id)).unwrap();
                    assert_eq!(row["meta"].get("withheld").is_none(), r.meta_visible(e), "{login} list row {}: {row}", r.id);
                    assert_eq!(row.to_string().contains("updated_at"), r.meta_visible(e), "{login} list row {}", r.id);
                }
                for (prefix, ..) in MARKERS {
                    let marker = format!("{prefix}{}", r.tag);
                    let allowed = *prefix == "CASE" && should_list && r.visible(e, "CASE");
                    assert_eq!(list_text.contains(&marker), allowed, "{login} list: {marker}");
                }
            }
            // Inboxes and view logs never carry record content.
            let (_, inbox) = c.get("/api/v1/notifications?limit=200").await;
            let (_, views) = c.get(&format!("/api/v1/records/{}/views", recs[0].id)).await;
            if *viewer == "operator" || oracle(&m, viewer, &recs[0].owner, recs[0].serious) == Expect::Nothing {
                expected_refusals += 1;
            }
            for r in &recs {
                for text in [inbox.to_string(), views.to_string()] {
                    assert!(!text.contains(&r.tag), "{login}: inbox or views carry {}", r.tag);
                }
            }
        }
        // Every refused read is in the log, in the reader's chain, without content.
        let refused = s.db.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'record.access_refused'").await;
        assert_eq!(refused, expected_refusals, "refused reads audited");
        let in_own_chain = s.db.scalar("SELECT COUNT(*) FROM audit_log a WHERE action = 'record.access_refused' AND a.pref_code = (CASE WHEN actor_org IN ('ministry', 'operator') THEN 0 WHEN actor_org LIKE '%-27%' THEN 27 ELSE 13 END)").await;
        assert_eq!(in_own_chain, expected_refusals, "each in the reader's chain");
        for r in &recs {
            let leaked = s.db.scalar(Box::leak(format!("SELECT COUNT(*) FROM audit_log WHERE action = 'record.access_refused' AND detail LIKE '%{}%'", r.tag).into_boxed_str())).await;
            assert_eq!(leaked, 0);
        }
        // The population exercised every tier.
        for e in ["All", "Shared", "Outside", "Nothing"] {
            assert!(checked.get(e).copied().unwrap_or(0) > 5, "{checked:?}");
        }
    }
}

/// Every page of a case list, following the cursors: (ids in order, cursors).
async fn walk_list(c: &support::Client, query: &str) -> (Vec<i64>, Vec<String>) {
    let (mut ids, mut cursors) = (Vec::new(), Vec::new());
    let mut url = format!("/api/v1/records?limit=3&{query}");
    for _ in 0..200 {
        let (st, page) = c.get(&url).await;
        assert_eq!(st, StatusCode::OK, "{url}: {page}");
        ids.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(cur) => {
                cursors.push(cur.to_string());
                url = format!("/api/v1/records?limit=3&{query}&cursor={cur}");
            }
            None => return (ids, cursors),
        }
    }
    panic!("`{query}`: the cursors never reach the end of the list (a page repeats)");
}

mod order {
    use super::*;

    both_engines! {
        async fn withheld_values_decide_neither_order_nor_filters_for_a_partner(db) {
            // Metamorphic: the owners change only what the partner may not see (the case number,
            // review date and status of records whose casework they restricted). Every list the
            // partner can ask for (each sort, each filter, page by page, cursors included) must
            // stay exactly the same, while the owners' own lists do change.
            let s = TestServer::start(db).await;
            let viewer = s.login("cgc").await;
            let owners = [("muni", "131016"), ("cgc2", "131211"), ("muni2", "131024")];
            let mut rng = StdRng::seed_from_u64(20261203);
            let mut restricted = Vec::new();
            let mut owner_clients = Vec::new();
            let mut order: Vec<usize> = Vec::new();
            for (o, _) in owners.iter().enumerate() {
                owner_clients.push(s.login(owners[o].0).await);
                order.extend(std::iter::repeat_n(o, 8));
            }
            // Registered in random order across owners.
            for i in (0..order.len()).rev() {
                order.swap(i, rng.gen_range(0..=i));
            }
            for (n, o) in order.into_iter().enumerate() {
                let c = &owner_clients[o];
                let mut body = record_json(owners[o].1, &format!("M{n}Z"));
                body["admin"]["case_number"] = json!(format!("K{:04}", rng.gen_range(0..10_000)));
                body["casework"]["next_review"] = json!(format!("2027-{:02}-{:02}", rng.gen_range(1..=12), rng.gen_range(1..=28)));
                if rng.gen_bool(0.3) {
                    body["admin"]["status"] = json!("closed");
                }
                let id = c.create(&body).await;
                if rng.gen_bool(0.5) {
                    let (st, v) = c.put(&format!("/api/v1/records/{id}/restrictions"), &json!({ "version": 1, "restrictions": { "groups": ["casework"], "fields": [], "reason": "テスト" } })).await;
                    assert_eq!(st, StatusCode::OK, "{v}");
                    restricted.push((o, id, body));
                }
            }
            assert!(restricted.len() >= 6, "{}", restricted.len());
            let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            let queries = [
                "sort=case_number".to_string(),
                "sort=next_review".into(),
                "sort=updated_desc".into(),
                "sort=updated_asc".into(),
                "status=open&sort=case_number".into(),
                "status=closed".into(),
                format!("updated_since={}", since.replace('+', "%2B")),
            ];
            let mut before = Vec::new();
            for q in &queries {
                before.push(walk_list(&viewer, q).await);
            }
            let owner_before = walk_list(&owner_clients[0], "sort=case_number").await;
            // Only the hidden values change, on restricted records only.
            for (o, id, body) in &mut restricted {
                body["admin"]["case_number"] = json!(format!("J{:04}", rng.gen_range(0..10_000)));
                body["casework"]["next_review"] = json!(format!("2028-{:02}-{:02}", rng.gen_range(1..=12), rng.gen_range(1..=28)));
                body["admin"]["status"] = json!(if rng.gen_bool(0.5) { "closed" } else { "open" });
                let (st, v) = owner_clients[*o].get(&format!("/api/v1/records/{id}")).await;
                assert_eq!(st, StatusCode::OK);
                let version = v["meta"]["version"].as_i64().unwrap();
                let (st, v) = owner_clients[*o].put(&format!("/api/v1/records/{id}"), &json!({ "version": version, "record": body })).await;
                assert_eq!(st, StatusCode::OK, "{v}");
            }
            for (q, want) in queries.iter().zip(&before) {
                let got = walk_list(&viewer, q).await;
                assert_eq!(&got, want, "the partner's list `{q}` moved with values it may not see");
            }
            // The owner sees its own changes (so the changes above were real).
            if restricted.iter().filter(|(o, ..)| *o == 0).count() >= 2 {
                assert_ne!(walk_list(&owner_clients[0], "sort=case_number").await, owner_before);
            }
            // And the partner's rows that are not restricted do sort by their values.
            let (ids, _) = walk_list(&viewer, "sort=case_number").await;
            let (_, first) = viewer.get("/api/v1/records?limit=200&sort=case_number").await;
            let shown: Vec<String> = first["items"].as_array().unwrap().iter()
                .filter_map(|i| i["case_number"].get("shown").and_then(|v| v.as_str()).map(str::to_string))
                .collect();
            let mut sorted = shown.clone();
            sorted.sort();
            assert_eq!(shown, sorted);
            assert!(!ids.is_empty());
        }
    }
}
