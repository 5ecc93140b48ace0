//! The data the benchmarks run on: a generated database per engine and size, kept as a cache
//! (generating a million records is not what is measured and takes minutes on PostgreSQL), the
//! accounts the workers act as, and the record ids they use.
//!
//! Cache: SQLite files `DATA_DIR/sqlite-n{N}-s{SEED}.sqlite`, PostgreSQL databases
//! `tsunagu_bench_n{N}_s{SEED}`. Each is built under a temporary name and renamed only when
//! complete, so a cache entry with the final name is always whole. Runs append to it (audit
//! entries of the reads, versions of the updates, sessions); the record set stays the same.
//! `tsunagu-bench clean` removes both kinds.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::Connection as _;
use tsunagu_masterdata::orgs as master;
use tsunagu_server::audit::{action, AuditDraft};
use tsunagu_server::auth::{self, PasswordCost};
use tsunagu_server::clock::Clock;
use tsunagu_server::orgs::OrgDirectory;
use tsunagu_server::seed;
use tsunagu_server::storage::postgres::PgStore;
use tsunagu_server::storage::sqlite::SqliteStore;
use tsunagu_server::storage::{CaseQuery, CaseSort, NewUser, Storage, StoredRecord};

use crate::s2fair::{FairOpts, FairSet};

/// Record id = prefecture × 10^12 + a counter from 1 (see the server's `storage::sql`).
pub const ID_BASE: i64 = 1_000_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }

    pub fn parse(s: &str) -> anyhow::Result<Engine> {
        match s.trim() {
            "sqlite" => Ok(Engine::Sqlite),
            "postgres" | "postgresql" | "pg" => Ok(Engine::Postgres),
            other => anyhow::bail!("unknown engine {other:?} (sqlite or postgres)"),
        }
    }
}

/// Where generated data lives and how it is made.
#[derive(Debug, Clone)]
pub struct DataOpts {
    pub records: usize,
    pub seed: u64,
    pub data_dir: PathBuf,
    /// Any URL of the PostgreSQL server; the database part is replaced.
    pub pg_url: String,
    pub regenerate: bool,
}

/// A ready database: its URL, and whether it came from the cache or was generated now.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Dataset {
    pub url: String,
    pub from_cache: bool,
    pub generated_secs: Option<f64>,
    pub size_bytes: Option<u64>,
}

/// `postgres://user@host:port/db` for another database on the same server.
pub fn pg_db_url(any: &str, db: &str) -> anyhow::Result<String> {
    let (scheme, rest) = any
        .split_once("://")
        .context("--pg-url must look like postgres://user@host:5432")?;
    let host = rest.split(['/', '?']).next().unwrap_or(rest);
    Ok(format!("{scheme}://{host}/{db}"))
}

fn pg_admin_url(any: &str) -> anyhow::Result<String> {
    pg_db_url(any, "postgres")
}

/// What a generated database holds besides the organisations and the demo accounts.
#[derive(Clone, Copy)]
pub enum Fill<'a> {
    /// `records` synthetic records in the bulk generator's order.
    Bulk,
    /// The S2 fair set, in its own (shuffled) order.
    Fair(&'a FairSet, &'a FairOpts),
}

impl Fill<'_> {
    /// The cache name's middle: size, and for the fair set what fixes it.
    fn tag(&self, o: &DataOpts) -> String {
        match self {
            Fill::Bulk => format!("n{}", o.records),
            Fill::Fair(_, f) => format!("n{}-{}", f.base, f.cache_tag()),
        }
    }

    fn records(&self, o: &DataOpts) -> usize {
        match self {
            Fill::Bulk => o.records,
            Fill::Fair(s, _) => s.people.len(),
        }
    }
}

fn pg_db_name(o: &DataOpts, fill: Fill) -> String {
    format!("tsunagu_bench_{}_s{}", fill.tag(o), o.seed).replace('-', "_")
}

fn sqlite_path(o: &DataOpts, fill: Fill) -> PathBuf {
    o.data_dir
        .join(format!("sqlite-{}-s{}.sqlite", fill.tag(o), o.seed))
}

/// Finds the cached database of this engine and size, or generates it.
pub async fn prepare(engine: Engine, o: &DataOpts) -> anyhow::Result<Dataset> {
    prepare_with(engine, o, Fill::Bulk).await
}

/// Finds the cached database of this engine and content, or generates it.
pub async fn prepare_with(engine: Engine, o: &DataOpts, fill: Fill<'_>) -> anyhow::Result<Dataset> {
    match engine {
        Engine::Sqlite => prepare_sqlite(o, fill).await,
        Engine::Postgres => prepare_pg(o, fill).await,
    }
}

fn sidecars(p: &Path) -> [PathBuf; 3] {
    let s = p.display().to_string();
    [
        p.to_path_buf(),
        format!("{s}-wal").into(),
        format!("{s}-shm").into(),
    ]
}

async fn prepare_sqlite(o: &DataOpts, fill: Fill<'_>) -> anyhow::Result<Dataset> {
    std::fs::create_dir_all(&o.data_dir)
        .with_context(|| format!("creating {}", o.data_dir.display()))?;
    let path = sqlite_path(o, fill);
    if o.regenerate {
        for f in sidecars(&path) {
            let _ = std::fs::remove_file(f);
        }
    }
    let url = format!("sqlite://{}", path.display());
    if path.exists() {
        eprintln!("sqlite: using cached {}", path.display());
        return Ok(Dataset {
            url,
            from_cache: true,
            generated_secs: None,
            size_bytes: std::fs::metadata(&path).ok().map(|m| m.len()),
        });
    }
    let partial = o
        .data_dir
        .join(format!("sqlite-{}-s{}.partial.sqlite", fill.tag(o), o.seed));
    for f in sidecars(&partial) {
        let _ = std::fs::remove_file(f);
    }
    eprintln!(
        "sqlite: generating {} records into {}",
        fill.records(o),
        partial.display()
    );
    let started = Instant::now();
    let store = SqliteStore::open(&partial).await?;
    store.migrate().await?;
    generate(&store, &url, o, fill).await?;
    // Closing checkpoints the WAL into the main file first.
    store.close_pools().await;
    for (from, to) in sidecars(&partial).into_iter().zip(sidecars(&path)) {
        if from.exists() {
            std::fs::rename(&from, &to)?;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!("sqlite: generated in {secs:.1} s");
    Ok(Dataset {
        url,
        from_cache: false,
        generated_secs: Some(secs),
        size_bytes: std::fs::metadata(&path).ok().map(|m| m.len()),
    })
}

async fn pg_admin(o: &DataOpts) -> anyhow::Result<sqlx::PgConnection> {
    let admin = pg_admin_url(&o.pg_url)?;
    sqlx::PgConnection::connect(&admin)
        .await
        .with_context(|| format!("connecting to {admin}"))
}

async fn pg_exists(admin: &mut sqlx::PgConnection, db: &str) -> anyhow::Result<bool> {
    Ok(
        sqlx::query_scalar::<_, i32>("SELECT 1 FROM pg_database WHERE datname = $1")
            .bind(db)
            .fetch_optional(&mut *admin)
            .await?
            .is_some(),
    )
}

async fn pg_size(admin: &mut sqlx::PgConnection, db: &str) -> Option<u64> {
    sqlx::query_scalar::<_, i64>("SELECT pg_database_size($1)")
        .bind(db)
        .fetch_one(admin)
        .await
        .ok()
        .map(|n| n as u64)
}

async fn prepare_pg(o: &DataOpts, fill: Fill<'_>) -> anyhow::Result<Dataset> {
    let db = pg_db_name(o, fill);
    let building = format!("{db}_building");
    let mut admin = pg_admin(o).await?;
    if o.regenerate && pg_exists(&mut admin, &db).await? {
        sqlx::query(&format!("DROP DATABASE {db}"))
            .execute(&mut admin)
            .await?;
    }
    let url = pg_db_url(&o.pg_url, &db)?;
    if pg_exists(&mut admin, &db).await? {
        eprintln!("postgres: using cached database {db}");
        return Ok(Dataset {
            url,
            from_cache: true,
            generated_secs: None,
            size_bytes: pg_size(&mut admin, &db).await,
        });
    }
    sqlx::query(&format!("DROP DATABASE IF EXISTS {building}"))
        .execute(&mut admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {building}"))
        .execute(&mut admin)
        .await?;
    eprintln!(
        "postgres: generating {} records into {building}",
        fill.records(o)
    );
    let started = Instant::now();
    let store = PgStore::connect(&pg_db_url(&o.pg_url, &building)?, 4).await?;
    store.migrate().await?;
    generate(&store, &url, o, fill).await?;
    // Planner statistics as a database that has been running would have them.
    sqlx::query("ANALYZE")
        .execute(&mut sqlx::PgConnection::connect(&pg_db_url(&o.pg_url, &building)?).await?)
        .await?;
    store.close_pools().await;
    sqlx::query(&format!("ALTER DATABASE {building} RENAME TO {db}"))
        .execute(&mut admin)
        .await?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!("postgres: generated in {secs:.1} s");
    Ok(Dataset {
        url,
        from_cache: false,
        generated_secs: Some(secs),
        size_bytes: pg_size(&mut admin, &db).await,
    })
}

/// The organisations, the demo accounts and the records: `records` synthetic ones spread over
/// every centre and municipality of the country with a fixed seed, or the S2 fair set.
///
/// The TOTP key goes where the server will look for it for `url`, the finished database.
async fn generate(
    store: &dyn Storage,
    url: &str,
    o: &DataOpts,
    fill: Fill<'_>,
) -> anyhow::Result<()> {
    let (records, seed) = (fill.records(o), o.seed);
    let clock = Clock::default();
    let m = master::synthetic();
    let config = tsunagu_server::config::Config {
        database_url: url.to_string(),
        ..Default::default()
    };
    tsunagu_server::app::install_audit_key(store, &config.audit_mac_key_path()).await?;
    let key = tsunagu_server::app::totp_key(&config, store).await?;
    seed::load_orgs(store, &m, clock.now()).await?;
    seed::create_demo_users(store, &m, PasswordCost::default(), clock.now(), &key).await?;
    let dir = OrgDirectory::from_rows(store.list_orgs().await?)?;
    let started = Instant::now();
    if let Fill::Fair(set, _) = fill {
        return crate::s2fair::register(store, &dir, set, |n| {
            if n % 50_000 < 5_000 || n == records {
                eprintln!("  {n} records ({:.0} s)", started.elapsed().as_secs_f64());
            }
        })
        .await;
    }
    seed::seed_bulk_records(
        store,
        &dir,
        records,
        seed,
        clock.today(),
        clock.now(),
        |n| {
            if n % 100_000 == 0 || n == records {
                eprintln!("  {n} records ({:.0} s)", started.elapsed().as_secs_f64());
            }
        },
    )
    .await?;
    Ok(())
}

/// Removes every cached file and database.
pub async fn clean(data_dir: &Path, pg_url: Option<&str>) -> anyhow::Result<()> {
    if data_dir.exists() {
        for e in std::fs::read_dir(data_dir)? {
            let p = e?.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with("sqlite-n") || name.starts_with("s7-") {
                eprintln!("removing {}", p.display());
                if p.is_dir() {
                    std::fs::remove_dir_all(&p)?;
                } else {
                    std::fs::remove_file(&p)?;
                }
            }
        }
    }
    if let Some(url) = pg_url {
        let mut admin = sqlx::PgConnection::connect(&pg_admin_url(url)?).await?;
        let dbs: Vec<String> = sqlx::query_scalar(
            "SELECT datname FROM pg_database WHERE datname LIKE 'tsunagu\\_bench\\_n%'",
        )
        .fetch_all(&mut admin)
        .await?;
        for db in dbs {
            eprintln!("dropping database {db}");
            sqlx::query(&format!("DROP DATABASE {db}"))
                .execute(&mut admin)
                .await?;
        }
    }
    Ok(())
}

/// A benchmark user: one staff member at the first centre of each prefecture, so updates can
/// be spread over all 47 audit chains (the demo accounts are only in Tokyo and Osaka).
pub fn bench_login(pref: i64) -> String {
    format!("bench-p{pref:02}")
}

/// Creates the per-prefecture benchmark users that are not there yet. They share the demo
/// password and derive their TOTP secret from the login like the demo accounts, so a later run
/// on the cached database can log them in again.
pub async fn ensure_bench_users(
    store: &dyn Storage,
    dir: &OrgDirectory,
    key: &tsunagu_server::totp_key::TotpKey,
) -> anyhow::Result<()> {
    let clock = Clock::default();
    let mut hash = None;
    for pref in 1..=47 {
        let login = bench_login(pref);
        if store.user_by_login(&login).await?.is_some() {
            continue;
        }
        let org_id = format!("cgc-{pref:02}-01");
        dir.get(&org_id)
            .with_context(|| format!("{org_id} missing from the directory"))?;
        let hash = hash
            .get_or_insert_with(|| {
                auth::hash_password(seed::DEMO_PASSWORD, PasswordCost::default())
            })
            .clone();
        store
            .create_user(
                &NewUser {
                    org_id,
                    login: login.clone(),
                    display_name: format!("ベンチ 職員{pref:02}（架空）"),
                    role: tsunagu_record::Role::Staff.code().into(),
                    password_hash: hash,
                    totp_secret: key.seal(&login, &seed::demo_totp_secret(&login)),
                },
                AuditDraft::by_operator(
                    pref,
                    clock.now(),
                    action::USER_CREATED,
                    serde_json::json!({ "benchmark": true }),
                ),
            )
            .await?;
    }
    Ok(())
}

/// Logs in through the HTTP API and returns the token. A one-time code is accepted once per
/// 30 s step, and a rerun on the cached database may come within the step of the last run's
/// login, so on refusal the next step's code (accepted one step early) is tried, then after
/// waiting for the step to pass.
pub async fn login(client: &reqwest::Client, base: &str, login: &str) -> anyhow::Result<String> {
    let secret = seed::demo_totp_secret(login);
    let mut last = String::new();
    for attempt in 0..3 {
        if attempt == 2 {
            let now = chrono::Utc::now().timestamp() as u64;
            tokio::time::sleep(std::time::Duration::from_secs(30 - now % 30 + 1)).await;
        }
        let now = chrono::Utc::now().timestamp() as u64 + if attempt == 0 { 0 } else { 30 };
        let otp = auth::totp_code(&secret, now).context("computing the one-time code")?;
        let res = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&serde_json::json!({
                "login": login,
                "password": seed::DEMO_PASSWORD,
                "otp": otp,
            }))
            .send()
            .await?;
        let status = res.status();
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        if status.is_success() {
            return body["token"]
                .as_str()
                .map(str::to_string)
                .context("login response without a token");
        }
        last = format!("{status}: {body}");
    }
    anyhow::bail!("login of {login} failed: {last}")
}

/// Records per prefecture (ids run from 1 without gaps, since the benchmark data is only
/// seeded): found with `bare_read` probes, exponential then binary search, so no SQL of its own
/// is needed.
pub async fn pref_counts(store: &dyn Storage) -> anyhow::Result<Vec<(i64, i64)>> {
    let mut out = Vec::new();
    for pref in 1..=47i64 {
        let exists = |n: i64| async move {
            store
                .bare_read(pref, pref * ID_BASE + n)
                .await
                .map(|r| r.is_some())
        };
        if !exists(1).await? {
            continue;
        }
        let mut lo = 1i64; // exists
        let mut hi = 2i64;
        while exists(hi).await? {
            lo = hi;
            hi *= 2;
        }
        // lo exists, hi does not.
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if exists(mid).await? {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        out.push((pref, lo));
    }
    Ok(out)
}

/// `n` ids drawn uniformly from all records, with a fixed seed.
pub fn uniform_ids(counts: &[(i64, i64)], n: usize, seed: u64) -> Vec<i64> {
    let total: i64 = counts.iter().map(|(_, c)| c).sum();
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut k = rng.gen_range(0..total);
            for &(pref, c) in counts {
                if k < c {
                    return pref * ID_BASE + k + 1;
                }
                k -= c;
            }
            unreachable!("k < total")
        })
        .collect()
}

/// Records owned by any of `owners` in one prefecture, at most `limit`.
pub async fn owned_by(
    store: &dyn Storage,
    owners: &[String],
    pref: i64,
    limit: i64,
) -> anyhow::Result<Vec<StoredRecord>> {
    Ok(store
        .list_cases(&CaseQuery {
            owners: owners.to_vec(),
            pref_code: Some(pref),
            serious_only: false,
            status: None,
            municipality: None,
            viewer_org: String::new(),
            mask_others: false,
            updated_since: None,
            sort: CaseSort::CaseNumber,
            after: None,
            limit,
        })
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_urls() {
        assert_eq!(
            pg_db_url("postgres://postgres@127.0.0.1:5432", "x").unwrap(),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            pg_db_url(
                "postgres://postgres@127.0.0.1:5432/other?sslmode=disable",
                "x"
            )
            .unwrap(),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert!(pg_db_url("nope", "x").is_err());
    }

    #[test]
    fn uniform_ids_stay_in_range() {
        let counts = [(1, 3), (13, 5)];
        let ids = uniform_ids(&counts, 1000, 1);
        assert!(ids.iter().all(|&id| {
            let (p, n) = (id / ID_BASE, id % ID_BASE);
            (p == 1 && (1..=3).contains(&n)) || (p == 13 && (1..=5).contains(&n))
        }));
        assert!(ids.iter().any(|&id| id / ID_BASE == 1));
        assert_eq!(ids, uniform_ids(&counts, 1000, 1), "fixed seed");
    }
}
