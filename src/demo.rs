//! `tsunagu demo`: the central server in-process, on a fresh SQLite file in a temporary
//! directory (deleted at exit) with synthetic data, bound to 127.0.0.1 on a free port.

use tsunagu_server::app::{self, Running};
use tsunagu_server::clock::Clock;
use tsunagu_server::config::Config;
use tsunagu_server::{auth, seed};

use crate::app::DemoAccount;

pub struct Demo {
    pub url: String,
    pub accounts: Vec<DemoAccount>,
    _running: Running,
    _dir: tempfile::TempDir,
}

pub async fn start(records: usize) -> anyhow::Result<Demo> {
    let dir = tempfile::tempdir()?;
    let config = Config {
        database_url: format!("sqlite://{}", dir.path().join("demo.sqlite").display()),
        ..Config::default()
    };
    let store = app::open_keyed_store(&config).await?;
    let clock = Clock::default();
    let key = app::totp_key(&config, store.as_ref()).await?;
    let accounts = seed::seed_demo_database(
        store.as_ref(),
        config.auth.password_cost(),
        records,
        20261125,
        &clock,
        &key,
        |_| {},
    )
    .await?;
    let state = app::build_state(store, config).await?;
    let running = Running::start(state).await?;
    Ok(Demo {
        url: running.url(),
        accounts: accounts
            .iter()
            .map(|a| DemoAccount {
                login: a.login.to_string(),
                purpose: a.purpose.to_string(),
            })
            .collect(),
        _running: running,
        _dir: dir,
    })
}

/// The demo accounts' password and one-time codes (now and the next step).
pub fn credentials(login: &str) -> Option<(String, [String; 2])> {
    if !login.starts_with("demo-") {
        return None;
    }
    let secret = seed::demo_totp_secret(login);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some((
        seed::DEMO_PASSWORD.to_string(),
        [
            auth::totp_code(&secret, now)?,
            auth::totp_code(&secret, now + 30)?,
        ],
    ))
}
