//! No leak, checked against the tier table: a generated population of records with random owner
//! restrictions and flags, owned across centres and municipalities of two prefectures, read by
//! every kind of organisation through every read endpoint. Each free-text field carries a marker
//! naming its record and field; every response is scanned for markers the viewer may not see,
//! and checked to contain the ones it may (so the scan is known to look at real content).

mod support;

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
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

/// The owner's whole save after the restrictions (version 4): one marked field of each part
/// changed, as (marker, the field's path, the restriction that withholds it alone).
const EDITED: &[(&str, &str, &str)] = &[
    ("ADDR", "core.address.street", "core.address"),
    ("HOUSE", "family.household[0].name", "family.household"),
    ("UPBRING", "family.upbringing", "family.upbringing"),
    ("FINDINGS", "casework.findings", "casework.findings"),
    (
        "INTAKE",
        "admin.intake_reports[0].summary",
        "admin.intake_reports",
    ),
    ("CASE", "admin.case_number", ""),
];

/// The owner's edits after the restrictions: a progress entry appended by a list operation
/// (version 3), then a whole save changing each field of [`EDITED`] (version 4). Each answer is
/// the owner's and holds every marker.
async fn edit(c: &support::Client, r: &Rec) {
    let (st, v) = c.post(&format!("/api/v1/records/{}/lists/progress", r.id), &json!({ "op": "add", "item": { "date": "2026-01-12", "text": format!("追記 PROGRESS{}", r.tag) } })).await;
    assert_eq!(
        (st, v["meta"]["version"].as_i64()),
        (StatusCode::OK, Some(3)),
        "{v}"
    );
    check(&v.to_string(), r, Expect::All, "the owner's list operation");
    let mut body = json!({ "core": v["core"], "family": v["family"], "casework": v["casework"], "admin": v["admin"] });
    let t = &r.tag;
    body["core"]["address"]["street"] = json!(format!("架空町4-5-6 ADDR{t} 転居"));
    body["family"]["household"][0]["name"] = json!(format!("HOUSE{t} 改"));
    body["family"]["upbringing"] = json!(format!("UPBRING{t} 祖母と同居"));
    body["casework"]["findings"] = json!(format!("FINDINGS{t} 改"));
    body["admin"]["intake_reports"][0]["summary"] = json!(format!("INTAKE{t} 改"));
    body["admin"]["case_number"] = json!(format!("CASE{t}-2"));
    let (st, v) = c
        .put(
            &format!("/api/v1/records/{}", r.id),
            &json!({ "version": 3, "record": body }),
        )
        .await;
    assert_eq!(
        (st, v["meta"]["version"].as_i64()),
        (StatusCode::OK, Some(4)),
        "{v}"
    );
    check(&v.to_string(), r, Expect::All, "the owner's save");
}

/// The changes each history entry must name for a viewer who sees the record as `e`
/// (`as_owner`: the owner itself), sorted: (field, withheld).
fn expected_changes(r: &Rec, e: Expect, as_owner: bool) -> Vec<Vec<(String, bool)>> {
    let sorted = |mut v: Vec<(String, bool)>| {
        v.sort();
        v.dedup();
        v
    };
    // Where a field the viewer may not see is withheld: its group, or the field itself.
    let withheld_as = |prefix: &str, key: &str| {
        let (_, group, _) = MARKERS.iter().find(|(p, ..)| *p == prefix).unwrap();
        if r.groups.contains(group) {
            group.to_string()
        } else {
            key.to_string()
        }
    };
    let edited: Vec<(String, bool)> = EDITED
        .iter()
        .filter_map(
            |(p, field, key)| match (r.visible(e, p), r.meta_visible(e)) {
                (true, _) => Some((field.to_string(), false)),
                (false, true) => Some((withheld_as(p, key), true)),
                (false, false) => None,
            },
        )
        .collect();
    if !r.meta_visible(e) {
        // Versions alike to the viewer are one: the first, and the save if it changed
        // anything the viewer sees.
        return if edited.is_empty() {
            vec![vec![]]
        } else {
            vec![vec![], sorted(edited)]
        };
    }
    let restrictions = if as_owner {
        vec![("restrictions.*".to_string(), false)]
    } else {
        vec![]
    };
    let progress = if r.visible(e, "PROGRESS") {
        ("casework.progress[1]".to_string(), false)
    } else {
        ("casework.progress".to_string(), true)
    };
    vec![vec![], restrictions, vec![progress], sorted(edited)]
}

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

/// No marker the viewer may not see is in `text` (which need not hold the others).
fn check_no_leak(text: &str, r: &Rec, e: Expect, what: &str) {
    for (prefix, ..) in MARKERS {
        let marker = format!("{prefix}{}", r.tag);
        assert!(
            !text.contains(&marker) || r.visible(e, prefix),
            "{what}: {marker} leaked ({e:?}, groups {:?}, fields {:?})",
            r.groups,
            r.fields
        );
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

/// How an intake of the population is linked to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Link {
    Unlinked,
    /// To a record of the receiver's own.
    Attached,
    /// To another organisation's record, sent to its owner.
    Forwarded,
    /// Into a new record of the receiver's.
    Converted,
}

const LINKS: [Link; 4] = [
    Link::Unlinked,
    Link::Attached,
    Link::Forwarded,
    Link::Converted,
];

impl Link {
    fn status(self) -> &'static str {
        match self {
            Link::Unlinked => "open",
            Link::Attached => "attached",
            Link::Forwarded => "forwarded",
            Link::Converted => "converted",
        }
    }
}

/// An intake of the population: its markers are `INTK<n>` followed by C (content), R
/// (reporter), A (address note), N (the child's given name) and S (the safety note, once
/// confirmed).
struct Intk {
    id: i64,
    n: usize,
    receiver: &'static str,
    link: Link,
    /// The linked record, as an index into the records of the population.
    rec: Option<usize>,
    /// Received at (Unix seconds), and how long before the server's now it was received.
    received: i64,
    ago: i64,
    version: i64,
    confirmed: bool,
}

impl Intk {
    fn markers(&self) -> Vec<String> {
        let mut out: Vec<String> = ["C", "R", "A", "N"]
            .iter()
            .map(|k| format!("INTK{}{k}", self.n))
            .collect();
        if self.confirmed {
            out.push(format!("INTK{}S", self.n));
        }
        out
    }
}

/// A report as typed during a call, every free text carrying its marker.
fn intake_body(n: usize, received_at: &str, lgcode: &str) -> serde_json::Value {
    json!({
        "received_at": received_at,
        "channel": "phone",
        "reporter_relationship": format!("近所の住民 INTK{n}R"),
        "content": format!("夜中に泣き声が続いている INTK{n}C"),
        "child": {
            "name": { "family": "試験", "given": format!("花子INTK{n}N"), "family_kana": "シケン" },
            "age_note": "小学生くらい",
            "municipality_code": lgcode,
            "address_note": format!("架空町の団地 INTK{n}A")
        },
        "guardians": [{ "name": { "family": "試験" }, "relationship": "mother" }],
        "urgency": "high"
    })
}

/// The tier a viewer has for a record, by the oracle, named (the operator and organisations
/// without a tier: "none").
fn tier_label(m: &master::OrgMaster, viewer: &str, r: &Rec) -> &'static str {
    if viewer == "operator" {
        return "none";
    }
    if viewer == r.owner {
        return "owner";
    }
    match oracle(m, viewer, &r.owner, r.serious) {
        Expect::All => "ministry",
        Expect::Shared => "partner",
        Expect::Outside => "outside",
        Expect::Nothing => "none",
    }
}

/// Who reads an intake, from the tier table (independently of `tier::intake_readable`): its
/// receiver always; once linked to a record, whoever sees that record's casework (the owner,
/// the ministry on a serious record, a partner unless the owner restricted casework); an
/// outside centre, an organisation without a tier and the operator never.
fn intake_visible(m: &master::OrgMaster, viewer: &str, i: &Intk, recs: &[Rec]) -> bool {
    if viewer == "operator" {
        return false;
    }
    if viewer == i.receiver {
        return true;
    }
    let Some(k) = i.rec else { return false };
    let r = &recs[k];
    match oracle(m, viewer, &r.owner, r.serious) {
        Expect::All => true,
        Expect::Shared => !r.groups.contains(&"casework"),
        Expect::Outside | Expect::Nothing => false,
    }
}

/// No marker of an intake the viewer may not read is anywhere in `text`.
fn no_intake_leak(
    text: &str,
    m: &master::OrgMaster,
    viewer: &str,
    intakes: &[Intk],
    recs: &[Rec],
    what: &str,
) {
    for i in intakes {
        if intake_visible(m, viewer, i, recs) {
            continue;
        }
        for marker in i.markers() {
            assert!(
                !text.contains(&marker),
                "{what}: {marker} of intake {} ({:?} by {}) leaked to {viewer}",
                i.id,
                i.link,
                i.receiver
            );
        }
    }
}

fn ids_of(list: &serde_json::Value) -> Vec<i64> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect()
}

/// An error body without its `request_id` (different on every answer, and present on each):
/// what must be the same, to the byte, for an unreadable intake and for none.
fn refusal_shape(v: &serde_json::Value) -> serde_json::Value {
    let mut v = v.clone();
    let id = v.as_object_mut().and_then(|o| o.remove("request_id"));
    assert!(
        id.is_some_and(|id| id.as_str().is_some_and(|s| s.len() == 36)),
        "no request id: {v}"
    );
    v
}

fn lgcode_of(m: &master::OrgMaster, org: &str) -> String {
    m.get(org)
        .unwrap()
        .lgcode
        .clone()
        .unwrap_or_else(|| m.jurisdiction(org).next().unwrap().lgcode.clone().unwrap())
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
                let r = Rec { id, tag, owner: owner.to_string(), serious, groups, fields };
                edit(c, &r).await;
                recs.push(r);
            }
        }

        // Intakes: every organisation that receives reports (the centres and municipalities of
        // both prefectures) receives some, at random times over the last 70 hours, in random
        // order; then, in random order again, each is left unlinked, attached to a record of the
        // receiver's own, sent to the owner of another organisation's record, or converted into
        // a new record. Records attached to or sent to are chosen least covered first by
        // serious × casework restricted (and, sent on, the receiver's own tier for the record);
        // records converted into are made round-robin over serious × casework restricted: so
        // that every tier meets each.
        let mut plan: Vec<(&'static str, Link)> = Vec::new();
        for w in writers {
            for link in LINKS {
                plan.extend([(w, link), (w, link)]);
            }
        }
        plan.shuffle(&mut rng);
        let now_s = s.state().clock.now() / 1_000_000;
        let mut intakes: Vec<Intk> = Vec::new();
        for (n, (receiver, link)) in plan.into_iter().enumerate() {
            // Away from the clock's reminder points (36 and 48 hours after receipt), so that
            // which reminders are due does not depend on how long the test runs.
            let mut ago: i64 = rng.gen_range(60..70 * 3600);
            for p in [36 * 3600, 45 * 3600, 48 * 3600] {
                if (ago - p).abs() < 900 {
                    ago = p + 1800;
                }
            }
            let received = now_s - ago;
            let at = chrono::DateTime::from_timestamp(received, 0).unwrap().to_rfc3339();
            let (st, v) = clients[receiver].post("/api/v1/intakes", &intake_body(n, &at, &lgcode_of(&m, receiver))).await;
            assert_eq!(st, StatusCode::CREATED, "{v}");
            intakes.push(Intk { id: v["id"].as_i64().unwrap(), n, receiver, link, rec: None, received, ago, version: 1, confirmed: false });
        }
        let mut order: Vec<usize> = (0..intakes.len()).collect();
        order.shuffle(&mut rng);
        let mut round: HashMap<Link, usize> = HashMap::new();
        let mut linked_kinds: HashMap<(bool, bool, &str), usize> = HashMap::new();
        for &k in &order {
            let (n, receiver, link, id) = (intakes[k].n, intakes[k].receiver, intakes[k].link, intakes[k].id);
            if link == Link::Unlinked {
                continue;
            }
            let c = &clients[receiver];
            let rec = if link == Link::Converted {
                let turn = round.entry(link).or_insert(0);
                let (serious, restricted) = (*turn % 2 == 1, (*turn / 2) % 2 == 1);
                *turn += 1;
                let mut body = record_json(&lgcode_of(&m, receiver), &format!("V{n}Z"));
                body["admin"]["serious_case"] = json!(serious);
                let (st, v) = c.post(&format!("/api/v1/intakes/{id}/convert"), &json!({ "version": 1, "record": body })).await;
                assert_eq!(st, StatusCode::CREATED, "{v}");
                assert_eq!(v["intake"]["status"], "converted");
                let rid = v["record_id"].as_i64().unwrap();
                let pool: Vec<&Vec<&str>> = groups_pool.iter().filter(|g| g.contains(&"casework") == restricted).collect();
                let groups = pool[rng.gen_range(0..pool.len())].clone();
                let fields = fields_pool[rng.gen_range(0..fields_pool.len())].clone();
                let (st, v) = c.put(&format!("/api/v1/records/{rid}/restrictions"), &json!({ "version": 1, "restrictions": { "groups": groups, "fields": fields, "reason": "テスト" } })).await;
                assert_eq!(st, StatusCode::OK, "{v}");
                let r = Rec { id: rid, tag: format!("V{n}Z"), owner: receiver.to_string(), serious, groups, fields };
                edit(c, &r).await;
                recs.push(r);
                recs.len() - 1
            } else {
                // Among the records it may go to (the receiver's own, or others'), one of the
                // kind least linked so far: serious or not, casework restricted or not, and for
                // a forwarded intake the receiver's own tier for the record.
                let own = link == Link::Attached;
                let kind = |r: &Rec| (r.serious, r.groups.contains(&"casework"), if own { "owner" } else { tier_label(&m, receiver, r) });
                // (Not to a record the receiver has no tier on: that is refused as if the id did
                // not exist, checked below.)
                let pool: Vec<usize> = (0..recs.len())
                    .filter(|&j| (recs[j].owner == receiver) == own && !recs[j].tag.starts_with('V'))
                    .filter(|&j| own || tier_label(&m, receiver, &recs[j]) != "none")
                    .collect();
                let least = pool.iter().map(|&j| linked_kinds.get(&kind(&recs[j])).copied().unwrap_or(0)).min().unwrap();
                let pool: Vec<usize> = pool.into_iter().filter(|&j| linked_kinds.get(&kind(&recs[j])).copied().unwrap_or(0) == least).collect();
                let j = pool[rng.gen_range(0..pool.len())];
                *linked_kinds.entry(kind(&recs[j])).or_insert(0) += 1;
                let (st, v) = c.post(&format!("/api/v1/intakes/{id}/attach"), &json!({ "record_id": recs[j].id, "version": 1 })).await;
                assert_eq!(st, StatusCode::OK, "{v}");
                assert_eq!(v["status"], link.status(), "{v}");
                j
            };
            intakes[k].rec = Some(rec);
            intakes[k].version = 2;
        }
        // The safety of some children confirmed by their intake's receiver, in random order.
        order.shuffle(&mut rng);
        for &k in &order {
            if !rng.gen_bool(0.35) {
                continue;
            }
            let i = &mut intakes[k];
            let at = chrono::DateTime::from_timestamp(now_s - 30, 0).unwrap().to_rfc3339();
            let (st, v) = clients[i.receiver].post(&format!("/api/v1/intakes/{}/safety", i.id), &json!({ "version": i.version, "confirmation": { "confirmed_at": at, "method": "direct_sighting", "note": format!("家庭訪問で確認 INTK{}S", i.n) } })).await;
            assert_eq!(st, StatusCode::OK, "{v}");
            i.confirmed = true;
            i.version += 1;
        }
        // The safety clock's reminders due now: one per unconfirmed intake past its first point.
        let reminded = intakes.iter().filter(|i| !i.confirmed && i.ago >= 36 * 3600).count();
        assert_eq!(s.state().send_safety_reminders().await.unwrap(), reminded);

        let mut checked = HashMap::new();
        let mut expected_refusals = 0i64;
        let mut subjects_seen = 0usize;
        let missing_record = recs.iter().map(|r| r.id).max().unwrap() + 1_000_000;
        for (login, viewer, _) in USERS {
            let c = &clients[viewer];
            // What a list operation on no record answers: a record without a tier must look so.
            let (st, v) = c.post(&format!("/api/v1/records/{missing_record}/lists/progress"), &json!({ "op": "add", "item": { "date": "2026-01-12", "text": "x" } })).await;
            assert!(matches!(st, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN), "{login}: {st} {v}");
            let no_record_list_op = refusal_shape(&v);
            let mut listed = Vec::new();
            let (st, list) = c.get("/api/v1/records?limit=200").await;
            if *viewer == "operator" {
                assert_eq!(st, StatusCode::FORBIDDEN);
            } else {
                assert_eq!(st, StatusCode::OK);
                listed = list["items"].as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect();
            }
            let list_text = list.to_string();
            no_intake_leak(&list_text, &m, viewer, &intakes, &recs, &format!("{login} list"));
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
                no_intake_leak(&text, &m, viewer, &intakes, &recs, &format!("{login} GET {}", r.id));
                assert_eq!(text.contains(&format!("花子{}", r.tag)), e != Expect::Nothing, "{login}: child name on {}", r.id);

                let (_, h) = c.get(&format!("/api/v1/records/{}/versions", r.id)).await;
                check(&h.to_string(), r, e, &format!("{login} versions {}", r.id));
                no_intake_leak(&h.to_string(), &m, viewer, &intakes, &recs, &format!("{login} versions {}", r.id));
                // The history's metadata follows the record's: who wrote each version, when,
                // and how many versions there were.
                if e != Expect::Nothing {
                    let entries = h.as_array().unwrap_or_else(|| panic!("{login} versions {}: {h}", r.id));
                    let meta = r.meta_visible(e);
                    for v in entries {
                        assert_eq!(v["written"].get("withheld").is_none(), meta, "{login} versions {} written: {v}", r.id);
                    }
                    assert_eq!(h.to_string().contains("テスト利用者"), meta, "{login} versions {}: authors", r.id);
                    // Four versions (created, restricted, a progress entry appended, a field of
                    // each part changed), or, without the metadata, those that differ to the
                    // viewer; each naming its changes as the viewer may know them: the fields
                    // it sees, and only with the metadata, the withheld ones by name.
                    let want = expected_changes(r, e, *viewer == r.owner);
                    assert_eq!(entries.len(), want.len(), "{login} versions {}: count", r.id);
                    for (k, (v, want)) in entries.iter().zip(&want).enumerate() {
                        let changes = v["changes"].as_array().unwrap_or_else(|| panic!("{login} versions {}[{k}]: no changes: {v}", r.id));
                        let mut got: Vec<(String, bool)> = changes.iter().map(|c| {
                            let field = c["field"].as_str().unwrap();
                            let field = if field.starts_with("restrictions.") { "restrictions.*" } else { field };
                            (field.to_string(), c.get("withheld") == Some(&json!(true)))
                        }).collect();
                        got.sort();
                        got.dedup();
                        assert_eq!(&got, want, "{login} versions {}[{k}] changes ({e:?}, groups {:?}, fields {:?}): {}", r.id, r.groups, r.fields, v["changes"]);
                        for c in changes {
                            let withheld = c.get("withheld") == Some(&json!(true));
                            assert_eq!(withheld, c.get("before").is_none() && c.get("after").is_none(), "{login} versions {}: a withheld change carries no value: {c}", r.id);
                            if c["field"] == "casework.progress[1]" {
                                assert_eq!(c["after"]["text"], format!("追記 PROGRESS{}", r.tag), "{login} versions {}", r.id);
                            }
                        }
                        // Values: each edited field the viewer sees, from the old marker to the new.
                        let text = serde_json::to_string(changes).unwrap();
                        for (p, field, _) in EDITED {
                            if want.contains(&(field.to_string(), false)) {
                                let c = changes.iter().find(|c| c["field"] == *field).unwrap();
                                let (before, after) = (c["before"].to_string(), c["after"].to_string());
                                let marker = format!("{p}{}", r.tag);
                                assert!(before.contains(&marker) && after.contains(&marker) && before != after, "{login} versions {}: {c}", r.id);
                            }
                        }
                        check_no_leak(&text, r, e, &format!("{login} versions {}[{k}] changes", r.id));
                    }
                }

                // A list operation by anyone but the owner is refused before the list is looked
                // at (the answer holds nothing of the record; with no tier, the answer for no
                // record), and changes nothing.
                if *viewer != r.owner {
                    let (st, v) = c.post(&format!("/api/v1/records/{}/lists/progress", r.id), &json!({ "op": "remove", "index": 0, "was": { "date": "2026-01-10", "text": format!("PROGRESS{}", r.tag) } })).await;
                    let text = v.to_string();
                    check_no_leak(&text, r, Expect::Nothing, &format!("{login} list operation on {}", r.id));
                    assert!(!text.contains(&r.tag), "{login} list operation on {}: {text}", r.id);
                    let none = e == Expect::Nothing && !matches!(*viewer, "operator" | "ministry");
                    if none {
                        assert_eq!((st, refusal_shape(&v)), (StatusCode::NOT_FOUND, no_record_list_op.clone()), "{login} list operation on {}", r.id);
                    } else {
                        assert_eq!(st, StatusCode::FORBIDDEN, "{login} list operation on {}: {v}", r.id);
                    }
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
            // View logs never carry record content. An inbox entry names the child and the
            // case number exactly as the viewer's case list row would (and nothing where it
            // has no row); no other content, ever.
            let (_, inbox) = c.get("/api/v1/notifications?limit=200").await;
            let (_, views) = c.get(&format!("/api/v1/records/{}/views", recs[0].id)).await;
            if *viewer == "operator" || oracle(&m, viewer, &recs[0].owner, recs[0].serious) == Expect::Nothing {
                expected_refusals += 1;
            }
            let inbox_items = inbox["items"].as_array().cloned().unwrap_or_default();
            for r in &recs {
                assert!(!views.to_string().contains(&r.tag), "{login}: views carry {}", r.tag);
                let e = if *viewer == "operator" { Expect::Nothing } else { oracle(&m, viewer, &r.owner, r.serious) };
                let rows = matches!(e, Expect::All | Expect::Shared) && *viewer != "operator";
                for n in inbox_items.iter().filter(|n| n["record_id"].as_i64() == Some(r.id)) {
                    let text = n.to_string();
                    for (prefix, ..) in MARKERS.iter().filter(|(p, ..)| *p != "CASE") {
                        assert!(!text.contains(&format!("{prefix}{}", r.tag)), "{login} inbox: {prefix} of {}: {text}", r.id);
                    }
                    match n.get("subject") {
                        Some(subject) => {
                            assert!(rows, "{login} inbox names the child of {} without a list row: {text}", r.id);
                            subjects_seen += 1;
                            assert_eq!(subject["child_name"]["given"], format!("花子{}", r.tag), "{login} inbox: {text}");
                            assert_eq!(
                                subject["case_number"].get("shown").is_some(),
                                r.visible(e, "CASE"),
                                "{login} inbox case number of {}: {text}",
                                r.id
                            );
                            // Exactly what the viewer's case list row of the record shows.
                            let row = list["items"].as_array().unwrap().iter().find(|i| i["id"].as_i64() == Some(r.id)).unwrap();
                            assert_eq!(subject["case_number"], row["case_number"], "{login} inbox vs list row of {}", r.id);
                            assert_eq!(subject["child_name"], row["child_name"], "{login} inbox vs list row of {}", r.id);
                        }
                        None => {
                            assert!(!rows, "{login} inbox does not name the child of {}: {text}", r.id);
                            assert!(!text.contains(&r.tag), "{login} inbox: {text}");
                        }
                    }
                }
            }
        }
        assert!(subjects_seen > 0, "no inbox entry named a child: the scan saw no subject");
        // Intakes, read by every organisation: by id, the organisation's own lists, and each
        // record's intake list; every response scanned for the markers of every intake the
        // viewer may not read, and checked to hold those it may.
        let mut cells: HashMap<(Link, &str, bool, bool), usize> = HashMap::new();
        let mut expected_intake_refusals = 0i64;
        let mut scanned = 0usize;
        let no_intake = intakes.iter().map(|i| i.id).max().unwrap() + 1_000_000;
        let no_record = recs.iter().map(|r| r.id).max().unwrap() + 1_000_000;
        for (login, viewer, _) in USERS {
            let c = &clients[viewer];
            let visible = |i: &Intk| intake_visible(&m, viewer, i, &recs);
            // The answer for an intake that does not exist: what every unreadable one must look
            // like, to the byte.
            let (st, none_body) = c.get(&format!("/api/v1/intakes/{no_intake}")).await;
            let none_body = refusal_shape(&none_body);
            assert_eq!(st, StatusCode::NOT_FOUND, "{login}: {none_body}");
            expected_intake_refusals += 1;
            let mut order: Vec<&Intk> = intakes.iter().collect();
            order.shuffle(&mut rng);
            for i in order {
                let (st, v) = c.get(&format!("/api/v1/intakes/{}", i.id)).await;
                let text = v.to_string();
                let what = format!("{login} GET intake {} ({:?} by {})", i.id, i.link, i.receiver);
                no_intake_leak(&text, &m, viewer, &intakes, &recs, &what);
                scanned += 1;
                let (tier, restricted) = match i.rec {
                    Some(k) => (tier_label(&m, viewer, &recs[k]), recs[k].groups.contains(&"casework")),
                    None => ("unlinked", false),
                };
                *cells.entry((i.link, tier, restricted, *viewer == i.receiver)).or_insert(0) += 1;
                if visible(i) {
                    assert_eq!(st, StatusCode::OK, "{what}: {v}");
                    for marker in i.markers() {
                        assert!(text.contains(&marker), "{what}: {marker} missing though readable");
                    }
                    assert_eq!(v["status"], i.link.status(), "{what}");
                    assert_eq!(v["record_id"].as_i64(), i.rec.map(|k| recs[k].id), "{what}");
                    assert_eq!(v["safety"]["confirmation"].is_null(), !i.confirmed, "{what}");
                } else {
                    assert_eq!((st, refusal_shape(&v)), (StatusCode::NOT_FOUND, none_body.clone()), "{what}: not the answer for no intake");
                    expected_intake_refusals += 1;
                }
            }

            // The organisation's own lists: everything it received, newest first; the duty list,
            // unconfirmed only, earliest deadline (here: receipt, all clocks being 48 hours) first.
            let mut own: Vec<&Intk> = intakes.iter().filter(|i| i.receiver == *viewer).collect();
            own.sort_by_key(|i| std::cmp::Reverse(i.id));
            let all: Vec<&Intk> = own.clone();
            own.retain(|i| !i.confirmed);
            own.sort_by_key(|i| (i.received, i.id));
            for (q, want) in [("all", all), ("unconfirmed", own)] {
                let (st, list) = c.get(&format!("/api/v1/intakes?filter={q}")).await;
                let text = list.to_string();
                no_intake_leak(&text, &m, viewer, &intakes, &recs, &format!("{login} intakes {q}"));
                scanned += 1;
                if *viewer == "operator" {
                    assert_eq!(st, StatusCode::FORBIDDEN, "{login}: {list}");
                    continue;
                }
                assert_eq!(st, StatusCode::OK, "{login}: {list}");
                let want_ids: Vec<i64> = want.iter().map(|i| i.id).collect();
                assert_eq!(ids_of(&list), want_ids, "{login} intakes?filter={q}");
                for i in want {
                    assert!(text.contains(&format!("INTK{}N", i.n)), "{login} intakes {q}: {} unnamed", i.id);
                }
            }

            // Each record's intake list: for whoever has a tier for the record, the linked
            // intakes it may read, oldest received first; for anyone else the record's 404.
            let (st, no_record_body) = c.get(&format!("/api/v1/records/{no_record}/intakes")).await;
            let no_record_body = refusal_shape(&no_record_body);
            assert_eq!(st, StatusCode::NOT_FOUND, "{login}");
            expected_refusals += 1;
            let mut order: Vec<usize> = (0..recs.len()).collect();
            order.shuffle(&mut rng);
            for k in order {
                let r = &recs[k];
                let (st, list) = c.get(&format!("/api/v1/records/{}/intakes", r.id)).await;
                let text = list.to_string();
                let what = format!("{login} intakes of record {}", r.id);
                no_intake_leak(&text, &m, viewer, &intakes, &recs, &what);
                scanned += 1;
                if tier_label(&m, viewer, r) == "none" {
                    assert_eq!((st, refusal_shape(&list)), (StatusCode::NOT_FOUND, no_record_body.clone()), "{what}");
                    expected_refusals += 1;
                    continue;
                }
                assert_eq!(st, StatusCode::OK, "{what}: {list}");
                let mut want: Vec<&Intk> = intakes.iter().filter(|i| i.rec == Some(k) && visible(i)).collect();
                want.sort_by_key(|i| (i.received, i.id));
                assert_eq!(ids_of(&list), want.iter().map(|i| i.id).collect::<Vec<_>>(), "{what}");
                for i in want {
                    assert!(text.contains(&format!("INTK{}N", i.n)), "{what}: {} unnamed", i.id);
                }
            }

            // The inbox names intakes by id only, and only to whom they concern: a forwarded
            // intake to the owner of the record it was sent to; a reminder to the receiver and,
            // for a forwarded intake, to that owner.
            let (_, inbox) = c.get("/api/v1/notifications?limit=200").await;
            let text = inbox.to_string();
            scanned += 1;
            assert!(!text.contains("INTK"), "{login}: the inbox carries intake content: {text}");
            let items = inbox["items"].as_array().cloned().unwrap_or_default();
            assert!(items.len() < 200, "{login}: the inbox filled its page");
            let got = |kinds: &[&str]| {
                let mut v: Vec<(i64, Option<i64>, String)> = items.iter()
                    .filter(|n| kinds.contains(&n["kind"].as_str().unwrap()))
                    .map(|n| (n["intake_id"].as_i64().unwrap(), n["record_id"].as_i64(), n["kind"].as_str().unwrap().to_string()))
                    .collect();
                v.sort();
                v
            };
            let forwarded_to = |i: &Intk| i.link == Link::Forwarded && recs[i.rec.unwrap()].owner == *viewer;
            let mut want: Vec<(i64, Option<i64>, String)> = intakes.iter()
                .filter(|i| forwarded_to(i))
                .map(|i| (i.id, Some(recs[i.rec.unwrap()].id), "intake_forwarded".to_string()))
                .collect();
            want.sort();
            assert_eq!(got(&["intake_forwarded"]), want, "{login}: intake_forwarded");
            let mut want: Vec<(i64, Option<i64>, String)> = intakes.iter()
                .filter(|i| !i.confirmed && i.ago >= 36 * 3600 && (i.receiver == *viewer || forwarded_to(i)))
                .map(|i| (i.id, i.rec.map(|k| recs[k].id), if i.ago >= 48 * 3600 { "safety_overdue" } else { "safety_due_soon" }.to_string()))
                .collect();
            want.sort();
            assert_eq!(got(&["safety_due_soon", "safety_overdue"]), want, "{login}: reminders");
        }
        let refused = s.db.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'intake.access_refused'").await;
        assert_eq!(refused, expected_intake_refusals, "refused intake reads audited");
        let leaked = s.db.scalar("SELECT COUNT(*) FROM audit_log WHERE detail LIKE '%INTK%'").await;
        assert_eq!(leaked, 0, "the log carries no intake content");

        // The population covered every tier for every link and both restrictions of casework
        // (the ministry only on serious records), receivers reading what they sent on, and
        // reminders of both kinds after confirmations.
        let mut required: Vec<(Link, &str, bool, bool)> = vec![(Link::Unlinked, "unlinked", false, true), (Link::Unlinked, "unlinked", false, false)];
        for restricted in [false, true] {
            for link in [Link::Attached, Link::Forwarded, Link::Converted] {
                for tier in ["partner", "outside", "ministry", "none"] {
                    required.push((link, tier, restricted, false));
                }
            }
            required.push((Link::Forwarded, "owner", restricted, false));
            required.push((Link::Attached, "owner", restricted, true));
            required.push((Link::Converted, "owner", restricted, true));
        }
        for tier in ["partner", "outside"] {
            required.push((Link::Forwarded, tier, true, true));
            required.push((Link::Forwarded, tier, false, true));
        }
        for cell in &required {
            assert!(cells.get(cell).copied().unwrap_or(0) >= 2, "coverage of {cell:?}: {cells:?}");
        }
        let confirmed = intakes.iter().filter(|i| i.confirmed).count();
        let overdue = intakes.iter().filter(|i| !i.confirmed && i.ago >= 48 * 3600).count();
        assert!(confirmed >= 10 && overdue >= 5 && reminded - overdue >= 5, "{confirmed} confirmed, {reminded} reminded, {overdue} overdue");
        eprintln!(
            "leak scan ({:?}): {} intakes ({} linked), {} records, {} intake responses scanned, {} intake refusals audited, {} coverage cells",
            s.db.engine,
            intakes.len(),
            intakes.iter().filter(|i| i.rec.is_some()).count(),
            recs.len(),
            scanned,
            refused,
            cells.len()
        );

        // Every refused read is in the log, in the reader's chain, without content.
        let refused = s.db.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'record.access_refused'").await;
        assert_eq!(refused, expected_refusals, "refused reads audited");
        let in_own_chain = s.db.scalar("SELECT COUNT(*) FROM audit_log a WHERE action = 'record.access_refused' AND a.pref_code = (CASE WHEN actor_org IN ('ministry', 'operator') THEN 0 WHEN actor_org LIKE '%-27%' THEN 27 ELSE 13 END)").await;
        assert_eq!(in_own_chain, expected_refusals, "each in the reader's chain");
        // No record's tag in any refusal (one query for all the tags: each connection costs).
        let tags: Vec<String> = recs.iter().map(|r| format!("detail LIKE '%{}%'", r.tag)).collect();
        let leaked = s.db.scalar(&format!("SELECT COUNT(*) FROM audit_log WHERE action = 'record.access_refused' AND ({})", tags.join(" OR "))).await;
        assert_eq!(leaked, 0);
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

/// Transfers in the generated population: records offered by every kind of organisation to
/// every other, each with its owner's random restrictions and the offer's random withheld
/// fields, some as families; offers left pending, confirmed, declined, withdrawn, and
/// confirmed records transferred on (confirmed again, or pending). Every organisation then
/// reads every record (origins and the records confirmations registered), their histories,
/// every transfer, both of its lists and its inbox, and tries every step it may not take:
/// each response is checked against the tier table written again below, with the transfer
/// tier (what the owner did not restrict and the offer did not withhold), and the rule that a
/// registered record holds nothing that was not provided.
mod transfers {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    enum Outcome {
        Pending,
        Confirmed,
        Declined,
        Withdrawn,
        /// Confirmed, then the new record confirmed on to a third organisation.
        Retransferred,
        /// Confirmed, then the new record offered on and left pending.
        RetransferPending,
    }

    const OUTCOMES: [Outcome; 6] = [
        Outcome::Pending,
        Outcome::Confirmed,
        Outcome::Declined,
        Outcome::Withdrawn,
        Outcome::Retransferred,
        Outcome::RetransferPending,
    ];

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    enum See {
        Owner,
        Partner,
        Transfer,
        Outside,
        Ministry,
        Nothing,
    }

    impl See {
        fn label(self) -> Option<&'static str> {
            match self {
                See::Owner => Some("owner"),
                See::Partner => Some("partner"),
                See::Transfer => Some("transfer"),
                See::Outside => Some("outside"),
                See::Ministry => Some("ministry"),
                See::Nothing => None,
            }
        }
    }

    /// A record of the population as the test knows it.
    #[derive(Debug, Clone)]
    struct TRec {
        id: i64,
        tag: String,
        owner: &'static str,
        serious: bool,
        groups: Vec<&'static str>,
        fields: Vec<&'static str>,
        /// Markers the record does not hold at all: for a record a confirmation registered,
        /// what the transfer did not provide.
        absent: Vec<&'static str>,
        /// The destination of its offer and the fields the offer withholds, while the offer
        /// is pending and once it is confirmed.
        offered: Option<(&'static str, Vec<&'static str>)>,
        /// The record it was registered from, and the one registered from it.
        from: Option<i64>,
        to: Option<i64>,
    }

    /// The tier table of system.md with the transfer tier, written again independently of the
    /// server: owner, partner, the destination of the record's transfer, outside, ministry.
    fn see(m: &master::OrgMaster, viewer: &str, r: &TRec) -> See {
        use tsunagu_record::OrgKind::*;
        if viewer == "operator" {
            return See::Nothing;
        }
        if viewer == r.owner {
            return See::Owner;
        }
        let v = m.get(viewer).unwrap();
        let o = m.get(r.owner).unwrap();
        let partners = match (v.kind, o.kind) {
            (Cgc, Municipality) => o.cgc_id.as_deref() == Some(&v.id),
            (Municipality, Cgc) => v.cgc_id.as_deref() == Some(&o.id),
            (Cgc, Cgc) => v.pref_code == o.pref_code,
            _ => false,
        };
        if partners {
            return See::Partner;
        }
        if r.offered.as_ref().is_some_and(|(d, _)| *d == viewer) {
            return See::Transfer;
        }
        match v.kind {
            Cgc if o.pref_code != v.pref_code || o.kind == Municipality => See::Outside,
            Ministry if r.serious => See::Ministry,
            _ => See::Nothing,
        }
    }

    /// Whether the marker `prefix` of `r` may reach a viewer who sees it as `s`.
    fn shows(r: &TRec, s: See, prefix: &str) -> bool {
        if r.absent.contains(&prefix) {
            return false;
        }
        let (_, group, field) = MARKERS.iter().find(|(p, ..)| *p == prefix).unwrap();
        let withheld = match (s, &r.offered) {
            (See::Transfer, Some((_, w))) => w.contains(field),
            _ => false,
        };
        let restricted = withheld
            || r.fields.contains(field)
            || r.groups.contains(group)
            || (*group == "admin" && r.groups.contains(&"casework"));
        match s {
            See::Owner | See::Ministry => true,
            See::Partner | See::Transfer => !restricted,
            See::Outside => matches!(*group, "core" | "family") && !restricted,
            See::Nothing => false,
        }
    }

    /// Every marker of `r` in `text` is one `s` may see; with `all`, every one it may see is
    /// there too (so the scan is known to look at real content).
    fn check_rec(text: &str, r: &TRec, s: See, all: bool, what: &str) {
        for (prefix, ..) in MARKERS {
            let marker = format!("{prefix}{}", r.tag);
            let present = text.contains(&marker);
            let allowed = shows(r, s, prefix);
            assert!(
                !present || allowed,
                "{what}: {marker} leaked ({s:?}, {r:?})"
            );
            assert!(
                !all || present || !allowed,
                "{what}: {marker} missing though allowed ({s:?}, {r:?})"
            );
        }
    }

    /// The record a confirmation registers from `r` for its destination: what was provided,
    /// under the owner's restrictions carried over.
    fn registered(r: &TRec, id: i64) -> TRec {
        let (dest, _) = r.offered.clone().unwrap();
        let absent = MARKERS
            .iter()
            .map(|(p, ..)| *p)
            .filter(|p| !shows(r, See::Transfer, p))
            .collect();
        TRec {
            id,
            tag: r.tag.clone(),
            owner: dest,
            // The serious flag is admin, which follows casework.
            serious: r.serious && !r.groups.contains(&"casework"),
            groups: r.groups.clone(),
            fields: r.fields.clone(),
            absent,
            offered: None,
            from: Some(r.id),
            to: None,
        }
    }

    struct Trans {
        id: i64,
        tag: String,
        from: &'static str,
        to: &'static str,
        /// Indexes into the population, the record offered first.
        recs: Vec<usize>,
        status: &'static str,
    }

    async fn inbox(c: &support::Client) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let (st, page) = c
                .get(&format!("/api/v1/notifications?limit=200&after={after}"))
                .await;
            assert_eq!(st, StatusCode::OK, "{page}");
            let items = page["items"].as_array().unwrap().clone();
            let n = items.len();
            if let Some(last) = items.last() {
                after = last["id"].as_i64().unwrap();
            }
            out.extend(items);
            if n < 200 {
                return out;
            }
        }
    }

    both_engines! {
        async fn no_transfer_response_carries_what_the_viewer_may_not_see(db) {
            let s = TestServer::start(db).await;
            let m = master::synthetic();
            let mut clients = HashMap::new();
            for (login, org, _) in USERS {
                clients.insert(*org, s.login(login).await);
            }
            let writers: [&'static str; 7] = ["cgc-13-01", "cgc-13-02", "muni-131016", "muni-131024", "muni-131211", "cgc-27-01", "muni-271004"];
            let groups_pool = [vec![], vec!["family"], vec!["casework"], vec!["family", "casework"]];
            let fields_pool = [vec![], vec!["core.address"], vec!["family.household", "casework.findings"], vec!["core.address", "admin.intake_reports", "casework.progress"]];
            let withhold_pool: [Vec<&'static str>; 4] = [vec![], vec!["casework.findings"], vec!["core.address", "family.household"], vec!["casework.interview", "casework.progress", "admin.intake_reports", "family.upbringing"]];
            let mut rng = StdRng::seed_from_u64(17);
            let mut recs: Vec<TRec> = Vec::new();
            let mut trans: Vec<Trans> = Vec::new();
            // Each record made and restricted by its owner.
            async fn make(c: &support::Client, m: &master::OrgMaster, owner: &'static str, tag: String, rng: &mut StdRng, groups_pool: &[Vec<&'static str>], fields_pool: &[Vec<&'static str>]) -> TRec {
                let mut body = record_json(&lgcode_of(m, owner), &tag);
                let serious = rng.gen_bool(0.3);
                body["admin"]["serious_case"] = json!(serious);
                let id = c.create(&body).await;
                let groups = groups_pool[rng.gen_range(0..groups_pool.len())].clone();
                let fields = fields_pool[rng.gen_range(0..fields_pool.len())].clone();
                let (st, v) = c.put(&format!("/api/v1/records/{id}/restrictions"), &json!({ "version": 1, "restrictions": { "groups": groups, "fields": fields, "reason": "テスト" } })).await;
                assert_eq!(st, StatusCode::OK, "{v}");
                TRec { id, tag, owner, serious, groups, fields, absent: vec![], offered: None, from: None, to: None }
            }
            /// Offers `ks` of the population from their owner to `to`; checks the answer.
            async fn offer_of(c: &support::Client, recs: &mut [TRec], ks: &[usize], to: &'static str, withhold: Vec<&'static str>, tag: &str) -> i64 {
                let ids: Vec<i64> = ks.iter().map(|&k| recs[k].id).collect();
                let (st, v) = c.post(&format!("/api/v1/records/{}/transfers", ids[0]), &json!({ "to_org_id": to, "message": format!("転居のため MSG{tag}"), "withhold": withhold, "siblings": ids[1..] })).await;
                assert_eq!(st, StatusCode::CREATED, "{v}");
                let text = v.to_string();
                assert!(text.contains(&format!("MSG{tag}")));
                for &k in ks {
                    check_rec(&text, &recs[k], See::Owner, true, "the offer's answer");
                    recs[k].offered = Some((to, withhold.clone()));
                }
                v["id"].as_i64().unwrap()
            }
            let mut n = 0;
            for (w, owner) in writers.iter().enumerate() {
                for i in 0..6 {
                    // Tags end in Z, so that no tag is the start of another.
                    let tag = format!("P{w}x{i}Z");
                    let c = &clients[owner];
                    let mut ks = vec![recs.len()];
                    recs.push(make(c, &m, owner, tag.clone(), &mut rng, &groups_pool, &fields_pool).await);
                    // Every third offer a family: a sibling of the same owner goes with it.
                    if i % 3 == 0 {
                        ks.push(recs.len());
                        recs.push(make(c, &m, owner, format!("P{w}x{i}sZ"), &mut rng, &groups_pool, &fields_pool).await);
                    }
                    let others: Vec<&'static str> = writers.iter().copied().filter(|o| o != owner).collect();
                    let to = others[rng.gen_range(0..others.len())];
                    let withhold = withhold_pool[rng.gen_range(0..withhold_pool.len())].clone();
                    let id = offer_of(c, &mut recs, &ks, to, withhold, &tag).await;
                    let outcome = OUTCOMES[(w + i) % OUTCOMES.len()];
                    trans.push(Trans { id, tag: tag.clone(), from: owner, to, recs: ks.clone(), status: "pending" });
                    let t = trans.len() - 1;
                    let dest = &clients[to];
                    match outcome {
                        Outcome::Pending => {}
                        Outcome::Declined => {
                            let (st, v) = dest.post(&format!("/api/v1/transfers/{id}/decline"), &json!({ "reason": format!("管轄外 WHY{tag}") })).await;
                            assert_eq!(st, StatusCode::OK, "{v}");
                            for &k in &ks {
                                recs[k].offered = None;
                            }
                            for &k in &ks {
                                check_rec(&v.to_string(), &recs[k], see(&m, to, &recs[k]), false, "the decline's answer");
                            }
                            trans[t].status = "declined";
                        }
                        Outcome::Withdrawn => {
                            let (st, v) = c.post(&format!("/api/v1/transfers/{id}/withdraw"), &json!({})).await;
                            assert_eq!(st, StatusCode::OK, "{v}");
                            for &k in &ks {
                                recs[k].offered = None;
                                check_rec(&v.to_string(), &recs[k], See::Owner, true, "the withdrawal's answer");
                            }
                            trans[t].status = "withdrawn";
                        }
                        Outcome::Confirmed | Outcome::Retransferred | Outcome::RetransferPending => {
                            let (st, v) = dest.post(&format!("/api/v1/transfers/{id}/confirm"), &json!({})).await;
                            assert_eq!(st, StatusCode::OK, "{v}");
                            trans[t].status = "confirmed";
                            let mut new_ks = Vec::new();
                            for (j, &k) in ks.iter().enumerate() {
                                check_rec(&v.to_string(), &recs[k], see(&m, to, &recs[k]), true, "the confirmation's answer");
                                let nid = v["records"][j]["new_record_id"].as_i64().unwrap();
                                new_ks.push(recs.len());
                                recs[k].to = Some(nid);
                                let r = registered(&recs[k], nid);
                                recs.push(r);
                            }
                            if outcome != Outcome::Confirmed {
                                // The family moves on: the destination offers the new records.
                                let onward: Vec<&'static str> = writers.iter().copied().filter(|o| *o != to).collect();
                                let to2 = onward[rng.gen_range(0..onward.len())];
                                let withhold = withhold_pool[rng.gen_range(0..withhold_pool.len())].clone();
                                let tag2 = format!("P{w}x{i}rZ");
                                let id2 = offer_of(dest, &mut recs, &new_ks, to2, withhold, &tag2).await;
                                trans.push(Trans { id: id2, tag: tag2, from: to, to: to2, recs: new_ks.clone(), status: "pending" });
                                if outcome == Outcome::Retransferred {
                                    let (st, v) = clients[to2].post(&format!("/api/v1/transfers/{id2}/confirm"), &json!({})).await;
                                    assert_eq!(st, StatusCode::OK, "{v}");
                                    trans.last_mut().unwrap().status = "confirmed";
                                    for (j, &k) in new_ks.iter().enumerate() {
                                        check_rec(&v.to_string(), &recs[k], see(&m, to2, &recs[k]), true, "the onward confirmation's answer");
                                        let nid = v["records"][j]["new_record_id"].as_i64().unwrap();
                                        recs[k].to = Some(nid);
                                        let r = registered(&recs[k], nid);
                                        recs.push(r);
                                    }
                                }
                            }
                        }
                    }
                    n += 1;
                }
            }
            assert_eq!(n, 42);

            let no_transfer = trans.iter().map(|t| t.id).max().unwrap() + 1_000;
            let mut expected_refusals = 0i64;
            let mut seen: HashMap<(See, bool), usize> = HashMap::new();
            let mut views_by: HashMap<(i64, &str), usize> = HashMap::new();
            for (login, viewer, _) in USERS {
                let c = &clients[viewer];
                let writer = !matches!(*viewer, "ministry" | "operator");
                // The answers for a transfer that does not exist: what every one the viewer is
                // not a party to must look like, to the byte.
                let (st, none_get) = c.get(&format!("/api/v1/transfers/{no_transfer}")).await;
                assert_eq!(st, StatusCode::NOT_FOUND, "{login}");
                let none_get = refusal_shape(&none_get);
                expected_refusals += 1;
                let (st, none_step) = c.post(&format!("/api/v1/transfers/{no_transfer}/confirm"), &json!({})).await;
                let none_step = if writer {
                    assert_eq!(st, StatusCode::NOT_FOUND, "{login}");
                    expected_refusals += 1;
                    Some(refusal_shape(&none_step))
                } else {
                    assert_eq!(st, StatusCode::FORBIDDEN, "{login}");
                    None
                };

                // Every record, origins and registered ones: the record and its history.
                let (st, list) = c.get("/api/v1/records?limit=200").await;
                let listed: Vec<i64> = if *viewer == "operator" {
                    assert_eq!(st, StatusCode::FORBIDDEN);
                    vec![]
                } else {
                    assert_eq!(st, StatusCode::OK);
                    assert!(list["next_cursor"].is_null(), "{login}: the list filled its page");
                    ids_of(&list)
                };
                for r in &recs {
                    let sv = see(&m, viewer, r);
                    *seen.entry((sv, r.from.is_some())).or_insert(0) += 1;
                    let what = format!("{login} GET record {} ({sv:?})", r.id);
                    let (st, v) = c.get(&format!("/api/v1/records/{}", r.id)).await;
                    assert_eq!(v["tier"].as_str(), sv.label(), "{what}: {v}");
                    if sv == See::Nothing {
                        assert!(matches!(st, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN), "{what}: {st}");
                    } else {
                        assert_eq!(st, StatusCode::OK, "{what}");
                    }
                    check_rec(&v.to_string(), r, sv, true, &what);
                    assert_eq!(v.to_string().contains(&format!("花子{}", r.tag)), sv != See::Nothing, "{what}: the child's name");
                    // Where a record came from and where it went are metadata: shown exactly
                    // where the record's metadata is (it follows casework).
                    let meta_shown = match sv {
                        See::Owner | See::Ministry => true,
                        See::Partner | See::Transfer => !r.groups.contains(&"casework"),
                        See::Outside | See::Nothing => false,
                    };
                    let meta = if v.get("meta").is_some() { &v["meta"] } else { &v["admin"]["shown"]["meta"] };
                    assert_eq!(meta["version"].is_i64(), meta_shown, "{what}: {v}");
                    assert_eq!(meta["provenance"]["origin_record_id"].as_i64(), r.from.filter(|_| meta_shown), "{what}: {v}");
                    assert_eq!(meta["transferred_to"]["record_id"].as_i64(), r.to.filter(|_| meta_shown), "{what}: {v}");
                    if !meta_shown {
                        assert!(!v.to_string().contains("provenance") && !v.to_string().contains("transferred_to"), "{what}: {v}");
                    }
                    let (_, h) = c.get(&format!("/api/v1/records/{}/versions", r.id)).await;
                    check_rec(&h.to_string(), r, sv, sv != See::Nothing, &format!("{what} versions"));
                    if sv == See::Transfer {
                        *views_by.entry((r.id, *viewer)).or_insert(0) += 2;
                    }
                    let rows = matches!(sv, See::Owner | See::Partner | See::Ministry);
                    assert_eq!(listed.contains(&r.id), rows, "{login} case list / {}", r.id);
                }

                // Every transfer: its two organisations read it, each record as their tier shows
                // it now; anyone else gets the answer for no transfer, and every step anyone
                // may not take is refused with nothing of the transfer in the answer.
                for t in &trans {
                    let what = format!("{login} transfer {} ({} → {}, {})", t.id, t.from, t.to, t.status);
                    let party = *viewer == t.from || *viewer == t.to;
                    let (st, v) = c.get(&format!("/api/v1/transfers/{}", t.id)).await;
                    let text = v.to_string();
                    if party {
                        assert_eq!(st, StatusCode::OK, "{what}: {v}");
                        assert_eq!(v["status"], t.status, "{what}");
                        assert!(text.contains(&format!("MSG{}", t.tag)), "{what}: the message");
                        assert_eq!(text.contains(&format!("WHY{}", t.tag)), t.status == "declined", "{what}: the reason");
                        for (j, &k) in t.recs.iter().enumerate() {
                            let r = &recs[k];
                            let sv = see(&m, viewer, r);
                            assert_eq!(v["records"][j]["record_id"].as_i64(), Some(r.id), "{what}");
                            assert_eq!(v["records"][j]["record"]["tier"].as_str(), sv.label(), "{what}: {v}");
                            check_rec(&text, r, sv, true, &what);
                            if sv == See::Transfer {
                                *views_by.entry((r.id, *viewer)).or_insert(0) += 1;
                            }
                        }
                    } else {
                        assert_eq!((st, refusal_shape(&v)), (StatusCode::NOT_FOUND, none_get.clone()), "{what}");
                        expected_refusals += 1;
                        for &k in &t.recs {
                            assert!(!text.contains(&recs[k].tag), "{what}: {text}");
                        }
                    }
                    // The steps this viewer may not take: none changes anything.
                    for (step, body) in [("confirm", json!({})), ("decline", json!({ "reason": "理由" })), ("withdraw", json!({}))] {
                        let mine = if step == "withdraw" { *viewer == t.from } else { *viewer == t.to };
                        if mine && t.status == "pending" {
                            continue;
                        }
                        let (st, e) = c.post(&format!("/api/v1/transfers/{}/{step}", t.id), &body).await;
                        let text = e.to_string();
                        for &k in &t.recs {
                            assert!(!text.contains(&recs[k].tag), "{what} {step}: {text}");
                        }
                        assert!(!text.contains(&format!("MSG{}", t.tag)) && !text.contains(&format!("WHY{}", t.tag)), "{what} {step}: {text}");
                        let want = if !writer {
                            StatusCode::FORBIDDEN
                        } else if !party {
                            expected_refusals += 1;
                            assert_eq!(refusal_shape(&e), none_step.clone().unwrap(), "{what} {step}");
                            StatusCode::NOT_FOUND
                        } else if !mine {
                            StatusCode::FORBIDDEN
                        } else {
                            StatusCode::CONFLICT
                        };
                        assert_eq!(st, want, "{what} {step}: {e}");
                    }
                }

                // Both lists: exactly the viewer's transfers, newest first, each record named by
                // its child only where the viewer's tier shows the record, and no content.
                for (which, mine) in [("incoming", true), ("outgoing", false)] {
                    let (st, l) = c.get(&format!("/api/v1/transfers?box={which}&limit=200")).await;
                    if !writer {
                        assert_eq!(st, StatusCode::FORBIDDEN, "{login} {which}");
                        continue;
                    }
                    assert_eq!(st, StatusCode::OK, "{login} {which}: {l}");
                    let mut want: Vec<&Trans> = trans.iter().filter(|t| if mine { t.to == *viewer } else { t.from == *viewer }).collect();
                    want.sort_by_key(|t| std::cmp::Reverse(t.id));
                    assert_eq!(ids_of(&l), want.iter().map(|t| t.id).collect::<Vec<_>>(), "{login} {which}");
                    let text = l.to_string();
                    for r in &recs {
                        for (prefix, ..) in MARKERS {
                            assert!(!text.contains(&format!("{prefix}{}", r.tag)), "{login} {which}: {prefix}{}", r.tag);
                        }
                    }
                    for (row, t) in l["items"].as_array().unwrap().iter().zip(&want) {
                        assert_eq!(row["status"], t.status, "{login} {which}");
                        assert!(row["age_secs"].as_i64().is_some_and(|a| a >= 0));
                        assert!(!row.to_string().contains("MSG") && !row.to_string().contains("WHY"), "{login} {which}: {row}");
                        for (j, &k) in t.recs.iter().enumerate() {
                            let r = &recs[k];
                            let named = &row["records"][j]["child_name"];
                            match see(&m, viewer, r) {
                                See::Nothing => assert!(named.is_null(), "{login} {which}: {row}"),
                                _ => assert_eq!(named["given"], format!("花子{}", r.tag), "{login} {which}"),
                            }
                        }
                    }
                }

                // The inbox: every step told to the other party, nothing else, and no content;
                // a record is named by its child only where the viewer has a case list row.
                let items = inbox(c).await;
                let mut got: Vec<(String, i64)> = items.iter()
                    .filter(|n| n["kind"].as_str().unwrap().starts_with("transfer_"))
                    .map(|n| (n["kind"].as_str().unwrap().to_string(), n["transfer_id"].as_i64().unwrap()))
                    .collect();
                got.sort();
                let mut want: Vec<(String, i64)> = Vec::new();
                for t in &trans {
                    if t.to == *viewer {
                        want.push(("transfer_offered".into(), t.id));
                        if t.status == "withdrawn" {
                            want.push(("transfer_withdrawn".into(), t.id));
                        }
                    }
                    if t.from == *viewer && matches!(t.status, "confirmed" | "declined") {
                        want.push((format!("transfer_{}", t.status), t.id));
                    }
                }
                want.sort();
                assert_eq!(got, want, "{login}: transfer notifications");
                let text = serde_json::to_string(&items).unwrap();
                assert!(!text.contains("MSG") && !text.contains("WHY"), "{login}: the inbox carries a message");
                for r in &recs {
                    for (prefix, ..) in MARKERS.iter().filter(|(p, ..)| *p != "CASE") {
                        assert!(!text.contains(&format!("{prefix}{}", r.tag)), "{login} inbox: {prefix}{}", r.tag);
                    }
                    let sv = see(&m, viewer, r);
                    for n in items.iter().filter(|n| n["record_id"].as_i64() == Some(r.id)) {
                        let rows = matches!(sv, See::Owner | See::Partner | See::Ministry);
                        assert_eq!(n.get("subject").is_some(), rows, "{login} inbox subject of {} ({sv:?}): {n}", r.id);
                        if rows {
                            // Shown where the tier shows it (empty on a record registered
                            // without it), with its marker only where the record holds one.
                            let by_tier = shows(&TRec { absent: vec![], ..r.clone() }, sv, "CASE");
                            assert_eq!(n["subject"]["case_number"].get("shown").is_some(), by_tier, "{login}: {n}");
                            assert_eq!(n.to_string().contains(&format!("CASE{}", r.tag)), shows(r, sv, "CASE"), "{login}: {n}");
                        }
                    }
                }
            }

            // Every read by a destination was logged, and its origin sees it.
            for ((rid, dest), reads) in &views_by {
                let r = recs.iter().find(|r| r.id == *rid).unwrap();
                let (_, views) = clients[r.owner].get(&format!("/api/v1/records/{rid}/views")).await;
                let logged = views.as_array().unwrap().iter().filter(|e| e["org_id"] == *dest && e["tier"] == "transfer").count();
                assert!(logged >= *reads, "{dest}'s {reads} reads of {rid}: {views}");
                assert!(!views.to_string().contains(&r.tag), "{views}");
            }
            let refused = s.db.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'transfer.access_refused'").await;
            assert_eq!(refused, expected_refusals, "refused transfer reads and steps audited");
            let leaked = s.db.scalar("SELECT COUNT(*) FROM audit_log WHERE detail LIKE '%MSG%' OR detail LIKE '%WHY%' OR detail LIKE '%花子%'").await;
            assert_eq!(leaked, 0, "the log carries no content");

            // The population covered every outcome, the transfer tier with and without
            // restricted casework, on records registered by a transfer and on origins.
            for status in ["pending", "confirmed", "declined", "withdrawn"] {
                assert!(trans.iter().filter(|t| t.status == status).count() >= 5, "{status}");
            }
            assert!(trans.iter().filter(|t| t.recs.len() > 1).count() >= 10, "families");
            assert!(trans.iter().filter(|t| t.tag.ends_with("rZ")).count() >= 10, "transfers on");
            for key in [(See::Transfer, true), (See::Transfer, false), (See::Owner, false), (See::Partner, false), (See::Outside, false), (See::Ministry, false), (See::Nothing, false)] {
                assert!(seen.get(&key).copied().unwrap_or(0) >= 3, "coverage of {key:?}: {seen:?}");
            }
            assert!(recs.iter().any(|r| r.offered.is_some() && r.groups.contains(&"casework")) && recs.iter().any(|r| r.offered.is_some() && !r.groups.contains(&"casework")));
            eprintln!("transfer leak scan ({:?}): {} transfers, {} records ({} registered by a transfer), {} refusals audited, {seen:?}", s.db.engine, trans.len(), recs.len(), recs.iter().filter(|r| r.from.is_some()).count(), refused);
        }
    }
}
