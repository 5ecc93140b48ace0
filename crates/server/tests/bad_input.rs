//! Bad input gets a clear 4xx with a code and a Japanese message, and changes nothing; a failure
//! inside the database rolls back the record, its version, its audit entry and its
//! notifications together.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::json;
use support::{record_json, Engine, TestServer};

async fn snapshot(s: &TestServer) -> [i64; 4] {
    [
        s.db.scalar("SELECT COUNT(*) FROM records").await,
        s.db.scalar("SELECT COUNT(*) FROM record_versions").await,
        s.db.scalar("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'record.%'")
            .await,
        s.db.scalar("SELECT COUNT(*) FROM notifications").await,
    ]
}

both_engines! {
    async fn malformed_requests_are_refused_and_change_nothing(db) {
        let s = TestServer::start(db).await;
        let c = s.login("muni").await;
        let id = c.create(&record_json("131016", "B")).await;
        let before = snapshot(&s).await;

        let raw = |body: &'static str, ctype: &'static str| {
            c.req(Method::POST, "/api/v1/records").header("content-type", ctype).body(body).send()
        };
        let r = raw("{\"core\": ", "application/json").await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let e: serde_json::Value = r.json().await.unwrap();
        assert_eq!(e["code"], "malformed_json");
        assert!(e["message"].as_str().unwrap().contains("JSON"));

        let r = raw("{}", "text/plain").await.unwrap();
        assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

        let mut unknown = record_json("131016", "B");
        unknown["core"]["nickname"] = json!("x");
        let (st, e) = c.post("/api/v1/records", &unknown).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert_eq!(e["fields"][0]["field"], "core.nickname");
        assert!(e["message"].as_str().unwrap().contains("不明な項目"));

        let mut wrong_type = record_json("131016", "B");
        wrong_type["core"]["sex"] = json!("female");
        let (st, e) = c.post("/api/v1/records", &wrong_type).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert_eq!(e["fields"][0]["field"], "core.sex");

        let mut bad_code = record_json("131016", "B");
        bad_code["core"]["guardians"][0]["relationship"] = json!("cousin");
        let (st, e) = c.post("/api/v1/records", &bad_code).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert_eq!(e["fields"][0]["field"], "core.guardians[0].relationship");
        assert!(e["message"].as_str().unwrap().contains("コード表"));

        let mut bad_date = record_json("131016", "B");
        bad_date["core"]["birth_date"]["date"] = json!("2019-02-30");
        let (st, e) = c.post("/api/v1/records", &bad_date).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert_eq!(e["fields"][0]["field"], "core.birth_date.date");

        // Validation: every problem at once, each with its field and a Japanese message.
        let (st, e) = c.post("/api/v1/records", &json!({})).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e["code"], "validation_failed");
        let fields: Vec<&str> = e["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
        assert!(fields.len() >= 9 && fields.contains(&"core.sex") && fields.contains(&"admin.case_number"), "{fields:?}");
        let mut unknown_muni = record_json("999991", "B");
        unknown_muni["core"]["birth_date"]["date"] = json!("2099-01-01");
        let (st, e) = c.post("/api/v1/records", &unknown_muni).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e["fields"].as_array().unwrap().len(), 2, "{e}");

        // Oversize body.
        // Declared by Content-Length and refused before the body is read: a client that sent
        // the whole body would race the server's early answer against its own writes.
        let head = oversize_post(&c.base, &c.token, "/api/v1/records", 6_000_000).await;
        assert!(head.starts_with("HTTP/1.1 413"), "{head}");
        assert!(head.contains("payload_too_large"), "{head}");
        // The body names the request id that the header carries, for quoting to operators.
        let request_id = head
            .lines()
            .find_map(|l| l.strip_prefix("x-request-id: "))
            .expect("x-request-id header")
            .trim();
        assert!(head.contains(&format!("\"request_id\":\"{request_id}\"")), "{head}");

        // Updates: bad version type, unknown record, bad id, bad query parameters.
        let (st, _) = c.put(&format!("/api/v1/records/{id}"), &json!({ "version": "1", "record": record_json("131016", "B") })).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        let (st, _) = c.put("/api/v1/records/13000000099999", &json!({ "version": 1, "record": record_json("131016", "B") })).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, e) = c.get("/api/v1/records/abc").await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert_eq!(e["fields"][0]["field"], "id");
        for q in ["sort=name", "limit=0", "status=pending", "municipality=131017", "updated_since=yesterday", "cursor=zzz", "colour=red"] {
            let (st, e) = c.get(&format!("/api/v1/records?{q}")).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{q}: {e}");
            assert!(!e["message"].as_str().unwrap().is_empty());
        }
        assert_eq!(snapshot(&s).await, before, "nothing was written");
    }

    async fn a_database_failure_rolls_back_the_whole_request(db) {
        let s = TestServer::start(db).await;
        let muni = s.login("muni").await;
        let id = muni.create(&record_json("131016", "F")).await;
        let before = snapshot(&s).await;
        let head_before = s.db.scalar("SELECT seq FROM audit_head WHERE pref_code = 13").await;
        // Make the last statement of the transaction (the notification insert) fail.
        let trap = match s.db.engine {
            Engine::Sqlite => "CREATE TRIGGER trap BEFORE INSERT ON notifications BEGIN SELECT RAISE(ABORT, 'trap'); END;",
            Engine::Postgres => "CREATE FUNCTION trap() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'trap'; END $$; \
                                 CREATE TRIGGER trap BEFORE INSERT ON notifications FOR EACH ROW EXECUTE FUNCTION trap();",
        };
        s.db.raw(trap).await.unwrap();
        let mut body = record_json("131016", "F");
        body["casework"]["findings"] = json!("書き込まれてはならない");
        let (st, e) = muni.put(&format!("/api/v1/records/{id}"), &json!({ "version": 1, "record": body })).await;
        assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e["code"], "internal");
        let (st, e) = muni.post("/api/v1/records", &record_json("131016", "G")).await;
        assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR, "{e}");

        assert_eq!(snapshot(&s).await, before);
        assert_eq!(s.db.scalar("SELECT seq FROM audit_head WHERE pref_code = 13").await, head_before);
        let (_, v) = muni.get(&format!("/api/v1/records/{id}")).await;
        assert_eq!(v["meta"]["version"], 1);
        assert_eq!(v["casework"]["findings"], "FINDINGSF");
        let report = tsunagu_server::audit::verify(s.db.store.as_ref()).await.unwrap();
        assert!(report.is_ok(), "{report:?}");
    }
}

/// Sends only the head of a POST that declares `length` bytes of JSON, and returns the answer.
async fn oversize_post(base: &str, token: &str, path: &str, length: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        sock.read_to_end(&mut buf),
    )
    .await
    .expect("the server answers an oversize declaration without waiting for the body")
    .unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}

fn cursor(json: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// Text that no field may hold, trailing JSON and id forms (issue 14).
mod text_input {
    use super::*;

    both_engines! {
        async fn control_characters_are_refused_by_field_on_every_way_in(db) {
            let s = TestServer::start(db).await;
            let c = s.login("muni").await;
            let id = c.create(&record_json("131016", "C")).await;
            let failures = || s.db.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'login.failed'");
            let failed_before = failures().await;
            let before = snapshot(&s).await;

            // The login: NUL gave 500 on PostgreSQL.
            for (login, password, otp, field) in [
                ("mu\u{0}ni", support::PASSWORD, "000000", "login"),
                ("muni\n", support::PASSWORD, "000000", "login"),
                ("muni", "pass\u{0}word", "000000", "password"),
                ("muni", support::PASSWORD, "00\u{1b}000", "otp"),
                ("\u{202E}inum", support::PASSWORD, "000000", "login"),
            ] {
                let (st, e) = s.try_login(login, password, otp).await;
                assert_eq!(st, StatusCode::BAD_REQUEST, "{login:?}: {e}");
                assert_eq!(e["code"], "invalid_character", "{e}");
                assert_eq!(e["fields"][0]["field"], field, "{e}");
                assert!(e["message"].as_str().unwrap().contains("使用できない文字"), "{e}");
            }

            // Record fields: NUL, escape sequences, bidi overrides and noncharacters, short and long.
            for (path, value) in [
                (&["family", "guardian_workplace"][..], "会社\u{0}"),
                (&["casework", "findings"], "所見\u{1b}]0;title\u{7}"),
                (&["core", "address", "street"], "架空町\u{202E}3-2-1"),
                (&["admin", "intake_reports"], "\u{FFFF}"),
                (&["family", "upbringing"], "\u{2066}養育\u{2069}"),
            ] {
                let mut body = record_json("131016", "C");
                let mut at = &mut body;
                for p in &path[..path.len() - 1] {
                    at = &mut at[*p];
                }
                let last = path[path.len() - 1];
                let expected = if last == "intake_reports" {
                    at[last][0]["summary"] = json!(value);
                    "admin.intake_reports[0].summary".to_string()
                } else {
                    at[last] = json!(value);
                    path.join(".")
                };
                let (st, e) = c.post("/api/v1/records", &body).await;
                assert!(st == StatusCode::BAD_REQUEST || st == StatusCode::UNPROCESSABLE_ENTITY, "{expected}: {st} {e}");
                let fields: Vec<&str> = e["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
                assert_eq!(fields, [expected.as_str()], "{e}");
                let (st, e) = c.put(&format!("/api/v1/records/{id}"), &json!({ "version": 1, "record": body })).await;
                assert!(st == StatusCode::BAD_REQUEST || st == StatusCode::UNPROCESSABLE_ENTITY, "{expected}: {st} {e}");
                assert!(e["fields"][0]["field"].as_str().unwrap().ends_with(&expected), "{e}");
            }
            // A line break is fine in long text, not in a one-line field.
            let mut body = record_json("131016", "C");
            body["family"]["guardian_workplace"] = json!("一行目\n二行目");
            let (st, e) = c.post("/api/v1/records", &body).await;
            assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
            assert_eq!(e["fields"][0]["field"], "family.guardian_workplace");

            // The restriction reason, which is shown to other organisations.
            for reason in ["DV\u{1b}[2J", "理由\n二行目", "\u{202E}由理", "\u{0}"] {
                let (st, e) = c.put(&format!("/api/v1/records/{id}/restrictions"),
                    &json!({ "version": 1, "restrictions": { "groups": [], "fields": ["core.address"], "reason": reason } })).await;
                assert_eq!(st, StatusCode::BAD_REQUEST, "{reason:?}: {e}");
                assert_eq!(e["fields"][0]["field"], "restrictions.reason", "{e}");
            }

            // Query-string parameters.
            for (q, field) in [
                ("/api/v1/search?q=%E8%A9%A6%00%E9%A8%93", "q"),
                ("/api/v1/search?q=%E8%A9%A6%E9%A8%93&guardian=%1B%5B31m", "guardian"),
                ("/api/v1/records?municipality=131016%0A", "municipality"),
                ("/api/v1/records?sort=case_number%E2%80%AE", "sort"),
                ("/api/v1/notifications?unread=%C2%85", "unread"),
                ("/api/v1/records?a%00b=1", "query"),
            ] {
                let (st, e) = c.get(q).await;
                assert_eq!(st, StatusCode::BAD_REQUEST, "{q}: {e}");
                assert_eq!(e["fields"][0]["field"], field, "{q}: {e}");
            }

            // Crafted case-list cursors: 500 and "stored data is corrupt" before.
            for (sort, cur) in [
                ("updated_desc", cursor(r#"{"key":"x","id":1}"#)),
                ("updated_asc", cursor(r#"{"key":"+5","id":1}"#)),
                ("case_number", cursor(r#"{"key":"A\u0000","id":1}"#)),
                ("next_review", cursor(r#"{"key":"2026-01-01","id":-1}"#)),
            ] {
                let (st, e) = c.get(&format!("/api/v1/records?sort={sort}&cursor={cur}")).await;
                assert_eq!(st, StatusCode::BAD_REQUEST, "{sort}: {e}");
                assert_eq!(e["fields"][0]["field"], "cursor", "{e}");
            }
            // A cursor the server made still works.
            let (st, page) = c.get("/api/v1/records?sort=case_number&limit=1").await;
            assert_eq!(st, StatusCode::OK);
            let _ = page;

            assert_eq!(snapshot(&s).await, before, "nothing was written");
            assert_eq!(failures().await, failed_before, "refused logins are not login attempts");
        }

        async fn a_query_parameter_given_twice_is_refused_by_name(db) {
            let s = TestServer::start(db).await;
            let c = s.login("cgc").await;
            for (path, name) in [
                ("/api/v1/search?q=%E8%8A%B1%E5%AD%90&page=1&page=2", "page"),
                ("/api/v1/search?page=-7&page=&q=x", "page"),
                ("/api/v1/records?limit=1&limit=2", "limit"),
                ("/api/v1/records?sort=case_number&status=open&sort=next_review", "sort"),
            ] {
                let (st, e) = c.get(path).await;
                assert_eq!(st, StatusCode::BAD_REQUEST, "{path}: {e}");
                assert_eq!(e["fields"][0]["field"], name, "{path}: {e}");
            }
            // Once each is fine.
            let (st, _) = c.get("/api/v1/records?limit=1&sort=case_number").await;
            assert_eq!(st, StatusCode::OK);
            // A number given as nothing is not a number.
            for (path, name) in [("/api/v1/search?q=%E8%8A%B1%E5%AD%90&page=", "page"), ("/api/v1/search?q=%E8%8A%B1%E5%AD%90&sex=", "sex"), ("/api/v1/search?q=%E8%8A%B1%E5%AD%90&page=%201", "page")] {
                let (st, e) = c.get(path).await;
                assert_eq!(st, StatusCode::BAD_REQUEST, "{path}: {e}");
                assert_eq!(e["fields"][0]["field"], name, "{path}: {e}");
            }
        }

        async fn a_json_body_is_one_document(db) {
            let s = TestServer::start(db).await;
            let c = s.login("muni").await;
            let before = snapshot(&s).await;
            let one = serde_json::to_string(&record_json("131016", "J")).unwrap();
            for body in [format!("{one} xx"), format!("{one}{one}"), format!("{one}\n{{}}"), format!("{one} 1")] {
                let r = c.req(Method::POST, "/api/v1/records").header("content-type", "application/json").body(body).send().await.unwrap();
                assert_eq!(r.status(), StatusCode::BAD_REQUEST);
                let e: serde_json::Value = r.json().await.unwrap();
                assert_eq!(e["code"], "malformed_json", "{e}");
                assert!(e["message"].as_str().unwrap().contains("余分なデータ"), "{e}");
            }
            let login = format!(r#"{{"login":"muni","password":"{}","otp":"{}"}} {{}}"#, support::PASSWORD, s.code("muni"));
            let r = s.http.post(s.url("/api/v1/auth/login")).header("content-type", "application/json").body(login).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::BAD_REQUEST);
            assert_eq!(snapshot(&s).await, before);
            // Trailing whitespace is still one document.
            let r = c.req(Method::POST, "/api/v1/records").header("content-type", "application/json").body(format!("{one} \n\t")).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
        }

        async fn a_record_id_is_plain_digits(db) {
            let s = TestServer::start(db).await;
            let c = s.login("muni").await;
            let id = c.create(&record_json("131016", "I")).await;
            for bad in [format!("+{id}"), format!("0{id}"), format!("{id}%20"), format!("%20{id}"), "-1".into(), "0".into(), "1e5".into(), format!("{id}.0")] {
                let (st, e) = c.get(&format!("/api/v1/records/{bad}")).await;
                assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {e}");
                assert_eq!(e["fields"][0]["field"], "id", "{bad}: {e}");
            }
            assert_eq!(c.get(&format!("/api/v1/records/{id}")).await.0, StatusCode::OK);
        }
    }
}
