//! Login defences under concurrent requests: the failure limit, one-time codes used once, unknown
//! logins that answer exactly like real ones (also after a restart), and per-address rate limits.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;
use support::{TestServer, PASSWORD};

/// Sends every (login, password, otp) at once, each on its own task, and returns the answers in
/// the order given.
async fn burst(
    s: &TestServer,
    attempts: Vec<(String, String, String)>,
) -> Vec<(StatusCode, Value)> {
    let url = s.url("/api/v1/auth/login");
    let tasks = attempts.into_iter().map(|(login, password, otp)| {
        let (http, url) = (s.http.clone(), url.clone());
        tokio::spawn(async move {
            let r = http
                .post(url)
                .json(&serde_json::json!({ "login": login, "password": password, "otp": otp }))
                .send()
                .await
                .unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        })
    });
    join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

fn tally(answers: &[(StatusCode, Value)]) -> BTreeMap<u16, usize> {
    let mut m = BTreeMap::new();
    for (s, _) in answers {
        *m.entry(s.as_u16()).or_default() += 1;
    }
    m
}

fn wrong(login: &str, n: usize) -> Vec<(String, String, String)> {
    (0..n)
        .map(|_| {
            (
                login.to_string(),
                "wrong-password".to_string(),
                "000000".to_string(),
            )
        })
        .collect()
}

/// The 429s of a burst: each with `Retry-After` and the JSON error body; returns the longest
/// wait asked for.
fn check_429s(answers: &[(StatusCode, Option<u64>, Value)]) -> u64 {
    let mut longest = 0;
    for (st, retry, body) in answers
        .iter()
        .filter(|a| a.0 == StatusCode::TOO_MANY_REQUESTS)
    {
        let retry = retry.unwrap_or_else(|| panic!("{st} without a Retry-After: {body}"));
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
        assert_eq!(body["code"], "rate_limited", "{body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains(&format!("{retry}秒後")),
            "{body}"
        );
        assert!(body["request_id"].is_string(), "{body}");
        longest = longest.max(retry);
    }
    longest
}

async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Option<u64>, Value) {
    let r = req.send().await.unwrap();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    let status = r.status();
    (
        status,
        retry,
        r.json::<Value>().await.unwrap_or(Value::Null),
    )
}

both_engines! {
    async fn a_burst_of_wrong_passwords_checks_at_most_the_limit(db) {
        let s = TestServer::start(db).await;
        let max = s.state().config.auth.max_failures as usize;
        let mut attempts = wrong("cgc", 39);
        attempts.insert(17, ("cgc".into(), PASSWORD.into(), s.code("cgc")));
        let answers = burst(&s, attempts).await;
        let t = tally(&answers);
        let (failed, ok, locked) = (t.get(&401).copied().unwrap_or(0), t.get(&200).copied().unwrap_or(0), t.get(&423).copied().unwrap_or(0));
        assert_eq!(failed + ok + locked, 40, "only 200, 401 and 423 are answers here: {t:?}");
        assert!(ok <= 1, "{t:?}");
        assert!(failed + ok <= max, "more than {max} passwords were checked: {t:?}");
        assert!(locked >= 40 - max, "{t:?}");
        // The audit log says how many passwords were checked: each check is a login or a failure
        // with a reason other than "locked" (a refusal that did not look at the password).
        let checked = s.db.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'auth.login' OR (action = 'auth.login_failed' AND detail NOT LIKE '%\"reason\":\"locked\"%')").await;
        assert!(checked as usize <= max, "{checked} passwords checked, limit {max}");
        assert_eq!(s.db.scalar("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'auth.login%'").await, 40);
        // Afterwards the account is locked, even for the right password and a fresh code.
        s.state().clock.advance_secs(30);
        let (st, e) = s.try_login("cgc", PASSWORD, &s.code("cgc")).await;
        assert_eq!(st, StatusCode::LOCKED, "{e}");
        assert_eq!(e["code"], "account_locked");
    }

    async fn a_one_time_code_opens_one_session_however_often_it_is_sent(db) {
        let s = TestServer::start(db).await;
        let code = s.code("muni");
        let attempts = (0..10).map(|_| ("muni".to_string(), PASSWORD.to_string(), code.clone())).collect();
        let answers = burst(&s, attempts).await;
        let t = tally(&answers);
        assert_eq!(t.get(&200), Some(&1), "{t:?}");
        let refused = t.get(&401).copied().unwrap_or(0) + t.get(&423).copied().unwrap_or(0);
        assert_eq!(refused, 9, "{t:?}");
        assert_eq!(s.db.scalar("SELECT COUNT(*) FROM sessions").await, 1);
        assert_eq!(s.db.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'auth.login'").await, 1);
    }

    async fn unknown_logins_lock_exactly_like_real_ones_also_after_a_restart(db) {
        let s = TestServer::start(db).await;
        // Both bursts at once, interleaved.
        let mut attempts = Vec::new();
        for (a, b) in wrong("muni", 20).into_iter().zip(wrong("no-such-login", 20)) {
            attempts.push(a);
            attempts.push(b);
        }
        let answers = burst(&s, attempts).await;
        let known: Vec<_> = answers.iter().step_by(2).cloned().collect();
        let unknown: Vec<_> = answers.iter().skip(1).step_by(2).cloned().collect();
        let max = s.state().config.auth.max_failures as usize;
        assert_eq!(tally(&known), tally(&unknown), "a burst tells a real login from an unknown one");
        assert_eq!(tally(&known), BTreeMap::from([(401, max - 1), (423, 20 - (max - 1))]));
        let codes = |v: &[(StatusCode, Value)]| {
            let mut c: Vec<String> = v.iter().map(|(_, b)| format!("{} {}", b["code"], b["message"])).collect();
            c.sort();
            c
        };
        assert_eq!(codes(&known), codes(&unknown), "the bodies differ");

        // After a restart both are still locked, the same way; the real account even for its
        // right password.
        let s = s.restart().await;
        let (ks, kb) = s.try_login("muni", "wrong-password", "000000").await;
        let (us, ub) = s.try_login("no-such-login", "wrong-password", "000000").await;
        assert_eq!(ks, StatusCode::LOCKED, "{kb}");
        assert_eq!((us, &ub["code"], &ub["message"]), (ks, &kb["code"], &kb["message"]));
        assert_eq!(s.try_login("muni", PASSWORD, &s.code("muni")).await.0, StatusCode::LOCKED);

        // When the lockout ends, both start a fresh count the same way.
        s.state().clock.advance_secs(s.state().config.auth.lockout_secs as i64 + 1);
        let known = burst(&s, wrong("muni", 8)).await;
        let unknown = burst(&s, wrong("no-such-login", 8)).await;
        assert_eq!(tally(&known), tally(&unknown));
        assert_eq!(tally(&known), BTreeMap::from([(401, max - 1), (423, 8 - (max - 1))]));
    }

    async fn a_success_clears_the_count_and_an_old_run_is_forgotten_alike(db) {
        let s = TestServer::start(db).await;
        let max = s.state().config.auth.max_failures as usize;
        for _ in 0..max - 1 {
            assert_eq!(s.try_login("muni", "wrong-password", "000000").await.0, StatusCode::UNAUTHORIZED);
        }
        // The right one within the limit: in, and the count starts again.
        assert_eq!(s.try_login("muni", PASSWORD, &s.code("muni")).await.0, StatusCode::OK);
        for _ in 0..max - 1 {
            assert_eq!(s.try_login("muni", "wrong-password", "000000").await.0, StatusCode::UNAUTHORIZED);
            assert_eq!(s.try_login("no-such-login", "wrong-password", "000000").await.0, StatusCode::UNAUTHORIZED);
        }
        // A run whose last attempt is older than the lockout is forgotten, for both alike.
        s.state().clock.advance_secs(s.state().config.auth.lockout_secs as i64 + 1);
        let known = burst(&s, wrong("muni", max + 2)).await;
        let unknown = burst(&s, wrong("no-such-login", max + 2)).await;
        assert_eq!(tally(&known), BTreeMap::from([(401, max - 1), (423, 3)]));
        assert_eq!(tally(&known), tally(&unknown));
    }

    async fn unknown_logins_are_kept_as_tags_and_forgotten_runs_deleted(db) {
        let s = TestServer::start(db).await;
        let attempts = (0..30).map(|i| (format!("nobody-{i}"), "pw".to_string(), "000000".to_string())).collect();
        let answers = burst(&s, attempts).await;
        assert!(answers.iter().all(|a| a.0 == StatusCode::UNAUTHORIZED));
        assert_eq!(s.db.scalar("SELECT COUNT(*) FROM login_failures").await, 30);
        assert_eq!(s.db.scalar("SELECT COUNT(*) FROM login_failures WHERE login_tag LIKE '%nobody%'").await, 0, "the login typed is stored");
        // Past the lockout period their runs are forgotten; the next attempt deletes them.
        s.state().clock.advance_secs(s.state().config.auth.lockout_secs as i64 + 1);
        assert_eq!(s.try_login("somebody-else", "pw", "000000").await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(s.db.scalar("SELECT COUNT(*) FROM login_failures").await, 1);
    }

    async fn requests_over_the_api_limit_get_429_with_retry_after(db) {
        let mut config = support::test_config();
        config.limits = toml::from_str("api_per_second = 1\napi_burst = 3\nlogin_per_minute = 0").unwrap();
        let s = TestServer::start_with(db, config).await;
        let started = std::time::Instant::now();
        let tasks = (0..8).map(|_| tokio::spawn(send(s.http.get(s.url("/api/v1/me")))));
        let answers: Vec<_> = join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect();
        let limited = answers.iter().filter(|a| a.0 == StatusCode::TOO_MANY_REQUESTS).count();
        // The burst of 3, and one more for each second the burst took.
        assert!(8 - limited <= 3 + started.elapsed().as_secs() as usize, "{answers:?}");
        for (st, _, _) in &answers {
            assert!(*st == StatusCode::TOO_MANY_REQUESTS || *st == StatusCode::UNAUTHORIZED, "{st}");
        }
        let wait = check_429s(&answers);
        // Health checks are not part of the API's limit.
        assert_eq!(s.http.get(s.url("/healthz")).send().await.unwrap().status(), StatusCode::OK);
        // After the wait asked for, the next request gets through.
        tokio::time::sleep(Duration::from_secs(wait)).await;
        let (st, _, body) = send(s.http.get(s.url("/api/v1/me"))).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{body}");
    }

    async fn logins_over_the_login_limit_get_429_and_are_not_counted(db) {
        let mut config = support::test_config();
        config.limits = toml::from_str("login_per_minute = 60\nlogin_burst = 2").unwrap();
        let s = TestServer::start_with(db, config).await;
        let url = s.url("/api/v1/auth/login");
        let tasks = (0..5).map(|i| {
            let req = s.http.post(&url).json(&serde_json::json!({ "login": format!("nobody-{i}"), "password": "x", "otp": "000000" }));
            tokio::spawn(send(req))
        });
        let started = std::time::Instant::now();
        let answers: Vec<_> = join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect();
        let passed = answers.iter().filter(|a| a.0 != StatusCode::TOO_MANY_REQUESTS).count();
        // The burst of 2, and one more for each second the burst took.
        assert!(passed <= 2 + started.elapsed().as_secs() as usize, "{answers:?}");
        assert!(passed >= 2, "{answers:?}");
        let wait = check_429s(&answers);
        // Refused before the login ran: neither counted nor audited.
        assert_eq!(s.db.scalar("SELECT COUNT(*) FROM login_failures").await, passed as i64);
        assert_eq!(s.db.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'auth.login_failed'").await, passed as i64);
        // Other requests are not under the login limit.
        assert_eq!(s.http.get(s.url("/api/v1/me")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
        tokio::time::sleep(Duration::from_secs(wait)).await;
        let (st, body) = s.try_login("cgc", PASSWORD, &s.code("cgc")).await;
        assert_eq!(st, StatusCode::OK, "{body}");
    }
}
