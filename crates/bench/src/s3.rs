//! S3: reading one record through authentication, the tier decision, projection and — for a
//! reader from another organisation — the audit append, against a bare primary-key read of the
//! same rows through the same pool. Three paths per scenario: `bare_read` (the baseline), the
//! service (`authenticate` + `get_record`, in process) and the HTTP API (keep-alive client), so
//! both the cost of the rules and audit and the cost of HTTP are visible.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;
use tsunagu_record::RecordView;
use tsunagu_server::orgs::Org;

use crate::data::{self, ID_BASE};
use crate::load::{self, Measured};
use crate::Ctx;

/// Largest id list per scenario; workers cycle through it.
const MAX_ITEMS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Item {
    id: i64,
    viewer: usize,
}

struct Scenario {
    name: &'static str,
    what: String,
    viewers: Vec<&'static str>,
    items: Vec<Item>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub name: &'static str,
    pub what: String,
    /// Distinct (record, reader) pairs the workers cycle through.
    pub items: usize,
    /// Tiers seen in a sample of the items before measuring.
    pub tiers: BTreeMap<String, u64>,
    /// Every path at every number of requests in flight, in the order measured.
    pub levels: Vec<Level>,
    /// Each path's throughput: its best rate at any level with p99 within the target.
    pub peak: Peak,
}

/// The three paths with the same number of requests in flight.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    pub workers: usize,
    pub bare: Measured,
    pub service: Measured,
    pub http: Measured,
}

/// A path's best level: the highest rate whose p99 is within [`P99_TARGET_MS`] and which had
/// no errors. `None` when no level qualified.
#[derive(Debug, Clone, Serialize)]
pub struct PeakOf {
    pub workers: usize,
    pub per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Peak {
    pub bare: Option<PeakOf>,
    pub service: Option<PeakOf>,
    pub http: Option<PeakOf>,
    /// Peak service (HTTP) throughput divided by peak bare throughput; 0 without a peak.
    pub ratio_service: f64,
    pub ratio_http: f64,
}

/// S3's latency target; a level over it does not count towards a path's throughput.
pub const P99_TARGET_MS: f64 = 10.0;

/// The best qualifying level of one path (`get` picks the path out of a level).
pub fn peak_of(levels: &[Level], get: impl Fn(&Level) -> &Measured) -> Option<PeakOf> {
    levels
        .iter()
        .filter(|l| {
            let m = get(l);
            m.errors == 0 && m.ops > 0 && m.p99_ms <= P99_TARGET_MS
        })
        .max_by(|a, b| get(a).per_sec.total_cmp(&get(b).per_sec))
        .map(|l| {
            let m = get(l);
            PeakOf {
                workers: l.workers,
                per_sec: m.per_sec,
                p50_ms: m.p50_ms,
                p99_ms: m.p99_ms,
            }
        })
}

fn peak(levels: &[Level]) -> Peak {
    let bare = peak_of(levels, |l| &l.bare);
    let service = peak_of(levels, |l| &l.service);
    let http = peak_of(levels, |l| &l.http);
    let ratio = |p: &Option<PeakOf>| match (p, &bare) {
        (Some(p), Some(b)) if b.per_sec > 0.0 => p.per_sec / b.per_sec,
        _ => 0.0,
    };
    Peak {
        ratio_service: ratio(&service),
        ratio_http: ratio(&http),
        bare,
        service,
        http,
    }
}

fn tier_name(v: &RecordView) -> &'static str {
    match v {
        RecordView::Owner(_) => "owner",
        RecordView::Partner(_) => "partner",
        RecordView::Outside(_) => "outside",
        RecordView::Ministry(_) => "ministry",
        RecordView::Transfer(_) => "transfer",
    }
}

fn shuffled(mut items: Vec<Item>, seed: u64) -> Vec<Item> {
    items.shuffle(&mut StdRng::seed_from_u64(seed));
    items.truncate(MAX_ITEMS);
    items
}

async fn org_of(ctx: &Ctx, login: &str) -> anyhow::Result<Org> {
    let u = ctx
        .state
        .store
        .user_by_login(login)
        .await?
        .ok_or_else(|| anyhow::anyhow!("user {login} missing"))?;
    ctx.state
        .orgs
        .get(&u.org_id)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("organisation {} missing", u.org_id))
}

/// Items reading every record of `owners` (one prefecture) as `viewer`.
async fn reads_of(
    ctx: &Ctx,
    owners: Vec<String>,
    pref: i64,
    viewer: usize,
) -> anyhow::Result<Vec<Item>> {
    let recs = data::owned_by(ctx.state.store.as_ref(), &owners, pref, MAX_ITEMS as i64).await?;
    Ok(recs.iter().map(|r| Item { id: r.id, viewer }).collect())
}

async fn scenarios(ctx: &Ctx, counts: &[(i64, i64)], seed: u64) -> anyhow::Result<Vec<Scenario>> {
    let cgc = org_of(ctx, "demo-cgc").await?;
    let muni = org_of(ctx, "demo-muni").await?;
    let osaka = org_of(ctx, "demo-cgc-osaka").await?;
    let jurisdiction: Vec<String> = ctx
        .state
        .orgs
        .iter()
        .filter(|o| o.cgc_id.as_deref() == Some(cgc.id.as_str()))
        .map(|o| o.id.clone())
        .collect();

    let mut partner = reads_of(ctx, jurisdiction.clone(), cgc.pref_code, 0).await?;
    partner.extend(reads_of(ctx, vec![cgc.id.clone()], cgc.pref_code, 1).await?);

    let national = data::uniform_ids(counts, MAX_ITEMS, seed)
        .into_iter()
        .enumerate()
        .map(|(i, id)| Item { id, viewer: i % 2 })
        .collect();

    let mut owner = reads_of(ctx, vec![cgc.id.clone()], cgc.pref_code, 0).await?;
    owner.extend(reads_of(ctx, vec![muni.id.clone()], muni.pref_code, 1).await?);
    owner.extend(reads_of(ctx, vec![osaka.id.clone()], osaka.pref_code, 2).await?);

    Ok(vec![
        Scenario {
            name: "partner",
            what: format!(
                "demo-cgc ({}) reads records of the {} municipalities of its jurisdiction and \
                 demo-muni reads the centre's: partner tier, every read audited, all on one \
                 audit chain (prefecture {})",
                cgc.id,
                jurisdiction.len(),
                cgc.pref_code
            ),
            viewers: vec!["demo-cgc", "demo-muni"],
            items: shuffled(partner, seed),
        },
        Scenario {
            name: "national",
            what: "demo-cgc and demo-cgc-osaka read records drawn uniformly from the whole \
                   data set: outside (and some partner) tier, every read audited, on the \
                   record's prefecture chain (47 chains)"
                .into(),
            viewers: vec!["demo-cgc", "demo-cgc-osaka"],
            items: national,
        },
        Scenario {
            name: "owner",
            what: "demo-cgc, demo-muni and demo-cgc-osaka read their own organisations' \
                   records: owner tier, no audit entry"
                .into(),
            viewers: vec!["demo-cgc", "demo-muni", "demo-cgc-osaka"],
            items: shuffled(owner, seed + 1),
        },
    ])
}

/// Measures every scenario's three paths at each number of requests in flight in `levels`
/// (the same levels for every path, so each path's peak is found the same way).
pub async fn run(
    ctx: &Ctx,
    tokens: &HashMap<String, String>,
    counts: &[(i64, i64)],
    seed: u64,
    levels: &[usize],
) -> anyhow::Result<Vec<ScenarioResult>> {
    let mut out = Vec::new();
    for sc in scenarios(ctx, counts, seed).await? {
        anyhow::ensure!(!sc.items.is_empty(), "scenario {} has no records", sc.name);
        let viewer_tokens: Arc<Vec<String>> = Arc::new(
            sc.viewers
                .iter()
                .map(|l| tokens.get(*l).cloned())
                .collect::<Option<_>>()
                .ok_or_else(|| anyhow::anyhow!("a viewer of {} is not logged in", sc.name))?,
        );
        let items = Arc::new(sc.items);
        let mut tiers = BTreeMap::new();
        for it in items.iter().take(500) {
            let v = ctx.state.authenticate(&viewer_tokens[it.viewer]).await;
            let v = v.map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let view = ctx
                .state
                .get_record(&v, it.id)
                .await
                .map_err(|e| anyhow::anyhow!("record {}: {e:?}", it.id))?;
            *tiers.entry(tier_name(&view).to_string()).or_insert(0) += 1;
        }
        eprintln!(
            "S3 {} ({} items, tiers {tiers:?}): {}",
            sc.name,
            items.len(),
            sc.what
        );
        let mut measured = Vec::new();
        for &workers in levels {
            eprintln!("  {workers} in flight");
            let level = measure_level(ctx, workers, &items, &viewer_tokens).await;
            measured.push(level);
        }
        out.push(ScenarioResult {
            name: sc.name,
            what: sc.what,
            items: items.len(),
            tiers,
            peak: peak(&measured),
            levels: measured,
        });
    }
    Ok(out)
}

async fn measure_level(
    ctx: &Ctx,
    workers: usize,
    items: &Arc<Vec<Item>>,
    viewer_tokens: &Arc<Vec<String>>,
) -> Level {
    let shape = load::Shape {
        workers,
        ..ctx.shape
    };
    let w64 = workers as u64;
    let pick = move |items: &[Item], w: usize, n: u64| {
        items[((n * w64 + w as u64) % items.len() as u64) as usize]
    };

    let (store, its) = (ctx.state.store.clone(), items.clone());
    let bare = load::run(shape, move |w, n| {
        let (store, it) = (store.clone(), pick(&its, w, n));
        async move {
            store
                .bare_read(it.id / ID_BASE, it.id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("record {} missing", it.id))?;
            Ok(())
        }
    })
    .await;
    eprintln!("    bare_read  {}", crate::brief(&bare));

    let (state, its, toks) = (ctx.state.clone(), items.clone(), viewer_tokens.clone());
    let service = load::run(shape, move |w, n| {
        let (state, it, toks) = (state.clone(), pick(&its, w, n), toks.clone());
        async move {
            let v = state
                .authenticate(&toks[it.viewer])
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            state
                .get_record(&v, it.id)
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            Ok(())
        }
    })
    .await;
    eprintln!("    service    {}", crate::brief(&service));

    let (client, base, its, toks) = (
        ctx.client.clone(),
        Arc::new(ctx.base.clone()),
        items.clone(),
        viewer_tokens.clone(),
    );
    let http = load::run(shape, move |w, n| {
        let (client, base, it, toks) =
            (client.clone(), base.clone(), pick(&its, w, n), toks.clone());
        async move {
            let res = client
                .get(format!("{base}/api/v1/records/{}", it.id))
                .bearer_auth(&toks[it.viewer])
                .send()
                .await?;
            crate::load::expect_ok(res, || format!("GET {}", it.id)).await
        }
    })
    .await;
    eprintln!("    http       {}", crate::brief(&http));

    Level {
        workers,
        bare,
        service,
        http,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(per_sec: f64, p99_ms: f64, errors: u64) -> Measured {
        Measured {
            ops: 100,
            errors,
            first_error: None,
            secs: 1.0,
            per_sec,
            p50_ms: p99_ms / 2.0,
            p90_ms: p99_ms,
            p99_ms,
            max_ms: p99_ms,
        }
    }

    fn level(workers: usize, bare: Measured, service: Measured) -> Level {
        Level {
            workers,
            http: service.clone(),
            bare,
            service,
        }
    }

    #[test]
    fn the_peak_skips_levels_over_the_latency_target_or_with_errors() {
        let levels = vec![
            level(8, m(1000.0, 1.0, 0), m(300.0, 2.0, 0)),
            level(32, m(1200.0, 3.0, 0), m(700.0, 9.0, 0)),
            // Faster, but too slow at p99 (service) and failing (bare): neither counts.
            level(64, m(1500.0, 4.0, 3), m(900.0, 12.0, 0)),
        ];
        let p = peak(&levels);
        assert_eq!(p.bare.as_ref().map(|b| b.workers), Some(32));
        assert_eq!(p.service.as_ref().map(|s| s.workers), Some(32));
        assert!((p.ratio_service - 700.0 / 1200.0).abs() < 1e-9);
    }

    #[test]
    fn no_qualifying_level_means_no_peak_and_a_zero_ratio() {
        let levels = vec![level(8, m(1000.0, 1.0, 0), m(300.0, 11.0, 0))];
        let p = peak(&levels);
        assert!(p.service.is_none());
        assert_eq!(p.ratio_service, 0.0);
    }
}
