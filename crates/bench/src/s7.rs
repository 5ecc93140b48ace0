//! S7: from nothing to a serving demo, as a person trying the system would do it — the real
//! release binary runs `seed-demo` on an empty SQLite file, then `serve`, and the clock stops at
//! the first successful `/healthz`. Each run starts from a new empty directory.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;
use tokio::process::Command;

#[derive(Debug, Clone, Serialize)]
pub struct S7Run {
    /// `seed-demo` from start to exit.
    pub seed_ms: f64,
    /// `serve` from spawn to the first 200 from `/healthz`.
    pub serve_ms: f64,
    pub total_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct S7Result {
    pub binary: String,
    pub runs: Vec<S7Run>,
    pub median_total_ms: f64,
    pub max_total_ms: f64,
    pub median_seed_ms: f64,
    pub median_serve_ms: f64,
}

/// The server binary: the one given, or the release build next to this benchmark's target
/// directory, built (or found up to date) by cargo first so it matches the source.
pub fn server_bin(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    release_bin(explicit, "tsunagu-server", "tsunagu-server")
}

/// A binary of the workspace: the one given, or `cargo build --release -p package --bin bin`
/// into this benchmark's own target directory (a no-op when it is up to date).
pub fn release_bin(explicit: Option<PathBuf>, package: &str, bin: &str) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        anyhow::ensure!(p.exists(), "{} does not exist", p.display());
        // Absolute: a pseudo-terminal spawn does not resolve relative paths.
        return Ok(std::fs::canonicalize(p)?);
    }
    let exe = std::env::current_exe()?;
    let target = exe
        .parent()
        .and_then(Path::parent)
        .context("cannot find the target directory of this binary")?;
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    eprintln!(
        "cargo build --release -p {package} (target {})",
        target.display()
    );
    let status = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()))
        .args(["build", "--release", "-p", package, "--bin", bin])
        .env("CARGO_TARGET_DIR", target)
        .current_dir(&workspace)
        .status()
        .context("running cargo (or pass the binary's path)")?;
    anyhow::ensure!(status.success(), "building {package} failed");
    Ok(target.join("release").join(bin))
}

/// A command for the server binary that sees none of the caller's `TSUNAGU_*` settings and no
/// configuration file (it runs in the empty directory).
fn server(bin: &Path, dir: &Path) -> Command {
    let mut c = Command::new(bin);
    c.current_dir(dir).kill_on_drop(true);
    for (k, _) in std::env::vars() {
        if k.starts_with("TSUNAGU_") {
            c.env_remove(k);
        }
    }
    c
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn once(bin: &Path, dir: &Path) -> anyhow::Result<S7Run> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let url = format!("sqlite://{}", dir.join("demo.sqlite").display());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let port = free_port()?;

    let t0 = Instant::now();
    let out = server(bin, dir)
        .args(["--database-url", &url, "seed-demo"])
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "seed-demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seeded = t0.elapsed();

    let t1 = Instant::now();
    let mut child = server(bin, dir)
        .args(["--database-url", &url, "serve", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let health = format!("http://127.0.0.1:{port}/healthz");
    loop {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("serve exited before answering: {status}");
        }
        if let Ok(r) = client.get(&health).send().await {
            if r.status() == reqwest::StatusCode::OK {
                break;
            }
        }
        anyhow::ensure!(
            t1.elapsed() < Duration::from_secs(60),
            "no healthy answer in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let serving = t1.elapsed();
    let total = t0.elapsed();
    child.kill().await?;
    let _ = std::fs::remove_dir_all(dir);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Ok(S7Run {
        seed_ms: ms(seeded),
        serve_ms: ms(serving),
        total_ms: ms(total),
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

pub async fn run(bin: &Path, data_dir: &Path, runs: usize) -> anyhow::Result<S7Result> {
    let mut out = Vec::new();
    for i in 0..runs {
        let r = once(bin, &data_dir.join(format!("s7-{i}"))).await?;
        eprintln!(
            "S7 run {}: seed-demo {:.0} ms + serve to healthy {:.0} ms = {:.0} ms",
            i + 1,
            r.seed_ms,
            r.serve_ms,
            r.total_ms
        );
        out.push(r);
    }
    let col = |f: fn(&S7Run) -> f64| out.iter().map(f).collect::<Vec<_>>();
    Ok(S7Result {
        binary: bin.display().to_string(),
        median_total_ms: median(col(|r| r.total_ms)),
        max_total_ms: col(|r| r.total_ms).into_iter().fold(0.0, f64::max),
        median_seed_ms: median(col(|r| r.seed_ms)),
        median_serve_ms: median(col(|r| r.serve_ms)),
        runs: out,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn median() {
        assert_eq!(super::median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(super::median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(super::median(vec![]), 0.0);
    }
}
