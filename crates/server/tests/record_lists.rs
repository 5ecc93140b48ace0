//! Lists edited by operation (`POST /records/{id}/lists/{list}`), the server's stamps on the
//! progress log (経過), and the field-level history, end to end over HTTP on both engines.

mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{record_json, Client, TestServer};
use tsunagu_server::audit::{action, AuditDraft};
use tsunagu_server::storage::NewUser;

/// A second member of staff of `org` (the test users are one per organisation), logged in.
async fn colleague(s: &TestServer, login: &str, org: &str, pref: i64) -> Client {
    s.db.store
        .create_user(
            &NewUser {
                org_id: org.into(),
                login: login.into(),
                display_name: format!("テスト利用者 {login}"),
                role: "staff".into(),
                password_hash: tsunagu_server::auth::hash_password(
                    support::PASSWORD,
                    support::CHEAP,
                ),
                totp_secret: s.state().totp_key.seal(login, &support::totp_secret(login)),
            },
            AuditDraft::by_operator(pref, 0, action::USER_CREATED, json!({})),
        )
        .await
        .unwrap();
    s.login(login).await
}

fn lists_path(id: i64, list: &str) -> String {
    format!("/api/v1/records/{id}/lists/{list}")
}

async fn record(c: &Client, id: i64) -> Value {
    let (st, v) = c.get(&format!("/api/v1/records/{id}")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v
}

fn texts(v: &Value) -> Vec<String> {
    v["casework"]["progress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect()
}

async fn inbox_len(c: &Client) -> usize {
    let (_, v) = c.get("/api/v1/notifications?limit=200").await;
    v["items"].as_array().unwrap().len()
}

both_engines! {
    async fn each_list_is_changed_by_operation_as_a_new_version(db) {
        let s = TestServer::start(db).await;
        let muni = s.login("muni").await;
        let cgc = s.login("cgc").await;
        let id = muni.create(&record_json("131016", "L1")).await;
        let told = inbox_len(&cgc).await;
        let mut version = 1;
        let guardian = json!({ "name": { "family": "索引", "given": "次郎", "family_kana": null, "given_kana": null }, "relationship": "grandfather" });
        let member = json!({ "name": "索引 花", "relationship": "older_sister", "birth_year": 2015, "cohabiting": true, "note": "" });
        let attachment = json!({ "file_name": "写真.jpg", "media_type": "image/jpeg", "size": 1024, "sha256": "a".repeat(64) });
        let report = json!({ "received_on": "2026-01-11", "source": "学校", "summary": "欠席が続く" });
        for (list, group, item) in [("guardians", "core", &guardian), ("household", "family", &member), ("attachments", "casework", &attachment), ("intake_reports", "admin", &report)] {
            let before = record(&muni, id).await[group][list].as_array().unwrap().clone();
            // Appended, then moved to the front, changed, and removed again.
            let (st, v) = muni.post(&lists_path(id, list), &json!({ "op": "add", "item": item })).await;
            assert_eq!(st, StatusCode::OK, "{list}: {v}");
            version += 1;
            assert_eq!((v["tier"].as_str(), v["meta"]["version"].as_i64()), (Some("owner"), Some(version)));
            let n = before.len();
            assert_eq!(&v[group][list][n], item, "{list}");
            let (st, v) = muni.post(&lists_path(id, list), &json!({ "op": "move", "index": n, "was": item, "to": 0 })).await;
            assert_eq!(st, StatusCode::OK, "{list}: {v}");
            assert_eq!(&v[group][list][0], item);
            assert_eq!(&v[group][list].as_array().unwrap()[1..], &before[..], "{list}: the others follow in their order");
            let mut changed = item.clone();
            match list {
                "guardians" => changed["name"]["given"] = json!("三郎"),
                "household" => changed["note"] = json!("別居"),
                "attachments" => changed["file_name"] = json!("写真2.jpg"),
                _ => changed["summary"] = json!("欠席が続く（訂正）"),
            }
            let (st, v) = muni.post(&lists_path(id, list), &json!({ "op": "change", "index": 0, "was": item, "item": changed })).await;
            assert_eq!(st, StatusCode::OK, "{list}: {v}");
            assert_eq!(v[group][list][0], changed);
            if list == "guardians" {
                // The search index follows a list operation as any update.
                let url = reqwest::Url::parse_with_params("http://x/api/v1/search", &[("guardian", "索引三郎")]).unwrap();
                let (st, hits) = cgc.get(&format!("{}?{}", url.path(), url.query().unwrap())).await;
                assert_eq!(st, StatusCode::OK, "{hits}");
                assert!(hits.to_string().contains(&id.to_string()), "the new guardian is searchable: {hits}");
            }
            let (st, v) = muni.post(&lists_path(id, list), &json!({ "op": "remove", "index": 0, "was": changed })).await;
            assert_eq!(st, StatusCode::OK, "{list}: {v}");
            assert_eq!(v[group][list].as_array().unwrap(), &before, "{list}");
            version += 3;
            assert_eq!(v["meta"]["version"].as_i64(), Some(version));
        }
        // Each operation one version, one audit entry naming the list and the operation (never
        // the content), and one notice to the centre.
        let (_, h) = muni.get(&format!("/api/v1/records/{id}/versions")).await;
        assert_eq!(h.as_array().unwrap().len() as i64, version);
        let audited = s.db.scalar(&format!("SELECT COUNT(*) FROM audit_log WHERE action = 'record.updated' AND record_id = {id} AND detail LIKE '%\"list\"%'")).await;
        assert_eq!(audited, 16);
        let content = s.db.scalar(&format!("SELECT COUNT(*) FROM audit_log WHERE record_id = {id} AND (detail LIKE '%索引%' OR detail LIKE '%写真%')")).await;
        assert_eq!(content, 0, "the log carries no content");
        assert_eq!(inbox_len(&cgc).await - told, 16, "the centre is told of each change");
    }

    async fn bad_operations_are_refused_by_name_and_change_nothing(db) {
        let s = TestServer::start(db).await;
        let muni = s.login("muni").await;
        let id = muni.create(&record_json("131016", "B1")).await;
        let stored = record(&muni, id).await;
        let entry = stored["casework"]["progress"][0].clone();
        let guardian = stored["core"]["guardians"][0].clone();
        let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
            ("addresses", json!({ "op": "add", "item": {} }), StatusCode::BAD_REQUEST, "list"),
            ("progress", json!({ "op": "rename", "item": entry }), StatusCode::BAD_REQUEST, "op"),
            ("progress", json!({ "item": entry }), StatusCode::BAD_REQUEST, "op"),
            ("progress", json!({ "op": "add" }), StatusCode::BAD_REQUEST, "item"),
            ("progress", json!({ "op": "add", "item": entry, "extra": 1 }), StatusCode::BAD_REQUEST, "extra"),
            ("progress", json!({ "op": "remove", "index": -1, "was": entry }), StatusCode::BAD_REQUEST, "index"),
            ("progress", json!({ "op": "remove", "index": "0", "was": entry }), StatusCode::BAD_REQUEST, "index"),
            ("progress", json!({ "op": "remove", "index": 0 }), StatusCode::BAD_REQUEST, "was"),
            ("progress", json!({ "op": "change", "index": 0, "was": entry, "item": { "date": "昨日", "text": "x" } }), StatusCode::BAD_REQUEST, "item.date"),
            ("progress", json!({ "op": "add", "item": { "date": "2026-01-11", "text": "x", "mood": 1 } }), StatusCode::BAD_REQUEST, "item.mood"),
            ("guardians", json!({ "op": "add", "item": { "name": { "family": "x" }, "relationship": "cousin" } }), StatusCode::BAD_REQUEST, "item.relationship"),
            ("progress", json!({ "op": "move", "index": 0, "was": entry, "to": 1 }), StatusCode::BAD_REQUEST, "to"),
            // Validated as a whole save: an empty entry, a date in the future, no guardian left.
            ("progress", json!({ "op": "add", "item": { "date": "2026-01-11", "text": " " } }), StatusCode::UNPROCESSABLE_ENTITY, "casework.progress[1].text"),
            ("progress", json!({ "op": "add", "item": { "date": "2999-01-01", "text": "未来" } }), StatusCode::UNPROCESSABLE_ENTITY, "casework.progress[1].date"),
            ("guardians", json!({ "op": "remove", "index": 0, "was": guardian }), StatusCode::UNPROCESSABLE_ENTITY, "core.guardians"),
        ];
        for (list, body, want, field) in cases {
            let (st, v) = muni.post(&lists_path(id, list), &body).await;
            assert_eq!(st, want, "{list} {body}: {v}");
            let named: Vec<&str> = v["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
            assert!(named.contains(&field), "{list} {body}: {field} not named in {v}");
            assert!(v["message"].as_str().unwrap().chars().any(|c| c > '\u{3000}'), "a Japanese message: {v}");
        }
        // An entry that is no longer there (or never was): 409, in Japanese.
        let mut gone = entry.clone();
        gone["text"] = json!("別の内容");
        let (st, v) = muni.post(&lists_path(id, "progress"), &json!({ "op": "change", "index": 0, "was": gone, "item": entry })).await;
        assert_eq!((st, v["code"].as_str()), (StatusCode::CONFLICT, Some("list_item_changed")), "{v}");
        assert!(v["message"].as_str().unwrap().contains("他の職員"), "{v}");
        // Not JSON, no body: the extractor's refusals.
        let r = muni.req(reqwest::Method::POST, &lists_path(id, "progress")).header("content-type", "text/plain").body("{}").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let (st, v) = muni.post("/api/v1/records/0/lists/progress", &json!({ "op": "add", "item": entry })).await;
        assert_eq!((st, v["fields"][0]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("id")));
        assert_eq!(record(&muni, id).await, stored, "nothing changed");
    }

    async fn only_the_owner_changes_a_list(db) {
        let s = TestServer::start(db).await;
        let muni = s.login("muni").await;
        let id = muni.create(&record_json("131016", "O1")).await;
        let stored = record(&muni, id).await;
        let entry = stored["casework"]["progress"][0].clone();
        let add = json!({ "op": "add", "item": { "date": "2026-01-11", "text": "他機関から" } });
        // Nothing of the list is looked at before the owner is: an entry that is not there is
        // no 409 for a partner, a place outside the list no 400.
        let stale = json!({ "op": "remove", "index": 9, "was": { "date": "2026-01-01", "text": "ない" } });
        let moved = json!({ "op": "move", "index": 0, "was": entry, "to": 7 });
        let none_body = |v: &Value| { let mut v = v.clone(); v.as_object_mut().unwrap().remove("request_id"); v };
        let (st, missing) = s.login("muni2").await.post("/api/v1/records/13999999999999/lists/progress", &add).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        for (login, want) in [("cgc", StatusCode::FORBIDDEN), ("cgc2", StatusCode::FORBIDDEN), ("muni2", StatusCode::NOT_FOUND), ("osaka", StatusCode::FORBIDDEN), ("osaka-muni", StatusCode::NOT_FOUND), ("ministry", StatusCode::FORBIDDEN), ("operator", StatusCode::FORBIDDEN)] {
            let c = s.login(login).await;
            for body in [&add, &stale, &moved] {
                let (st, v) = c.post(&lists_path(id, "progress"), body).await;
                assert_eq!(st, want, "{login} {body}: {v}");
                assert!(!v.to_string().contains("O1"), "{login}: {v}");
                if want == StatusCode::NOT_FOUND {
                    assert_eq!(none_body(&v), none_body(&missing), "{login}: the answer for no record");
                }
            }
        }
        assert_eq!(record(&muni, id).await, stored, "nothing changed");
    }

    async fn progress_entries_are_stamped_by_the_server(db) {
        let s = TestServer::start(db).await;
        let a = s.login("muni").await;
        let b = colleague(&s, "muni-b", "muni-131016", 13).await;
        // Stamps sent with a new record are not kept: the writer and the time are the server's.
        let mut body = record_json("131016", "S1");
        body["casework"]["progress"][0]["author"] = json!("偽の職員");
        body["casework"]["progress"][0]["recorded_at"] = json!("2020-01-01T00:00:00Z");
        body["casework"]["progress"][0]["corrected_by"] = json!("偽の職員");
        let id = a.create(&body).await;
        let v1 = record(&a, id).await;
        let first = v1["casework"]["progress"][0].clone();
        assert_eq!(first["author"], "テスト利用者 muni");
        assert_eq!(first["recorded_at"], v1["meta"]["created_at"], "stamped with the write's time");
        assert!(first.get("corrected_by").is_none() && first.get("corrected_at").is_none(), "{first}");

        // A whole save that forges the stamps of an entry it did not change keeps the stored ones.
        let mut forged = record_json("131016", "S1");
        forged["casework"]["progress"][0] = first.clone();
        forged["casework"]["progress"][0]["author"] = json!("偽の職員");
        forged["casework"]["findings"] = json!("所見を更新");
        let (st, v) = a.put(&format!("/api/v1/records/{id}"), &json!({ "version": 1, "record": forged })).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["casework"]["progress"][0], first);

        // B appends.
        let (st, v) = b.post(&lists_path(id, "progress"), &json!({ "op": "add", "item": { "date": "2026-01-12", "text": "家庭訪問", "author": "偽の職員", "recorded_at": "2020-01-01T00:00:00Z" } })).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let added = v["casework"]["progress"][1].clone();
        assert_eq!((added["author"].as_str(), &added["recorded_at"]), (Some("テスト利用者 muni-b"), &v["meta"]["updated_at"]), "{added}");

        // A whole save from the version before that appends too: merged, each entry its
        // writer's, whatever the client claimed.
        let mut stale = record_json("131016", "S1");
        stale["casework"]["findings"] = json!("所見を更新");
        stale["casework"]["progress"] = json!([first, { "date": "2026-01-13", "text": "Aの追記", "author": "テスト利用者 muni-b" }]);
        let (st, v) = a.put(&format!("/api/v1/records/{id}"), &json!({ "version": 2, "record": stale })).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let p = v["casework"]["progress"].as_array().unwrap();
        assert_eq!(p.len(), 3, "{v}");
        assert_eq!((&p[0], &p[1]), (&first, &added));
        let appended = p[2].clone();
        assert_eq!((appended["text"].as_str(), appended["author"].as_str()), (Some("Aの追記"), Some("テスト利用者 muni")));
        assert_eq!(appended["recorded_at"], v["meta"]["updated_at"]);

        // B corrects A's entry: A stays its author; B and the time are the correction's.
        let mut fixed = first.clone();
        fixed["text"] = json!("PROGRESSS1（日付と内容を訂正）");
        fixed["date"] = json!("2026-01-09");
        fixed["corrected_by"] = json!("偽の職員");
        // `was` as a client that keeps only date and text would send it.
        let (st, v) = b.post(&lists_path(id, "progress"), &json!({ "op": "change", "index": 0, "was": { "date": first["date"], "text": first["text"] }, "item": fixed })).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let corrected = v["casework"]["progress"][0].clone();
        assert_eq!(corrected["author"], "テスト利用者 muni");
        assert_eq!(corrected["recorded_at"], first["recorded_at"]);
        assert_eq!(corrected["corrected_by"], "テスト利用者 muni-b");
        assert_eq!(corrected["corrected_at"], v["meta"]["updated_at"]);
        assert_eq!(&v["casework"]["progress"].as_array().unwrap()[1..], &[added.clone(), appended.clone()], "the others untouched");
        assert_eq!(v["meta"]["version"].as_i64(), Some(5));

        // The original text stays readable in the history, and the change names it.
        let (_, h) = a.get(&format!("/api/v1/records/{id}/versions")).await;
        let h = h.as_array().unwrap();
        assert_eq!(h[3]["record"]["casework"]["progress"][0]["text"], "PROGRESSS1");
        let change = |field: &str| h[4]["changes"].as_array().unwrap().iter().find(|c| c["field"] == field).cloned();
        let text = change("casework.progress[0].text").expect("the text's change");
        assert_eq!((text["before"].as_str(), text["after"].as_str()), (Some("PROGRESSS1"), Some("PROGRESSS1（日付と内容を訂正）")));
        assert_eq!(change("casework.progress[0].corrected_by").unwrap()["after"], "テスト利用者 muni-b");
        assert_eq!(change("casework.progress[0].date").unwrap()["before"], "2026-01-10");
        assert_eq!(h[4]["changes"].as_array().unwrap().len(), 4, "date, text and the two correction stamps: {}", h[4]["changes"]);
        assert_eq!(h[2]["changes"], json!([{ "field": "casework.progress[1]", "after": added }]));
        assert_eq!(h[3]["changes"], json!([{ "field": "casework.progress[2]", "after": appended }]));
        assert_eq!(h[1]["changes"], json!([{ "field": "casework.findings", "before": "FINDINGSS1", "after": "所見を更新" }]));
        assert_eq!(h[0]["changes"], json!([]), "the first version has no changes");
    }

    async fn a_record_made_from_an_intake_is_stamped_too(db) {
        let s = TestServer::start(db).await;
        let muni = s.login("muni").await;
        let at = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
        let (st, intake) = muni.post("/api/v1/intakes", &json!({ "received_at": at, "channel": "phone", "content": "泣き声が続いている" })).await;
        assert_eq!(st, StatusCode::CREATED, "{intake}");
        let mut body = record_json("131016", "I1");
        body["casework"]["progress"][0]["author"] = json!("偽の職員");
        let (st, v) = muni.post(&format!("/api/v1/intakes/{}/convert", intake["id"]), &json!({ "version": 1, "record": body })).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        let rec = record(&muni, v["record_id"].as_i64().unwrap()).await;
        let e = &rec["casework"]["progress"][0];
        assert_eq!((e["author"].as_str(), &e["recorded_at"]), (Some("テスト利用者 muni"), &rec["meta"]["created_at"]), "{e}");
    }

    async fn simultaneous_appends_all_succeed(db) {
        let s = TestServer::start(db).await;
        let a = s.login("muni").await;
        let b = colleague(&s, "muni-b", "muni-131016", 13).await;
        let id = a.create(&record_json("131016", "C1")).await;
        let mut findings = record_json("131016", "C1");
        findings["casework"]["findings"] = json!("同時に所見を更新");
        const EACH: usize = 8;
        let mut tasks = Vec::new();
        for (who, c) in [("A", &a), ("B", &b)] {
            for n in 0..EACH {
                let (c, path) = (c.clone(), lists_path(id, "progress"));
                let text = format!("{who}の追記{n}");
                tasks.push(tokio::spawn(async move {
                    c.post(&path, &json!({ "op": "add", "item": { "date": "2026-01-12", "text": text } })).await
                }));
            }
        }
        // Meanwhile a whole save of another field, from the first version: merged.
        let put = {
            let (c, path, body) = (a.clone(), format!("/api/v1/records/{id}"), findings.clone());
            tokio::spawn(async move { c.put(&path, &json!({ "version": 1, "record": body })).await })
        };
        for t in tasks {
            let (st, v) = t.await.unwrap();
            assert_eq!(st, StatusCode::OK, "{v}");
        }
        let (st, v) = put.await.unwrap();
        assert_eq!(st, StatusCode::OK, "{v}");
        let now = record(&a, id).await;
        let mut got = texts(&now);
        assert_eq!(got.remove(0), "PROGRESSC1");
        got.sort();
        let mut want: Vec<String> = ["A", "B"].iter().flat_map(|w| (0..EACH).map(move |n| format!("{w}の追記{n}"))).collect();
        want.sort();
        assert_eq!(got, want, "every append kept, once");
        assert_eq!(now["casework"]["findings"], "同時に所見を更新");
        assert_eq!(now["meta"]["version"].as_i64(), Some(2 + 2 * EACH as i64), "one version each");
        for e in now["casework"]["progress"].as_array().unwrap()[1..].iter() {
            let who = if e["text"].as_str().unwrap().starts_with('A') { "テスト利用者 muni" } else { "テスト利用者 muni-b" };
            assert_eq!(e["author"], who, "{e}");
        }
        // Each operation applied to the version before it: the log grows by one entry a
        // version, and no version lost another's entry.
        let (_, h) = a.get(&format!("/api/v1/records/{id}/versions")).await;
        let mut before: Vec<String> = Vec::new();
        for v in h.as_array().unwrap() {
            let t = texts(&v["record"]);
            assert!(t.len() == before.len() || t.len() == before.len() + 1, "{t:?} after {before:?}");
            assert_eq!(&t[..before.len()], &before[..], "an entry lost");
            before = t;
        }
        let audited = s.db.scalar(&format!("SELECT COUNT(*) FROM audit_log WHERE action = 'record.updated' AND record_id = {id}")).await;
        assert_eq!(audited, 1 + 2 * EACH as i64);
    }

    async fn history_names_what_changed_within_the_viewers_tier(db) {
        let s = TestServer::start(db).await;
        let muni = s.login("muni").await;
        let id = muni.create(&record_json("131016", "H1")).await;
        let path = format!("/api/v1/records/{id}");
        let restrict = |version: i64, groups: Value, fields: Value| json!({ "version": version, "restrictions": { "groups": groups, "fields": fields, "reason": "テスト" } });
        let (st, v) = muni.put(&format!("{path}/restrictions"), &restrict(1, json!([]), json!(["casework.findings", "core.address"]))).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let mut body = record_json("131016", "H1");
        body["casework"]["findings"] = json!("FINDINGSH1 新所見");
        body["core"]["address"]["street"] = json!("架空町9-9 ADDRH1 新住所");
        body["family"]["upbringing"] = json!("UPBRINGH1 祖母と同居");
        body["casework"]["progress"] = record(&muni, id).await["casework"]["progress"].clone();
        let (st, v) = muni.put(&path, &json!({ "version": 2, "record": body })).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let (st, v) = muni.post(&lists_path(id, "progress"), &json!({ "op": "add", "item": { "date": "2026-01-12", "text": "PROGRESSH1 訪問" } })).await;
        assert_eq!(st, StatusCode::OK, "{v}");

        let history = |c: Client| async move {
            let (st, h) = c.get(&format!("/api/v1/records/{id}/versions")).await;
            assert_eq!(st, StatusCode::OK, "{h}");
            h.as_array().unwrap().clone()
        };
        let names = |e: &Value| -> Vec<(String, bool)> {
            e["changes"].as_array().unwrap().iter().map(|c| (c["field"].as_str().unwrap().to_string(), c["withheld"] == json!(true))).collect()
        };
        let shown = |f: &str| (f.to_string(), false);
        let withheld = |f: &str| (f.to_string(), true);

        // The owner: every change with both values, restrictions included.
        let h = history(muni.clone()).await;
        assert_eq!(h.len(), 4);
        assert_eq!(names(&h[1]), [shown("restrictions.fields[0]"), shown("restrictions.fields[1]"), shown("restrictions.reason")]);
        assert_eq!(names(&h[2]), [shown("casework.findings"), shown("core.address.street"), shown("family.upbringing")]);
        assert_eq!(h[2]["changes"][0], json!({ "field": "casework.findings", "before": "FINDINGSH1", "after": "FINDINGSH1 新所見" }));
        assert_eq!(names(&h[3]), [shown("casework.progress[1]")]);

        // The centre, a partner that sees the metadata: what it may see with its values, the
        // restricted fields named as withheld, without a value.
        let h = history(s.login("cgc").await).await;
        assert_eq!(h.len(), 4);
        assert_eq!(names(&h[1]), Vec::<(String, bool)>::new(), "the restrictions are not the partner's to see");
        assert_eq!(names(&h[2]), [shown("family.upbringing"), withheld("casework.findings"), withheld("core.address")]);
        assert_eq!(h[2]["changes"][1], json!({ "field": "casework.findings", "withheld": true }));
        assert_eq!(h[2]["changes"][0]["after"], "UPBRINGH1 祖母と同居");
        assert_eq!(names(&h[3]), [shown("casework.progress[1]")]);
        let text = serde_json::to_string(&h.iter().map(|e| &e["changes"]).collect::<Vec<_>>()).unwrap();
        assert!(!text.contains("FINDINGSH1") && !text.contains("ADDRH1"), "{text}");

        // An outside centre: no metadata, so versions that look alike are one, and nothing is
        // named that it may not see (not even as withheld).
        let h = history(s.login("osaka").await).await;
        assert_eq!(h.len(), 2, "{h:?}");
        assert_eq!(names(&h[1]), [shown("family.upbringing")]);

        // Casework restricted: the partner loses the metadata too.
        let (st, v) = muni.put(&format!("{path}/restrictions"), &restrict(4, json!(["casework"]), json!([]))).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let h = history(s.login("cgc").await).await;
        assert_eq!(h.len(), 2, "{h:?}");
        assert!(h.iter().all(|e| e["written"].get("withheld").is_some()));
        assert_eq!(names(&h[1]), [shown("core.address.street"), shown("family.upbringing")]);
        assert_eq!(h[1]["changes"][0]["after"], "架空町9-9 ADDRH1 新住所");
    }
}
