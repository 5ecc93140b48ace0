//! Client targets measured on the real `tsunagu` binary in a pseudo-terminal, against an
//! in-process server on a fresh SQLite file:
//! - C4: process start to the first screen (the login form painted), and the client's memory
//!   (RSS) once 10,000 cases are listed;
//! - C1: bytes the client writes to the terminal in a minute of an idle case list (the event
//!   stream connected, nothing happening);
//! - C2 runs inside the client (`tsunagu bench`: drawing a one-row move through the real
//!   backend) and is collected here, so one command gives them all;
//! - C3: the intake lookup on an emulated 128 kbit/s, 300 ms round-trip link (`link.rs`): the
//!   names and birth date typed into the search panel as a caller gives them, and what the
//!   client sends after the typing pause until the answer is on the screen (round trips, bytes,
//!   time), with the connection still open, with a new connection, and typed in two goes.

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

use crate::link::{Link, LinkParams};

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
    pub c3: C3Report,
}

#[derive(Debug, Serialize)]
pub struct C3Report {
    pub link: String,
    pub account: String,
    pub runs: Vec<C3Run>,
}

/// One intake lookup over the slow link.
#[derive(Debug, Serialize)]
pub struct C3Run {
    pub case: String,
    /// What was typed, field by field (Tab between fields).
    pub typed: Vec<String>,
    /// The last keystroke to the answer drawn (the typing pause included).
    pub wall_ms: f64,
    /// What crossed the link from the first keystroke of the lookup to the answer drawn.
    pub window: crate::link::Window,
    /// Requests in the 1.5 s after the answer (none expected).
    pub requests_after: usize,
    /// Bytes the client wrote to its terminal meanwhile (the typed keys echoed, "searching",
    /// the answer): what an ssh session would carry the other way.
    pub screen_bytes: u64,
    /// The child looked up is among the hits on the screen.
    pub found: bool,
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
        self.write(s)?;
        std::thread::sleep(Duration::from_millis(20));
        Ok(())
    }

    fn write(&mut self, s: &str) -> anyhow::Result<()> {
        self.writer.write_all(s.as_bytes())?;
        self.writer.flush()?;
        Ok(())
    }

    /// Types `s` a key at a time, `gap` apart, as fast typing does (each key restarts the
    /// search pause). Returns when the last key was written.
    fn type_keys(&mut self, s: &str, gap: Duration) -> anyhow::Result<Instant> {
        let mut last = Instant::now();
        for (i, c) in s.chars().enumerate() {
            if i > 0 {
                std::thread::sleep(gap);
            }
            self.write(&c.to_string())?;
            last = Instant::now();
        }
        Ok(last)
    }

    /// Logs `login` in with the demo password and a TOTP code, and waits for the case list.
    /// Returns when Enter was pressed.
    fn log_in(&mut self, login: &str, limit: Duration) -> anyhow::Result<Instant> {
        self.wait_until("the login screen", Duration::from_secs(10), |c| {
            c.contains("ワンタイムコード")
        })?;
        for s in [login, "\t", seed::DEMO_PASSWORD, "\t", &otp(login, 0)?] {
            self.send(s)?;
        }
        let t = Instant::now();
        self.send("\r")?;
        self.wait_until("the case list", limit, |c| {
            listed(c).is_some_and(|(n, _)| n > 0)
        })?;
        Ok(t)
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
    // C3 looks up children of the centre as a caller names them: name and birth date.
    let children: Vec<(String, String)> =
        crate::data::owned_by(store.as_ref(), &["cgc-13-01".to_string()], 13, 400)
            .await?
            .into_iter()
            .filter_map(|r| {
                let c = &r.body.core;
                let b = c.birth_date.as_ref()?;
                (!c.child_name.family.is_empty() && !c.child_name.given.is_empty()).then(|| {
                    (
                        format!("{} {}", c.child_name.family, c.child_name.given),
                        b.date.format("%Y-%m-%d").to_string(),
                    )
                })
            })
            .step_by(97)
            .take(3)
            .collect();
    anyhow::ensure!(
        children.len() == 3,
        "no children with a birth date to look up"
    );
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
    let t = p.log_in("demo-cgc", Duration::from_secs(20))?;
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

    // C3: the intake lookup over the slow link.
    let link = std::sync::Arc::new(Link::start(running.addr, LinkParams::slow()).await?);
    eprintln!(
        "client: C3 through an emulated 128 kbit/s, 300 ms link at {}",
        link.url()
    );
    let c3 = {
        let (bin, link, children) = (bin.clone(), link.clone(), children.clone());
        tokio::task::spawn_blocking(move || c3(&bin, &link, &children)).await??
    };
    drop(link);
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
        c3,
    };
    if let Some(o) = &a.out {
        std::fs::write(o, serde_json::to_string_pretty(&report)?)?;
    }
    print!("{}", markdown(&report));
    Ok(())
}

/// The account that looks children up in C3: a municipality's staff member (the partner of
/// the centre that owns them) taking a report.
const C3_ACCOUNT: &str = "demo-muni";

/// The search panel shows an answer: its count line, and no "searching".
fn answer_shown(screen: &str) -> bool {
    screen.contains("ページ目") && !screen.contains("検索中")
}

/// Three lookups in one session over `link`: (1) name and birth date typed at once, the
/// connection of the list still open; (2) the same for another child after the link closed the
/// idle connection, as a server's keep-alive timeout does after a quiet minute; (3) the name,
/// the answer, then the birth date and the second answer.
fn c3(bin: &Path, link: &Link, children: &[(String, String)]) -> anyhow::Result<C3Report> {
    let mut p = Pty::spawn(bin, &link.url())?;
    p.log_in(C3_ACCOUNT, Duration::from_secs(60))?;
    let quiet = |p: &Pty, what: &str| -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            let idle = link.last_activity().map_or(Duration::MAX, |t| t.elapsed());
            let c = p.contents();
            if idle >= Duration::from_millis(1500)
                && c.contains("接続中")
                && !c.contains("再接続待ち")
            {
                return Ok(());
            }
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(60),
                "the link did not settle {what}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    quiet(&p, "after the log-in")?;
    p.send("\x06")?; // Ctrl+f: the search panel
    p.wait_until("the search panel", Duration::from_secs(5), |c| {
        c.contains("検索（全国）")
    })?;
    let gap = Duration::from_millis(40);
    let mut runs = Vec::new();
    let cases: [(&str, bool, bool); 3] = [
        ("name and birth date, connection open", false, false),
        ("name and birth date, new connection", true, false),
        ("name, answer, then birth date", false, true),
    ];
    for (i, ((name, birth), (case, new_conn, two_goes))) in children.iter().zip(cases).enumerate() {
        quiet(&p, case)?;
        if new_conn {
            let n = link.drop_idle(Duration::from_secs(1));
            anyhow::ensure!(n > 0, "no idle connection to close");
            std::thread::sleep(Duration::from_millis(300));
        }
        let answered = link.answered("/search");
        let screen0 = p.bytes();
        let t_first = Instant::now();
        let wait_answer = |p: &mut Pty, nth: usize, since: Instant| -> anyhow::Result<Instant> {
            let start = Instant::now();
            loop {
                if link.answered("/search") >= answered + nth && answer_shown(&p.contents()) {
                    return Ok(Instant::now());
                }
                anyhow::ensure!(
                    start.elapsed() < Duration::from_secs(30),
                    "no answer on the screen for {case} ({:.0} ms):\n{}",
                    since.elapsed().as_secs_f64() * 1e3,
                    p.contents()
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        let (t_last, t_done) = if two_goes {
            let t = p.type_keys(name, gap)?;
            wait_answer(&mut p, 1, t)?;
            let t = p.type_keys(&format!("\t\t{birth}"), gap)?;
            (t, wait_answer(&mut p, 2, t)?)
        } else {
            let t = p.type_keys(&format!("{name}\t\t{birth}"), gap)?;
            (t, wait_answer(&mut p, 1, t)?)
        };
        runs.push(finish_run(
            &p,
            link,
            case,
            (name, birth),
            (t_first, t_last, t_done),
            screen0,
        ));
        if i + 1 < children.len() {
            // Empty the fields again: the birth date (the field with the keys), then the name.
            let clear = |p: &mut Pty, n: usize| -> anyhow::Result<()> {
                for _ in 0..n {
                    p.write("\x7f")?;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok(())
            };
            clear(&mut p, birth.chars().count())?;
            p.write("\x1b[Z")?;
            std::thread::sleep(Duration::from_millis(5));
            p.write("\x1b[Z")?;
            clear(&mut p, name.chars().count())?;
            p.wait_until("the fields emptied", Duration::from_secs(10), |c| {
                !c.contains("ページ目") && !c.contains("検索中")
            })?;
        }
    }
    // (4) The intake screen: what the caller said typed in, then saved; the report is stored
    // (POST /intakes) and the nationwide lookup runs on its names and birth date (GET
    // /search). Timed from the save key to the lookup's answer on the screen.
    {
        let (name, birth) = &children[0];
        let case = "intake saved, then its lookup";
        p.send("\x1b")?; // close the search panel
        p.wait_until("the search panel to close", Duration::from_secs(10), |c| {
            !c.contains("検索（全国）")
        })?;
        p.send("\x14")?; // Ctrl+T: 通告受理
        p.wait_until("the intake screen", Duration::from_secs(10), |c| {
            c.contains("通告受理（未保存）")
        })?;
        let (family, given) = name.split_once(' ').unwrap_or((name.as_str(), ""));
        p.type_keys("夜間に泣き声が続いているとの電話", gap)?;
        // Tab leaves the content; Down to the child's family name; its editor, then the given
        // name; Esc closes the reading's editor; three rows down is the birth date. Escape
        // sequences go whole (type_keys would split them into keys).
        let down = "\x1b[B";
        p.send("\t")?;
        p.send(down)?;
        p.send("\r")?;
        p.type_keys(family, gap)?;
        p.send("\t")?;
        p.type_keys(given, gap)?;
        p.send("\t")?;
        p.send("\x1b")?;
        std::thread::sleep(Duration::from_millis(100));
        for _ in 0..3 {
            p.send(down)?;
        }
        p.send("\r")?;
        p.type_keys(birth, gap)?;
        p.send("\r")?;
        p.wait_until("the intake typed", Duration::from_secs(10), |c| {
            c.contains("通告受理（未保存）") && c.contains(given)
        })?;
        quiet(&p, case)?;
        let answered = link.answered("/search");
        let screen0 = p.bytes();
        let t_save = p.type_keys("\x13", gap)?; // Ctrl+S
        let start = Instant::now();
        let t_done = loop {
            let c = p.contents();
            if link.answered("/search") > answered
                && c.contains("全国照会: ")
                && !c.contains("照会しています")
            {
                break Instant::now();
            }
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(30),
                "no lookup answer for {case}:\n{c}"
            );
            std::thread::sleep(Duration::from_millis(1));
        };
        runs.push(finish_run(
            &p,
            link,
            case,
            (name, birth),
            (t_save, t_save, t_done),
            screen0,
        ));
    }
    let params = link.params();
    Ok(C3Report {
        link: format!(
            "{:.0} kbit/s each way, {:.0} ms round trip",
            params.bytes_per_sec * 8.0 / 1000.0,
            params.one_way.as_secs_f64() * 2e3
        ),
        account: C3_ACCOUNT.to_string(),
        runs,
    })
}

/// A lookup's record: the link's traffic from `first` (the first key) to `done` (the answer
/// on the screen), the time from `last` (the last key) to `done`, the bytes the terminal got,
/// whether the child shows, and the requests of the next 1.5 s (there should be none).
fn finish_run(
    p: &Pty,
    link: &Link,
    case: &str,
    (name, birth): (&String, &String),
    (first, last, done): (Instant, Instant, Instant),
    screen0: u64,
) -> C3Run {
    let window = link.window(first, done);
    let screen_bytes = p.bytes() - screen0;
    let family = name.split(' ').next().unwrap_or(name);
    let found = p.contents().contains(family);
    std::thread::sleep(Duration::from_millis(1500));
    let requests_after = link.window(done, Instant::now()).requests.len();
    let wall_ms = (done - last).as_secs_f64() * 1e3;
    eprintln!(
        "client: C3 {case}: {wall_ms:.0} ms, {} round trips, {} + {} bytes",
        window.round_trips, window.bytes_up, window.bytes_down
    );
    C3Run {
        case: case.to_string(),
        typed: vec![name.clone(), birth.clone()],
        wall_ms,
        window,
        requests_after,
        screen_bytes,
        found,
    }
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
    let _ = writeln!(
        s,
        "Least: the UTF-8 bytes of the cells that change; for a scrolling move, the scroll \
         sequence plus the cells that still differ once the band has moved, where that is less. \
         \"off\": the same client with `TSUNAGU_SCROLL_REGIONS=off`.\n"
    );
    let _ = writeln!(s, "| size | kind | moves | changed cells | their bytes | least bytes | bytes/move | × least | off: bytes/move | off: × least | stock backend bytes | frame p50 / max ms | off: p50 / max ms | full redraw bytes | full redraw ms |");
    let _ = writeln!(
        s,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0);
    for size in r.c2.as_array().into_iter().flatten() {
        for kind in ["in_page", "scrolling"] {
            let k = &size[kind];
            let _ = writeln!(
                s,
                "| {}×{} | {kind} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {:.0} | {:.2} | {:.0} | {:.2} / {:.2} | {:.2} / {:.2} | {:.0} | {:.2} |",
                size["cols"], size["rows"], k["moves"],
                f(&k["changed_cells"]),
                f(&k["changed_min_bytes"]),
                f(&k["min_bytes"]),
                f(&k["bytes"]),
                f(&k["ratio_to_min"]),
                f(&k["bytes_off"]),
                f(&k["ratio_to_min_off"]),
                f(&k["stock_bytes"]),
                f(&k["ms_p50"]),
                f(&k["ms_max"]),
                f(&k["ms_p50_off"]),
                f(&k["ms_max_off"]),
                f(&size["full_bytes"]),
                f(&size["full_ms_p50"]),
            );
        }
    }
    let _ = writeln!(
        s,
        "\n### C3: the intake lookup on a {} link (targets ≤ 3 round trips, ≤ 8 KB, ≤ 3 s)\n",
        r.c3.link
    );
    let _ = writeln!(
        s,
        "As `{}`, in the search panel. Time: the last key to the answer on the screen (the \
         350 ms typing pause included). Bytes: HTTP payload both ways from the first key, \
         without the event stream's.\n",
        r.c3.account
    );
    let _ = writeln!(s, "| lookup | typed | round trips | requests | new connections | bytes up | bytes down | total bytes | time ms | requests after | terminal bytes | child found |");
    let _ = writeln!(
        s,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for run in &r.c3.runs {
        let w = &run.window;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {} | {} | {} |",
            run.case,
            run.typed.join(" / "),
            w.round_trips,
            w.requests.len(),
            w.new_connections,
            w.bytes_up,
            w.bytes_down,
            w.bytes_up + w.bytes_down,
            run.wall_ms,
            run.requests_after,
            run.screen_bytes,
            if run.found { "yes" } else { "no" },
        );
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
