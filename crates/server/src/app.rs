//! Assembling and running the server: open the store, load the directory, serve until a signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::clock::Clock;
use crate::config::Config;
use crate::notify::Hub;
use crate::orgs::OrgDirectory;
use crate::state::AppState;
use crate::storage::postgres::PgStore;
use crate::storage::sqlite::SqliteStore;
use crate::storage::Storage;

/// Opens the store named by a URL (`sqlite://…` or `postgres://…`) and brings its schema up to
/// date.
pub async fn open_store(url: &str, pg_max_connections: u32) -> anyhow::Result<Arc<dyn Storage>> {
    open_store_with(url, pg_max_connections, std::time::Duration::from_secs(10)).await
}

/// The store as the configuration asks for it.
pub async fn open_configured(config: &Config) -> anyhow::Result<Arc<dyn Storage>> {
    open_store_with(
        &config.database_url,
        config.pg_max_connections,
        std::time::Duration::from_secs(config.pg_acquire_timeout_secs.max(1)),
    )
    .await
}

/// As `open_store`; `pg_acquire_timeout` bounds a wait for a PostgreSQL connection.
pub async fn open_store_with(
    url: &str,
    pg_max_connections: u32,
    pg_acquire_timeout: std::time::Duration,
) -> anyhow::Result<Arc<dyn Storage>> {
    let store: Arc<dyn Storage> =
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Arc::new(
                PgStore::connect_with(url, pg_max_connections, pg_acquire_timeout)
                    .await
                    .context("connecting to PostgreSQL")?,
            )
        } else if url.starts_with("sqlite:") {
            Arc::new(
                SqliteStore::connect(url)
                    .await
                    .context("opening the SQLite file")?,
            )
        } else {
            anyhow::bail!("database_url must start with sqlite:// or postgres://");
        };
    store.migrate().await.context("running migrations")?;
    Ok(store)
}

/// Opens the store as `open_store` does and gives it the audit MAC key
/// (`install_audit_key`): what every command that writes needs.
pub async fn open_keyed_store(config: &Config) -> anyhow::Result<Arc<dyn Storage>> {
    let store = open_configured(config).await?;
    install_audit_key(store.as_ref(), &config.audit_mac_key_path()).await?;
    Ok(store)
}

/// Reads the audit MAC key at `path` and gives it to the store. The key is created only for a
/// database none of whose entries carries a MAC: a missing key is never silently replaced.
///
/// A database whose entries were all written before the key existed (an upgrade) is keyed
/// here: each chain with entries gets an `audit.keyed` entry vouching for them. That happens
/// only in the start that creates the key file, on a database with no entry carrying a MAC
/// and no checkpoint: once the key exists, nothing is ever vouched for again, so someone who
/// strips the MACs from the database cannot have a later start launder what they wrote.
pub async fn install_audit_key(store: &dyn Storage, path: &std::path::Path) -> anyhow::Result<()> {
    use crate::audit::{action, AuditDraft, MacKey};
    let keyed = store.has_keyed_audit_entries().await?;
    let (key, created) = if path.exists() {
        (MacKey::read(path)?, false)
    } else if keyed {
        anyhow::bail!(
            "the audit MAC key file {} is missing, but this database's audit entries carry MACs made with a key: restore the key file (see docs/operations.md, Keys and secrets)",
            path.display()
        );
    } else {
        let key = MacKey::create(path)?;
        tracing::warn!(path = %path.display(), "created a new audit MAC key file: back it up apart from the database");
        (key, true)
    };
    let heads = store.audit_heads().await?;
    let mut newest = Vec::new();
    for (pref, seq, _) in heads.iter().filter(|(_, seq, _)| *seq > 0) {
        if let Some(e) = store.audit_entries(*pref, seq - 1, 1).await?.pop() {
            newest.push(e);
        }
    }
    let macs: Vec<_> = newest.iter().filter(|e| !e.mac.is_empty()).collect();
    anyhow::ensure!(
        macs.is_empty() || macs.iter().any(|e| key.verify(&e.hash, &e.mac)),
        "the audit MAC key file {} does not verify this database's audit entries (a key from another database?)",
        path.display()
    );
    store.install_audit_key(Arc::new(key));
    let upgrade = created && !keyed && store.stored_checkpoints().await?.is_empty();
    if upgrade {
        let now = Clock::default().now();
        let drafts: Vec<AuditDraft> = heads
            .iter()
            .filter(|(_, seq, _)| *seq > 0)
            .map(|(pref, seq, _)| {
                AuditDraft::by_operator(
                    *pref,
                    now,
                    action::KEYED,
                    serde_json::json!({ "unkeyed_entries": seq }),
                )
            })
            .collect();
        if !drafts.is_empty() {
            store.append_audits(drafts).await?;
            tracing::info!("keyed the audit chains written before the audit MAC key");
        }
    } else if !keyed && newest.iter().any(|e| e.mac.is_empty()) {
        tracing::error!(
            "audit entries without a MAC, though the audit key already exists: run verify-audit"
        );
    }
    Ok(())
}

/// The checkpoint writer of a server: the signing key (created if missing, its public half
/// trusted in `<key>.pub`) and the checkpoint file.
pub fn checkpointer(
    config: &Config,
    store: Arc<dyn Storage>,
) -> anyhow::Result<crate::audit::checkpoint::Checkpointer> {
    let key = crate::audit::keys::signing_key(&config.audit_signing_key_path())?;
    Ok(crate::audit::checkpoint::Checkpointer::new(
        store,
        key,
        config.audit_checkpoint_path(),
    ))
}

pub async fn build_state(store: Arc<dyn Storage>, config: Config) -> anyhow::Result<AppState> {
    store
        .audit_key()
        .context("open the store with app::open_keyed_store")?;
    let checkpoints = Arc::new(checkpointer(&config, store.clone())?);
    let orgs = OrgDirectory::from_rows(store.list_orgs().await?)?;
    if orgs.is_empty() {
        tracing::warn!("no organisations loaded: run `tsunagu-server seed-demo` or `tsunagu-server load-orgs FILE`");
    }
    let dummy_hash = Arc::new(crate::auth::hash_password(
        &crate::auth::random_password(),
        config.auth.password_cost(),
    ));
    let read_audit = crate::audit::AuditBatcher::start(store.clone())
        .context("starting the audit writer's thread")?;
    let sessions = crate::session_cache::SessionCache::new(config.auth.session_cache_secs);
    let totp_key = Arc::new(totp_key(&config, store.as_ref()).await?);
    let key = totp_key.clone();
    let sealed = store
        .rewrite_totp_secrets(
            crate::storage::TotpSecrets::Plain,
            &move |login, secret| Ok(key.seal(login, secret)),
            crate::audit::AuditDraft::by_operator(
                0,
                Clock::default().now(),
                crate::audit::action::TOTP_SEALED,
                serde_json::Value::Null,
            ),
        )
        .await
        .context("sealing TOTP secrets stored before sealing")?;
    if sealed > 0 {
        tracing::info!(users = sealed, "sealed TOTP secrets stored in the clear");
    }
    Ok(AppState {
        store,
        orgs: Arc::new(orgs),
        dummy_hash,
        config: Arc::new(config),
        hub: Hub::default(),
        clock: Clock::default(),
        read_audit,
        sessions,
        totp_key,
        checkpoints,
        refusals: Default::default(),
        db_circuit: Default::default(),
    })
}

/// Runs `serving` with the checkpoint writer beside it; when serving ends, one last checkpoint.
async fn with_checkpoints(
    state: &AppState,
    serving: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let every = std::time::Duration::from_secs(state.config.audit.checkpoint_secs.max(1));
    let writer = tokio::spawn(
        state
            .checkpoints
            .clone()
            .run(every, state.clock.clone(), async {
                let _ = stopped.await;
            }),
    );
    let served = serving.await;
    let _ = stop.send(());
    let _ = writer.await;
    served
}

/// The TOTP key file: the configured one, or the default beside the database
/// (`totp_key::default_path`).
pub fn totp_key_path(config: &Config) -> std::path::PathBuf {
    config
        .auth
        .totp_key_file
        .clone()
        .unwrap_or_else(|| crate::totp_key::default_path(&config.database_url))
}

/// The key that seals this database's TOTP secrets: the key file, which must open the secrets
/// already sealed. Created only for a database that holds no sealed secret: a missing key is
/// never silently replaced.
pub async fn totp_key(
    config: &Config,
    store: &dyn Storage,
) -> anyhow::Result<crate::totp_key::TotpKey> {
    use crate::totp_key::{pending_path, TotpKey};
    let path = totp_key_path(config);
    let sample = store.sealed_totp_sample().await?;
    if !path.exists() {
        if sample.is_some() {
            anyhow::bail!(
                "the TOTP key file {} is missing, but this database holds TOTP secrets sealed with a key: restore the key file (see docs/operations.md, Keys and secrets)",
                path.display()
            );
        }
        let key = TotpKey::create(&path)?;
        tracing::warn!(path = %path.display(), "created a new TOTP key file: back it up apart from the database");
        return Ok(key);
    }
    let key = TotpKey::read(&path)?;
    if let Some((login, sealed)) = sample {
        key.open(&login, &sealed).map_err(|_| {
            if pending_path(&path).exists() {
                anyhow::anyhow!(
                    "the TOTP key file {} does not open this database's TOTP secrets, and {} is there: a key rotation stopped before it finished; run `tsunagu-server rotate-totp-key` again",
                    path.display(),
                    pending_path(&path).display()
                )
            } else {
                anyhow::anyhow!(
                    "the TOTP key file {} does not open this database's TOTP secrets (a key from another database?)",
                    path.display()
                )
            }
        })?;
    }
    Ok(key)
}

/// What `rotate_totp_key` did.
#[derive(Debug)]
pub struct Rotation {
    /// Secrets sealed again.
    pub users: u64,
    /// An interrupted rotation was finished: its secrets were sealed when it stopped.
    pub finished_earlier_run: bool,
    pub key_file: std::path::PathBuf,
    /// The replaced key: backups taken before the rotation need it.
    pub retired: std::path::PathBuf,
}

/// Seals every TOTP secret under a new key and makes that key the key file. Run it with the
/// server stopped: a running server keeps the old key until it restarts.
///
/// The new key is written to `<key file>.new` first, the secrets are sealed again in one
/// transaction (with a `user.totp_key_rotated` entry), and only then does the new key replace
/// the file, the old one kept as `<key file>.retired-<unix seconds>`. Stopped between the
/// commit and the replacement, it is run again: it sees that the `.new` key opens the secrets
/// and finishes. Stopped before the commit, the `.new` key opens nothing and is discarded.
pub async fn rotate_totp_key(
    config: &Config,
    store: &dyn Storage,
    now: i64,
) -> anyhow::Result<Rotation> {
    use crate::totp_key::{pending_path, TotpKey};
    let path = totp_key_path(config);
    let pending = pending_path(&path);
    if pending.exists() {
        let new = TotpKey::read(&pending)?;
        let committed = store
            .sealed_totp_sample()
            .await?
            .is_some_and(|(login, sealed)| new.open(&login, &sealed).is_ok());
        if committed {
            let retired = install_key(&path, &pending, now)?;
            return Ok(Rotation {
                users: 0,
                finished_earlier_run: true,
                key_file: path,
                retired,
            });
        }
        std::fs::remove_file(&pending)
            .with_context(|| format!("removing {}", pending.display()))?;
    }
    anyhow::ensure!(
        path.exists(),
        "there is no TOTP key file {} to rotate",
        path.display()
    );
    let old = totp_key(config, store).await?;
    let new = TotpKey::create(&pending)?;
    let rewritten = store
        .rewrite_totp_secrets(
            crate::storage::TotpSecrets::Sealed,
            &|login, stored| {
                let secret = old.open(login, stored).map_err(|e| e.to_string())?;
                Ok(new.seal(login, &secret))
            },
            crate::audit::AuditDraft::by_operator(
                0,
                now,
                crate::audit::action::TOTP_KEY_ROTATED,
                serde_json::Value::Null,
            ),
        )
        .await;
    let users = match rewritten {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&pending);
            return Err(e).context("sealing the TOTP secrets under the new key; nothing changed");
        }
    };
    let retired = install_key(&path, &pending, now)?;
    Ok(Rotation {
        users,
        finished_earlier_run: false,
        key_file: path,
        retired,
    })
}

/// Keeps the key at `path` aside and moves the `pending` one in its place.
fn install_key(
    path: &std::path::Path,
    pending: &std::path::Path,
    now: i64,
) -> anyhow::Result<std::path::PathBuf> {
    let unfinished = || {
        format!(
            "the secrets are sealed under {}; run `tsunagu-server rotate-totp-key` again to finish",
            pending.display()
        )
    };
    // A retired key is never overwritten: a second rotation within the second gets a suffix.
    let mut n = 1;
    let retired = loop {
        let base = crate::totp_key::retired_path(path, now / 1_000_000);
        let candidate = match n {
            1 => base,
            _ => std::path::PathBuf::from(format!("{}-{n}", base.display())),
        };
        match std::fs::hard_link(path, &candidate) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            linked => break linked.map(|()| candidate).with_context(unfinished)?,
        }
    };
    std::fs::rename(pending, path).with_context(unfinished)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing {}", dir.display()))?;
    }
    Ok(retired)
}

/// Serves on an already bound listener until `shutdown` resolves, then drains: open event
/// streams are ended and in-flight requests finish. Connections are bounded by `[limits]`
/// (`conn.rs`); handlers can read the peer address as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_on(state, listener, crate::conn::Plain, shutdown).await
}

/// Serves HTTPS with rustls, under the same connection limits (HTTP/1.1 only, as over plain
/// TCP).
#[cfg(feature = "tls")]
pub async fn serve_tls(
    state: AppState,
    addr: SocketAddr,
    tls: &crate::config::TlsConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let loaded = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
        .await
        .context("loading TLS certificate and key")?;
    let mut rustls_config = (*loaded.get_inner()).clone();
    rustls_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(rustls_config));
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    serve_on(state, listener, crate::conn::Tls(acceptor), shutdown).await
}

async fn serve_on<H: crate::conn::Handshake>(
    state: AppState,
    listener: TcpListener,
    handshake: H,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Built before the first request, so no search pays for parsing the name dictionary.
    crate::search::readings::warm();
    let hub = state.hub.clone();
    let limits = crate::conn::ConnLimits::from(&state.config.limits);
    let app = crate::api::router(state.clone());
    let reminders = tokio::spawn(safety_reminders(state.clone()));
    let served = with_checkpoints(&state, async move {
        crate::conn::serve(listener, app, limits, handshake, async move {
            shutdown.await;
            hub.close();
        })
        .await?;
        Ok(())
    })
    .await;
    reminders.abort();
    served
}

/// Every minute, the safety clock's reminders that fell due (`intake::service`). Several
/// servers may run this at once: each reminder is marked sent by one conditional update.
async fn safety_reminders(state: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match state.send_safety_reminders().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(reminders = n, "safety confirmation reminders sent"),
            Err(e) => {
                tracing::warn!(error = ?e, "safety confirmation reminders failed; retried in a minute")
            }
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

/// A server on an ephemeral local port, for tests, benchmarks and the client's demo mode.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    pub async fn start(state: AppState) -> anyhow::Result<Running> {
        Running::start_at(state, "127.0.0.1:0").await
    }

    /// On a given address: a restart on the same port, as clients see one.
    pub async fn start_at(state: AppState, addr: &str) -> anyhow::Result<Running> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(serve(state.clone(), listener, async move {
            let _ = rx.await;
        }));
        Ok(Running {
            addr,
            state,
            stop: Some(tx),
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        (&mut self.task).await?
    }
}
