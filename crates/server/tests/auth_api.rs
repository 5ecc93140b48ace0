//! Authentication over HTTP on both engines: password + TOTP, replay, lockout, expiry, logout.

mod support;

use reqwest::StatusCode;
use support::{TestServer, PASSWORD};

both_engines! {
    async fn a_new_totp_secret_replaces_the_old_and_ends_sessions(db) {
        let s = TestServer::start(db).await;
        let before = s.login("cgc").await;
        assert_eq!(before.get("/api/v1/me").await.0, StatusCode::OK);
        let user = s.db.store.user_by_login("cgc").await.unwrap().unwrap();
        let fresh = tsunagu_server::auth::new_totp_secret();
        let audit = tsunagu_server::audit::AuditDraft::by_operator(
            13,
            0,
            tsunagu_server::audit::action::TOTP_RESET,
            serde_json::json!({ "user_id": user.id }),
        );
        s.db.store.set_totp_secret(user.id, &s.state().totp_key.seal("cgc", &fresh), audit).await.unwrap();
        // The session is gone (after the session cache's few seconds at most).
        s.state().clock.advance_secs(30);
        let started = std::time::Instant::now();
        while before.get("/api/v1/me").await.0 == StatusCode::OK {
            assert!(started.elapsed() < std::time::Duration::from_secs(5), "the session outlived the reset");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let secs = (s.state().clock.now() / 1_000_000) as u64;
        let old_code = s.code("cgc");
        let new_code = tsunagu_server::auth::totp_code(&fresh, secs).unwrap();
        if old_code != new_code {
            assert_eq!(s.try_login("cgc", PASSWORD, &old_code).await.0, StatusCode::UNAUTHORIZED);
        }
        assert_eq!(s.try_login("cgc", PASSWORD, &new_code).await.0, StatusCode::OK);
        assert!(tsunagu_server::audit::verify(s.db.store.as_ref()).await.unwrap().is_ok());
    }

    async fn totp_secrets_are_sealed_at_rest_and_bound_to_their_user(db) {
        // The support creates its users with secrets in the clear, as a database from before
        // sealing holds them; the server seals them as it starts, with one audit entry.
        let s = TestServer::start(db).await;
        assert_eq!(s.db.scalar("SELECT COUNT(*) FROM users WHERE totp_secret NOT LIKE 'v1:%'").await, 0);
        for (login, _, _) in support::USERS {
            let plain = support::totp_secret(login);
            let n = s.db.scalar(&format!("SELECT COUNT(*) FROM users WHERE totp_secret LIKE '%{plain}%'")).await;
            assert_eq!(n, 0, "{login}'s secret is in the clear");
        }
        assert_eq!(s.db.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'user.totp_sealed'").await, 1);
        s.login("cgc").await;

        // Sealed with another user's login as associated data, a secret copied onto this
        // user's row does not open: the login fails, whichever user's code is given.
        s.db.raw("UPDATE users SET totp_secret = (SELECT totp_secret FROM (SELECT totp_secret FROM users WHERE login = 'cgc2') AS t) WHERE login = 'muni'").await.unwrap();
        assert_ne!(s.try_login("muni", PASSWORD, &s.code("muni")).await.0, StatusCode::OK);
        assert_ne!(s.try_login("muni", PASSWORD, &s.code("cgc2")).await.0, StatusCode::OK);

        // Another key does not open this database's secrets, and a missing key is not
        // replaced: the server refuses to start either way, naming the key file.
        let mut other = support::test_config();
        let other_key = s.key_dir.path().join("other.key");
        tsunagu_server::totp_key::TotpKey::create(&other_key).unwrap();
        other.auth.totp_key_file = Some(other_key);
        let Err(e) = tsunagu_server::app::build_state(s.db.store.clone(), other.clone()).await else { panic!("started with another key") };
        assert!(e.to_string().contains("does not open"), "{e}");
        other.auth.totp_key_file = Some(s.key_dir.path().join("missing.key"));
        let Err(e) = tsunagu_server::app::build_state(s.db.store.clone(), other).await else { panic!("started without its key") };
        assert!(e.to_string().contains("is missing"), "{e}");
        assert!(!s.key_dir.path().join("missing.key").exists());
    }

    async fn totp_secrets_are_rewritten_all_or_nothing(db) {
        use tsunagu_server::audit::{action, AuditDraft};
        use tsunagu_server::storage::TotpSecrets;
        let s = TestServer::start(db).await;
        let users = s.db.scalar("SELECT COUNT(*) FROM users").await;
        let entries = s.db.scalar("SELECT COUNT(*) FROM audit_log").await;
        let draft = || AuditDraft::by_operator(0, 0, action::TOTP_KEY_ROTATED, serde_json::Value::Null);
        // The second secret cannot be rewritten: the first is not rewritten either.
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let failing = |_: &str, _: &str| match calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
            0 => Ok("rewritten".to_string()),
            _ => Err("does not open".to_string()),
        };
        let e = s.db.store.rewrite_totp_secrets(TotpSecrets::Sealed, &failing, draft()).await.unwrap_err();
        assert!(e.to_string().contains("does not open"), "{e}");
        assert_eq!(s.db.scalar("SELECT COUNT(*) FROM users WHERE totp_secret = 'rewritten'").await, 0);
        assert_eq!(s.db.scalar("SELECT COUNT(*) FROM audit_log").await, entries);
        // None stored in the clear after start: nothing to do, nothing logged.
        let plain = |_: &str, _: &str| -> Result<String, String> { panic!("no plain secret is left") };
        assert_eq!(s.db.store.rewrite_totp_secrets(TotpSecrets::Plain, &plain, draft()).await.unwrap(), 0);
        assert_eq!(s.db.scalar("SELECT COUNT(*) FROM audit_log").await, entries);
        // Sealed again (under the same key, new nonces): every user, one entry, logins work.
        let key = s.state().totp_key.clone();
        let reseal = move |login: &str, stored: &str| {
            let secret = key.open(login, stored).map_err(|e| e.to_string())?;
            Ok(key.seal(login, &secret))
        };
        let n = s.db.store.rewrite_totp_secrets(TotpSecrets::Sealed, &reseal, draft()).await.unwrap();
        assert_eq!(n as i64, users);
        assert_eq!(s.db.scalar("SELECT COUNT(*) FROM audit_log").await, entries + 1);
        assert_eq!(s.db.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'user.totp_key_rotated'").await, 1);
        s.login("cgc").await;
        assert!(tsunagu_server::audit::verify(s.db.store.as_ref()).await.unwrap().is_ok());
    }

    async fn login_needs_password_and_a_fresh_code(db) {
        let s = TestServer::start(db).await;
        let (st, e) = s.try_login("cgc", "wrong-password", &s.code("cgc")).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        assert_eq!(e["code"], "login_failed");
        assert!(e["message"].as_str().unwrap().contains("正しくありません"));
        let (st, _) = s.try_login("cgc", PASSWORD, "000000").await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        let (st, _) = s.try_login("nobody", PASSWORD, "123456").await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);

        let code = s.code("cgc");
        let (st, ok) = s.try_login("cgc", PASSWORD, &code).await;
        assert_eq!(st, StatusCode::OK, "{ok}");
        assert_eq!(ok["me"]["org"]["id"], "cgc-13-01");
        // The same code again is a replay.
        let (st, _) = s.try_login("cgc", PASSWORD, &code).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);

        // The token works; /me says who.
        let r = s.http.get(s.url("/api/v1/me")).bearer_auth(ok["token"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        // Logins and failures are in the audit chain.
        let n = s.db.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'auth.login_failed'").await;
        assert_eq!(n, 4);
        assert_eq!(s.db.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'auth.login'").await, 1);
    }

    async fn repeated_failures_lock_the_account(db) {
        let s = TestServer::start(db).await;
        for _ in 0..4 {
            assert_eq!(s.try_login("muni", "bad", "000000").await.0, StatusCode::UNAUTHORIZED);
        }
        let (st, e) = s.try_login("muni", "bad", "000000").await;
        assert_eq!(st, StatusCode::LOCKED, "{e}");
        assert_eq!(e["code"], "account_locked");
        // Locked: even the right password and code are refused.
        let (st, _) = s.try_login("muni", PASSWORD, &s.code("muni")).await;
        assert_eq!(st, StatusCode::LOCKED);
        // Other accounts are unaffected.
        s.login("muni2").await;
        // A login that is no account answers exactly the same, so lockouts reveal nothing.
        for _ in 0..4 {
            let (st, e) = s.try_login("no-such-login", "bad", "000000").await;
            assert_eq!(st, StatusCode::UNAUTHORIZED, "{e}");
        }
        let (st, e) = s.try_login("no-such-login", "bad", "000000").await;
        assert_eq!(st, StatusCode::LOCKED, "{e}");
        let (real_st, real) = s.try_login("muni", "bad", "000000").await;
        assert_eq!((st, &e["code"]), (real_st, &real["code"]), "an unknown login's lockout looks like a real one");
        // After the lockout period the account opens again.
        s.state().clock.advance_secs(16 * 60);
        let (st, _) = s.try_login("muni", PASSWORD, &s.code("muni")).await;
        assert_eq!(st, StatusCode::OK);
    }

    async fn sessions_expire_when_idle_and_absolutely_and_on_logout(db) {
        let s = TestServer::start(db).await;
        let c = s.login("cgc").await;
        assert_eq!(c.get("/api/v1/me").await.0, StatusCode::OK);
        // Within the idle timeout, each use keeps the session alive.
        for _ in 0..3 {
            s.state().clock.advance_secs(20 * 60);
            assert_eq!(c.get("/api/v1/me").await.0, StatusCode::OK);
        }
        s.state().clock.advance_secs(31 * 60);
        let (st, e) = c.get("/api/v1/me").await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        assert_eq!(e["code"], "session_expired");

        // Absolute expiry: 12 hours even when used every 20 minutes.
        let c = s.login("cgc").await;
        let mut last = StatusCode::OK;
        for _ in 0..37 {
            s.state().clock.advance_secs(20 * 60);
            last = c.get("/api/v1/me").await.0;
        }
        assert_eq!(last, StatusCode::UNAUTHORIZED);

        let c = s.login("cgc").await;
        assert_eq!(c.call(reqwest::Method::POST, "/api/v1/auth/logout", None).await.0, StatusCode::NO_CONTENT);
        assert_eq!(c.get("/api/v1/me").await.0, StatusCode::UNAUTHORIZED);

        // No token, a malformed header, a made-up token.
        assert_eq!(s.http.get(s.url("/api/v1/me")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
        let r = s.http.get(s.url("/api/v1/me")).header("authorization", "Basic abc").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let r = s.http.get(s.url("/api/v1/me")).bearer_auth("made-up").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    async fn a_session_ended_elsewhere_stops_working_within_the_cache_interval(db) {
        let s = TestServer::start(db).await;
        let c = s.login("cgc").await;
        assert_eq!(c.get("/api/v1/me").await.0, StatusCode::OK);
        // As the reset-password command or another instance would: the row goes, not via us.
        s.db.raw("DELETE FROM sessions").await.unwrap();
        s.state().clock.advance_secs(s.state().config.auth.session_cache_secs as i64);
        let (st, e) = c.get("/api/v1/me").await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{e}");

        // With the cache off, the very next request sees it.
        let mut config = support::test_config();
        config.auth.session_cache_secs = 0;
        let db = support::TestDb::new(s.db.engine).await.expect("the same engine again");
        let s = TestServer::start_with(db, config).await;
        let c = s.login("cgc").await;
        assert_eq!(c.get("/api/v1/me").await.0, StatusCode::OK);
        s.db.raw("DELETE FROM sessions").await.unwrap();
        assert_eq!(c.get("/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
    }
}
