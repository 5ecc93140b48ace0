//! Server configuration: a TOML file, then `TSUNAGU_*` environment variables over it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::auth::PasswordCost;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// `sqlite://path/to/file.sqlite` (default) or `postgres://user@host/db`.
    pub database_url: String,
    /// Connections in the PostgreSQL pool.
    pub pg_max_connections: u32,
    /// How long a request waits for a PostgreSQL connection (while the database is unreachable,
    /// how long before it gets 503; later requests are refused at once until it answers).
    pub pg_acquire_timeout_secs: u64,
    pub auth: AuthConfig,
    pub audit: AuditConfig,
    pub limits: LimitsConfig,
    /// Serve HTTPS directly; leave unset behind a TLS-terminating proxy.
    pub tls: Option<TlsConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub idle_timeout_secs: u64,
    pub absolute_timeout_secs: u64,
    pub max_failures: i64,
    pub lockout_secs: u64,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    /// How often an open event stream checks that its session is still valid (logged out,
    /// expired or idle ends the stream).
    pub stream_recheck_secs: u64,
    /// How long a session read from the store is trusted without reading it again. A session
    /// ended outside this process (the `reset-password` command, another instance's logout)
    /// stops working within this many seconds; 0 reads the store on every request.
    pub session_cache_secs: u64,
    /// The key that seals TOTP secrets at rest (`totp_key.rs`). Unset: beside a SQLite
    /// database (`<file>.totp-key`), else `tsunagu-totp.key` in the working directory. Created
    /// if missing while the database holds no sealed secret.
    pub totp_key_file: Option<PathBuf>,
}

/// The audit log's keys and checkpoints (`audit/`). Unset paths sit beside a SQLite database
/// (`<file>.audit-mac-key`, …), else in the working directory (`tsunagu-audit-mac.key`, …).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// The HMAC key of every entry. Created if missing while no entry carries a MAC; refused
    /// as missing otherwise.
    pub mac_key_file: Option<PathBuf>,
    /// The Ed25519 key that signs checkpoints; its public keys are in `<file>.pub`.
    pub signing_key_file: Option<PathBuf>,
    /// The append-only file every checkpoint is also written to (copy it to a witness).
    pub checkpoint_file: Option<PathBuf>,
    /// Seconds between checkpoints (one is also written when the server stops).
    pub checkpoint_secs: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            mac_key_file: None,
            signing_key_file: None,
            checkpoint_file: None,
            checkpoint_secs: 5,
        }
    }
}

/// A file kept beside the SQLite database file (`<file><suffix>`), or `fallback` in the working
/// directory when the database is not a SQLite file.
pub fn beside_database(database_url: &str, suffix: &str, fallback: &str) -> PathBuf {
    let file = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .map(|rest| rest.split('?').next().unwrap_or(rest))
        .filter(|f| !f.is_empty() && !f.starts_with(":memory:"));
    match file {
        Some(f) => PathBuf::from(format!("{f}{suffix}")),
        None => PathBuf::from(fallback),
    }
}

impl Config {
    pub fn audit_mac_key_path(&self) -> PathBuf {
        self.audit.mac_key_file.clone().unwrap_or_else(|| {
            beside_database(
                &self.database_url,
                ".audit-mac-key",
                "tsunagu-audit-mac.key",
            )
        })
    }

    pub fn audit_signing_key_path(&self) -> PathBuf {
        self.audit.signing_key_file.clone().unwrap_or_else(|| {
            beside_database(
                &self.database_url,
                ".audit-signing-key",
                "tsunagu-audit-signing.key",
            )
        })
    }

    pub fn audit_checkpoint_path(&self) -> PathBuf {
        self.audit.checkpoint_file.clone().unwrap_or_else(|| {
            beside_database(
                &self.database_url,
                ".audit-checkpoints",
                "tsunagu-audit-checkpoints.jsonl",
            )
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub body_bytes: usize,
    pub request_timeout_secs: u64,
    pub page_max: i64,
    /// A new connection must deliver a complete request head within this many seconds, and so
    /// must a kept-alive one once the next head's first byte arrived (also bounds the TLS
    /// handshake).
    pub header_read_timeout_secs: u64,
    /// A kept-alive connection with no request in flight is closed after this many silent
    /// seconds. An open event stream is a request in flight.
    pub keepalive_idle_secs: u64,
    /// Open connections at most; more are answered 503 and closed. Keep it below the process's
    /// file-descriptor limit less the database pool.
    pub max_connections: usize,
    /// Open connections from one peer address at most. Behind a proxy every connection comes
    /// from the proxy's address: raise it to `max_connections` there.
    pub max_connections_per_ip: usize,
    /// Login requests one client address may make per minute, sustained, on top of a burst of
    /// `login_burst`; more get 429 with `Retry-After`. 0 turns the login limit off. The
    /// address is the TCP peer's (an IPv6 client's /64): behind a proxy, the proxy's.
    pub login_per_minute: u32,
    pub login_burst: u32,
    /// The same for every request under `/api/v1` (logins included), per second. 0 turns it
    /// off.
    pub api_per_second: u32,
    pub api_burst: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".parse().expect("literal address"),
            database_url: "sqlite://tsunagu.sqlite".into(),
            pg_max_connections: 16,
            pg_acquire_timeout_secs: 3,
            auth: AuthConfig::default(),
            audit: AuditConfig::default(),
            limits: LimitsConfig::default(),
            tls: None,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            idle_timeout_secs: 30 * 60,
            absolute_timeout_secs: 12 * 60 * 60,
            max_failures: 5,
            lockout_secs: 15 * 60,
            argon2_memory_kib: PasswordCost::default().memory_kib,
            argon2_iterations: PasswordCost::default().iterations,
            stream_recheck_secs: 60,
            session_cache_secs: 2,
            totp_key_file: None,
        }
    }
}

impl AuthConfig {
    pub fn password_cost(&self) -> PasswordCost {
        PasswordCost {
            memory_kib: self.argon2_memory_kib,
            iterations: self.argon2_iterations,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            body_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            page_max: 200,
            header_read_timeout_secs: 10,
            keepalive_idle_secs: 60,
            max_connections: 4096,
            max_connections_per_ip: 256,
            login_per_minute: 30,
            login_burst: 10,
            api_per_second: 50,
            api_burst: 100,
        }
    }
}

impl LimitsConfig {
    /// No per-address rate limits: for benchmarks, which send everything from one address.
    pub fn without_rate_limits(self) -> Self {
        LimitsConfig {
            login_per_minute: 0,
            api_per_second: 0,
            ..self
        }
    }
}

impl Config {
    /// Loads the file if given (or `tsunagu-server.toml` if present), then the environment.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let mut cfg = match path {
            Some(p) => Self::from_file(p)?,
            None if Path::new("tsunagu-server.toml").exists() => {
                Self::from_file(Path::new("tsunagu-server.toml"))?
            }
            None => Config::default(),
        };
        cfg.apply_env(|k| std::env::var(k).ok())?;
        Ok(cfg)
    }

    fn from_file(p: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(p)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
    }

    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        if let Some(v) = get("TSUNAGU_LISTEN") {
            self.listen = v
                .parse()
                .map_err(|e| anyhow::anyhow!("TSUNAGU_LISTEN: {e}"))?;
        }
        if let Some(v) = get("TSUNAGU_DATABASE_URL") {
            self.database_url = v;
        }
        if let Some(v) = get("TSUNAGU_TOTP_KEY_FILE") {
            self.auth.totp_key_file = Some(PathBuf::from(v));
        }
        if let Some(v) = get("TSUNAGU_AUDIT_MAC_KEY_FILE") {
            self.audit.mac_key_file = Some(PathBuf::from(v));
        }
        if let Some(v) = get("TSUNAGU_AUDIT_SIGNING_KEY_FILE") {
            self.audit.signing_key_file = Some(PathBuf::from(v));
        }
        if let Some(v) = get("TSUNAGU_AUDIT_CHECKPOINT_FILE") {
            self.audit.checkpoint_file = Some(PathBuf::from(v));
        }
        if let Some(v) = get("TSUNAGU_PG_MAX_CONNECTIONS") {
            self.pg_max_connections = v
                .parse()
                .map_err(|e| anyhow::anyhow!("TSUNAGU_PG_MAX_CONNECTIONS: {e}"))?;
        }
        if let (Some(cert), Some(key)) = (get("TSUNAGU_TLS_CERT"), get("TSUNAGU_TLS_KEY")) {
            self.tls = Some(TlsConfig {
                cert: cert.into(),
                key: key.into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment() {
        let mut c: Config = toml::from_str(
            "listen = \"0.0.0.0:9000\"\ndatabase_url = \"sqlite://x.sqlite\"\n[auth]\nmax_failures = 3\n",
        )
        .unwrap();
        assert_eq!(c.auth.max_failures, 3);
        assert_eq!(c.auth.idle_timeout_secs, 1800);
        c.apply_env(|k| (k == "TSUNAGU_DATABASE_URL").then(|| "postgres://db/x".to_string()))
            .unwrap();
        assert_eq!(c.database_url, "postgres://db/x");
        assert_eq!(c.listen.port(), 9000);
        assert!(
            toml::from_str::<Config>("lisen = 1").is_err(),
            "unknown keys are refused"
        );
        assert!(c
            .apply_env(|k| (k == "TSUNAGU_LISTEN").then(|| "nope".to_string()))
            .is_err());
    }
}
