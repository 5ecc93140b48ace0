//! Test support shared by every integration test: a fresh database on either engine, a real
//! server on a local port, and logged-in clients.
//!
//! Every test written with `both_engines!` runs on SQLite, and on PostgreSQL when
//! `TEST_DATABASE_URL` names a server (each test gets its own database, dropped afterwards).
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tsunagu_masterdata::orgs as master;
use tsunagu_record::Role;
use tsunagu_server::app::{self, Running};
use tsunagu_server::audit::{action, AuditDraft};
use tsunagu_server::auth::{self, PasswordCost};
use tsunagu_server::config::Config;
use tsunagu_server::orgs::rows_from_master;
use tsunagu_server::state::AppState;
use tsunagu_server::storage::{NewUser, Storage};

pub const CHEAP: PasswordCost = PasswordCost {
    memory_kib: 256,
    iterations: 1,
};
pub const PASSWORD: &str = "test-password-123";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

pub struct TestDb {
    pub engine: Engine,
    pub store: Arc<dyn Storage>,
    pub url: String,
    /// Holds the audit MAC key file (`mac_key_path`).
    pub keys: tempfile::TempDir,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl TestDb {
    /// A fresh, migrated database; `None` (with a message) for PostgreSQL when no server is set.
    pub async fn new(engine: Engine) -> Option<TestDb> {
        match engine {
            Engine::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("test.sqlite").display());
                let store = app::open_store(&url, 4).await.expect("open sqlite");
                let keys = keyed(store.as_ref()).await;
                Some(TestDb {
                    engine,
                    store,
                    url,
                    keys,
                    _dir: Some(dir),
                    pg: None,
                })
            }
            Engine::Postgres => {
                let Ok(admin) = std::env::var("TEST_DATABASE_URL") else {
                    eprintln!("SKIPPED (PostgreSQL): TEST_DATABASE_URL is not set");
                    return None;
                };
                let name = format!(
                    "tsunagu_t_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::SeqCst)
                );
                let conn = sqlx_admin(&admin).await;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&conn)
                    .await
                    .expect("drop");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&conn)
                    .await
                    .expect("create test database");
                conn.close().await;
                let url = with_database(&admin, &name);
                let store = app::open_store(&url, 8).await.expect("open postgres");
                let keys = keyed(store.as_ref()).await;
                Some(TestDb {
                    engine,
                    store,
                    url,
                    keys,
                    _dir: None,
                    pg: Some((admin, name)),
                })
            }
        }
    }

    /// The audit MAC key file of this database.
    pub fn mac_key_path(&self) -> std::path::PathBuf {
        self.keys.path().join("audit-mac.key")
    }

    /// A configuration naming this database and its key files (audit keys and checkpoints in
    /// the key directory, so nothing lands in the working directory on PostgreSQL).
    pub fn configure(&self, config: &mut Config) {
        config.database_url = self.url.clone();
        config.audit.mac_key_file = Some(self.mac_key_path());
        config.audit.signing_key_file = Some(self.keys.path().join("audit-signing.key"));
        config.audit.checkpoint_file = Some(self.keys.path().join("audit-checkpoints"));
    }

    /// Runs raw SQL on the test database (for tests that play an attacker with database access).
    pub async fn raw(&self, sql: &str) -> Result<u64, sqlx::Error> {
        match self.engine {
            Engine::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&self.url).await?;
                let r = sqlx::raw_sql(sql)
                    .execute(&pool)
                    .await
                    .map(|r| r.rows_affected());
                pool.close().await;
                r
            }
            Engine::Postgres => {
                let pool = sqlx::PgPool::connect(&self.url).await?;
                let r = sqlx::raw_sql(sql)
                    .execute(&pool)
                    .await
                    .map(|r| r.rows_affected());
                pool.close().await;
                r
            }
        }
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        match self.engine {
            Engine::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&self.url).await.unwrap();
                let v: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
                pool.close().await;
                v
            }
            Engine::Postgres => {
                let pool = sqlx::PgPool::connect(&self.url).await.unwrap();
                let v: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
                pool.close().await;
                v
            }
        }
    }
}

/// A directory with a new audit MAC key, installed in the store.
async fn keyed(store: &dyn Storage) -> tempfile::TempDir {
    let keys = tempfile::tempdir().expect("temp dir");
    app::install_audit_key(store, &keys.path().join("audit-mac.key"))
        .await
        .expect("audit MAC key");
    keys
}

async fn sqlx_admin(url: &str) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .expect("connect to TEST_DATABASE_URL")
}

fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    format!("{host_part}/{db}{query}")
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            // Drop is synchronous: a short-lived runtime on another thread removes the database.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(conn) = sqlx::PgPool::connect(&admin).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&conn)
                                .await;
                        conn.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// Runs each test body on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! both_engines {
    ($(async fn $name:ident($db:ident) $body:block)*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let $db = $crate::support::TestDb::new($crate::support::Engine::Sqlite).await.expect("sqlite");
                    $body
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some($db) = $crate::support::TestDb::new($crate::support::Engine::Postgres).await else { return };
                    $body
                }
            )*
        }
    };
}

/// A running server over a test database with the synthetic organisations and test users.
pub struct TestServer {
    pub db: TestDb,
    pub running: Running,
    pub http: reqwest::Client,
    /// Holds the TOTP key file unless the test's configuration names one.
    pub key_dir: tempfile::TempDir,
}

/// Test users: login → (organisation, role).
pub const USERS: &[(&str, &str, Role)] = &[
    ("cgc", "cgc-13-01", Role::Staff),
    ("cgc2", "cgc-13-02", Role::Staff),
    ("muni", "muni-131016", Role::Staff),
    ("muni2", "muni-131024", Role::Staff),
    ("muni-other", "muni-131211", Role::Staff),
    ("osaka", "cgc-27-01", Role::Staff),
    ("osaka-muni", "muni-271004", Role::Staff),
    ("ministry", "ministry", Role::Ministry),
    ("operator", "operator", Role::Operator),
];

pub fn totp_secret(login: &str) -> String {
    tsunagu_server::seed::demo_totp_secret(&format!("test {login}"))
}

pub fn test_config() -> Config {
    let mut c = Config::default();
    c.auth.argon2_memory_kib = CHEAP.memory_kib;
    c.auth.argon2_iterations = CHEAP.iterations;
    // Every test client is 127.0.0.1: limits far above what any test sends, so that only the
    // tests about rate limits meet them (and every request still passes the limiters).
    c.limits.login_per_minute = 1_000_000;
    c.limits.login_burst = 100_000;
    c.limits.api_per_second = 1_000_000;
    c.limits.api_burst = 100_000;
    c
}

impl TestServer {
    pub async fn start(db: TestDb) -> TestServer {
        Self::start_with(db, test_config()).await
    }

    pub async fn start_with(db: TestDb, mut config: Config) -> TestServer {
        let key_dir = tempfile::tempdir().expect("temp dir");
        if config.auth.totp_key_file.is_none() {
            config.auth.totp_key_file = Some(key_dir.path().join("totp.key"));
        }
        let checkpoint_secs = config.audit.checkpoint_secs;
        db.configure(&mut config);
        config.audit.checkpoint_secs = checkpoint_secs;
        let m = master::synthetic();
        db.store.upsert_orgs(&rows_from_master(&m)).await.unwrap();
        let hash = auth::hash_password(PASSWORD, CHEAP);
        for (login, org, role) in USERS {
            let o = m.get(org).unwrap_or_else(|| {
                panic!("test organisation {org} missing from the synthetic master")
            });
            db.store
                .create_user(
                    &NewUser {
                        org_id: org.to_string(),
                        login: login.to_string(),
                        display_name: format!("テスト利用者 {login}"),
                        role: role.code().into(),
                        password_hash: hash.clone(),
                        totp_secret: totp_secret(login),
                    },
                    AuditDraft::by_operator(
                        o.pref_code as i64,
                        0,
                        action::USER_CREATED,
                        serde_json::json!({}),
                    ),
                )
                .await
                .unwrap();
        }
        let state = app::build_state(db.store.clone(), config).await.unwrap();
        let running = Running::start(state).await.unwrap();
        let http = reqwest::Client::builder().gzip(true).build().unwrap();
        TestServer {
            db,
            running,
            http,
            key_dir,
        }
    }

    /// Stops the server and starts a new one over the same database and key, as after a
    /// restart: whatever the server held only in memory is gone.
    pub async fn restart(self) -> TestServer {
        let TestServer {
            db,
            running,
            http,
            key_dir,
        } = self;
        let config = (*running.state.config).clone();
        let clock = running.state.clock.clone();
        running.stop().await.unwrap();
        let mut state = app::build_state(db.store.clone(), config).await.unwrap();
        state.clock = clock;
        let running = Running::start(state).await.unwrap();
        TestServer {
            db,
            running,
            http,
            key_dir,
        }
    }

    pub fn state(&self) -> &AppState {
        &self.running.state
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.running.url(), path)
    }

    /// The current one-time code for a test user, by the server's clock.
    pub fn code(&self, login: &str) -> String {
        let secs = (self.state().clock.now() / 1_000_000) as u64;
        auth::totp_code(&totp_secret(login), secs).unwrap()
    }

    pub async fn try_login(&self, login: &str, password: &str, otp: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url("/api/v1/auth/login"))
            .json(&serde_json::json!({ "login": login, "password": password, "otp": otp }))
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Logs a test user in. A code is good once, so a second login of the same user in a test
    /// moves the server's clock to the next 30-second step first.
    pub async fn login(&self, login: &str) -> Client {
        let (status, body) = self.try_login(login, PASSWORD, &self.code(login)).await;
        let (status, body) = if status == StatusCode::UNAUTHORIZED {
            self.state().clock.advance_secs(30);
            self.try_login(login, PASSWORD, &self.code(login)).await
        } else {
            (status, body)
        };
        assert_eq!(status, StatusCode::OK, "login {login}: {body}");
        Client {
            http: self.http.clone(),
            base: self.running.url(),
            token: body["token"].as_str().unwrap().to_string(),
        }
    }
}

/// A logged-in API client.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Client {
    pub fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.token)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut r = self.req(method, path);
        if let Some(b) = body {
            r = r.json(b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(body)).await
    }

    /// Creates a record and returns its id.
    pub async fn create(&self, body: &Value) -> i64 {
        let (s, v) = self.post("/api/v1/records", body).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_i64().unwrap()
    }
}

/// A valid record body whose child lives in `lgcode`. `tag` is put into every free-text field
/// so a test can find exactly where a record's content appears.
pub fn record_json(lgcode: &str, tag: &str) -> Value {
    serde_json::json!({
        "core": {
            "child_name": { "family": "試験", "given": format!("花子{tag}"), "family_kana": "シケン", "given_kana": "ハナコ" },
            "sex": 2,
            "birth_date": { "date": "2018-05-05" },
            "address": { "municipality_code": lgcode, "postal_code": "000-0001", "street": format!("架空町1-2-3 ADDR{tag}") },
            "guardians": [{ "name": { "family": "試験", "given": format!("太郎{tag}") }, "relationship": "father" }]
        },
        "family": {
            "guardian_workplace": format!("WORK{tag}"),
            "household": [{ "name": format!("HOUSE{tag}"), "relationship": "mother", "cohabiting": true }],
            "schooling": { "facility_type": "elementary", "facility_name": format!("SCHOOL{tag}") },
            "upbringing": format!("UPBRING{tag}"),
            "welfare_services": format!("WELFARE{tag}")
        },
        "casework": {
            "interview": format!("INTERVIEW{tag}"),
            "investigation": format!("INVEST{tag}"),
            "findings": format!("FINDINGS{tag}"),
            "support_plan": format!("PLAN{tag}"),
            "progress": [{ "date": "2026-01-10", "text": format!("PROGRESS{tag}") }],
            "risk": { "level": "high", "urgent": false },
            "next_review": "2026-12-01"
        },
        "admin": {
            "case_number": format!("CASE{tag}"),
            "consultation_type": "abuse_neglect",
            "intake_reports": [{ "received_on": "2026-01-09", "source": "近隣", "summary": format!("INTAKE{tag}") }]
        }
    })
}
