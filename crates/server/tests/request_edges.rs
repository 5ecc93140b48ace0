//! Small edges of requests and sessions (issue 14): a session in continuous use outlives a
//! short idle timeout, and a client's request id is kept only when short and plain.

mod support;

use reqwest::StatusCode;
use support::TestServer;

both_engines! {
    async fn a_session_in_continuous_use_outlives_a_short_idle_timeout(db) {
        let mut config = support::test_config();
        config.auth.idle_timeout_secs = 20;
        let s = TestServer::start_with(db, config).await;
        let c = s.login("muni").await;
        // A request every 8 s for 96 s: well within the 20 s idle timeout each time.
        for step in 0..12 {
            s.state().clock.advance_secs(8);
            let (st, e) = c.get("/api/v1/me").await;
            assert_eq!(st, StatusCode::OK, "after {} s of use: {e}", (step + 1) * 8);
        }
        // Unused for longer than the idle timeout, it ends.
        s.state().clock.advance_secs(21);
        let (st, e) = c.get("/api/v1/me").await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        assert_eq!(e["code"], "session_expired");
    }

    async fn a_client_request_id_is_kept_only_when_short_and_plain(db) {
        let s = TestServer::start(db).await;
        let id_of = |value: String| {
            let req = s.http.get(s.url("/healthz")).header("x-request-id", value);
            async move {
                let r = req.send().await.unwrap();
                assert_eq!(r.status(), StatusCode::OK);
                r.headers()["x-request-id"].to_str().unwrap().to_string()
            }
        };
        for kept in ["req-1", "a.b_c-D9", &"x".repeat(64), "0f8e4c1f-1c55-4a0f-9a43-6ff1a5ad2b43"] {
            assert_eq!(id_of(kept.to_string()).await, kept);
        }
        for replaced in ["x".repeat(8 * 1024), "x".repeat(65), "a b".into(), "a/b".into(), "ｉｄ".into(), "a:1;b=2".into()] {
            let got = id_of(replaced.clone()).await;
            assert!(got != replaced, "kept: {replaced:.40}");
            assert!(uuid::Uuid::parse_str(&got).is_ok(), "{replaced:.20} → {got:.80}");
        }
        // In an error body too.
        let r = s.http.get(s.url("/api/v1/me")).header("x-request-id", "x".repeat(8 * 1024)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["request_id"].as_str().unwrap().len(), 36);
    }
}
