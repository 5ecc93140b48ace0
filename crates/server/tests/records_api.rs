//! The records API end to end over real HTTP, on both engines: create, read by every tier,
//! update with versions, restrictions, history, views, lists with paging.

mod support;

use reqwest::StatusCode;
use serde_json::json;
use support::{record_json, TestServer};

both_engines! {
    async fn create_and_read_by_each_tier(db) {
        let s = TestServer::start(db).await;
        let muni = s.login("muni").await;
        let id = muni.create(&record_json("131016", "T1")).await;
        assert_eq!(id / 1_000_000_000_000, 13, "the id names the owner's prefecture");

        let (st, v) = muni.get(&format!("/api/v1/records/{id}")).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(v["tier"], "owner");
        assert_eq!(v["casework"]["interview"], "INTERVIEWT1");
        assert_eq!(v["meta"]["version"], 1);

        // The centre of the jurisdiction: partner, everything.
        let (st, v) = s.login("cgc").await.get(&format!("/api/v1/records/{id}")).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(v["tier"], "partner");
        assert_eq!(v["casework"]["shown"]["interview"]["shown"], "INTERVIEWT1");
        assert_eq!(v["core"]["address"]["shown"]["street"], "架空町1-2-3 ADDRT1");

        // A centre of another prefecture: core and family, and no casework key at all.
        let (st, v) = s.login("osaka").await.get(&format!("/api/v1/records/{id}")).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(v["tier"], "outside");
        assert!(v.get("casework").is_none() && v.get("admin").is_none(), "{v}");
        assert_eq!(v["family"]["shown"]["upbringing"]["shown"], "UPBRINGT1");
        assert!(!v.to_string().contains("INTERVIEWT1"));

        // Another municipality, even of the same centre: nothing, as if it did not exist.
        for login in ["muni2", "muni-other", "osaka-muni"] {
            let (st, v) = s.login(login).await.get(&format!("/api/v1/records/{id}")).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{login}");
            assert!(!v.to_string().contains("T1"), "{login}: {v}");
        }

        // The ministry sees nothing until the record is flagged serious.
        let ministry = s.login("ministry").await;
        assert_eq!(ministry.get(&format!("/api/v1/records/{id}")).await.0, StatusCode::NOT_FOUND);
        let mut body = record_json("131016", "T1");
        body["admin"]["serious_case"] = json!(true);
        let (st, _) = muni.put(&format!("/api/v1/records/{id}"), &json!({ "version": 1, "record": body })).await;
        assert_eq!(st, StatusCode::OK);
        let (st, v) = ministry.get(&format!("/api/v1/records/{id}")).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(v["tier"], "ministry");
        assert_eq!(v["casework"]["interview"], "INTERVIEWT1");

        // The operator never reads case content.
        let (st, _) = s.login("operator").await.get(&format!("/api/v1/records/{id}")).await;
        assert_eq!(st, StatusCode::FORBIDDEN);

        // The owner lists who from other organisations opened it: the centre, Osaka, the ministry.
        let (st, views) = muni.get(&format!("/api/v1/records/{id}/views")).await;
        assert_eq!(st, StatusCode::OK);
        let orgs: Vec<&str> = views.as_array().unwrap().iter().map(|v| v["org_id"].as_str().unwrap()).collect();
        assert_eq!(orgs, vec!["cgc-13-01", "cgc-27-01", "ministry"], "{views}");
        assert_eq!(views[1]["tier"], "outside");
        // Only the owner may list them.
        assert_eq!(s.login("cgc").await.get(&format!("/api/v1/records/{id}/views")).await.0, StatusCode::FORBIDDEN);
    }

    async fn updates_need_the_current_version(db) {
        let s = TestServer::start(db).await;
        let cgc = s.login("cgc").await;
        let id = cgc.create(&record_json("131024", "V")).await;
        let path = format!("/api/v1/records/{id}");
        let mut body = record_json("131024", "V");
        body["casework"]["findings"] = json!("所見を更新");
        let (st, v) = cgc.put(&path, &json!({ "version": 1, "record": body })).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["meta"]["version"], 2);

        // A second editor still on version 1 is refused and shown the record as it is now.
        body["casework"]["findings"] = json!("古い版からの上書き");
        let (st, err) = cgc.put(&path, &json!({ "version": 1, "record": body })).await;
        assert_eq!(st, StatusCode::CONFLICT);
        assert_eq!(err["code"], "version_conflict");
        assert_eq!(err["current"]["meta"]["version"], 2);
        assert_eq!(err["current"]["casework"]["findings"], "所見を更新");
        assert!(err["message"].as_str().unwrap().contains("他の職員"));
        let (_, now) = cgc.get(&path).await;
        assert_eq!(now["casework"]["findings"], "所見を更新", "the stale write changed nothing");

        // Only the owner writes; a partner is told so, others do not learn it exists.
        let (st, _) = s.login("muni2").await.put(&path, &json!({ "version": 2, "record": body })).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let other = s.login("muni-other").await;
        let (st, hidden) = other.put(&path, &json!({ "version": 2, "record": body })).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        // The same answer as for an id that does not exist, in every prefecture's range.
        for missing in ["/api/v1/records/13999999999999", "/api/v1/records/99000000000001"] {
            let (st, absent) = other.put(missing, &json!({ "version": 2, "record": body })).await;
            assert_eq!(st, StatusCode::NOT_FOUND);
            assert_eq!((&absent["code"], &absent["message"]), (&hidden["code"], &hidden["message"]), "{missing}");
        }

        // History: both versions, projected for the partner.
        let (st, h) = s.login("muni2").await.get(&format!("{path}/versions")).await;
        assert_eq!(st, StatusCode::OK);
        let h = h.as_array().unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(h[0]["record"]["tier"], "partner");
        assert_eq!(h[1]["record"]["casework"]["shown"]["findings"]["shown"], "所見を更新");
        assert_eq!(h[0]["record"]["casework"]["shown"]["findings"]["shown"], "FINDINGSV");
    }

    async fn owner_restrictions_withhold_from_partners_and_outside(db) {
        let s = TestServer::start(db).await;
        let muni = s.login("muni").await;
        let id = muni.create(&record_json("131016", "R")).await;
        let path = format!("/api/v1/records/{id}");
        let r = json!({ "version": 1, "restrictions": { "groups": ["casework"], "fields": ["core.address", "family.household"], "reason": "DV被害のため" } });
        let (st, v) = muni.put(&format!("{path}/restrictions"), &r).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["meta"]["version"], 2);
        assert_eq!(v["core"]["address"]["street"], "架空町1-2-3 ADDRR", "the owner still sees everything");

        let (_, p) = s.login("cgc").await.get(&path).await;
        assert_eq!(p["tier"], "partner");
        assert_eq!(p["core"]["address"]["withheld"]["reason"], "owner_restriction");
        assert_eq!(p["casework"]["withheld"]["reason"], "owner_restriction");
        assert_eq!(p["admin"]["withheld"]["reason"], "owner_restriction");
        assert_eq!(p["family"]["shown"]["household"]["withheld"]["reason"], "owner_restriction");
        assert_eq!(p["family"]["shown"]["upbringing"]["shown"], "UPBRINGR");
        let text = p.to_string();
        for hidden in ["ADDRR", "INTERVIEWR", "HOUSER", "CASER", "INTAKER"] {
            assert!(!text.contains(hidden), "{hidden} leaked to the partner: {text}");
        }
        let (_, o) = s.login("osaka").await.get(&path).await;
        assert!(!o.to_string().contains("ADDRR"));
        // The partner's case list does not show the address either, and does not filter by it.
        let (_, list) = s.login("cgc").await.get("/api/v1/records?municipality=131016").await;
        assert!(list["items"].as_array().unwrap().iter().all(|i| i["id"] != id), "{list}");
        let (_, list) = s.login("cgc").await.get("/api/v1/records").await;
        let row = list["items"].as_array().unwrap().iter().find(|i| i["id"] == id).expect("partner case listed");
        assert_eq!(row["municipality_code"]["withheld"]["reason"], "owner_restriction");
        assert!(row["case_number"].get("withheld").is_some());

        // Restrictions with an unknown field are refused by name.
        let bad = json!({ "version": 2, "restrictions": { "fields": ["core.sex"] } });
        let (st, e) = muni.put(&format!("{path}/restrictions"), &bad).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert!(e["fields"][0]["field"].as_str().unwrap().contains("restrictions.fields"), "{e}");
    }

    async fn case_lists_filter_sort_and_page(db) {
        let s = TestServer::start(db).await;
        let cgc = s.login("cgc").await;
        let muni = s.login("muni").await;
        let other = s.login("muni-other").await;
        let osaka = s.login("osaka").await;
        let mut mine = Vec::new();
        for i in 0..7 {
            mine.push(cgc.create(&record_json("131024", &format!("C{i}"))).await);
        }
        for i in 0..5 {
            mine.push(muni.create(&record_json("131016", &format!("M{i}"))).await);
        }
        let foreign_muni = other.create(&record_json("131211", "X")).await;
        let foreign_pref = osaka.create(&record_json("271004", "Y")).await;

        // Walk all pages of 5: every own and partner case once, nothing else.
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/records?limit=5&cursor={c}"),
                None => "/api/v1/records?limit=5".to_string(),
            };
            let (st, page) = cgc.get(&path).await;
            assert_eq!(st, StatusCode::OK, "{page}");
            for it in page["items"].as_array().unwrap() {
                seen.push(it["id"].as_i64().unwrap());
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        let mut expected = mine.clone();
        expected.sort_unstable_by(|a, b| b.cmp(a));
        let mut got = seen.clone();
        got.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(got, expected, "each case once");
        assert!(!seen.contains(&foreign_muni) && !seen.contains(&foreign_pref));

        // The municipality sees its own and its centre's, not other municipalities'.
        let listed = |s: &TestServer| {
            let store = s.state().store.clone();
            async move {
                store.audit_entries(13, 0, 100_000).await.unwrap().into_iter().filter(|e| e.action == "record.listed").collect::<Vec<_>>()
            }
        };
        let before = listed(&s).await.len();
        let (_, page) = muni.get("/api/v1/records?limit=100").await;
        assert_eq!(page["items"].as_array().unwrap().len(), 12);
        // Listing the centre's 7 records is a read of them: audited, ids only, before the page.
        let entries = listed(&s).await;
        assert_eq!(entries.len(), before + 1, "{entries:?}");
        let e = entries.last().unwrap();
        assert_eq!(e.actor_org, "muni-131016");
        let d: serde_json::Value = serde_json::from_str(&e.detail).unwrap();
        let mut ids: Vec<i64> = d["records"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        ids.sort_unstable();
        assert_eq!(ids, mine[..7].to_vec());
        // A page of only one's own records is not a read of anyone else's.
        let before = entries.len();
        other.get("/api/v1/records?limit=100").await;
        assert_eq!(listed(&s).await.len(), before);
        let (_, page) = other.get("/api/v1/records?limit=100").await;
        let ids: Vec<i64> = page["items"].as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect();
        assert_eq!(ids, vec![foreign_muni]);

        // Filters and sorts.
        let (_, page) = cgc.get("/api/v1/records?municipality=131016&limit=100").await;
        assert_eq!(page["items"].as_array().unwrap().len(), 5);
        let (_, page) = cgc.get("/api/v1/records?sort=case_number&limit=3").await;
        let nums: Vec<&str> = page["items"].as_array().unwrap().iter().map(|i| i["case_number"]["shown"].as_str().unwrap()).collect();
        assert_eq!(nums, vec!["CASEC0", "CASEC1", "CASEC2"]);
        let (_, page) = cgc.get("/api/v1/records?sort=updated_asc&limit=1").await;
        assert_eq!(page["items"][0]["id"].as_i64().unwrap(), mine[0]);
        let (_, page) = cgc.get("/api/v1/records?status=closed").await;
        assert!(page["items"].as_array().unwrap().is_empty());
        let (_, page) = cgc.get("/api/v1/records?updated_since=2999-01-01T00:00:00Z").await;
        assert!(page["items"].as_array().unwrap().is_empty());

        // The ministry lists only serious cases.
        let (_, page) = s.login("ministry").await.get("/api/v1/records").await;
        assert!(page["items"].as_array().unwrap().is_empty());
    }

    async fn etag_and_compression(db) {
        let s = TestServer::start(db).await;
        let cgc = s.login("cgc").await;
        let id = cgc.create(&record_json("131024", "E")).await;
        let r = cgc.req(reqwest::Method::GET, &format!("/api/v1/records/{id}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let tag = r.headers()["etag"].to_str().unwrap().to_string();
        assert!(r.headers().contains_key("x-request-id"));
        let r = cgc.req(reqwest::Method::GET, &format!("/api/v1/records/{id}")).header("if-none-match", &tag).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        // After a change the old tag no longer matches.
        cgc.put(&format!("/api/v1/records/{id}"), &json!({ "version": 1, "record": record_json("131024", "E2") })).await;
        let r = cgc.req(reqwest::Method::GET, &format!("/api/v1/records/{id}")).header("if-none-match", &tag).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);

        // Large lists are compressed when the client asks.
        for i in 0..20 {
            cgc.create(&record_json("131024", &format!("Z{i}"))).await;
        }
        let raw = reqwest::Client::builder().no_gzip().build().unwrap();
        let r = raw.get(s.url("/api/v1/records?limit=50")).bearer_auth(&cgc.token).header("accept-encoding", "gzip").send().await.unwrap();
        assert_eq!(r.headers()["content-encoding"], "gzip");

        // The OpenAPI document is served and names the record paths.
        let doc: serde_json::Value = s.http.get(s.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
        assert!(doc["paths"]["/api/v1/records/{id}"].is_object());
    }
}

mod merging {
    use super::*;
    use serde_json::Value;

    async fn put(
        c: &support::Client,
        id: i64,
        version: i64,
        body: &Value,
    ) -> (StatusCode, Value, String) {
        let resp = c
            .req(reqwest::Method::PUT, &format!("/api/v1/records/{id}"))
            .json(&json!({ "version": version, "record": body }))
            .send()
            .await
            .unwrap();
        let st = resp.status();
        let merged = resp
            .headers()
            .get("tsunagu-merged")
            .map(|h| h.to_str().unwrap().to_string())
            .unwrap_or_default();
        (st, resp.json().await.unwrap(), merged)
    }

    both_engines! {
        async fn saves_from_the_same_version_merge_field_by_field(db) {
            let s = TestServer::start(db).await;
            let a = s.login("muni").await;
            let id = a.create(&record_json("131016", "M1")).await;
            let base = record_json("131016", "M1");

            // A changes the findings, B (from the same version 1) the child's given name.
            let mut mine_a = base.clone();
            mine_a["casework"]["findings"] = json!("所見（A）");
            let (st, _, merged) = put(&a, id, 1, &mine_a).await;
            assert_eq!((st, merged.as_str()), (StatusCode::OK, ""));
            let mut mine_b = base.clone();
            mine_b["core"]["child_name"]["given"] = json!("花菜");
            let (st, v, merged) = put(&a, id, 1, &mine_b).await;
            assert_eq!(st, StatusCode::OK, "{v}");
            assert_eq!(merged, "casework.findings", "the other change kept is named");
            assert_eq!(v["meta"]["version"], 3);
            assert_eq!(v["casework"]["findings"], "所見（A）");
            assert_eq!(v["core"]["child_name"]["given"], "花菜");

            // Both append to the progress log and to the upbringing text from version 3.
            let mut base3 = record_json("131016", "M1");
            base3["casework"]["findings"] = json!("所見（A）");
            base3["core"]["child_name"]["given"] = json!("花菜");
            let mut add_a = base3.clone();
            add_a["casework"]["progress"].as_array_mut().unwrap().push(json!({ "date": "2026-02-01", "text": "学校から電話" }));
            add_a["family"]["upbringing"] = json!("UPBRINGM1 夜間は一人。");
            let mut add_b = base3.clone();
            add_b["casework"]["progress"].as_array_mut().unwrap().push(json!({ "date": "2026-02-02", "text": "家庭訪問" }));
            add_b["family"]["upbringing"] = json!("UPBRINGM1 祖母が週末に来る。");
            let (st, _, _) = put(&a, id, 3, &add_a).await;
            assert_eq!(st, StatusCode::OK);
            let (st, v, merged) = put(&a, id, 3, &add_b).await;
            assert_eq!(st, StatusCode::OK, "{v}");
            assert_eq!(merged, "casework.progress, family.upbringing");
            let texts: Vec<&str> = v["casework"]["progress"].as_array().unwrap().iter().map(|e| e["text"].as_str().unwrap()).collect();
            assert_eq!(texts, ["PROGRESSM1", "学校から電話", "家庭訪問"], "both appends kept");
            assert_eq!(v["family"]["upbringing"], "UPBRINGM1 夜間は一人。\n 祖母が週末に来る。");
            let version = v["meta"]["version"].as_i64().unwrap();
            assert_eq!(version, 5);

            // The same field changed both ways: 409 with base, mine and theirs in full, and
            // nothing written.
            let stored: Value = a.get(&format!("/api/v1/records/{id}")).await.1;
            let mut x = record_json("131016", "M1");
            x["casework"] = stored["casework"].clone();
            x["family"] = stored["family"].clone();
            x["core"]["child_name"]["given"] = json!("花菜");
            let mut first = x.clone();
            first["casework"]["support_plan"] = json!("支援方針（先）");
            assert_eq!(put(&a, id, version, &first).await.0, StatusCode::OK);
            let long = "支援方針（後）".repeat(400);
            let mut second = x.clone();
            second["casework"]["support_plan"] = json!(long);
            let (st, e, _) = put(&a, id, version, &second).await;
            assert_eq!(st, StatusCode::CONFLICT, "{e}");
            assert_eq!(e["code"], "version_conflict");
            let c = &e["conflicts"][0];
            assert_eq!(c["field"], "casework.support_plan");
            assert_eq!((c["base"].as_str(), c["theirs"].as_str()), (Some("PLANM1"), Some("支援方針（先）")));
            assert_eq!(c["mine"].as_str(), Some(long.as_str()), "in full, never cut");
            assert_eq!(e["current"]["meta"]["version"].as_i64(), Some(version + 1));
            let (_, now) = a.get(&format!("/api/v1/records/{id}")).await;
            assert_eq!(now["meta"]["version"].as_i64(), Some(version + 1));
            assert_eq!(now["casework"]["support_plan"], "支援方針（先）");

            // Decided per field: the same save again, keeping mine for that field; a change
            // of another field in it still merges.
            let mut third = second.clone();
            third["family"]["guardian_workplace"] = json!("架空商事");
            let resp = a
                .req(reqwest::Method::PUT, &format!("/api/v1/records/{id}"))
                .json(&json!({ "version": version, "record": third, "resolve": { "casework.support_plan": "mine" } }))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            let v: Value = resp.json().await.unwrap();
            assert_eq!(v["casework"]["support_plan"].as_str(), Some(long.as_str()));
            assert_eq!(v["family"]["guardian_workplace"], "架空商事");
            assert_eq!(v["core"]["child_name"]["given"], "花菜");
            // A decision for another field decides nothing here.
            let (st, e) = a.put(&format!("/api/v1/records/{id}"), &json!({ "version": version, "record": first, "resolve": { "casework.findings": "theirs" } })).await;
            assert_eq!(st, StatusCode::CONFLICT, "{e}");
        }
    }
}
