//! Intakes (通告受理) end to end over real HTTP, on both engines: a report saved with only its
//! content and time, read by its receiver alone until it is linked, attached to an own record
//! or sent to the owner of another's, converted into a new record in one transaction, the
//! safety clock with its confirmation and reminders, and the checks that guard one change of
//! an open intake under a concurrent burst.

mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{record_json, TestServer};

fn now_minus(mins: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(mins)).to_rfc3339()
}

/// A report as staff type it during a call; `tag` marks every free text.
fn intake_json(tag: &str) -> Value {
    json!({
        "received_at": now_minus(1),
        "channel": "phone",
        "reporter_relationship": format!("近所の住民 REPORTER{tag}"),
        "content": format!("夜中に子どもの泣き声が続いている CONTENT{tag}"),
        "child": {
            "name": { "family": "試験", "given": format!("花子{tag}"), "family_kana": "シケン" },
            "age_note": "小学生くらい",
            "municipality_code": "131016",
            "address_note": format!("架空町の団地 ADDR{tag}")
        },
        "guardians": [{ "name": { "family": "試験" }, "relationship": "mother" }],
        "urgency": "high"
    })
}

async fn receive(c: &support::Client, tag: &str) -> Value {
    let (st, v) = c.post("/api/v1/intakes", &intake_json(tag)).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v
}

fn id_of(v: &Value) -> i64 {
    v["id"].as_i64().unwrap()
}

both_engines! {
    async fn a_report_is_saved_with_only_its_content_and_time_and_read_by_its_receiver_alone(db) {
        let s = TestServer::start(db).await;
        let muni = s.login("muni").await;
        // Only the content and the time: saved at once.
        let (st, v) = muni
            .post("/api/v1/intakes", &json!({ "received_at": now_minus(2), "content": "匿名の電話 BARE1" }))
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        assert_eq!(v["status"], "open");
        assert_eq!(v["safety"]["hours"], 48);
        assert_eq!(v["safety"]["state"], "pending");
        assert_eq!(v["received_by"], "テスト利用者 muni");
        let received = chrono::DateTime::parse_from_rfc3339(v["input"]["received_at"].as_str().unwrap()).unwrap();
        let due = chrono::DateTime::parse_from_rfc3339(v["safety"]["due_at"].as_str().unwrap()).unwrap();
        assert_eq!(due - received, chrono::Duration::hours(48));
        let bare = id_of(&v);

        let full = receive(&muni, "R1").await;
        let id = id_of(&full);
        assert_ne!(id, bare);
        let (st, v) = muni.get(&format!("/api/v1/intakes/{id}")).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(v["input"]["content"], full["input"]["content"]);
        assert_eq!(v["input"]["child"]["address_note"], "架空町の団地 ADDRR1");

        // Unlinked, it is the receiver's alone: its own centre, other municipalities, other
        // prefectures and the ministry are told it does not exist, and learn nothing of it.
        for login in ["cgc", "cgc2", "muni2", "osaka", "ministry"] {
            let c = s.login(login).await;
            let (st, v) = c.get(&format!("/api/v1/intakes/{id}")).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{login}");
            let (st2, v2) = c.get("/api/v1/intakes/999999").await;
            assert_eq!((st2, &v2["message"]), (st, &v["message"]), "{login}: same answer as no intake");
            let (_, list) = c.get("/api/v1/intakes?filter=all").await;
            assert!(!list.to_string().contains("R1"), "{login}: {list}");
        }
        let refused = s
            .db
            .scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'intake.access_refused'")
            .await;
        assert_eq!(refused, 10, "every refused read is in the log");

        // The duty list: both, unconfirmed, earliest deadline first.
        let (st, list) = muni.get("/api/v1/intakes").await;
        assert_eq!(st, StatusCode::OK);
        let ids: Vec<i64> = list["items"].as_array().unwrap().iter().map(id_of).collect();
        assert_eq!(ids, [bare, id]);
        assert_eq!(list["items"][1]["child_name"]["given"], "花子R1");
        // The operator neither receives nor reads.
        let op = s.login("operator").await;
        assert_eq!(op.post("/api/v1/intakes", &intake_json("OP")).await.0, StatusCode::FORBIDDEN);
        assert_eq!(op.get("/api/v1/intakes").await.0, StatusCode::FORBIDDEN);
    }

    async fn bad_input_names_the_field_and_writes_nothing(db) {
        let s = TestServer::start(db).await;
        let muni = s.login("muni").await;
        let before = s.db.scalar("SELECT COUNT(*) FROM audit_log").await;
        let cases: Vec<(Value, &str)> = vec![
            (json!({ "received_at": now_minus(1), "content": "   " }), "content"),
            (json!({ "received_at": now_minus(-60), "content": "x" }), "received_at"),
            (json!({ "received_at": now_minus(1), "content": "x", "child": { "municipality_code": "131017" } }), "child.municipality_code"),
            (json!({ "received_at": now_minus(1), "content": "x", "child": { "municipality_code": "999990" } }), "child.municipality_code"),
            (json!({ "received_at": now_minus(1), "content": "x", "child": { "name": { "family_kana": "yamada" } } }), "child.name.family_kana"),
            (json!({ "received_at": now_minus(1), "content": "x", "child": { "birth_date": { "date": "2999-01-01" } } }), "child.birth_date.date"),
        ];
        for (body, field) in cases {
            let (st, v) = muni.post("/api/v1/intakes", &body).await;
            assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
            assert!(
                v["fields"].as_array().unwrap().iter().any(|f| f["field"] == field),
                "{field} named in {v}"
            );
        }
        // Not JSON of an intake at all: a client error, never a 500.
        for body in [json!({ "content": "x" }), json!({ "received_at": "yesterday", "content": "x" }), json!({ "received_at": now_minus(1), "content": "x", "extra": 1 })] {
            let (st, v) = muni.post("/api/v1/intakes", &body).await;
            assert!(st.is_client_error(), "{body}: {st} {v}");
        }
        assert_eq!(s.db.scalar("SELECT COUNT(*) FROM intakes").await, 0);
        assert_eq!(s.db.scalar("SELECT COUNT(*) FROM audit_log").await, before);
        // Bad list parameters are named too.
        for q in ["filter=everything", "limit=0", "limit=x", "sort=due"] {
            let (st, v) = muni.get(&format!("/api/v1/intakes?{q}")).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{q}: {v}");
        }
    }

    async fn attached_to_an_own_record_or_sent_to_the_owner_of_another(db) {
        let s = TestServer::start(db).await;
        let muni = s.login("muni").await;
        let cgc = s.login("cgc").await;
        let rec = muni.create(&record_json("131016", "A1")).await;

        // A report the municipality received about its own child.
        let i1 = id_of(&receive(&muni, "I1").await);
        let (st, v) = muni.post(&format!("/api/v1/intakes/{i1}/attach"), &json!({ "record_id": rec, "version": 1 })).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!((v["status"].as_str(), v["record_id"].as_i64()), (Some("attached"), Some(rec)));
        // Attached once: a second attach, at either version, is refused.
        for version in [1, 2] {
            let (st, v) = muni.post(&format!("/api/v1/intakes/{i1}/attach"), &json!({ "record_id": rec, "version": version })).await;
            assert_eq!(st, StatusCode::CONFLICT, "{v}");
        }

        // A report the centre received about the municipality's child: sent to the owner.
        let i2 = id_of(&receive(&cgc, "I2").await);
        let (_, before) = muni.get("/api/v1/notifications").await;
        let (st, v) = cgc.post(&format!("/api/v1/intakes/{i2}/attach"), &json!({ "record_id": rec, "version": 1 })).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["status"], "forwarded");
        let (_, after) = muni.get("/api/v1/notifications").await;
        let new: Vec<&Value> = after["items"].as_array().unwrap().iter()
            .filter(|n| !before["items"].as_array().unwrap().contains(n))
            .collect();
        assert_eq!(new.len(), 1, "{after}");
        assert_eq!(new[0]["kind"], "intake_forwarded");
        assert_eq!((new[0]["intake_id"].as_i64(), new[0]["record_id"].as_i64()), (Some(i2), Some(rec)));
        assert!(!new[0].to_string().contains("I2"), "a notification names no content");

        // The owner reads it now, as casework of its record; so does the owner's partner.
        let (st, v) = muni.get(&format!("/api/v1/intakes/{i2}")).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["input"]["content"], "夜中に子どもの泣き声が続いている CONTENTI2");
        // …but it is the centre's intake: the owner may not change it.
        let (st, _) = muni.put(&format!("/api/v1/intakes/{i2}"), &json!({ "version": 2, "input": intake_json("X") })).await;
        assert_eq!(st, StatusCode::FORBIDDEN);

        // The record's intake list: both, oldest first, for whoever sees its casework.
        for login in ["muni", "cgc"] {
            let (st, list) = s.login(login).await.get(&format!("/api/v1/records/{rec}/intakes")).await;
            assert_eq!(st, StatusCode::OK, "{login}");
            let ids: Vec<i64> = list["items"].as_array().unwrap().iter().map(id_of).collect();
            assert_eq!(ids, [i1, i2], "{login}");
        }
        // An outside centre sees the record but not its casework: no intake.
        let (st, list) = s.login("osaka").await.get(&format!("/api/v1/records/{rec}/intakes")).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(list["items"], json!([]));
        for login in ["osaka", "muni2"] {
            let c = s.login(login).await;
            for i in [i1, i2] {
                let (st, v) = c.get(&format!("/api/v1/intakes/{i}")).await;
                assert_eq!(st, StatusCode::NOT_FOUND, "{login}: {v}");
            }
        }
        // Once the owner restricts casework, its partner reads neither the intakes nor the list.
        let (_, r) = muni.get(&format!("/api/v1/records/{rec}")).await;
        let version = r["meta"]["version"].as_i64().unwrap();
        let (st, v) = muni.put(&format!("/api/v1/records/{rec}/restrictions"), &json!({ "version": version, "restrictions": { "groups": ["casework"], "fields": [], "reason": "調査中" } })).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let (_, list) = cgc.get(&format!("/api/v1/records/{rec}/intakes")).await;
        let ids: Vec<i64> = list["items"].as_array().unwrap().iter().map(id_of).collect();
        assert_eq!(ids, [i2], "the centre still reads the intake it received, and only that");
        assert_eq!(cgc.get(&format!("/api/v1/intakes/{i1}")).await.0, StatusCode::NOT_FOUND);

        // No such record: named, and nothing changes.
        let i3 = id_of(&receive(&muni, "I3").await);
        let (st, none) = muni.post(&format!("/api/v1/intakes/{i3}/attach"), &json!({ "record_id": 13_000_000_999_999i64, "version": 1 })).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{none}");
        let (_, v) = muni.get(&format!("/api/v1/intakes/{i3}")).await;
        assert_eq!((v["status"].as_str(), v["version"].as_i64()), (Some("open"), Some(1)));
        // A record the caller has no tier on (another municipality's) answers the same, so
        // attaching tells no one which ids exist; the refusal is logged.
        let muni2 = s.login("muni2").await;
        let i4 = id_of(&receive(&muni2, "I4").await);
        let refused = s.db.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'record.access_refused'").await;
        let (st, v) = muni2.post(&format!("/api/v1/intakes/{i4}/attach"), &json!({ "record_id": rec, "version": 1 })).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["fields"], none["fields"]);
        assert_eq!(s.db.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'record.access_refused'").await, refused + 1);
        let (_, v) = muni2.get(&format!("/api/v1/intakes/{i4}")).await;
        assert_eq!(v["status"], "open");
    }

    async fn converted_into_a_new_record_in_one_transaction(db) {
        let s = TestServer::start(db).await;
        let muni = s.login("muni").await;
        let id = id_of(&receive(&muni, "C1").await);
        let records = s.db.scalar("SELECT COUNT(*) FROM records").await;

        // A record body that fails validation: 422 naming the field, and neither changed.
        let mut bad = record_json("131016", "C1");
        bad["core"]["child_name"]["family"] = json!("");
        let (st, v) = muni.post(&format!("/api/v1/intakes/{id}/convert"), &json!({ "version": 1, "record": bad })).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert!(v["fields"].as_array().unwrap().iter().any(|f| f["field"] == "core.child_name.family"), "{v}");
        assert_eq!(s.db.scalar("SELECT COUNT(*) FROM records").await, records);
        // A stale version: 409, and neither changed.
        let (st, v) = muni.post(&format!("/api/v1/intakes/{id}/convert"), &json!({ "version": 7, "record": record_json("131016", "C1") })).await;
        assert_eq!(st, StatusCode::CONFLICT, "{v}");
        assert_eq!(v["code"], "version_conflict");
        assert_eq!(s.db.scalar("SELECT COUNT(*) FROM records").await, records);

        let (st, v) = muni.post(&format!("/api/v1/intakes/{id}/convert"), &json!({ "version": 1, "record": record_json("131016", "C1") })).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        let rec = v["record_id"].as_i64().unwrap();
        assert_eq!(v["intake"]["status"], "converted");
        assert_eq!(v["intake"]["record_id"].as_i64(), Some(rec));
        assert_eq!(s.db.scalar("SELECT COUNT(*) FROM records").await, records + 1);
        let (st, r) = muni.get(&format!("/api/v1/records/{rec}")).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(r["tier"], "owner");
        let (_, list) = muni.get(&format!("/api/v1/records/{rec}/intakes")).await;
        assert_eq!(list["items"][0]["id"].as_i64(), Some(id));
        // The new record is in the search index like any other.
        let (_, hits) = muni.get("/api/v1/search?q=試験%20花子C1").await;
        assert!(hits.to_string().contains(&rec.to_string()), "{hits}");
        // Logged: the conversion names the record, the record's creation names the intake.
        let n = s.db.scalar(&format!("SELECT COUNT(*) FROM audit_log WHERE action = 'intake.converted' AND record_id = {rec}")).await;
        assert_eq!(n, 1);
    }

    async fn one_change_of_an_open_intake_wins_a_concurrent_burst(db) {
        let s = TestServer::start(db).await;
        let muni = s.login("muni").await;
        let rec = muni.create(&record_json("131016", "B1")).await;
        let id = id_of(&receive(&muni, "B1").await);
        let records = s.db.scalar("SELECT COUNT(*) FROM records").await;
        let mut calls = Vec::new();
        for n in 0..12 {
            let (http, base, token) = (muni.http.clone(), muni.base.clone(), muni.token.clone());
            let path = if n % 2 == 0 { format!("/api/v1/intakes/{id}/attach") } else { format!("/api/v1/intakes/{id}/convert") };
            let body = if n % 2 == 0 {
                json!({ "record_id": rec, "version": 1 })
            } else {
                json!({ "version": 1, "record": record_json("131016", &format!("B{n}")) })
            };
            calls.push(tokio::spawn(async move {
                let r = http.post(format!("{base}{path}")).bearer_auth(token).json(&body).send().await.unwrap();
                r.status()
            }));
        }
        let mut ok = 0;
        for c in calls {
            let st = c.await.unwrap();
            if st.is_success() {
                ok += 1;
            } else {
                assert_eq!(st, StatusCode::CONFLICT);
            }
        }
        assert_eq!(ok, 1, "exactly one change of the open intake");
        let (_, v) = muni.get(&format!("/api/v1/intakes/{id}")).await;
        assert_eq!(v["version"], 2);
        let converted = v["status"] == "converted";
        assert_eq!(s.db.scalar("SELECT COUNT(*) FROM records").await, records + converted as i64, "{v}");
    }

    async fn the_safety_clock_reminds_once_per_point_and_is_confirmed_once(db) {
        let s = TestServer::start(db).await;
        let muni = s.login("muni").await;
        let v = receive(&muni, "S1").await;
        let id = id_of(&v);
        let state = s.state().clone();
        let reminders = |kind: &'static str| {
            let db = &s.db;
            async move {
                db.scalar(&format!("SELECT COUNT(*) FROM notifications WHERE kind = '{kind}' AND intake_id = {id}")).await
            }
        };
        assert_eq!(state.send_safety_reminders().await.unwrap(), 0);

        // 37 hours on: 12 hours before the deadline, due soon. A burst of reminder runs (two
        // servers, a retried tick) sends it once.
        state.clock.advance_secs(37 * 3600);
        let runs: Vec<_> = (0..8).map(|_| {
            let st = state.clone();
            tokio::spawn(async move { st.send_safety_reminders().await.unwrap() })
        }).collect();
        let mut sent = 0;
        for r in runs {
            sent += r.await.unwrap();
        }
        assert_eq!(sent, 1);
        assert_eq!(reminders("safety_due_soon").await, 1);
        // Sessions have expired meanwhile: log in again.
        let muni = s.login("muni").await;
        let (_, v) = muni.get(&format!("/api/v1/intakes/{id}")).await;
        assert_eq!(v["safety"]["state"], "due_soon");
        // Three hours before, the second reminder; past the deadline, overdue.
        state.clock.advance_secs(9 * 3600);
        assert_eq!(state.send_safety_reminders().await.unwrap(), 1);
        assert_eq!(reminders("safety_due_soon").await, 2);
        state.clock.advance_secs(3 * 3600);
        assert_eq!(state.send_safety_reminders().await.unwrap(), 1);
        assert_eq!(state.send_safety_reminders().await.unwrap(), 0);
        assert_eq!(reminders("safety_overdue").await, 1);
        let muni = s.login("muni").await;
        let (_, v) = muni.get(&format!("/api/v1/intakes/{id}")).await;
        assert_eq!(v["safety"]["state"], "overdue");
        let version = v["version"].as_i64().unwrap();

        // Confirmation: not by another municipality; "other" needs its note; once.
        let confirm = |method: &str, note: &str, version: i64| json!({
            "version": version,
            "confirmation": { "confirmed_at": now_minus(-49 * 60), "method": method, "note": note }
        });
        let (st, _) = s.login("muni2").await.post(&format!("/api/v1/intakes/{id}/safety"), &confirm("direct_sighting", "", version)).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, v) = muni.post(&format!("/api/v1/intakes/{id}/safety"), &confirm("other", "", version)).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["fields"][0]["field"], "note");
        let (st, v) = muni.post(&format!("/api/v1/intakes/{id}/safety"), &confirm("direct_sighting", "家庭訪問で本人を確認", version)).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["safety"]["state"], "confirmed_late");
        assert_eq!(v["safety"]["confirmation"]["recorded_by"], "テスト利用者 muni");
        let (st, v) = muni.post(&format!("/api/v1/intakes/{id}/safety"), &confirm("direct_sighting", "", version + 1)).await;
        assert_eq!(st, StatusCode::CONFLICT, "{v}");
        assert_eq!(v["code"], "already_confirmed");
        // Confirmed intakes leave the duty list and are reminded no more.
        let (_, list) = muni.get("/api/v1/intakes").await;
        assert_eq!(list["items"], json!([]));
        state.clock.advance_secs(48 * 3600);
        assert_eq!(state.send_safety_reminders().await.unwrap(), 0);
    }

    async fn intakes_reminded_long_ago_never_hide_later_ones(db) {
        let s = TestServer::start(db).await;
        let muni = s.login("muni").await;
        let state = s.state().clone();
        // An intake overdue since long ago, reminded of its deadline and never confirmed.
        let mut old = intake_json("O1");
        old["received_at"] = json!(now_minus(50 * 60));
        let (st, v) = muni.post("/api/v1/intakes", &old).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        assert_eq!(state.send_safety_reminders_paged(1).await.unwrap(), 1);
        // Two new ones, due soon 37 hours on: read a page of one at a time, the old one first,
        // and still both reminded.
        receive(&muni, "N1").await;
        receive(&muni, "N2").await;
        state.clock.advance_secs(37 * 3600);
        assert_eq!(state.send_safety_reminders_paged(1).await.unwrap(), 2);
        assert_eq!(state.send_safety_reminders_paged(1).await.unwrap(), 0);
    }

    async fn the_clock_follows_the_organisations_setting(db) {
        let s = TestServer::start(db).await;
        let audit = tsunagu_server::audit::AuditDraft::by_operator(13, 0, "settings.safety_hours_set", json!({}));
        s.db.store.set_safety_hours("muni-131016", Some(24), audit.clone()).await.unwrap();
        let v = receive(&s.login("muni").await, "H1").await;
        assert_eq!(v["safety"]["hours"], 24);
        // Another organisation keeps the default.
        let v = receive(&s.login("cgc").await, "H2").await;
        assert_eq!(v["safety"]["hours"], 48);
        // Cleared: the default again.
        s.db.store.set_safety_hours("muni-131016", None, audit).await.unwrap();
        let v = receive(&s.login("muni").await, "H3").await;
        assert_eq!(v["safety"]["hours"], 48);
    }

    async fn a_correction_needs_the_version_it_read(db) {
        let s = TestServer::start(db).await;
        let muni = s.login("muni").await;
        let id = id_of(&receive(&muni, "U1").await);
        let (st, v) = muni.put(&format!("/api/v1/intakes/{id}"), &json!({ "version": 1, "input": intake_json("U2") })).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!((v["version"].as_i64(), v["input"]["child"]["name"]["given"].as_str()), (Some(2), Some("花子U2")));
        let (st, v) = muni.put(&format!("/api/v1/intakes/{id}"), &json!({ "version": 1, "input": intake_json("U3") })).await;
        assert_eq!(st, StatusCode::CONFLICT, "{v}");
        assert_eq!(v["code"], "version_conflict");
        let (_, v) = muni.get(&format!("/api/v1/intakes/{id}")).await;
        assert_eq!(v["input"]["child"]["name"]["given"], "花子U2");
        // A corrected time of receipt moves the deadline with it.
        let mut input = intake_json("U4");
        input["received_at"] = json!(now_minus(600));
        let (st, v) = muni.put(&format!("/api/v1/intakes/{id}"), &json!({ "version": 2, "input": input })).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let received = chrono::DateTime::parse_from_rfc3339(v["input"]["received_at"].as_str().unwrap()).unwrap();
        let due = chrono::DateTime::parse_from_rfc3339(v["safety"]["due_at"].as_str().unwrap()).unwrap();
        assert_eq!(due - received, chrono::Duration::hours(48));
        assert!(chrono::Utc::now() - received.with_timezone(&chrono::Utc) > chrono::Duration::minutes(590));
    }
}
