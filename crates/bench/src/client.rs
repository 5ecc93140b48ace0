//! Client targets measured on the real `tsunagu` binary in a pseudo-terminal, against an
//! in-process server on a fresh SQLite file:
//! - C4: process start to the first screen (the login form painted), and the client's memory
//!   (RSS) once 10,000 cases are listed;
//! - C1: bytes the client writes to the terminal in a minute of an idle case list (the event
//!   stream connected, nothing happening);
//! - C2 runs inside the client (`tsunagu bench`: drawing a one-row move through the real
//!   backend) and is collected here, so one command gives all three.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use portable_pty::{native_pty_system, CommandBuilder, PtySize};
use serde::Serialize;
use tsunagu_server::clock::Clock;
use tsunagu_server::config::Config;
use tsunagu_server::orgs::OrgDirectory;
use tsunagu_server::{app, auth, seed};

#[derive(clap::Args, Debug, Clone)]
pub struct ClientArgs {
    /// Cases owned by the demo caseworker's centre (plus the 300 demo records).
    #[arg(long, default_value_t = 10_000)]
    pub cases: usize,
    /// Idle seconds counted for C1.
    #[arg(long, default_value_t = 60)]
    pub idle_secs: u64,
    /// C4 start-up repetitions.
    #[arg(long, default_value_t = 7)]
    pub runs: usize,
    /// The client binary (default: build the release binary into this benchmark's target
    /// directory).
    #[arg(long)]
    pub client_bin: Option<PathBuf>,
    /// Write the results as JSON here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct ClientReport {
    pub cases_listed: usize,
    pub start_ms: Vec<f64>,
    pub start_ms_median: f64,
    pub start_ms_max: f64,
    pub login_to_list_ms: f64,
    pub list_all_ms: f64,
    pub rss_kib: u64,
    pub rss_peak_kib: u64,
    pub idle_secs: u64,
    pub idle_bytes: u64,
    pub idle_bytes_per_min: f64,
    pub c2: serde_json::Value,
}

/// The real binary in a pseudo-terminal; what it writes is parsed into a screen and counted.
struct Pty {
    screen: Arc<Mutex<vt100::Parser>>,
    bytes: Arc<Mutex<u64>>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    _master: Box<dyn portable_pty::MasterPty + Send>,
    _config: tempfile::TempDir,
}

impl Pty {
    fn spawn(bin: &Path, server: &str) -> anyhow::Result<Pty> {
        let (cols, rows) = (100, 30);
        let pair = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .map_err(|e| anyhow::anyhow!("openpty: {e}"))?;
        let mut cmd = CommandBuilder::new(bin);
        cmd.args(["--server", server]);
        // No user keymap, theme or config changes what is measured.
        let config = tempfile::tempdir()?;
        cmd.env("XDG_CONFIG_HOME", config.path());
        cmd.env("TERM", "xterm-256color");
        cmd.env_remove("NO_COLOR");
        cmd.env_remove("TSUNAGU_SERVER");
        let child = pair
            .slave
            .spawn_command(cmd)
            .map_err(|e| anyhow::anyhow!("spawn: {e}"))?;
        drop(pair.slave);
        let mut reader = pair
            .master
            .try_clone_reader()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let writer = pair
            .master
            .take_writer()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let screen = Arc::new(Mutex::new(vt100::Parser::new(rows, cols, 0)));
        let bytes = Arc::new(Mutex::new(0u64));
        let (s2, b2) = (screen.clone(), bytes.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 16384];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                s2.lock().unwrap().process(&buf[..n]);
                *b2.lock().unwrap() += n as u64;
            }
        });
        Ok(Pty {
            screen,
            bytes,
            writer,
            child,
            _master: pair.master,
            _config: config,
        })
    }

    fn contents(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    fn bytes(&self) -> u64 {
        *self.bytes.lock().unwrap()
    }

    fn send(&mut self, s: &str) -> anyhow::Result<()> {
        self.writer.write_all(s.as_bytes())?;
        self.writer.flush()?;
        std::thread::sleep(Duration::from_millis(20));
        Ok(())
    }

    fn wait_until(
        &self,
        what: &str,
        limit: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let start = Instant::now();
        loop {
            let c = self.contents();
            if pred(&c) {
                return Ok(c);
            }
            anyhow::ensure!(
                start.elapsed() < limit,
                "timed out waiting for {what}; screen:\n{c}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// (resident, peak resident) KiB from /proc.
    fn rss_kib(&self) -> anyhow::Result<(u64, u64)> {
        let pid = self.child.process_id().context("no pid")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok((field("VmRSS:"), field("VmHWM:")))
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn otp(login: &str, ahead: u64) -> anyhow::Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    auth::totp_code(&seed::demo_totp_secret(login), now + 30 * ahead).context("totp")
}

/// The number in the case list's title, `ケース一覧  N件` (with `+` while more pages exist).
fn listed(screen: &str) -> Option<(usize, bool)> {
    let line = screen.lines().find(|l| l.contains("ケース一覧"))?;
    let rest = &line[line.find("ケース一覧")? + "ケース一覧".len()..];
    let rest = rest.trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let n = digits.parse().ok()?;
    let more = rest[digits.len()..].starts_with("件+");
    Some((n, more))
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

pub async fn run(a: ClientArgs) -> anyhow::Result<()> {
    let bin = crate::s7::release_bin(a.client_bin.clone(), "tsunagu", "tsunagu")?;
    let dir = tempfile::tempdir()?;
    let config = Config {
        database_url: format!(
            "sqlite://{}",
            dir.path().join("client-bench.sqlite").display()
        ),
        // One address sends everything: the benchmarks measure the server, not the limiter.
        limits: tsunagu_server::config::LimitsConfig::default().without_rate_limits(),
        ..Config::default()
    };
    let store = app::open_keyed_store(&config).await?;
    let clock = Clock::default();
    eprintln!(
        "client: seeding the demo data and {} cases of one centre",
        a.cases
    );
    seed::seed_demo_database(
        store.as_ref(),
        config.auth.password_cost(),
        300,
        20261125,
        &clock,
        &app::totp_key(&config, store.as_ref()).await?,
        |_| {},
    )
    .await?;
    let orgs = OrgDirectory::from_rows(store.list_orgs().await?)?;
    seed::seed_org_records(
        store.as_ref(),
        &orgs,
        "cgc-13-01",
        a.cases,
        20261126,
        clock.today(),
        clock.now(),
    )
    .await?;
    let state = app::build_state(store, config).await?;
    let running = app::Running::start(state).await?;
    let url = running.url();

    // C4, start: spawn to the login form on the screen.
    let mut start_ms = Vec::new();
    for _ in 0..a.runs {
        let t = Instant::now();
        let p = Pty::spawn(&bin, &url)?;
        p.wait_until("the login screen", Duration::from_secs(10), |c| {
            c.contains("ワンタイムコード")
        })?;
        start_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    eprintln!("client: start to first screen {start_ms:?} ms");

    // Log in, then page through the whole list.
    let mut p = Pty::spawn(&bin, &url)?;
    p.wait_until("the login screen", Duration::from_secs(10), |c| {
        c.contains("ワンタイムコード")
    })?;
    for s in [
        "demo-cgc",
        "\t",
        seed::DEMO_PASSWORD,
        "\t",
        &otp("demo-cgc", 0)?,
    ] {
        p.send(s)?;
    }
    let t = Instant::now();
    p.send("\r")?;
    p.wait_until("the case list", Duration::from_secs(20), |c| {
        listed(c).is_some_and(|(n, _)| n > 0)
    })?;
    let login_to_list_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let mut count = 0;
    loop {
        let c = p.contents();
        let (n, more) = listed(&c).context("no case count on the screen")?;
        if !more {
            count = n;
            break;
        }
        if n > count {
            count = n;
            p.send("\x1b[F")?; // End: to the last loaded row, which fetches the next page
        }
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(300),
            "the list stopped growing at {count}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let list_all_ms = t.elapsed().as_secs_f64() * 1e3;
    eprintln!("client: {count} cases listed in {list_all_ms:.0} ms");
    // Let the last page's answer and the event stream settle before measuring.
    p.wait_until("the connection", Duration::from_secs(10), |c| {
        c.contains("接続中") && !c.contains("再接続待ち")
    })?;
    std::thread::sleep(Duration::from_secs(2));
    let (rss_kib, rss_peak_kib) = p.rss_kib()?;

    // C1: an idle minute.
    eprintln!("client: idle for {} s", a.idle_secs);
    let b0 = p.bytes();
    std::thread::sleep(Duration::from_secs(a.idle_secs));
    let idle_bytes = p.bytes() - b0;
    drop(p);
    running.stop().await?;

    // C2: in the client itself.
    let out = std::process::Command::new(&bin)
        .args(["bench", "--rows", &a.cases.to_string()])
        .output()
        .context("running tsunagu bench")?;
    anyhow::ensure!(
        out.status.success(),
        "tsunagu bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c2: serde_json::Value = serde_json::from_slice(&out.stdout)?;

    let report = ClientReport {
        cases_listed: count,
        start_ms_median: median(&start_ms),
        start_ms_max: start_ms.iter().copied().fold(0.0, f64::max),
        start_ms,
        login_to_list_ms,
        list_all_ms,
        rss_kib,
        rss_peak_kib,
        idle_secs: a.idle_secs,
        idle_bytes,
        idle_bytes_per_min: idle_bytes as f64 * 60.0 / a.idle_secs as f64,
        c2,
    };
    if let Some(o) = &a.out {
        std::fs::write(o, serde_json::to_string_pretty(&report)?)?;
    }
    print!("{}", markdown(&report));
    Ok(())
}

fn markdown(r: &ClientReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "### C1: bytes written on an idle screen (target 0)\n");
    let _ = writeln!(
        s,
        "{} bytes in {} s with {} cases listed and the event stream connected: {:.0} bytes/min.\n",
        r.idle_bytes, r.idle_secs, r.cases_listed, r.idle_bytes_per_min
    );
    let rows = r.c2[0]["list_rows"].as_u64().unwrap_or(0);
    let _ = writeln!(
        s,
        "### C2: moving the selection one row in a list of {rows} cases\n"
    );
    let _ = writeln!(s, "| size | kind | moves | bytes/move | changed cells | their bytes (min) | × min | stock backend bytes | frame p50 ms | frame max ms | full redraw bytes | full redraw ms |");
    let _ = writeln!(
        s,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for size in r.c2.as_array().into_iter().flatten() {
        for kind in ["in_page", "scrolling"] {
            let k = &size[kind];
            let _ = writeln!(
                s,
                "| {}×{} | {kind} | {} | {:.0} | {:.0} | {:.0} | {:.2} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} |",
                size["cols"], size["rows"], k["moves"],
                k["bytes"].as_f64().unwrap_or(0.0),
                k["changed_cells"].as_f64().unwrap_or(0.0),
                k["changed_min_bytes"].as_f64().unwrap_or(0.0),
                k["ratio_to_min"].as_f64().unwrap_or(0.0),
                k["stock_bytes"].as_f64().unwrap_or(0.0),
                size["move_ms_p50"].as_f64().unwrap_or(0.0),
                size["move_ms_max"].as_f64().unwrap_or(0.0),
                size["full_bytes"].as_f64().unwrap_or(0.0),
                size["full_ms_p50"].as_f64().unwrap_or(0.0),
            );
        }
    }
    let _ = writeln!(s, "\n### C4: start to first screen, memory with the list loaded (targets ≤ 150 ms, ≤ 30 MB)\n");
    let _ = writeln!(
        s,
        "Start to the login screen over {} runs: median {:.0} ms, max {:.0} ms ({}). Log-in to the first page: {:.0} ms. All {} cases paged in: {:.0} ms. RSS then: {:.1} MB (peak {:.1} MB).",
        r.start_ms.len(),
        r.start_ms_median,
        r.start_ms_max,
        r.start_ms.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>().join(", "),
        r.login_to_list_ms,
        r.cases_listed,
        r.list_all_ms,
        r.rss_kib as f64 / 1024.0,
        r.rss_peak_kib as f64 / 1024.0
    );
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_case_count() {
        assert_eq!(
            super::listed("x\n ケース一覧  60件+   絞り込み"),
            Some((60, true))
        );
        assert_eq!(
            super::listed(" ケース一覧  10300件  並び"),
            Some((10300, false))
        );
        assert_eq!(super::listed("ログイン"), None);
    }
}
