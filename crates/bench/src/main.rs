//! `tsunagu-bench`: measures the server's performance targets and prints them as Markdown for
//! docs/benchmarks.md (and as JSON with `--out`).
//!
//! - S3: one record read through authentication, tier, projection and audit, vs a bare read.
//! - S4: record updates per second, vs a bare UPDATE.
//! - S7: `seed-demo` on an empty SQLite file to the first healthy answer of `serve`.
//!
//! S3 and S4 run against an in-process server (`app::Running`) on a generated database of each
//! engine; S7 runs the real release binary as subprocesses.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use serde::Serialize;
use sqlx::Connection as _;
use tsunagu_server::app;
use tsunagu_server::config::Config;
use tsunagu_server::state::AppState;
use tsunagu_server::storage::Counts;

mod client;
mod data;
mod link;
mod load;
mod s1;
mod s2;
mod s2fair;
mod s3;
mod s4;
mod s7;

use data::{DataOpts, Dataset, Engine};
use load::{Measured, Shape};

#[derive(Parser)]
#[command(name = "tsunagu-bench", about = "tsunagu performance benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Server targets S3 (audited reads), S4 (updates) and S7 (demo start-up).
    Server(ServerArgs),
    /// Person search (issue 4): S1 latency vs a LIKE scan, index size and rebuild time; S2
    /// recall@10 / precision@1 on variant pairs vs exact-after-NFKC and recordlinkage.
    Search(SearchArgs),
    /// Client targets C1 (idle bytes), C2 (one-row move), C3 (the intake lookup over an
    /// emulated 128 kbit/s, 300 ms link) and C4 (start-up, memory), on the real client binary
    /// in a pseudo-terminal against an in-process SQLite server.
    Client(client::ClientArgs),
    /// Only generate (or find) the cached databases, e.g. ahead of a measured run.
    Prepare(DataArgs),
    /// Delete the cached databases (files under --data-dir, tsunagu_bench_n* on PostgreSQL).
    Clean {
        #[arg(long, default_value = "/tmp/tsunagu-bench")]
        data_dir: PathBuf,
        /// Also drop the PostgreSQL databases on this server.
        #[arg(long)]
        pg_url: Option<String>,
    },
}

/// Which data: engines, size, seed and where the generated databases are cached.
#[derive(clap::Args, Debug, Clone)]
struct DataArgs {
    /// Records in the generated database (the target scale is 1,000,000).
    #[arg(long, default_value_t = 1_000_000)]
    records: usize,
    /// Engines, comma-separated.
    #[arg(long, default_value = "sqlite,postgres", value_delimiter = ',')]
    engines: Vec<String>,
    /// The PostgreSQL server; the benchmark creates its own database on it.
    #[arg(
        long,
        default_value = "postgres://postgres@127.0.0.1:5432",
        env = "TSUNAGU_BENCH_PG_URL"
    )]
    pg_url: String,
    /// Where generated SQLite files are cached (and S7 runs its empty directories).
    #[arg(long, default_value = "/tmp/tsunagu-bench")]
    data_dir: PathBuf,
    /// Generation seed; part of the cache key.
    #[arg(long, default_value_t = 20261125)]
    seed: u64,
    /// Generate the databases even if cached ones exist.
    #[arg(long)]
    regenerate: bool,
}

impl DataArgs {
    fn engines(&self) -> anyhow::Result<Vec<Engine>> {
        self.engines.iter().map(|e| Engine::parse(e)).collect()
    }

    fn opts(&self) -> DataOpts {
        DataOpts {
            records: self.records,
            seed: self.seed,
            data_dir: self.data_dir.clone(),
            pg_url: self.pg_url.clone(),
            regenerate: self.regenerate,
        }
    }
}

#[derive(clap::Args, Debug, Clone)]
struct ServerArgs {
    #[command(flatten)]
    data: DataArgs,
    /// PostgreSQL pool size (the server's default).
    #[arg(long, default_value_t = 16)]
    pg_max_connections: u32,
    /// Measured seconds per phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Warm-up seconds before each phase, not measured.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Concurrent workers (requests in flight) for S4.
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// Requests in flight at which S3 measures each path, comma-separated. Each path's
    /// throughput is its best rate among these with p99 within 10 ms: a read that waits for
    /// its audit commit needs more requests in flight to keep the cores busy than a bare read.
    #[arg(long, default_value = "8,16,32,48", value_delimiter = ',')]
    s3_workers: Vec<usize>,
    /// Which targets to run, comma-separated.
    #[arg(long, default_value = "s3,s4,s7", value_delimiter = ',')]
    only: Vec<String>,
    /// S7 repetitions.
    #[arg(long, default_value_t = 5)]
    s7_runs: usize,
    /// The tsunagu-server binary for S7 (default: build the release binary into this
    /// benchmark's target directory).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Write all results as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Arguments of `search` (see `s1.rs` and `s2.rs`).
#[derive(clap::Args, Debug, Clone)]
pub struct SearchArgs {
    #[command(flatten)]
    data: DataArgs,
    /// PostgreSQL pool size (the server's default).
    #[arg(long, default_value_t = 16)]
    pg_max_connections: u32,
    /// Which measurements, comma-separated.
    #[arg(long, default_value = "s1,s2", value_delimiter = ',')]
    only: Vec<String>,
    /// S1: queries in the mixed set.
    #[arg(long, default_value_t = 1800)]
    queries: usize,
    /// S1: measured seconds per search phase.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// S1: measured seconds of the LIKE baseline.
    #[arg(long, default_value_t = 30)]
    like_seconds: u64,
    /// S1: warm-up seconds before each phase, not measured.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// S1: concurrent workers of the throughput phase (latency phases use one).
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// S1: also time `rebuild_search_index` (rewrites the index in place; it ends identical).
    #[arg(long)]
    rebuild_index: bool,
    /// S2: which evaluation set. `fair`: targets and fair look-alike distractors generated
    /// from the name dictionary, shuffled into a base population in a database of their own
    /// (see `s2fair.rs`); `population`: pairs drawn from the benchmark database's records.
    #[arg(long, default_value = "fair", value_parser = ["fair", "population"])]
    s2_set: String,
    /// S2: variant pairs per kind.
    #[arg(long, default_value_t = 1000)]
    s2_per_kind: usize,
    /// S2 fair set: records of the unrelated base population.
    #[arg(long, default_value_t = 100_000)]
    s2_base: usize,
    /// S2 fair set: fewest look-alike distractors per target.
    #[arg(long, default_value_t = 3)]
    s2_min_distractors: usize,
    /// S2 fair set: most look-alike distractors per target.
    #[arg(long, default_value_t = 8)]
    s2_max_distractors: usize,
    /// S2: skip the exact-after-NFKC and recordlinkage baselines.
    #[arg(long)]
    s2_no_baselines: bool,
    /// S2: the Python interpreter that has `recordlinkage` installed.
    #[arg(long, default_value = "python3")]
    s2_python: String,
    /// Write all results as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// What every measured phase needs: the in-process server and a client of its HTTP API.
pub struct Ctx {
    pub state: AppState,
    pub base: String,
    pub client: reqwest::Client,
    pub shape: Shape,
}

/// One line for progress output.
pub fn brief(m: &Measured) -> String {
    format!(
        "{:>8.0}/s  p50 {:.2} ms  p99 {:.2} ms  ({} ops, {} errors{})",
        m.per_sec,
        m.p50_ms,
        m.p99_ms,
        m.ops,
        m.errors,
        m.first_error
            .as_deref()
            .map(|e| format!(": {}", e.chars().take(200).collect::<String>()))
            .unwrap_or_default()
    )
}

#[derive(Debug, Serialize)]
struct Machine {
    cores: usize,
    memory: String,
    cpu: String,
    postgres: Option<String>,
    sqlite: Option<String>,
}

#[derive(Debug, Serialize)]
struct EngineResult {
    engine: &'static str,
    records: usize,
    dataset: Dataset,
    s3: Vec<s3::ScenarioResult>,
    s4: Option<s4::S4Result>,
    counts_after: CountsOut,
}

#[derive(Debug, Serialize)]
struct CountsOut {
    records: i64,
    audit_entries: i64,
}

impl From<Counts> for CountsOut {
    fn from(c: Counts) -> Self {
        CountsOut {
            records: c.records,
            audit_entries: c.audit_entries,
        }
    }
}

#[derive(Debug, Serialize)]
struct Report {
    machine: Machine,
    command: String,
    workers: usize,
    s3_workers: Vec<usize>,
    seconds: u64,
    warmup: u64,
    pg_max_connections: u32,
    engines: Vec<EngineResult>,
    s7: Option<s7::S7Result>,
}

fn first_line_of(path: &str, key: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()?.lines().find_map(|l| {
        l.strip_prefix(key)
            .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
    })
}

async fn machine(a: &ServerArgs) -> Machine {
    let memory = first_line_of("/proc/meminfo", "MemTotal")
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0))
        .unwrap_or_default();
    let postgres = async {
        let mut c = sqlx::PgConnection::connect(&data::pg_db_url(&a.data.pg_url, "postgres").ok()?)
            .await
            .ok()?;
        sqlx::query_scalar::<_, String>("SHOW server_version")
            .fetch_one(&mut c)
            .await
            .ok()
    };
    let sqlite = async {
        let mut c = sqlx::SqliteConnection::connect("sqlite::memory:")
            .await
            .ok()?;
        sqlx::query_scalar::<_, String>("SELECT sqlite_version()")
            .fetch_one(&mut c)
            .await
            .ok()
    };
    Machine {
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        memory,
        cpu: first_line_of("/proc/cpuinfo", "model name").unwrap_or_default(),
        postgres: if a.data.engines.iter().any(|e| e.starts_with("postgres")) {
            postgres.await
        } else {
            None
        },
        sqlite: sqlite.await,
    }
}

const READ_LOGINS: [&str; 3] = ["demo-cgc", "demo-muni", "demo-cgc-osaka"];

async fn run_engine(
    engine: Engine,
    a: &ServerArgs,
    opts: &DataOpts,
) -> anyhow::Result<EngineResult> {
    let dataset = data::prepare(engine, opts).await?;
    let config = Config {
        database_url: dataset.url.clone(),
        pg_max_connections: a.pg_max_connections,
        // One address sends everything: the benchmarks measure the server, not the limiter.
        limits: tsunagu_server::config::LimitsConfig::default().without_rate_limits(),
        ..Config::default()
    };
    let store = app::open_keyed_store(&config).await?;
    let state = app::build_state(store.clone(), config).await?;
    let want = |t: &str| a.only.iter().any(|o| o == t);
    if want("s4") {
        data::ensure_bench_users(store.as_ref(), &state.orgs, &state.totp_key).await?;
    }
    let running = app::Running::start(state.clone()).await?;
    let ctx = Ctx {
        state,
        base: running.url(),
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(
                a.workers
                    .max(a.s3_workers.iter().copied().max().unwrap_or(0))
                    * 2,
            )
            .timeout(Duration::from_secs(60))
            .build()?,
        shape: Shape {
            workers: a.workers,
            warmup: Duration::from_secs(a.warmup),
            measure: Duration::from_secs(a.seconds),
        },
    };

    // One login per account for the whole run (a one-time code is good once per 30 s).
    let mut logins: Vec<String> = READ_LOGINS.iter().map(|s| s.to_string()).collect();
    if want("s4") {
        logins.extend((1..=47).map(data::bench_login));
    }
    let mut tokens = HashMap::new();
    for l in &logins {
        let t = data::login(&ctx.client, &ctx.base, l).await?;
        tokens.insert(l.clone(), t);
    }
    eprintln!("{}: {} accounts logged in", engine.name(), tokens.len());

    let s3 = if want("s3") {
        let counts = data::pref_counts(store.as_ref()).await?;
        let total: i64 = counts.iter().map(|(_, c)| c).sum();
        eprintln!(
            "{}: {total} records over {} prefectures",
            engine.name(),
            counts.len()
        );
        s3::run(&ctx, &tokens, &counts, a.data.seed, &a.s3_workers).await?
    } else {
        Vec::new()
    };
    let s4 = if want("s4") {
        Some(s4::run(&ctx, &tokens).await?)
    } else {
        None
    };
    running.stop().await?;
    let counts_after = store.counts().await?.into();
    Ok(EngineResult {
        engine: engine.name(),
        records: a.data.records,
        dataset,
        s3,
        s4,
        counts_after,
    })
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**not met**"
    }
}

fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let m = &r.machine;
    let _ = writeln!(
        s,
        "Machine: {} cores ({}), {} RAM; PostgreSQL {}, SQLite {}. S4 with {} workers; {} s measured after {} s warm-up per phase; PostgreSQL pool {}.\n",
        m.cores,
        m.cpu,
        m.memory,
        m.postgres.as_deref().unwrap_or("-"),
        m.sqlite.as_deref().unwrap_or("-"),
        r.workers,
        r.seconds,
        r.warmup,
        r.pg_max_connections
    );
    if r.engines.iter().any(|e| !e.s3.is_empty()) {
        let _ = writeln!(
            s,
            "### S3: read one record (target: ≥ 0.5 × bare read throughput, p99 ≤ 10 ms)\n"
        );
        let _ = writeln!(
            s,
            "Throughput of a path is its best rate at any number of requests in flight ({}) whose p99 is within 10 ms, with no errors.\n",
            r.s3_workers.iter().map(|w| w.to_string()).collect::<Vec<_>>().join(", ")
        );
        let _ = writeln!(s, "| engine | records | scenario | path | req/s | in flight | p50 ms | p99 ms | × bare | target |");
        let _ = writeln!(s, "|---|---:|---|---|---:|---:|---:|---:|---:|---|");
        for e in &r.engines {
            for sc in &e.s3 {
                let p = &sc.peak;
                for (path, pk, ratio) in [
                    ("bare_read", &p.bare, None),
                    ("service", &p.service, Some(p.ratio_service)),
                    ("HTTP", &p.http, Some(p.ratio_http)),
                ] {
                    let target = ratio
                        .map(|x| verdict(pk.is_some() && x >= 0.5))
                        .unwrap_or("");
                    let cells = match pk {
                        Some(m) => format!(
                            "{:.0} | {} | {:.2} | {:.2}",
                            m.per_sec, m.workers, m.p50_ms, m.p99_ms
                        ),
                        None => "none within 10 ms | - | - | -".into(),
                    };
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {path} | {cells} | {} | {target} |",
                        e.engine,
                        e.records,
                        sc.name,
                        ratio.map(|x| format!("{x:.3}")).unwrap_or("1".into()),
                    );
                }
            }
        }
        let _ = writeln!(
            s,
            "\nEvery level (req/s, p99 ms in brackets, errors if any):\n"
        );
        let _ = writeln!(
            s,
            "| engine | scenario | in flight | bare_read | service | HTTP | service × bare |"
        );
        let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|");
        let cell = |m: &Measured| {
            let errors = if m.errors > 0 {
                format!(", {} errors", m.errors)
            } else {
                String::new()
            };
            format!("{:.0} ({:.2}{errors})", m.per_sec, m.p99_ms)
        };
        for e in &r.engines {
            for sc in &e.s3 {
                for l in &sc.levels {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {} | {} | {} | {:.3} |",
                        e.engine,
                        sc.name,
                        l.workers,
                        cell(&l.bare),
                        cell(&l.service),
                        cell(&l.http),
                        l.service.per_sec / l.bare.per_sec.max(f64::MIN_POSITIVE)
                    );
                }
            }
        }
        let _ = writeln!(s);
    }
    if r.engines.iter().any(|e| e.s4.is_some()) {
        let _ = writeln!(
            s,
            "### S4: record updates (target on PostgreSQL: ≥ 1,000 updates/s)\n"
        );
        let _ = writeln!(
            s,
            "| engine | records | path | updates/s | p50 ms | p99 ms | × bare | errors | target |"
        );
        let _ = writeln!(s, "|---|---:|---|---:|---:|---:|---:|---:|---|");
        for e in &r.engines {
            if let Some(u) = &e.s4 {
                for (path, mm, ratio) in [
                    ("bare_update", &u.bare, None),
                    ("service", &u.service, Some(u.ratio_service)),
                    ("HTTP", &u.http, Some(u.ratio_http)),
                ] {
                    let target = match (ratio, e.engine) {
                        (Some(_), "postgres") => verdict(mm.per_sec >= 1000.0 && mm.errors == 0),
                        _ => "",
                    };
                    let _ = writeln!(
                        s,
                        "| {} | {} | {path} | {:.0} | {:.2} | {:.2} | {} | {} | {target} |",
                        e.engine,
                        e.records,
                        mm.per_sec,
                        mm.p50_ms,
                        mm.p99_ms,
                        ratio.map(|x| format!("{x:.3}")).unwrap_or("1".into()),
                        mm.errors
                    );
                }
            }
        }
        let _ = writeln!(s);
    }
    if let Some(t) = &r.s7 {
        let _ = writeln!(s, "### S7: `seed-demo` on an empty SQLite file to the first healthy `/healthz` (target ≤ 3 s)\n");
        let _ = writeln!(s, "| run | seed-demo ms | serve → healthy ms | total ms |");
        let _ = writeln!(s, "|---:|---:|---:|---:|");
        for (i, run) in t.runs.iter().enumerate() {
            let _ = writeln!(
                s,
                "| {} | {:.0} | {:.0} | {:.0} |",
                i + 1,
                run.seed_ms,
                run.serve_ms,
                run.total_ms
            );
        }
        let _ = writeln!(
            s,
            "| **median** | {:.0} | {:.0} | **{:.0}** |\n\nMax {:.0} ms: target {}.",
            t.median_seed_ms,
            t.median_serve_ms,
            t.median_total_ms,
            t.max_total_ms,
            verdict(t.max_total_ms <= 3000.0)
        );
    }
    s
}

async fn server(a: ServerArgs) -> anyhow::Result<()> {
    let engines = a.data.engines()?;
    for o in &a.only {
        anyhow::ensure!(
            ["s3", "s4", "s7"].contains(&o.as_str()),
            "--only takes s3, s4, s7"
        );
    }
    anyhow::ensure!(
        a.workers > 0 && a.seconds > 0 && !a.s3_workers.is_empty() && !a.s3_workers.contains(&0),
        "--workers, --s3-workers and --seconds must be positive"
    );
    let opts = a.data.opts();
    // S7 first: the binary build (if any) and the start-up timing should not share the machine
    // with a database that was just loaded.
    let s7 = if a.only.iter().any(|o| o == "s7") {
        let bin = s7::server_bin(a.server_bin.clone())?;
        Some(s7::run(&bin, &a.data.data_dir, a.s7_runs).await?)
    } else {
        None
    };
    let mut results = Vec::new();
    if a.only.iter().any(|o| o == "s3" || o == "s4") {
        for e in engines {
            results.push(
                run_engine(e, &a, &opts)
                    .await
                    .with_context(|| format!("benchmarking {}", e.name()))?,
            );
        }
    }
    let report = Report {
        machine: machine(&a).await,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        workers: a.workers,
        s3_workers: a.s3_workers.clone(),
        seconds: a.seconds,
        warmup: a.warmup,
        pg_max_connections: a.pg_max_connections,
        engines: results,
        s7,
    };
    if let Some(out) = &a.out {
        std::fs::write(out, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    print!("{}", markdown(&report));
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TSUNAGU_BENCH_LOG")
                .unwrap_or_else(|_| "error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Cmd::Server(a) => server(a).await,
        Cmd::Client(a) => client::run(a).await,
        Cmd::Search(a) => s1::run(a).await,
        Cmd::Prepare(d) => {
            for e in d.engines()? {
                let ds = data::prepare(e, &d.opts()).await?;
                println!("{}: {}", e.name(), ds.url);
            }
            Ok(())
        }
        Cmd::Clean { data_dir, pg_url } => data::clean(&data_dir, pg_url.as_deref()).await,
    }
}
