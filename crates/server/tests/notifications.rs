//! Notifications on both engines: inbox rules, the live event stream, replay from
//! Last-Event-ID, read/unread.

mod support;

use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::json;
use support::{record_json, Client, TestServer};

/// Reads server-sent events until `n` notification events have arrived (or times out).
async fn next_events(
    c: &Client,
    last_event_id: Option<i64>,
    n: usize,
    trigger: impl std::future::Future<Output = ()>,
) -> Vec<serde_json::Value> {
    let mut req = c.req(reqwest::Method::GET, "/api/v1/notifications/stream");
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id.to_string());
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut body = resp.bytes_stream();
    trigger.await;
    let mut buf = String::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while out.len() < n {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .expect("event in time")
            .expect("stream open")
            .unwrap();
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) {
                let id: i64 = frame
                    .lines()
                    .find_map(|l| l.strip_prefix("id: "))
                    .unwrap()
                    .parse()
                    .unwrap();
                let v: serde_json::Value = serde_json::from_str(data).unwrap();
                assert_eq!(v["id"].as_i64().unwrap(), id);
                out.push(v);
            }
        }
    }
    out
}

both_engines! {
    async fn a_partner_is_told_only_of_changes_it_can_see(db) {
        // A notice of a change to parts the partner may not see would tell it when, and how
        // often, they changed: the very metadata its list and history withhold.
        let s = TestServer::start(db).await;
        let muni = s.login("muni").await;
        let cgc = s.login("cgc").await;
        let inbox = |c: &Client| {
            let c = c.clone();
            async move {
                let (_, v) = c.get("/api/v1/notifications?limit=200").await;
                v["items"].as_array().unwrap().len()
            }
        };
        let mut body = record_json("131016", "N");
        let restricted = muni.create(&body).await;
        let open = muni.create(&body).await;
        let (st, v) = muni.put(&format!("/api/v1/records/{restricted}/restrictions"), &json!({ "version": 1, "restrictions": { "groups": ["casework"], "fields": [], "reason": "テスト" } })).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let base = inbox(&cgc).await;
        // Casework only: the partner of the restricted record hears nothing; of the open one, it does.
        body["casework"]["findings"] = json!("所見を更新");
        let (st, v) = muni.put(&format!("/api/v1/records/{restricted}"), &json!({ "version": 2, "record": body })).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(inbox(&cgc).await, base, "a casework-only change of a restricted record was announced");
        let (st, v) = muni.put(&format!("/api/v1/records/{open}"), &json!({ "version": 1, "record": body })).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(inbox(&cgc).await, base + 1);
        // A change it can see is announced, restricted or not.
        body["family"]["upbringing"] = json!("養育状況を更新");
        let (st, v) = muni.put(&format!("/api/v1/records/{restricted}"), &json!({ "version": 3, "record": body })).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(inbox(&cgc).await, base + 2);
        // The restricted record's entry names the child but withholds its case number, as the
        // partner's case list row does.
        let (_, v) = cgc.get("/api/v1/notifications?limit=200").await;
        let entry = v["items"].as_array().unwrap().iter().rev().find(|n| n["record_id"].as_i64() == Some(restricted)).unwrap().clone();
        assert_eq!(entry["subject"]["child_name"]["given"], "花子N", "{entry}");
        assert!(entry["subject"]["case_number"].get("withheld").is_some(), "{entry}");
        // What the subject named is a read of another organisation's record: logged.
        let logged = s.db.store.audit_entries(13, 0, 100_000).await.unwrap().into_iter()
            .any(|e| e.action == tsunagu_server::audit::action::NOTIFICATIONS_LISTED && e.actor_org == "cgc-13-01" && e.detail.contains(&restricted.to_string()));
        assert!(logged, "the inbox's naming of another's record is not in the log");
    }

    async fn changes_reach_the_related_organisation(db) {
        let s = TestServer::start(db).await;
        let muni = s.login("muni").await;
        let cgc = s.login("cgc").await;
        let muni2 = s.login("muni2").await;

        // A municipality's new record → its centre.
        let id = muni.create(&record_json("131016", "N")).await;
        let (_, inbox) = cgc.get("/api/v1/notifications").await;
        assert_eq!(inbox["unread"], 1);
        assert_eq!(inbox["items"][0]["kind"], "record_created");
        assert_eq!(inbox["items"][0]["record_id"].as_i64().unwrap(), id);
        assert_eq!(inbox["items"][0]["from_org_id"], "muni-131016");
        // The entry names the child and the case number, as the centre's case list row would,
        // and nothing else of the record.
        assert_eq!(inbox["items"][0]["subject"]["child_name"]["given"], "花子N");
        assert_eq!(inbox["items"][0]["subject"]["case_number"]["shown"], "CASEN");
        for other in ["ADDRN", "WORKN", "FINDINGSN", "PLANN", "PROGRESSN", "INTAKEN"] {
            assert!(!inbox.to_string().contains(other), "{other} in {inbox}");
        }
        // Not to the other municipality, nor to the author.
        assert_eq!(muni2.get("/api/v1/notifications").await.1["unread"], 0);
        assert_eq!(muni.get("/api/v1/notifications").await.1["unread"], 0);

        // A centre's change → the municipality of the child's address.
        let cid = cgc.create(&record_json("131024", "N2")).await;
        let (_, inbox) = muni2.get("/api/v1/notifications").await;
        assert_eq!(inbox["items"][0]["record_id"].as_i64().unwrap(), cid);
        cgc.put(&format!("/api/v1/records/{cid}"), &json!({ "version": 1, "record": record_json("131024", "N3") })).await;
        let (_, inbox) = muni2.get("/api/v1/notifications?unread=true").await;
        assert_eq!(inbox["unread"], 2);
        assert_eq!(inbox["items"][1]["kind"], "record_updated");

        // A child living outside the centre's jurisdiction: that municipality could not open the
        // record, so it is not told about it.
        let other = s.login("muni-other").await;
        cgc.create(&record_json("131211", "N4")).await;
        assert_eq!(other.get("/api/v1/notifications").await.1["unread"], 0);

        // Mark read and unread; another organisation's notification cannot be touched.
        let nid = inbox["items"][0]["id"].as_i64().unwrap();
        assert_eq!(muni2.call(reqwest::Method::POST, &format!("/api/v1/notifications/{nid}/read"), None).await.0, StatusCode::NO_CONTENT);
        assert_eq!(muni2.get("/api/v1/notifications").await.1["unread"], 1);
        assert_eq!(muni.call(reqwest::Method::POST, &format!("/api/v1/notifications/{nid}/unread"), None).await.0, StatusCode::NOT_FOUND);
        assert_eq!(muni2.call(reqwest::Method::POST, &format!("/api/v1/notifications/{nid}/unread"), None).await.0, StatusCode::NO_CONTENT);
        assert_eq!(muni2.get("/api/v1/notifications").await.1["unread"], 2);

        // Each mark is in the audit log, in the marking organisation's chain; the refused one
        // is not.
        let marks: Vec<(String, serde_json::Value)> = s.db.store.audit_entries(13, 0, 10_000).await.unwrap().into_iter()
            .filter(|e| e.action == tsunagu_server::audit::action::NOTIFICATION_MARKED)
            .map(|e| (e.actor_org, serde_json::from_str(&e.detail).unwrap()))
            .collect();
        assert_eq!(marks, vec![
            ("muni-131024".to_string(), json!({ "notification_id": nid, "read": true })),
            ("muni-131024".to_string(), json!({ "notification_id": nid, "read": false })),
        ]);
        assert!(tsunagu_server::audit::verify(s.db.store.as_ref()).await.unwrap().is_ok());
    }

    async fn the_stream_delivers_at_once_and_replays_what_was_missed(db) {
        let s = TestServer::start(db).await;
        let muni = s.login("muni").await;
        let cgc = s.login("cgc").await;

        // Live: connected first, then the change.
        let m = muni.clone();
        let started = std::time::Instant::now();
        let events = next_events(&cgc, None, 1, async move {
            m.create(&record_json("131016", "S1")).await;
        }).await;
        assert_eq!(events[0]["kind"], "record_created");
        assert_eq!(events[0]["subject"]["child_name"]["given"], "花子S1", "{}", events[0]);
        assert!(started.elapsed() < Duration::from_secs(5));
        let first = events[0]["id"].as_i64().unwrap();

        // Offline: two changes while disconnected arrive on reconnect after Last-Event-ID, in order,
        // and the one already seen is not sent again.
        let a = muni.create(&record_json("131016", "S2")).await;
        let b = muni.create(&record_json("131016", "S3")).await;
        let events = next_events(&cgc, Some(first), 2, async {}).await;
        let ids: Vec<i64> = events.iter().map(|e| e["record_id"].as_i64().unwrap()).collect();
        assert_eq!(ids, vec![a, b]);
        assert!(events.iter().all(|e| e["id"].as_i64().unwrap() > first));

        // Without a token there is no stream.
        let r = s.http.get(s.url("/api/v1/notifications/stream")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }

    async fn logout_and_idle_expiry_end_open_streams(db) {
        let mut config = support::test_config();
        config.auth.stream_recheck_secs = 1;
        let s = TestServer::start_with(db, config).await;
        let ends = |resp: reqwest::Response| async move {
            let mut body = resp.bytes_stream();
            tokio::time::timeout(Duration::from_secs(10), async { while let Some(Ok(_)) = body.next().await {} }).await.is_ok()
        };
        // Logged out: the open stream ends within the recheck interval.
        let cgc = s.login("cgc").await;
        let resp = cgc.req(reqwest::Method::GET, "/api/v1/notifications/stream").send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let (st, _) = cgc.call(reqwest::Method::POST, "/api/v1/auth/logout", None).await;
        assert!(st.is_success(), "{st}");
        assert!(ends(resp).await, "the stream outlived its logout");

        // Idle past the timeout: the stream itself is not use, and it ends.
        s.state().clock.advance_secs(60);
        let muni = s.login("muni").await;
        let resp = muni.req(reqwest::Method::GET, "/api/v1/notifications/stream").send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        // Still live a moment later (the check does not end a good session) ...
        let mut body = resp.bytes_stream();
        assert!(tokio::time::timeout(Duration::from_millis(2500), body.next()).await.is_err(), "a live stream ended");
        s.state().clock.advance_secs(s.state().config.auth.idle_timeout_secs as i64 + 1);
        let end = tokio::time::timeout(Duration::from_secs(10), async { while let Some(Ok(_)) = body.next().await {} }).await;
        assert!(end.is_ok(), "the stream outlived its idle session");
    }

    async fn shutdown_ends_open_streams(db) {
        let s = TestServer::start(db).await;
        let cgc = s.login("cgc").await;
        let resp = cgc.req(reqwest::Method::GET, "/api/v1/notifications/stream").send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let mut body = resp.bytes_stream();
        let support::TestServer { running, db: _db, .. } = s;
        tokio::time::timeout(Duration::from_secs(10), running.stop()).await.expect("graceful shutdown finishes").unwrap();
        // The stream ends rather than hanging.
        let end = tokio::time::timeout(Duration::from_secs(5), async { while let Some(Ok(_)) = body.next().await {} }).await;
        assert!(end.is_ok());
    }
}
