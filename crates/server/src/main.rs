//! `tsunagu-server`: serve the API, run migrations, load master data, seed demo data, verify the
//! audit chain, manage users.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::json;
use tsunagu_masterdata::orgs as master;
use tsunagu_record::Role;
use tsunagu_server::app;
use tsunagu_server::audit::{self, action, AuditDraft};
use tsunagu_server::auth;
use tsunagu_server::clock::Clock;
use tsunagu_server::config::Config;
use tsunagu_server::orgs::OrgDirectory;
use tsunagu_server::seed;
use tsunagu_server::storage::NewUser;

#[derive(Parser)]
#[command(
    name = "tsunagu-server",
    version,
    about = "tsunagu central server (要保護児童等に関する情報共有システム)"
)]
struct Cli {
    /// Configuration file (TOML). Default: ./tsunagu-server.toml if present.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Database URL, overriding the file and TSUNAGU_DATABASE_URL.
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server.
    Serve {
        /// Listen address, overriding the configuration.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// The whole server on a fresh SQLite file with synthetic demo data, in one command.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// The demo database file; it is replaced on every start.
        #[arg(long, default_value = "tsunagu-demo.sqlite")]
        file: PathBuf,
        #[arg(long, default_value_t = 300)]
        records: usize,
    },
    /// Bring the database schema up to date and exit.
    Migrate,
    /// Load the organisation master from a TOML or CSV file (columns: id,kind,name,pref_code,lgcode,phone,cgc_id).
    LoadOrgs { file: PathBuf },
    /// Load synthetic organisations, demo accounts and synthetic records.
    SeedDemo {
        /// Number of synthetic records (up to 1,000,000 for benchmarks).
        #[arg(long, default_value_t = 300)]
        records: usize,
        #[arg(long, default_value_t = 20261125)]
        seed: u64,
    },
    /// Walk every audit chain against its MACs, its head and every signed checkpoint; exit 1
    /// naming the first broken entry of each broken chain, 2 if it could not be checked.
    VerifyAudit {
        /// A witness's copy of the checkpoint file, checked instead of the local one.
        #[arg(long)]
        witness: Option<PathBuf>,
    },
    /// Append the checkpoints a witness's copy lacks to it (signatures checked first).
    CopyCheckpoints {
        /// The witness's copy (created if missing).
        #[arg(long)]
        to: PathBuf,
    },
    /// List the accounts whose reads were refused (no tier, or no such record), most first.
    RefusedReads {
        /// How far back, in hours.
        #[arg(long, default_value_t = 24)]
        hours: i64,
    },
    /// Replace the checkpoint signing key (stop the server first): the old public key stays
    /// trusted for the checkpoints it signed before now.
    RotateAuditSigningKey,
    /// Recompute the person-search index from the records (after an upgrade that changes
    /// normalisation, or to repair it). One transaction: searches see the old or the new index.
    RebuildSearchIndex,
    /// Seal every TOTP secret under a new key file (stop the server first): the old key is kept
    /// as `<key file>.retired-<unix seconds>` for backups taken before.
    RotateTotpKey,
    /// Print the current one-time code of a demo account.
    DemoCode { login: String },
    /// User administration.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an organisation admin; prints a one-time password and the TOTP enrolment URL.
    CreateAdmin {
        #[arg(long)]
        org: String,
        #[arg(long)]
        login: String,
        #[arg(long)]
        name: String,
    },
    /// Reset a password to a new random one, clear the lockout and end the user's sessions.
    ResetPassword {
        #[arg(long)]
        login: String,
    },
    /// Give a user a new TOTP secret (a lost or replaced phone): prints its enrolment URL,
    /// clears the lockout and ends the user's sessions.
    ResetTotp {
        #[arg(long)]
        login: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TSUNAGU_LOG")
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in files or log collectors.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(url) = cli.database_url {
        config.database_url = url;
    }
    let clock = Clock::default();
    match &cli.command {
        Command::Demo {
            listen,
            file,
            records,
        } => {
            return demo(config, *listen, file, *records, &clock).await;
        }
        // Needs no database: the demo accounts' secrets derive from their logins.
        Command::DemoCode { login } => {
            // Any other login would get a well-formed code that opens nothing.
            let demo = seed::demo_accounts(&master::synthetic());
            if !demo.iter().any(|a| a.login == login) {
                let logins: Vec<_> = demo.iter().map(|a| a.login).collect();
                anyhow::bail!(
                    "{login} is not a demo account (they are {}): other accounts' one-time codes come only from their authenticator app",
                    logins.join(", ")
                );
            }
            let secret = seed::demo_totp_secret(login);
            let code = auth::totp_code(&secret, (clock.now() / 1_000_000) as u64)
                .context("computing the code")?;
            println!("{code}");
            return Ok(());
        }
        Command::VerifyAudit { witness } => {
            // Exit 1: the log is broken. Exit 2: it could not be checked.
            match verify_audit(&config, witness.as_deref()).await {
                Ok(true) => return Ok(()),
                Ok(false) => std::process::exit(1),
                Err(e) => {
                    eprintln!("the audit log could not be verified: {e:#}");
                    std::process::exit(2);
                }
            }
        }
        Command::CopyCheckpoints { to } => {
            let keys = audit::keys::PublicKeys::read(&audit::keys::public_keys_path(
                &config.audit_signing_key_path(),
            ))?;
            let from = config.audit_checkpoint_path();
            let n = audit::checkpoint::copy_new(&from, to, &keys)?;
            println!(
                "{n} checkpoints copied from {} to {}",
                from.display(),
                to.display()
            );
            return Ok(());
        }
        _ => {}
    }
    let store = app::open_keyed_store(&config).await?;
    // Every command ends by closing the store, so SQLite folds its WAL back into the file;
    // one that only reads does not, since a server may be writing meanwhile.
    let reads_only = matches!(cli.command, Command::RefusedReads { .. });
    let outcome = run(cli.command, store.clone(), config, &clock).await;
    if reads_only {
        store.close_reader().await;
    } else {
        store.close().await;
    }
    outcome
}

/// The commands that work on an open store.
async fn run(
    command: Command,
    store: std::sync::Arc<dyn tsunagu_server::storage::Storage>,
    mut config: Config,
    clock: &Clock,
) -> anyhow::Result<()> {
    match command {
        Command::Demo { .. } => unreachable!("handled above"),
        Command::Serve { listen } => {
            if let Some(l) = listen {
                config.listen = l;
            }
            let addr = config.listen;
            let tls = config.tls.clone();
            let state = app::build_state(store.clone(), config).await?;
            tracing::info!(%addr, engine = state.store.engine(), orgs = state.orgs.len(), "serving");
            match tls {
                #[cfg(feature = "tls")]
                Some(tls) => app::serve_tls(state, addr, &tls, app::shutdown_signal()).await?,
                #[cfg(not(feature = "tls"))]
                Some(_) => anyhow::bail!("this build has no TLS support: serve behind a TLS proxy"),
                None => {
                    let listener = tokio::net::TcpListener::bind(addr)
                        .await
                        .with_context(|| format!("binding {addr}"))?;
                    app::serve(state, listener, app::shutdown_signal()).await?
                }
            }
        }
        Command::Migrate => println!("migrations applied ({})", store.engine()),
        Command::RebuildSearchIndex => {
            let started = std::time::Instant::now();
            let n = store.rebuild_search_index().await?;
            store
                .append_audit(AuditDraft::by_operator(
                    0,
                    clock.now(),
                    action::SEARCH_INDEX_REBUILT,
                    json!({ "records": n }),
                ))
                .await?;
            println!(
                "検索索引を再構築しました（{n}件, {:.1}秒）",
                started.elapsed().as_secs_f64()
            );
        }
        Command::LoadOrgs { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let parsed = if file.extension().is_some_and(|e| e == "toml") {
                master::from_toml(&text)
            } else {
                master::from_csv(&text)
            };
            match parsed {
                Ok(m) => {
                    seed::load_orgs(store.as_ref(), &m, clock.now()).await?;
                    println!("{} organisations loaded", m.orgs.len());
                }
                Err(errors) => {
                    for e in &errors {
                        eprintln!("{}: {e}", file.display());
                    }
                    std::process::exit(2);
                }
            }
        }
        Command::SeedDemo { records, seed: s } => {
            seed_demo(store.as_ref(), &config, records, s, clock).await?;
        }
        Command::RotateTotpKey => {
            let r = app::rotate_totp_key(&config, store.as_ref(), clock.now()).await?;
            if r.finished_earlier_run {
                println!(
                    "finished the interrupted rotation: the new key is now {}",
                    r.key_file.display()
                );
            } else {
                println!(
                    "TOTP secrets of {} users sealed under the new key {}",
                    r.users,
                    r.key_file.display()
                );
            }
            println!(
                "the previous key is kept as {}: backups from before now need it; restart the server",
                r.retired.display()
            );
        }
        Command::VerifyAudit { .. }
        | Command::CopyCheckpoints { .. }
        | Command::DemoCode { .. } => {
            unreachable!("handled above")
        }
        Command::RefusedReads { hours } => {
            let since = clock.now() - hours.max(0) * 3_600_000_000;
            let rows = store.refused_reads(since).await?;
            if rows.is_empty() {
                println!("no refused reads in the last {hours} hours");
            }
            let jst = chrono::FixedOffset::east_opt(9 * 3600).expect("JST");
            let when = |at: i64| {
                chrono::DateTime::from_timestamp_micros(at)
                    .map(|t| t.with_timezone(&jst).format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_default()
            };
            for r in rows {
                println!(
                    "{:>6}  user {:<8} {:<16} {} – {}",
                    r.count,
                    r.user_id
                        .map(|u| u.to_string())
                        .unwrap_or_else(|| "-".into()),
                    r.org_id,
                    when(r.first_at),
                    when(r.last_at)
                );
            }
        }
        Command::RotateAuditSigningKey => {
            let path = config.audit_signing_key_path();
            let r = audit::keys::rotate_signing_key(&path, clock.now())?;
            store
                .append_audit(AuditDraft::by_operator(
                    0,
                    clock.now(),
                    action::SIGNING_KEY_ROTATED,
                    json!({ "old": r.old_id, "new": r.new_id }),
                ))
                .await?;
            println!(
                "checkpoints are now signed with key {}; copy {} to every place that verifies checkpoints; restart the server",
                r.new_id,
                audit::keys::public_keys_path(&path).display()
            );
        }
        Command::User(UserCommand::CreateAdmin { org, login, name }) => {
            let dir = OrgDirectory::from_rows(store.list_orgs().await?)?;
            let o = dir
                .get(&org)
                .with_context(|| format!("no organisation with id {org}"))?;
            let password = auth::random_password();
            let secret = auth::new_totp_secret();
            let key = app::totp_key(&config, store.as_ref()).await?;
            let id = store
                .create_user(
                    &NewUser {
                        org_id: o.id.clone(),
                        login: login.clone(),
                        display_name: name,
                        role: Role::OrgAdmin.code().into(),
                        password_hash: auth::hash_password(&password, config.auth.password_cost()),
                        totp_secret: key.seal(&login, &secret),
                    },
                    AuditDraft::by_operator(
                        o.pref_code,
                        clock.now(),
                        action::USER_CREATED,
                        json!({}),
                    ),
                )
                .await
                .map_err(|e| match e {
                    tsunagu_server::storage::StoreError::Duplicate => {
                        anyhow::anyhow!("login {login} already exists")
                    }
                    other => other.into(),
                })?;
            println!("user {id} created in {}", o.name);
            println!("initial password (shown once): {password}");
            println!(
                "TOTP enrolment: {}",
                auth::totp_url(&secret, &login).unwrap_or_default()
            );
        }
        Command::User(UserCommand::ResetPassword { login }) => {
            let (user, pref) = user_and_chain(store.as_ref(), &login).await?;
            let password = auth::random_password();
            store
                .set_password(
                    user.id,
                    &auth::hash_password(&password, config.auth.password_cost()),
                    AuditDraft::by_operator(
                        pref,
                        clock.now(),
                        action::PASSWORD_RESET,
                        json!({ "user_id": user.id }),
                    ),
                )
                .await?;
            println!("new password for {login} (shown once): {password}");
        }
        Command::User(UserCommand::ResetTotp { login }) => {
            let (user, pref) = user_and_chain(store.as_ref(), &login).await?;
            let key = app::totp_key(&config, store.as_ref()).await?;
            let secret = auth::new_totp_secret();
            store
                .set_totp_secret(
                    user.id,
                    &key.seal(&login, &secret),
                    AuditDraft::by_operator(
                        pref,
                        clock.now(),
                        action::TOTP_RESET,
                        json!({ "user_id": user.id }),
                    ),
                )
                .await?;
            println!(
                "new TOTP enrolment for {login} (shown once): {}",
                auth::totp_url(&secret, &login).unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// A user by login, and the audit chain of the user's organisation (0 if it is not in the
/// directory).
async fn user_and_chain(
    store: &dyn tsunagu_server::storage::Storage,
    login: &str,
) -> anyhow::Result<(tsunagu_server::storage::UserRow, i64)> {
    let user = store
        .user_by_login(login)
        .await?
        .with_context(|| format!("no user {login}"))?;
    let dir = OrgDirectory::from_rows(store.list_orgs().await?)?;
    let pref = dir.get(&user.org_id).map(|o| o.pref_code).unwrap_or(0);
    Ok((user, pref))
}

async fn seed_demo(
    store: &dyn tsunagu_server::storage::Storage,
    config: &Config,
    records: usize,
    s: u64,
    clock: &Clock,
) -> anyhow::Result<()> {
    // Refused before the key file is made: a refused seeding leaves nothing behind.
    seed::ensure_empty(store).await?;
    let started = std::time::Instant::now();
    let accounts = seed::seed_demo_database(
        store,
        config.auth.password_cost(),
        records,
        s,
        clock,
        &app::totp_key(config, store).await?,
        |n| {
            if n % 100_000 == 0 {
                eprintln!("  {n} records");
            }
        },
    )
    .await?;
    println!(
        "デモデータを作成しました（{records}件, {:.1}秒）。すべて架空のデータです。",
        started.elapsed().as_secs_f64()
    );
    println!("パスワード（全アカウント共通）: {}", seed::DEMO_PASSWORD);
    println!("ワンタイムコード: tsunagu-server demo-code <ログインID>");
    for a in accounts {
        println!("  {:<16} {}  [{}]", a.login, a.purpose, a.org_id);
    }
    Ok(())
}

/// `demo`: a fresh SQLite file, demo data, and the server, in one command.
async fn demo(
    mut config: Config,
    listen: std::net::SocketAddr,
    file: &std::path::Path,
    records: usize,
    clock: &Clock,
) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", file.display()));
        if p.exists() {
            std::fs::remove_file(&p)
                .with_context(|| format!("removing the previous demo file {}", p.display()))?;
        }
    }
    config.database_url = format!("sqlite://{}", file.display());
    config.listen = listen;
    // The checkpoints of the previous demo database name chains this one does not have.
    let checkpoints = config.audit_checkpoint_path();
    if checkpoints.exists() {
        std::fs::remove_file(&checkpoints)
            .with_context(|| format!("removing {}", checkpoints.display()))?;
    }
    let store = app::open_keyed_store(&config).await?;
    seed_demo(store.as_ref(), &config, records, 20261125, clock).await?;
    let state = app::build_state(store.clone(), config).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    println!("サーバーを起動しました: http://{listen}  （API文書: http://{listen}/api/v1/openapi.json, 停止: Ctrl+C）");
    let served = app::serve(state, listener, app::shutdown_signal()).await;
    store.close().await;
    served
}

/// `verify-audit`: true if the log is intact. Reads the MAC key, the trusted public keys and
/// the checkpoints (the witness's copy or the local file, and those stored in the database),
/// then walks every chain. Appends nothing.
async fn verify_audit(config: &Config, witness: Option<&std::path::Path>) -> anyhow::Result<bool> {
    use audit::checkpoint::{read_file, Checkpoint};
    let mac = audit::MacKey::read(&config.audit_mac_key_path())?;
    let keys = audit::keys::PublicKeys::read(&audit::keys::public_keys_path(
        &config.audit_signing_key_path(),
    ))?;
    let file = witness
        .map(PathBuf::from)
        .unwrap_or_else(|| config.audit_checkpoint_path());
    let mut problems = Vec::new();
    let mut checkpoints = Vec::new();
    if file.exists() {
        let read = read_file(&file, &keys)?;
        for n in &read.notes {
            println!("note: {n}");
        }
        problems.extend(read.problems);
        checkpoints.extend(read.checkpoints);
    } else if witness.is_some() {
        anyhow::bail!("there is no witness file {}", file.display());
    } else {
        println!(
            "note: there is no checkpoint file {}: nothing pins the chains, so a cut of the newest entries or a rewrite by someone holding the MAC key would not show",
            file.display()
        );
    }
    let store = app::open_store(&config.database_url, config.pg_max_connections).await?;
    let outcome = async {
        let stored = store.stored_checkpoints().await?;
        // The server stores each checkpoint in the database before it appends it to the file,
        // so a line of the local file that the database lacks was removed there.
        if witness.is_none() {
            for c in &checkpoints {
                if !stored
                    .iter()
                    .any(|(b, s)| *b == c.body && *s == c.signature)
                {
                    problems.push(format!(
                        "a checkpoint of the file (signed at {}) is missing from the database",
                        c.at
                    ));
                }
            }
        }
        for (n, (body, sig)) in stored.into_iter().enumerate() {
            if checkpoints
                .iter()
                .any(|c: &Checkpoint| c.signature == sig && c.body == body)
            {
                continue;
            }
            match Checkpoint::from_parts(&body, &sig).and_then(|c| c.verify(&keys).map(|()| c)) {
                Ok(c) => checkpoints.push(c),
                Err(e) => {
                    problems.push(format!("checkpoint {} stored in the database: {e}", n + 1))
                }
            }
        }
        Ok::<_, anyhow::Error>(audit::verify_with(store.as_ref(), &mac, &checkpoints).await?)
    }
    .await;
    store.close_reader().await;
    let report = outcome?;
    for p in &problems {
        eprintln!("checkpoint BROKEN: {p}");
    }
    for b in &report.breaks {
        eprintln!("audit log BROKEN at {b}");
    }
    if !report.intact() || !problems.is_empty() {
        return Ok(false);
    }
    let newest = report
        .newest_checkpoint_at
        .and_then(chrono::DateTime::from_timestamp_micros)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| "none".into());
    println!(
        "audit log intact: {} chains, {} entries, {} checkpoints checked (newest {newest})",
        report.chains, report.entries, report.checkpoints
    );
    if report.not_checkpointed > 0 {
        println!(
            "not yet checkpointed: {} entries in {} chains, written after the newest checkpoint of their chain (their MACs verify; a cut of these alone would not show)",
            report.not_checkpointed, report.chains_not_checkpointed
        );
    }
    Ok(true)
}
