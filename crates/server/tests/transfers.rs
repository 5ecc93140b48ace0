//! Transfers (転出・転入) end to end over real HTTP, on both engines: an offer read by the
//! destination exactly as provided (every read logged for the origin), confirmed into a record
//! of the destination's with provenance while the origin's becomes read-only, transferred out;
//! declines, withdrawals, family transfers, a transfer on from the new record; every refusal
//! (a 4xx naming the problem, nothing changed); and the races (offers, confirm against
//! withdraw, two confirms, confirm against an update) sent as concurrent bursts.

mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{record_json, Client, TestServer};

/// The record `tag` of `c`'s organisation (child in `lgcode`), with the address restricted by
/// its owner and one intake received and attached to it: (record id, intake id).
async fn record_with_intake(c: &Client, lgcode: &str, tag: &str) -> (i64, i64) {
    let id = c.create(&record_json(lgcode, tag)).await;
    let (st, v) = c
        .put(
            &format!("/api/v1/records/{id}/restrictions"),
            &json!({ "version": 1, "restrictions": { "groups": [], "fields": ["core.address"], "reason": "DV" } }),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let at = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    let (st, v) = c
        .post(
            "/api/v1/intakes",
            &json!({ "received_at": at, "content": format!("泣き声の通告 REPORT{tag}") }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let intake = v["id"].as_i64().unwrap();
    let (st, v) = c
        .post(
            &format!("/api/v1/intakes/{intake}/attach"),
            &json!({ "record_id": id, "version": 1 }),
        )
        .await;
    assert_eq!(
        (st, v["status"].as_str()),
        (StatusCode::OK, Some("attached")),
        "{v}"
    );
    (id, intake)
}

async fn offer(c: &Client, id: i64, body: Value) -> Value {
    let (st, v) = c
        .post(&format!("/api/v1/records/{id}/transfers"), &body)
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["status"], "pending", "{v}");
    v
}

async fn step(c: &Client, t: i64, what: &str, body: Option<Value>) -> (StatusCode, Value) {
    let path = format!("/api/v1/transfers/{t}/{what}");
    match body {
        Some(b) => c.post(&path, &b).await,
        None => c.call(reqwest::Method::POST, &path, None).await,
    }
}

async fn version_of(c: &Client, id: i64) -> i64 {
    let (st, v) = c.get(&format!("/api/v1/records/{id}")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["meta"]["version"].as_i64().unwrap()
}

fn inbox_kinds(inbox: &Value, transfer: i64) -> Vec<String> {
    inbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["transfer_id"].as_i64() == Some(transfer))
        .map(|n| n["kind"].as_str().unwrap().to_string())
        .collect()
}

/// What must not move when a request is refused: transfers, their records, records, audit.
async fn snapshot(s: &TestServer) -> [i64; 5] {
    [
        s.db.scalar("SELECT COUNT(*) FROM transfers").await,
        s.db.scalar("SELECT COUNT(*) FROM transfer_records WHERE pending")
            .await,
        s.db.scalar("SELECT COUNT(*) FROM records").await,
        s.db.scalar("SELECT COUNT(*) FROM record_versions").await,
        s.db.scalar("SELECT COUNT(*) FROM notifications").await,
    ]
}

both_engines! {
    async fn an_offer_is_read_as_provided_then_confirmed_into_the_destinations_record(db) {
        let s = TestServer::start(db).await;
        let muni = s.login("muni").await;
        let osaka = s.login("osaka").await;
        let (r, intake) = record_with_intake(&muni, "131016", "T1").await;
        let t = offer(&muni, r, json!({ "to_org_id": "cgc-27-01", "message": "転居のため MSGT1", "withhold": ["casework.findings"] })).await;
        let tid = t["id"].as_i64().unwrap();
        assert_eq!((t["from"]["org_id"].as_str(), t["to"]["org_id"].as_str()), (Some("muni-131016"), Some("cgc-27-01")));
        assert_eq!(t["withhold"], json!(["casework.findings"]));
        assert_eq!(t["records"][0]["record"]["tier"], "owner", "the origin sees its own record");
        // The destination is notified at once, of the transfer by id.
        let (_, inbox) = osaka.get("/api/v1/notifications").await;
        assert_eq!(inbox_kinds(&inbox, tid), ["transfer_offered"], "{inbox}");

        // The destination reads exactly what was provided: not the owner's restriction (the
        // address), not what the offer withholds (the findings); everything else.
        let (st, v) = osaka.get(&format!("/api/v1/records/{r}")).await;
        assert_eq!((st, v["tier"].as_str()), (StatusCode::OK, Some("transfer")), "{v}");
        let text = v.to_string();
        for shown in ["INTERVIEWT1", "PROGRESST1", "HOUSET1", "CASET1", "INTAKET1"] {
            assert!(text.contains(shown), "{shown} missing: {v}");
        }
        for withheld in ["ADDRT1", "FINDINGST1"] {
            assert!(!text.contains(withheld), "{withheld} leaked: {v}");
        }
        let (st, tv) = osaka.get(&format!("/api/v1/transfers/{tid}")).await;
        assert_eq!(st, StatusCode::OK, "{tv}");
        assert_eq!(tv["records"][0]["record"], v, "the transfer shows the same projection");
        assert!(tv["message"].as_str().unwrap().contains("MSGT1"));
        let (_, h) = osaka.get(&format!("/api/v1/records/{r}/versions")).await;
        assert!(h.as_array().unwrap().len() >= 2 && !h.to_string().contains("FINDINGST1") && !h.to_string().contains("ADDRT1"), "{h}");
        // The intake linked to the record is casework the destination was given.
        let (st, l) = osaka.get(&format!("/api/v1/records/{r}/intakes")).await;
        assert_eq!((st, l["items"][0]["id"].as_i64()), (StatusCode::OK, Some(intake)), "{l}");
        // Every read is logged and the origin sees it.
        let (_, views) = muni.get(&format!("/api/v1/records/{r}/views")).await;
        let by_dest = views.as_array().unwrap().iter().filter(|e| e["org_id"] == "cgc-27-01" && e["tier"] == "transfer").count();
        assert!(by_dest >= 3, "record, transfer and history reads by the destination: {views}");
        // Anyone else: as if there were no such transfer.
        let other = s.login("osaka-muni").await;
        let (st, a) = other.get(&format!("/api/v1/transfers/{tid}")).await;
        let (st2, b) = other.get("/api/v1/transfers/999999").await;
        assert_eq!((st, &a["message"]), (StatusCode::NOT_FOUND, &b["message"]));
        assert_eq!(st2, StatusCode::NOT_FOUND);
        assert!(!a.to_string().contains("T1"));
        let (st, _) = other.get(&format!("/api/v1/records/{r}")).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        // The lists, with status and age.
        let (_, inc) = osaka.get("/api/v1/transfers?box=incoming").await;
        assert_eq!(inc["items"][0]["id"].as_i64(), Some(tid), "{inc}");
        assert_eq!(inc["items"][0]["status"], "pending");
        assert!(inc["items"][0]["age_secs"].as_i64().unwrap() >= 0);
        assert_eq!(inc["items"][0]["records"][0]["child_name"]["given"], "花子T1");
        assert!(!inc.to_string().contains("MSGT1") && !inc.to_string().contains("ADDRT1"), "{inc}");
        let (_, out) = muni.get("/api/v1/transfers?box=outgoing&status=pending").await;
        assert_eq!(out["items"][0]["id"].as_i64(), Some(tid), "{out}");
        let (_, none) = muni.get("/api/v1/transfers?box=incoming").await;
        assert_eq!(none["items"], json!([]));
        // Meanwhile the origin still updates its record; the destination reads it as updated.
        let version = version_of(&muni, r).await;
        let (st, v) = muni.post(&format!("/api/v1/records/{r}/lists/progress"), &json!({ "op": "add", "item": { "date": "2026-01-12", "text": "転居前の最後の訪問 LASTT1" } })).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(version_of(&muni, r).await, version + 1);

        // Confirm.
        let (st, c) = step(&osaka, tid, "confirm", None).await;
        assert_eq!((st, c["status"].as_str()), (StatusCode::OK, Some("confirmed")), "{c}");
        let n = c["records"][0]["new_record_id"].as_i64().unwrap();
        assert_eq!(n / 1_000_000_000_000, 27, "registered in the destination's prefecture");
        let (st, nv) = osaka.get(&format!("/api/v1/records/{n}")).await;
        assert_eq!((st, nv["tier"].as_str()), (StatusCode::OK, Some("owner")), "{nv}");
        assert_eq!(nv["owner"]["org_id"], "cgc-27-01");
        let text = nv.to_string();
        for shown in ["INTERVIEWT1", "PROGRESST1", "LASTT1", "HOUSET1", "CASET1", "INTAKET1", "花子T1"] {
            assert!(text.contains(shown), "{shown} missing from the new record: {nv}");
        }
        for withheld in ["ADDRT1", "FINDINGST1"] {
            assert!(!text.contains(withheld), "{withheld} reached the new record: {nv}");
        }
        assert_eq!(nv["core"]["address"]["street"], "", "the address was not provided");
        assert_eq!(nv["restrictions"]["fields"], json!(["core.address"]), "the owner's restrictions carried over");
        let p = &nv["meta"]["provenance"];
        assert_eq!((p["transfer_id"].as_i64(), p["origin_record_id"].as_i64(), p["origin"]["org_id"].as_str()), (Some(tid), Some(r), Some("muni-131016")), "{nv}");
        // The progress log travels with who wrote each entry and when.
        let progress = nv["casework"]["progress"].as_array().unwrap();
        assert!(progress.iter().all(|e| e["author"] == "テスト利用者 muni"), "{progress:?}");
        // The origin's record: read-only, transferred out, pointing to the new one.
        let (_, ov) = muni.get(&format!("/api/v1/records/{r}")).await;
        assert_eq!(ov["admin"]["status"], "transferred_out", "{ov}");
        assert_eq!(ov["meta"]["transferred_to"]["record_id"].as_i64(), Some(n));
        assert_eq!(ov["meta"]["transferred_to"]["destination"]["org_id"], "cgc-27-01");
        let mut body = json!({ "core": ov["core"], "family": ov["family"], "casework": ov["casework"], "admin": ov["admin"] });
        body["admin"]["status"] = json!("open");
        let v_before = ov["meta"]["version"].as_i64().unwrap();
        let (st, e) = muni.put(&format!("/api/v1/records/{r}"), &json!({ "version": v_before, "record": body })).await;
        assert_eq!((st, e["code"].as_str()), (StatusCode::CONFLICT, Some("transferred_out")), "{e}");
        assert!(e["message"].as_str().unwrap().contains(&n.to_string()), "{e}");
        let (st, e) = muni.post(&format!("/api/v1/records/{r}/lists/progress"), &json!({ "op": "add", "item": { "date": "2026-01-12", "text": "x" } })).await;
        assert_eq!((st, e["code"].as_str()), (StatusCode::CONFLICT, Some("transferred_out")), "{e}");
        let (st, e) = muni.put(&format!("/api/v1/records/{r}/restrictions"), &json!({ "version": v_before, "restrictions": {} })).await;
        assert_eq!((st, e["code"].as_str()), (StatusCode::CONFLICT, Some("transferred_out")), "{e}");
        assert_eq!(version_of(&muni, r).await, v_before, "nothing written");
        // The intake travelled: linked to the new record, read by its new owner, still by its
        // receiver.
        let (_, iv) = muni.get(&format!("/api/v1/intakes/{intake}")).await;
        assert_eq!(iv["record_id"].as_i64(), Some(n), "{iv}");
        let (_, l) = osaka.get(&format!("/api/v1/records/{n}/intakes")).await;
        assert_eq!(l["items"][0]["id"].as_i64(), Some(intake), "{l}");
        // The origin is told; the origin's history stays readable to the destination as far
        // as was provided.
        let (_, inbox) = muni.get("/api/v1/notifications").await;
        assert_eq!(inbox_kinds(&inbox, tid), ["transfer_confirmed"], "{inbox}");
        let (st, v) = osaka.get(&format!("/api/v1/records/{r}")).await;
        assert_eq!((st, v["tier"].as_str()), (StatusCode::OK, Some("transfer")));
        assert!(!v.to_string().contains("FINDINGST1"));
        // A record transferred out is not offered again; the new one is (the family moves on).
        let (st, e) = muni.post(&format!("/api/v1/records/{r}/transfers"), &json!({ "to_org_id": "muni-131024" })).await;
        assert_eq!((st, e["code"].as_str()), (StatusCode::CONFLICT, Some("transferred_out")), "{e}");
        let t2 = offer(&osaka, n, json!({ "to_org_id": "muni-271004", "message": "再転居" })).await;
        let tid2 = t2["id"].as_i64().unwrap();
        let (st, c2) = step(&other, tid2, "confirm", None).await;
        assert_eq!(st, StatusCode::OK, "{c2}");
        let n2 = c2["records"][0]["new_record_id"].as_i64().unwrap();
        let (_, v2) = other.get(&format!("/api/v1/records/{n2}")).await;
        assert_eq!(v2["meta"]["provenance"]["origin_record_id"].as_i64(), Some(n));
        assert_eq!(v2["meta"]["provenance"]["origin"]["org_id"], "cgc-27-01");
        assert!(v2.to_string().contains("LASTT1") && !v2.to_string().contains("FINDINGST1"), "{v2}");
        // Every step is in the log, each in the origin record's chain.
        for (act, n) in [("transfer.offered", 2), ("transfer.confirmed", 2)] {
            assert_eq!(s.db.scalar(&format!("SELECT COUNT(*) FROM audit_log WHERE action = '{act}'")).await, n, "{act}");
        }
        assert_eq!(s.db.scalar(&format!("SELECT COUNT(*) FROM audit_log WHERE action = 'transfer.confirmed' AND record_id = {r} AND pref_code = 13")).await, 1);
        assert_eq!(s.db.scalar(&format!("SELECT COUNT(*) FROM audit_log WHERE action = 'record.created' AND record_id = {n} AND pref_code = 27")).await, 1);
        assert_eq!(s.db.scalar("SELECT COUNT(*) FROM audit_log WHERE detail LIKE '%MSGT1%' OR detail LIKE '%T1%'").await, 0, "no content in the log");
        let report = tsunagu_server::audit::verify_with(s.db.store.as_ref(), &s.db.store.audit_key().unwrap(), &[]).await.unwrap();
        assert!(report.breaks.is_empty(), "{report:?}");
    }

    async fn declined_and_withdrawn_offers_leave_the_record_with_its_owner(db) {
        let s = TestServer::start(db).await;
        let muni = s.login("muni").await;
        let far = s.login("osaka-muni").await;
        let r = muni.create(&record_json("131016", "D1")).await;
        let t = offer(&muni, r, json!({ "to_org_id": "muni-271004", "message": "MSGD1" })).await;
        let tid = t["id"].as_i64().unwrap();
        let (st, _) = far.get(&format!("/api/v1/records/{r}")).await;
        assert_eq!(st, StatusCode::OK, "read while deciding");
        // Declining needs a reason.
        for body in [json!({ "reason": "" }), json!({ "reason": " \u{3000}" })] {
            let (st, e) = step(&far, tid, "decline", Some(body)).await;
            assert_eq!((st, e["fields"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("reason")), "{e}");
            assert!(e["fields"][0]["message"].as_str().unwrap().contains("辞退の理由"), "{e}");
        }
        let (st, e) = step(&far, tid, "decline", Some(json!({}))).await;
        assert_eq!((st, e["fields"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("reason")), "{e}");
        let (st, _) = far.get(&format!("/api/v1/records/{r}")).await;
        assert_eq!(st, StatusCode::OK, "still pending after the refused declines");
        let (st, d) = step(&far, tid, "decline", Some(json!({ "reason": "管轄外のため WHYD1" }))).await;
        assert_eq!((st, d["status"].as_str()), (StatusCode::OK, Some("declined")), "{d}");
        assert!(d["reason"].as_str().unwrap().contains("WHYD1"));
        assert_eq!(d["records"][0]["record"], Value::Null, "the destination no longer reads it: {d}");
        let (_, inbox) = muni.get("/api/v1/notifications").await;
        assert_eq!(inbox_kinds(&inbox, tid), ["transfer_declined"]);
        let (_, tv) = muni.get(&format!("/api/v1/transfers/{tid}")).await;
        assert_eq!(tv["reason"], d["reason"], "the origin reads the reason");
        assert_eq!(tv["decided_by"], "テスト利用者 osaka-muni");
        let (st, _) = far.get(&format!("/api/v1/records/{r}")).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "the transfer tier ends with the decline");
        let (_, inc) = far.get("/api/v1/transfers?box=incoming").await;
        assert_eq!(inc["items"][0]["status"], "declined");
        assert!(inc["items"][0]["records"][0].get("child_name").is_none(), "no tier, no name: {inc}");
        assert!(!inc.to_string().contains("D1"), "{inc}");
        // The record is the origin's as before and can be offered again; then withdrawn.
        let v = version_of(&muni, r).await;
        assert_eq!(v, 1);
        let t = offer(&muni, r, json!({ "to_org_id": "muni-271004" })).await;
        let tid = t["id"].as_i64().unwrap();
        let (st, e) = step(&far, tid, "withdraw", None).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "only the origin withdraws: {e}");
        assert!(e["message"].as_str().unwrap().contains("取下げ"), "{e}");
        let (st, e) = step(&muni, tid, "confirm", None).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "only the destination confirms: {e}");
        let (st, e) = step(&muni, tid, "decline", Some(json!({ "reason": "x" }))).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "only the destination declines: {e}");
        let (st, w) = step(&muni, tid, "withdraw", None).await;
        assert_eq!((st, w["status"].as_str()), (StatusCode::OK, Some("withdrawn")), "{w}");
        let (_, inbox) = far.get("/api/v1/notifications").await;
        assert_eq!(inbox_kinds(&inbox, tid), ["transfer_offered", "transfer_withdrawn"]);
        for (who, what) in [(&far, "confirm"), (&far, "decline"), (&muni, "withdraw")] {
            let body = (what == "decline").then(|| json!({ "reason": "理由" }));
            let before = snapshot(&s).await;
            let (st, e) = step(who, tid, what, body).await;
            assert_eq!((st, e["code"].as_str()), (StatusCode::CONFLICT, Some("transfer_decided")), "{what}: {e}");
            assert!(e["message"].as_str().unwrap().contains("取下げ"), "{e}");
            assert_eq!(snapshot(&s).await, before, "{what}: nothing changed");
        }
        let (st, _) = far.get(&format!("/api/v1/records/{r}")).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        assert_eq!(version_of(&muni, r).await, 1, "declines and withdrawals leave the record as it was");
        assert_eq!(s.db.scalar("SELECT COUNT(*) FROM records WHERE provenance IS NOT NULL").await, 0);
    }

    async fn siblings_move_together(db) {
        let s = TestServer::start(db).await;
        let muni = s.login("muni").await;
        let far = s.login("osaka-muni").await;
        let a = muni.create(&record_json("131016", "F1")).await;
        let b = muni.create(&record_json("131016", "F2")).await;
        let c = muni.create(&record_json("131016", "F3")).await;
        let t = offer(&muni, a, json!({ "to_org_id": "muni-271004", "siblings": [b, c], "withhold": ["family.upbringing"] })).await;
        let tid = t["id"].as_i64().unwrap();
        let ids: Vec<i64> = t["records"].as_array().unwrap().iter().map(|r| r["record_id"].as_i64().unwrap()).collect();
        assert_eq!(ids, [a, b, c]);
        // Each sibling has the open offer: none of them is offered elsewhere meanwhile.
        let (st, e) = muni.post(&format!("/api/v1/records/{b}/transfers"), &json!({ "to_org_id": "cgc-27-01" })).await;
        assert_eq!((st, e["code"].as_str()), (StatusCode::CONFLICT, Some("transfer_pending")), "{e}");
        assert!(e["message"].as_str().unwrap().contains(&tid.to_string()), "{e}");
        let (_, tv) = far.get(&format!("/api/v1/transfers/{tid}")).await;
        for (k, tag) in ["F1", "F2", "F3"].iter().enumerate() {
            let rec = &tv["records"][k]["record"];
            assert_eq!(rec["tier"], "transfer");
            assert!(rec.to_string().contains(&format!("INTERVIEW{tag}")) && !rec.to_string().contains(&format!("UPBRING{tag}")), "{rec}");
        }
        let (st, v) = step(&far, tid, "confirm", None).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let new: Vec<i64> = v["records"].as_array().unwrap().iter().map(|r| r["new_record_id"].as_i64().unwrap()).collect();
        assert_eq!(new.len(), 3);
        for (k, (&old, &n)) in [a, b, c].iter().zip(&new).enumerate() {
            let (_, ov) = muni.get(&format!("/api/v1/records/{old}")).await;
            assert_eq!(ov["admin"]["status"], "transferred_out");
            assert_eq!(ov["meta"]["transferred_to"]["record_id"].as_i64(), Some(n));
            let (_, nv) = far.get(&format!("/api/v1/records/{n}")).await;
            assert_eq!(nv["meta"]["provenance"]["origin_record_id"].as_i64(), Some(old));
            assert_eq!(nv["core"]["child_name"]["given"], format!("花子F{}", k + 1));
            assert_eq!(nv["family"]["upbringing"], "");
        }
        assert_eq!(s.db.scalar(&format!("SELECT COUNT(*) FROM audit_log WHERE action = 'transfer.offered' AND detail LIKE '%\"transfer\":{tid}%'")).await, 3);
    }

    async fn refusals_name_the_problem_and_change_nothing(db) {
        let s = TestServer::start(db).await;
        let muni = s.login("muni").await;
        let cgc = s.login("cgc").await;
        let other = s.login("muni-other").await;
        let far = s.login("osaka-muni").await;
        let r = muni.create(&record_json("131016", "X1")).await;
        let mine = muni.create(&record_json("131016", "X2")).await;
        let theirs = other.create(&record_json("131211", "X3")).await;
        let before = snapshot(&s).await;
        let cases: Vec<(&Client, i64, Value, StatusCode, Option<&str>)> = vec![
            // Not the owner: a partner is told so, one without a tier that there is no record.
            (&cgc, r, json!({ "to_org_id": "cgc-27-01" }), StatusCode::FORBIDDEN, None),
            (&other, r, json!({ "to_org_id": "cgc-27-01" }), StatusCode::NOT_FOUND, None),
            (&muni, 13_000_000_999_999, json!({ "to_org_id": "cgc-27-01" }), StatusCode::NOT_FOUND, None),
            (&muni, r, json!({ "to_org_id": "muni-131016" }), StatusCode::UNPROCESSABLE_ENTITY, Some("to_org_id")),
            (&muni, r, json!({ "to_org_id": "ministry" }), StatusCode::UNPROCESSABLE_ENTITY, Some("to_org_id")),
            (&muni, r, json!({ "to_org_id": "operator" }), StatusCode::UNPROCESSABLE_ENTITY, Some("to_org_id")),
            (&muni, r, json!({ "to_org_id": "cgc-99-99" }), StatusCode::UNPROCESSABLE_ENTITY, Some("to_org_id")),
            (&muni, r, json!({ "to_org_id": "cgc-27-01", "withhold": ["casework.nothing"] }), StatusCode::BAD_REQUEST, Some("withhold[0]")),
            (&muni, r, json!({ "to_org_id": "cgc-27-01", "withhold": ["family"] }), StatusCode::BAD_REQUEST, Some("withhold[0]")),
            (&muni, r, json!({ "no_such": 1, "to_org_id": "cgc-27-01" }), StatusCode::BAD_REQUEST, Some("no_such")),
            (&muni, r, json!({ "to_org_id": "cgc-27-01", "siblings": [theirs] }), StatusCode::UNPROCESSABLE_ENTITY, Some("siblings[0]")),
            (&muni, r, json!({ "to_org_id": "cgc-27-01", "siblings": [mine, 13_000_000_999_999_i64] }), StatusCode::UNPROCESSABLE_ENTITY, Some("siblings[1]")),
            (&muni, r, json!({ "to_org_id": "cgc-27-01", "siblings": [r] }), StatusCode::UNPROCESSABLE_ENTITY, Some("siblings[0]")),
            (&muni, r, json!({ "to_org_id": "cgc-27-01", "message": "制御文字\u{1}" }), StatusCode::BAD_REQUEST, None),
            (&muni, r, json!({ "to_org_id": "cgc-27-01", "siblings": (0..10).collect::<Vec<i64>>() }), StatusCode::UNPROCESSABLE_ENTITY, Some("siblings")),
        ];
        for (k, (c, id, body, want, field)) in cases.into_iter().enumerate() {
            let (st, e) = c.post(&format!("/api/v1/records/{id}/transfers"), &body).await;
            assert_eq!(st, want, "case {k}: {body} → {e}");
            assert!(e["message"].as_str().is_some_and(|m| !m.is_ascii()), "case {k}: a Japanese message: {e}");
            if let Some(f) = field {
                assert_eq!(e["fields"][0]["field"].as_str(), Some(f), "case {k}: {e}");
            }
            assert!(!e.to_string().contains("X3"), "case {k}: another's record leaks: {e}");
            assert_eq!(snapshot(&s).await, before, "case {k}: nothing changed");
        }
        // Another's sibling and a missing one are the same answer.
        let (_, a) = muni.post(&format!("/api/v1/records/{r}/transfers"), &json!({ "to_org_id": "cgc-27-01", "siblings": [theirs] })).await;
        let (_, b) = muni.post(&format!("/api/v1/records/{r}/transfers"), &json!({ "to_org_id": "cgc-27-01", "siblings": [theirs + 1_000] })).await;
        assert_eq!(a["fields"][0]["message"].as_str().map(|m| m.replace(&theirs.to_string(), "#")), b["fields"][0]["message"].as_str().map(|m| m.replace(&(theirs + 1_000).to_string(), "#")));
        // Who may not offer at all.
        for login in ["ministry", "operator"] {
            let c = s.login(login).await;
            let (st, e) = c.post(&format!("/api/v1/records/{r}/transfers"), &json!({ "to_org_id": "cgc-27-01" })).await;
            assert_eq!(st, StatusCode::FORBIDDEN, "{login}: {e}");
            let (st, _) = c.get("/api/v1/transfers").await;
            assert_eq!(st, StatusCode::FORBIDDEN, "{login}");
        }
        let (st, e) = muni.get("/api/v1/transfers?box=sideways").await;
        assert_eq!((st, e["fields"][0]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("box")));
        let (st, e) = muni.get("/api/v1/transfers?status=lost").await;
        assert_eq!((st, e["fields"][0]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("status")));
        // An open offer exists.
        let t = offer(&muni, r, json!({ "to_org_id": "muni-271004" })).await;
        let tid = t["id"].as_i64().unwrap();
        let before = snapshot(&s).await;
        let (st, e) = muni.post(&format!("/api/v1/records/{r}/transfers"), &json!({ "to_org_id": "cgc-27-01" })).await;
        assert_eq!((st, e["code"].as_str()), (StatusCode::CONFLICT, Some("transfer_pending")), "{e}");
        let (st, e) = muni.post(&format!("/api/v1/records/{mine}/transfers"), &json!({ "to_org_id": "cgc-27-01", "siblings": [r] })).await;
        assert_eq!((st, e["code"].as_str()), (StatusCode::CONFLICT, Some("transfer_pending")), "as a sibling too: {e}");
        // Steps by those who may not take them, or on no transfer.
        let (st, _) = step(&other, tid, "confirm", None).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "not a party");
        let (st, _) = step(&far, 999_999_i64, "confirm", None).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _) = step(&cgc, tid, "withdraw", None).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "the owner's partner is not a party");
        assert_eq!(snapshot(&s).await, before, "nothing changed");
        assert!(s.db.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'transfer.access_refused'").await >= 3);
    }

    async fn of_a_burst_of_offers_of_one_record_exactly_one_is_made(db) {
        let s = TestServer::start(db).await;
        let muni = s.login("muni").await;
        let dests = ["cgc-27-01", "muni-271004", "muni-131024", "muni-131211", "cgc-13-02", "cgc-27-01", "muni-271004", "muni-131024"];
        for round in 0..3 {
            let r = muni.create(&record_json("131016", &format!("B{round}"))).await;
            let mut tasks = Vec::new();
            for d in dests {
                let c = muni.clone();
                tasks.push(tokio::spawn(async move {
                    c.post(&format!("/api/v1/records/{r}/transfers"), &json!({ "to_org_id": d })).await
                }));
            }
            let mut made = 0;
            for t in tasks {
                let (st, v) = t.await.unwrap();
                match st {
                    StatusCode::CREATED => made += 1,
                    StatusCode::CONFLICT => assert_eq!(v["code"], "transfer_pending", "{v}"),
                    other => panic!("{other}: {v}"),
                }
            }
            assert_eq!(made, 1, "round {round}");
            assert_eq!(s.db.scalar(&format!("SELECT COUNT(*) FROM transfer_records WHERE record_id = {r}")).await, 1);
            assert_eq!(s.db.scalar(&format!("SELECT COUNT(*) FROM audit_log WHERE action = 'transfer.offered' AND record_id = {r}")).await, 1);
        }
    }

    async fn confirm_against_withdraw_has_exactly_one_outcome(db) {
        let s = TestServer::start(db).await;
        let muni = s.login("muni").await;
        let far = s.login("osaka-muni").await;
        let mut outcomes = std::collections::HashMap::new();
        for round in 0..8 {
            let r = muni.create(&record_json("131016", &format!("W{round}"))).await;
            let t = offer(&muni, r, json!({ "to_org_id": "muni-271004" })).await;
            let tid = t["id"].as_i64().unwrap();
            let (a, b) = (far.clone(), muni.clone());
            let confirm = tokio::spawn(async move { step(&a, tid, "confirm", None).await });
            let withdraw = tokio::spawn(async move { step(&b, tid, "withdraw", None).await });
            let (c, w) = (confirm.await.unwrap(), withdraw.await.unwrap());
            let won = match (c.0, w.0) {
                (StatusCode::OK, StatusCode::CONFLICT) => "confirmed",
                (StatusCode::CONFLICT, StatusCode::OK) => "withdrawn",
                other => panic!("round {round}: {other:?}: {} / {}", c.1, w.1),
            };
            *outcomes.entry(won).or_insert(0) += 1;
            let loser = if won == "confirmed" { &w.1 } else { &c.1 };
            assert_eq!(loser["code"], "transfer_decided", "{loser}");
            let (_, tv) = muni.get(&format!("/api/v1/transfers/{tid}")).await;
            assert_eq!(tv["status"], won);
            let (_, ov) = muni.get(&format!("/api/v1/records/{r}")).await;
            let made = s.db.scalar(&format!("SELECT COUNT(*) FROM records WHERE provenance LIKE '%\"origin_record_id\":{r}%'")).await;
            if won == "confirmed" {
                assert_eq!(ov["admin"]["status"], "transferred_out");
                assert_eq!(made, 1, "one new owner");
            } else {
                assert!(ov["admin"]["status"] != "transferred_out" && ov["meta"].get("transferred_to").is_none(), "{ov}");
                assert_eq!(made, 0, "no new owner");
                let (st, _) = far.get(&format!("/api/v1/records/{r}")).await;
                assert_eq!(st, StatusCode::NOT_FOUND);
            }
        }
        eprintln!("confirm against withdraw: {outcomes:?}");
    }

    async fn of_simultaneous_confirms_exactly_one_registers_a_record(db) {
        let s = TestServer::start(db).await;
        let muni = s.login("muni").await;
        let far = s.login("osaka-muni").await;
        for round in 0..3 {
            let a = muni.create(&record_json("131016", &format!("C{round}a"))).await;
            let b = muni.create(&record_json("131016", &format!("C{round}b"))).await;
            let t = offer(&muni, a, json!({ "to_org_id": "muni-271004", "siblings": [b] })).await;
            let tid = t["id"].as_i64().unwrap();
            let mut tasks = Vec::new();
            for _ in 0..6 {
                let c = far.clone();
                tasks.push(tokio::spawn(async move { step(&c, tid, "confirm", None).await }));
            }
            let mut ok = 0;
            for t in tasks {
                let (st, v) = t.await.unwrap();
                match st {
                    StatusCode::OK => ok += 1,
                    StatusCode::CONFLICT => assert_eq!(v["code"], "transfer_decided", "{v}"),
                    other => panic!("{other}: {v}"),
                }
            }
            assert_eq!(ok, 1, "round {round}");
            for r in [a, b] {
                assert_eq!(s.db.scalar(&format!("SELECT COUNT(*) FROM records WHERE provenance LIKE '%\"origin_record_id\":{r}%'")).await, 1);
                assert_eq!(s.db.scalar(&format!("SELECT COUNT(*) FROM audit_log WHERE action = 'transfer.confirmed' AND record_id = {r}")).await, 1);
            }
            assert_eq!(s.db.scalar(&format!("SELECT COUNT(*) FROM notifications WHERE kind = 'transfer_confirmed' AND transfer_id = {tid}")).await, 1);
        }
    }

    async fn a_confirm_racing_an_update_takes_the_record_as_it_is_at_the_confirm(db) {
        let s = TestServer::start(db).await;
        let muni = s.login("muni").await;
        let far = s.login("osaka-muni").await;
        let mut saved_first = 0;
        for round in 0..8 {
            let tag = format!("U{round}");
            let r = muni.create(&record_json("131016", &tag)).await;
            let t = offer(&muni, r, json!({ "to_org_id": "muni-271004" })).await;
            let tid = t["id"].as_i64().unwrap();
            let mut body = record_json("131016", &tag);
            body["casework"]["interview"] = json!(format!("転居直前の面接 NEW{tag}"));
            let (a, b) = (far.clone(), muni.clone());
            let confirm = tokio::spawn(async move { step(&a, tid, "confirm", None).await });
            let update = tokio::spawn(async move { b.put(&format!("/api/v1/records/{r}"), &json!({ "version": 1, "record": body })).await });
            let (c, u) = (confirm.await.unwrap(), update.await.unwrap());
            assert_eq!(c.0, StatusCode::OK, "the confirm never waits on an update's answer: {}", c.1);
            let n = c.1["records"][0]["new_record_id"].as_i64().unwrap();
            let (_, nv) = far.get(&format!("/api/v1/records/{n}")).await;
            let has_update = nv["casework"]["interview"] == json!(format!("転居直前の面接 NEW{tag}"));
            match u.0 {
                // Saved before the confirm read the record: the new record has it.
                StatusCode::OK => {
                    assert!(has_update, "an update that was saved reached the new record: {nv}");
                    saved_first += 1;
                }
                // Refused after: the new record has the record as it was.
                StatusCode::CONFLICT => {
                    assert_eq!(u.1["code"], "transferred_out", "{}", u.1);
                    assert!(!has_update, "{nv}");
                }
                other => panic!("{other}: {}", u.1),
            }
            let (_, ov) = muni.get(&format!("/api/v1/records/{r}")).await;
            assert_eq!(ov["admin"]["status"], "transferred_out");
            assert_eq!(ov["casework"]["interview"], nv["casework"]["interview"], "the origin's last version is what the destination took");
            assert_eq!(s.db.scalar(&format!("SELECT COUNT(*) FROM records WHERE owner_org = 'muni-271004' AND provenance LIKE '%\"origin_record_id\":{r}%'")).await, 1);
        }
        eprintln!("confirm racing an update: the update saved first {saved_first} of 8");
    }
}
