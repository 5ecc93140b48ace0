//! A closed-loop load runner: a fixed number of workers each issue one operation after another
//! for a fixed time. Closed loop (not a fixed arrival rate) because the targets are stated as
//! "how many per second can it do" plus the latency seen while doing it.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

/// How long to warm up and to measure, and with how many workers.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub workers: usize,
    pub warmup: Duration,
    pub measure: Duration,
}

/// What one measured phase did. Latencies in milliseconds, over every operation of the
/// measured window (none of the warm-up).
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    pub ops: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub secs: f64,
    pub per_sec: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Runs `op(worker, n)` — `n` counts that worker's operations from 0 — on `shape.workers`
/// concurrent tasks: first for the warm-up, whose results are dropped, then for the measured
/// window. An operation started inside the window is counted even if it ends just after it.
pub async fn run<F, Fut>(shape: Shape, op: F) -> Measured
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let window_start = start + shape.warmup;
    let window_end = window_start + shape.measure;
    let mut tasks = Vec::with_capacity(shape.workers);
    for w in 0..shape.workers {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(1 << 16);
            let mut errors = 0u64;
            let mut first_error = None;
            let mut n = 0u64;
            loop {
                let t0 = Instant::now();
                if t0 >= window_end {
                    break;
                }
                let r = op(w, n).await;
                n += 1;
                if t0 < window_start {
                    continue;
                }
                match r {
                    Ok(()) => lat.push(t0.elapsed().as_nanos() as u64),
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("{e:#}"));
                    }
                }
            }
            (lat, errors, first_error, Instant::now())
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    let mut last_end = window_end;
    for t in tasks {
        let (lat, e, fe, end) = t.await.expect("benchmark worker panicked");
        all.extend(lat);
        errors += e;
        if first_error.is_none() {
            first_error = fe;
        }
        last_end = last_end.max(end);
    }
    summarise(all, errors, first_error, last_end - window_start)
}

fn summarise(
    mut lat: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
) -> Measured {
    lat.sort_unstable();
    let secs = elapsed.as_secs_f64();
    let ms = |ns: u64| ns as f64 / 1e6;
    Measured {
        ops: lat.len() as u64,
        errors,
        first_error,
        secs,
        per_sec: lat.len() as f64 / secs,
        p50_ms: ms(percentile(&lat, 50.0)),
        p90_ms: ms(percentile(&lat, 90.0)),
        p99_ms: ms(percentile(&lat, 99.0)),
        max_ms: ms(lat.last().copied().unwrap_or(0)),
    }
}

/// Nearest-rank percentile of sorted values (0 for none).
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Reads an answer to the end (as a client would) and fails the operation unless it is 200,
/// naming the request (`what`, only formatted on failure) and quoting the body.
pub async fn expect_ok(
    res: reqwest::Response,
    what: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    let status = res.status();
    let body = res.bytes().await?;
    anyhow::ensure!(
        status == reqwest::StatusCode::OK,
        "{}: {status} {}",
        what(),
        String::from_utf8_lossy(&body)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[tokio::test]
    async fn counts_only_the_window() {
        let m = run(
            Shape {
                workers: 2,
                warmup: Duration::from_millis(50),
                measure: Duration::from_millis(100),
            },
            |_, n| async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                if n % 4 == 3 {
                    anyhow::bail!("every fourth fails")
                }
                Ok(())
            },
        )
        .await;
        assert!(m.ops > 10 && m.ops < 60, "{m:?}");
        assert!(m.errors > 0);
        assert!(m.p50_ms >= 5.0);
        assert_eq!(m.first_error.as_deref(), Some("every fourth fails"));
    }
}
