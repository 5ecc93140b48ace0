//! `tsunagu-bench search`: the person search's measurements (issue 4).
//!
//! - S1: latency and throughput of the search on the cached 1,000,000-record databases, through
//!   the service (`AppState::search`, which includes the audit append) and through HTTP, over a
//!   mixed set of realistic queries drawn from the data; the `LIKE '%…%'` scan of the same
//!   names (`Storage::like_scan`) in the same run; the index's size and its rebuild time.
//! - S2 (in `s2.rs`): recall@10 and precision@1 on generated variant pairs, against exact
//!   matching after NFKC and the recordlinkage library.
//!
//! The search bench writes to the cached databases only what searching writes (audit entries,
//! a session per login) and, with `--rebuild-index`, rebuilds the index in place (it is
//! computed from the records alone, so it ends identical; row counts are checked).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use sqlx::Connection as _;
use tsunagu_record::normalize::search_key;
use tsunagu_server::app;
use tsunagu_server::config::Config;
use tsunagu_server::search::{Query, CANDIDATE_CAP};
use tsunagu_server::state::{AppState, Viewer};
use tsunagu_server::storage::Storage;

use crate::data::{self, Dataset, Engine};
use crate::load::{self, Measured, Shape};
use crate::s2;
use crate::s2fair;
use crate::SearchArgs;

/// What each measured phase needs: the server in process, a logged-in searcher, its HTTP API.
pub struct Env {
    pub state: AppState,
    pub viewer: Viewer,
    pub store: Arc<dyn Storage>,
    pub base: String,
    pub token: String,
    pub client: reqwest::Client,
}

/// The searcher: a child guidance centre's staff member (search is nationwide).
const SEARCHER: &str = "demo-cgc";

// ----- the query set -------------------------------------------------------------------------

/// One search as a caseworker types it, drawn from a record of the data.
#[derive(Debug, Clone, Serialize)]
pub struct SearchQuery {
    pub kind: &'static str,
    pub q: Option<String>,
    pub guardian: Option<String>,
    pub birth: Option<String>,
    pub sex: Option<String>,
    /// The record it was drawn from.
    pub target: i64,
}

impl SearchQuery {
    pub fn parse(&self) -> anyhow::Result<Query> {
        Query::parse(
            self.q.as_deref(),
            self.guardian.as_deref(),
            self.birth.as_deref(),
            self.sex.as_deref(),
            None,
        )
        .map_err(|e| anyhow::anyhow!("{:?} refused: {}", self, e.message))
    }

    pub fn params(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        for (k, v) in [
            ("q", &self.q),
            ("guardian", &self.guardian),
            ("birth", &self.birth),
            ("sex", &self.sex),
        ] {
            if let Some(v) = v {
                p.push((k, v.clone()));
            }
        }
        p
    }

    /// The needle of the `LIKE '%…%'` baseline: the name typed, in the stored key form.
    pub fn needle(&self) -> String {
        search_key(self.q.as_deref().or(self.guardian.as_deref()).unwrap_or(""))
    }
}

pub const S1_KINDS: [&str; 18] = [
    "full_kanji",
    "full_kanji_nospace",
    "full_hiragana",
    "full_katakana",
    "family_only",
    "given_reading",
    "part_of_reading",
    "swapped",
    "guardian",
    "family+guardian_given",
    "family+birth_day",
    "full+era_day",
    "family+era_year",
    "reading+birth_range",
    "variant_kanji",
    "one_typo",
    "given+sex+year",
    "halfwidth_kana",
];

fn make(
    kind: &'static str,
    d: &s2::Person,
    g: Option<&s2::Person>,
    v: &s2::Variants,
    rng: &mut StdRng,
) -> Option<SearchQuery> {
    let fam = &d.family;
    let giv = &d.given;
    let fk = &d.family_kana;
    let gk = &d.given_kana;
    let b = d.birth;
    let mut q = SearchQuery {
        kind,
        q: None,
        guardian: None,
        birth: None,
        sex: None,
        target: d.id,
    };
    let need_kana = || (!fk.is_empty() && !gk.is_empty()).then_some(());
    match kind {
        "full_kanji" => q.q = Some(format!("{fam} {giv}")),
        "full_kanji_nospace" => q.q = Some(format!("{fam}{giv}")),
        "full_hiragana" => {
            need_kana()?;
            q.q = Some(format!("{}　{}", s2::to_hiragana(fk), s2::to_hiragana(gk)));
        }
        "full_katakana" => {
            need_kana()?;
            q.q = Some(format!("{fk}{gk}"));
        }
        "family_only" => q.q = Some(fam.clone()),
        "given_reading" => {
            need_kana()?;
            q.q = Some(s2::to_hiragana(gk));
        }
        "part_of_reading" => {
            // The middle or end of one part's reading, e.g. ナベ of ワタナベ.
            need_kana()?;
            let src = if gk.chars().count() >= 3 { gk } else { fk };
            let c: Vec<char> = src.chars().collect();
            if c.len() < 3 {
                return None;
            }
            q.q = Some(c[1..].iter().collect());
        }
        "swapped" => q.q = Some(format!("{giv} {fam}")),
        "guardian" => {
            let g = g?;
            q.guardian = Some(format!("{}{}", g.family, g.given));
        }
        "family+guardian_given" => {
            let g = g?;
            if g.given_kana.is_empty() {
                return None;
            }
            q.q = Some(fam.clone());
            q.guardian = Some(s2::to_hiragana(&g.given_kana));
        }
        "family+birth_day" => {
            q.q = Some(fam.clone());
            q.birth = Some(b?.format("%Y-%m-%d").to_string());
        }
        "full+era_day" => {
            q.q = Some(format!("{fam}{giv}"));
            q.birth = Some(if rng.gen_bool(0.5) {
                s2::era_short(b?)
            } else {
                s2::era_long(b?)
            });
        }
        "family+era_year" => {
            q.q = Some(fam.clone());
            q.birth = Some(s2::era_year(b?));
        }
        "reading+birth_range" => {
            need_kana()?;
            use chrono::Datelike as _;
            let y = b?.year();
            q.q = Some(format!("{fk} {gk}"));
            q.birth = Some(format!("{}..{}", y - 1, y + 1));
        }
        "variant_kanji" => {
            q.q = Some(match v.vary(fam, rng) {
                Some(f) => format!("{f}{giv}"),
                None => format!("{fam}{}", v.vary(giv, rng)?),
            });
        }
        "one_typo" => {
            need_kana()?;
            q.q = Some(s2::typo(&format!("{fk}{gk}"), rng)?);
        }
        "given+sex+year" => {
            use chrono::Datelike as _;
            q.q = Some(giv.clone());
            q.sex = Some(d.sex?.to_string());
            q.birth = Some(b?.year().to_string());
        }
        "halfwidth_kana" => {
            need_kana()?;
            q.q = Some(format!("{} {}", s2::to_halfwidth(fk), s2::to_halfwidth(gk)));
        }
        _ => return None,
    }
    q.parse().ok()?;
    Some(q)
}

/// `n` queries, the kinds in turn, each drawn from a record picked uniformly from the data.
async fn query_set(store: &dyn Storage, n: usize, seed: u64) -> anyhow::Result<Vec<SearchQuery>> {
    let counts = data::pref_counts(store).await?;
    let ids = data::uniform_ids(&counts, n * 3, seed ^ 0x51);
    let docs = store.search_docs(&ids).await?;
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5151);
    let v = s2::Variants::load();
    let mut out = Vec::with_capacity(n);
    let mut docs = docs.into_iter();
    let mut k = 0usize;
    let mut misses = 0;
    while out.len() < n {
        let Some(d) = docs.next() else { break };
        let kind = S1_KINDS[k % S1_KINDS.len()];
        let c = &d.fields.child;
        let person = s2::Person {
            id: d.record_id,
            family: c.family.clone(),
            given: c.given.clone(),
            family_kana: c.family_kana.clone().unwrap_or_default(),
            given_kana: c.given_kana.clone().unwrap_or_default(),
            birth: d.fields.birth_date.map(|b| b.date),
            sex: d.fields.sex,
        };
        let guardian = d.fields.guardians.first().map(|g| s2::Person {
            id: 0,
            family: g.family.clone(),
            given: g.given.clone(),
            family_kana: g.family_kana.clone().unwrap_or_default(),
            given_kana: g.given_kana.clone().unwrap_or_default(),
            birth: None,
            sex: None,
        });
        match make(kind, &person, guardian.as_ref(), &v, &mut rng) {
            Some(q) => {
                out.push(q);
                k += 1;
                misses = 0;
            }
            None => {
                misses += 1;
                if misses > 50 {
                    k += 1; // A kind the data cannot give: move on.
                    misses = 0;
                }
            }
        }
    }
    out.shuffle(&mut rng);
    Ok(out)
}

// ----- measurements --------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct KindStats {
    pub queries: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Share of queries whose source record is on the first page.
    pub found: f64,
    pub capped: usize,
    pub mean_hits: f64,
    pub example: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct IndexInfo {
    pub key_rows: i64,
    pub doc_rows: i64,
    pub keys_bytes: Option<i64>,
    pub docs_bytes: Option<i64>,
    pub records_bytes: Option<i64>,
    pub database_bytes: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rebuild {
    pub records: u64,
    pub secs: f64,
    pub rows_unchanged: bool,
    pub after: IndexInfo,
}

#[derive(Debug, Clone, Serialize)]
pub struct S1Result {
    pub engine: &'static str,
    pub records: usize,
    pub dataset: Dataset,
    pub queries: usize,
    pub kinds: BTreeMap<String, KindStats>,
    pub sweep_p50_ms: f64,
    pub sweep_p99_ms: f64,
    pub service_1: Measured,
    pub http_1: Measured,
    pub service_n: Measured,
    pub like_1: Measured,
    /// LIKE p50 / search p50 (service, one worker): how many times faster the search is.
    pub speedup_p50: f64,
    /// Search throughput / LIKE throughput, one worker each.
    pub speedup_throughput: f64,
    pub index: IndexInfo,
    pub rebuild: Option<Rebuild>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Every query once, in turn, one at a time: latency per kind and whether the record the
/// query was drawn from is found.
async fn sweep(
    env: &Env,
    qs: &[SearchQuery],
) -> anyhow::Result<(BTreeMap<String, KindStats>, f64, f64)> {
    let mut per: BTreeMap<String, (Vec<f64>, usize, usize, usize, String)> = BTreeMap::new();
    let mut all = Vec::new();
    for q in qs {
        let t0 = Instant::now();
        let r = env
            .state
            .search(&env.viewer, q.parse()?)
            .await
            .map_err(|e| anyhow::anyhow!("{q:?}: {e:?}"))?;
        let t = ms(t0.elapsed());
        all.push(t);
        let found = r
            .groups
            .iter()
            .any(|g| g.hits.iter().any(|h| h.record_id == q.target));
        let e = per.entry(q.kind.to_string()).or_default();
        e.0.push(t);
        e.1 += found as usize;
        e.2 += r.capped as usize;
        e.3 += r.total_hits;
        if e.4.is_empty() {
            e.4 = q
                .params()
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ");
        }
    }
    all.sort_by(f64::total_cmp);
    let kinds = per
        .into_iter()
        .map(|(k, (mut lat, found, capped, hits, example))| {
            lat.sort_by(f64::total_cmp);
            let n = lat.len();
            (
                k,
                KindStats {
                    queries: n,
                    p50_ms: pct(&lat, 50.0),
                    p99_ms: pct(&lat, 99.0),
                    max_ms: lat.last().copied().unwrap_or(0.0),
                    found: found as f64 / n.max(1) as f64,
                    capped,
                    mean_hits: hits as f64 / n.max(1) as f64,
                    example,
                },
            )
        })
        .collect();
    Ok((kinds, pct(&all, 50.0), pct(&all, 99.0)))
}

async fn measure(env: &Env, qs: Arc<Vec<SearchQuery>>, shape: Shape, path: &str) -> Measured {
    let workers = shape.workers as u64;
    let pick = move |qs: &[SearchQuery], w: usize, n: u64| -> SearchQuery {
        qs[((n * workers + w as u64) % qs.len() as u64) as usize].clone()
    };
    match path {
        "service" => {
            let (state, viewer) = (env.state.clone(), Arc::new(env.viewer.clone()));
            load::run(shape, move |w, n| {
                let (state, viewer, q) = (state.clone(), viewer.clone(), pick(&qs, w, n));
                async move {
                    state
                        .search(&viewer, q.parse()?)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                    Ok(())
                }
            })
            .await
        }
        "http" => {
            let (client, base, token) = (
                env.client.clone(),
                Arc::new(env.base.clone()),
                Arc::new(env.token.clone()),
            );
            load::run(shape, move |w, n| {
                let (client, base, token, q) =
                    (client.clone(), base.clone(), token.clone(), pick(&qs, w, n));
                async move {
                    let res = client
                        .get(format!("{base}/api/v1/search"))
                        .query(&q.params())
                        .bearer_auth(token.as_str())
                        .send()
                        .await?;
                    crate::load::expect_ok(res, || format!("{q:?}")).await
                }
            })
            .await
        }
        other => unreachable!("no phase {other}"),
    }
}

/// The LIKE baseline, one scan at a time over the same queries: a scan of a million rows can
/// take longer than a whole timed window, so it runs until `budget` is spent and at least
/// [`LIKE_MIN_OPS`] scans are done (after one unmeasured scan to warm the cache).
const LIKE_MIN_OPS: usize = 10;

async fn like_scans(env: &Env, qs: &[SearchQuery], budget: Duration) -> anyhow::Result<Measured> {
    let limit = CANDIDATE_CAP as i64 + 1;
    env.store.like_scan(&qs[0].needle(), limit).await?;
    let start = Instant::now();
    let mut lat = Vec::new();
    for q in qs.iter().cycle() {
        if lat.len() >= LIKE_MIN_OPS && start.elapsed() >= budget {
            break;
        }
        let t0 = Instant::now();
        env.store.like_scan(&q.needle(), limit).await?;
        lat.push(t0.elapsed().as_nanos() as u64);
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort_unstable();
    let m = |ns: u64| ns as f64 / 1e6;
    Ok(Measured {
        ops: lat.len() as u64,
        errors: 0,
        first_error: None,
        secs,
        per_sec: lat.len() as f64 / secs,
        p50_ms: m(load::percentile(&lat, 50.0)),
        p90_ms: m(load::percentile(&lat, 90.0)),
        p99_ms: m(load::percentile(&lat, 99.0)),
        max_ms: m(lat.last().copied().unwrap_or(0)),
    })
}

async fn sqlite_bytes(c: &mut sqlx::SqliteConnection, names: &str) -> Option<i64> {
    let sql = format!("SELECT SUM(pgsize) FROM dbstat WHERE name IN ({names})");
    sqlx::query_scalar::<_, Option<i64>>(&sql)
        .fetch_one(c)
        .await
        .ok()
        .flatten()
}

/// Table, indexes and TOAST of a table, or of every partition of a partitioned one.
async fn pg_bytes(c: &mut sqlx::PgConnection, table: &str) -> Option<i64> {
    sqlx::query_scalar::<_, i64>(
        "SELECT (pg_total_relation_size($1::regclass) + COALESCE((SELECT \
         SUM(pg_total_relation_size(inhrelid)) FROM pg_inherits \
         WHERE inhparent = $1::regclass), 0))::BIGINT",
    )
    .bind(table)
    .fetch_one(c)
    .await
    .ok()
}

async fn index_info(engine: Engine, url: &str) -> anyhow::Result<IndexInfo> {
    match engine {
        Engine::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(url).await?;
            let count = |t: &'static str| format!("SELECT COUNT(*) FROM {t}");
            let key_rows: i64 = sqlx::query_scalar(&count("search_keys"))
                .fetch_one(&mut c)
                .await?;
            let doc_rows: i64 = sqlx::query_scalar(&count("search_docs"))
                .fetch_one(&mut c)
                .await?;
            // dbstat (compiled into the bundled SQLite): the pages of each b-tree.
            let keys_bytes = sqlite_bytes(&mut c, "'search_keys'").await;
            let docs_bytes =
                sqlite_bytes(&mut c, "'search_docs', 'sqlite_autoindex_search_docs_1'").await;
            let records_bytes: Option<i64> = sqlx::query_scalar(
                "SELECT SUM(pgsize) FROM dbstat WHERE name = 'records' OR name IN \
                 (SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records')",
            )
            .fetch_one(&mut c)
            .await
            .ok()
            .flatten();
            let database_bytes: Option<i64> = sqlx::query_scalar(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
            )
            .fetch_one(&mut c)
            .await
            .ok();
            Ok(IndexInfo {
                key_rows,
                doc_rows,
                keys_bytes,
                docs_bytes,
                records_bytes,
                database_bytes,
            })
        }
        Engine::Postgres => {
            let mut c = sqlx::PgConnection::connect(url).await?;
            let key_rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM search_keys")
                .fetch_one(&mut c)
                .await?;
            let doc_rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM search_docs")
                .fetch_one(&mut c)
                .await?;
            let keys_bytes = pg_bytes(&mut c, "search_keys").await;
            let docs_bytes = pg_bytes(&mut c, "search_docs").await;
            let records_bytes = pg_bytes(&mut c, "records").await;
            let database_bytes: Option<i64> =
                sqlx::query_scalar("SELECT pg_database_size(current_database())")
                    .fetch_one(&mut c)
                    .await
                    .ok();
            Ok(IndexInfo {
                key_rows,
                doc_rows,
                keys_bytes,
                docs_bytes,
                records_bytes,
                database_bytes,
            })
        }
    }
}

async fn s1(
    env: &Env,
    engine: Engine,
    a: &SearchArgs,
    dataset: &Dataset,
) -> anyhow::Result<S1Result> {
    let qs = query_set(env.store.as_ref(), a.queries, a.data.seed).await?;
    eprintln!(
        "S1 {}: {} queries over {} kinds",
        engine.name(),
        qs.len(),
        S1_KINDS.len()
    );
    // Warm the caches the way a running server has them, then one sweep for the per-kind view.
    let _ = sweep(env, &qs[..qs.len().min(200)]).await?;
    let (kinds, sweep_p50_ms, sweep_p99_ms) = sweep(env, &qs).await?;
    eprintln!("  sweep      p50 {sweep_p50_ms:.2} ms  p99 {sweep_p99_ms:.2} ms");
    let qs = Arc::new(qs);
    let one = Shape {
        workers: 1,
        warmup: Duration::from_secs(a.warmup),
        measure: Duration::from_secs(a.seconds),
    };
    let service_1 = measure(env, qs.clone(), one, "service").await;
    eprintln!("  service ×1 {}", crate::brief(&service_1));
    let http_1 = measure(env, qs.clone(), one, "http").await;
    eprintln!("  http ×1    {}", crate::brief(&http_1));
    let many = Shape {
        workers: a.workers,
        ..one
    };
    let service_n = measure(env, qs.clone(), many, "service").await;
    eprintln!("  service ×{} {}", a.workers, crate::brief(&service_n));
    let like_1 = like_scans(env, &qs, Duration::from_secs(a.like_seconds)).await?;
    eprintln!("  LIKE ×1    {}", crate::brief(&like_1));
    let index = index_info(engine, &dataset.url).await?;
    eprintln!("  index {index:?}");
    let rebuild = if a.rebuild_index {
        eprintln!("  rebuilding the index in place …");
        let t0 = Instant::now();
        let n = env.store.rebuild_search_index().await?;
        let secs = t0.elapsed().as_secs_f64();
        if engine == Engine::Postgres {
            // Planner statistics for the rewritten tables, as after the generation.
            let mut c = sqlx::PgConnection::connect(&dataset.url).await?;
            sqlx::query("ANALYZE search_keys").execute(&mut c).await?;
            sqlx::query("ANALYZE search_docs").execute(&mut c).await?;
        }
        let after = index_info(engine, &dataset.url).await?;
        eprintln!("  rebuilt {n} records in {secs:.1} s; {after:?}");
        Some(Rebuild {
            records: n,
            secs,
            rows_unchanged: after.key_rows == index.key_rows && after.doc_rows == index.doc_rows,
            after,
        })
    } else {
        None
    };
    Ok(S1Result {
        engine: engine.name(),
        records: a.data.records,
        dataset: dataset.clone(),
        queries: qs.len(),
        kinds,
        sweep_p50_ms,
        sweep_p99_ms,
        speedup_p50: like_1.p50_ms / service_1.p50_ms.max(1e-9),
        speedup_throughput: service_1.per_sec / like_1.per_sec.max(1e-9),
        service_1,
        http_1,
        service_n,
        like_1,
        index,
        rebuild,
    })
}

// ----- the command ---------------------------------------------------------------------------

#[derive(Debug, Serialize)]
pub struct S2Engine {
    pub engine: &'static str,
    pub dataset: Dataset,
    pub secs: f64,
    pub scores: BTreeMap<String, s2::Score>,
    pub misses: Vec<serde_json::Value>,
}

/// How the fair set was made.
#[derive(Debug, Serialize)]
pub struct FairInfo {
    pub base: usize,
    pub records: usize,
    pub min_distractors: usize,
    pub max_distractors: usize,
    /// Distractors of each kind.
    pub distractors: BTreeMap<String, usize>,
    /// Seconds to generate the set (not to register it).
    pub plan_secs: f64,
    /// The everyday variant pairs `variant_kanji_everyday` draws from.
    pub everyday_pairs: Vec<String>,
    /// `partial_combo` queries drawn again because another record fit them as well.
    pub partial_redrawn: usize,
}

#[derive(Debug, Serialize)]
pub struct S2Result {
    /// `fair` or `population`.
    pub set: String,
    pub fair: Option<FairInfo>,
    pub population: usize,
    pub queries: usize,
    pub per_kind: usize,
    pub examples: BTreeMap<String, String>,
    pub ours: Vec<S2Engine>,
    pub exact: BTreeMap<String, s2::Score>,
    pub recordlinkage: Option<BTreeMap<String, s2::Score>>,
    pub recordlinkage_run: Option<s2::PythonRun>,
    pub recordlinkage_error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub command: String,
    pub machine: serde_json::Value,
    pub seconds: u64,
    pub warmup: u64,
    pub workers: usize,
    pub s1: Vec<S1Result>,
    pub s2: Option<S2Result>,
}

/// tsunagu's answers to the S2 queries on one engine, scored.
async fn s2_engine(
    env: &Env,
    e: Engine,
    qs: &[s2::EvalQuery],
    dataset: &Dataset,
) -> anyhow::Result<S2Engine> {
    let (answers, ties, secs) = s2::ours(env, qs).await?;
    let scores = s2::score(qs, &answers, Some(&ties));
    eprintln!(
        "S2 {}: tsunagu overall {:?} ({secs:.1} s)",
        e.name(),
        scores.get("overall")
    );
    for (k, sc) in &scores {
        eprintln!(
            "  {k:<24} n={:<5} R@10 {:.3}  P@1 {:.3}  P@1 ties missed {:.3}",
            sc.queries,
            sc.recall_at_10,
            sc.precision_at_1,
            sc.precision_at_1_ties_missed.unwrap_or(0.0)
        );
    }
    Ok(S2Engine {
        engine: e.name(),
        dataset: dataset.clone(),
        secs,
        scores,
        misses: s2::misses(qs, &answers, 5),
    })
}

async fn env_for(
    engine: Engine,
    a: &SearchArgs,
    fill: data::Fill<'_>,
) -> anyhow::Result<(Env, app::Running, Dataset)> {
    let opts = a.data.opts();
    let dataset = data::prepare_with(engine, &opts, fill).await?;
    let config = Config {
        database_url: dataset.url.clone(),
        pg_max_connections: a.pg_max_connections,
        // One address sends everything: the benchmarks measure the server, not the limiter.
        limits: tsunagu_server::config::LimitsConfig::default().without_rate_limits(),
        ..Config::default()
    };
    let store = app::open_keyed_store(&config).await?;
    let state = app::build_state(store.clone(), config).await?;
    let running = app::Running::start(state.clone()).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.workers * 2)
        .timeout(Duration::from_secs(120))
        .build()?;
    let base = running.url();
    let token = data::login(&client, &base, SEARCHER).await?;
    let viewer = state
        .authenticate(&token)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok((
        Env {
            state,
            viewer,
            store,
            base,
            token,
            client,
        },
        running,
        dataset,
    ))
}

async fn machine(a: &SearchArgs) -> serde_json::Value {
    let memory = crate::first_line_of("/proc/meminfo", "MemTotal")
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0))
        .unwrap_or_default();
    let mut pg = None;
    if a.data
        .engines
        .iter()
        .any(|e| e.starts_with("postgres") || e == "pg")
    {
        if let Ok(url) = data::pg_db_url(&a.data.pg_url, "postgres") {
            if let Ok(mut c) = sqlx::PgConnection::connect(&url).await {
                pg = sqlx::query_scalar::<_, String>("SHOW server_version")
                    .fetch_one(&mut c)
                    .await
                    .ok();
            }
        }
    }
    let mut sqlite = None;
    if let Ok(mut c) = sqlx::SqliteConnection::connect("sqlite::memory:").await {
        sqlite = sqlx::query_scalar::<_, String>("SELECT sqlite_version()")
            .fetch_one(&mut c)
            .await
            .ok();
    }
    serde_json::json!({
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu": crate::first_line_of("/proc/cpuinfo", "model name").unwrap_or_default(),
        "memory": memory,
        "postgres": pg,
        "sqlite": sqlite,
    })
}

pub async fn run(a: SearchArgs) -> anyhow::Result<()> {
    let engines = a.data.engines()?;
    for o in &a.only {
        anyhow::ensure!(["s1", "s2"].contains(&o.as_str()), "--only takes s1, s2");
    }
    let want = |t: &str| a.only.iter().any(|o| o == t);
    let mut s1s = Vec::new();
    let mut s2_people: Option<Vec<s2::Person>> = None;
    let mut s2_queries: Vec<s2::EvalQuery> = Vec::new();
    let mut s2_ours = Vec::new();
    let fair = want("s2") && a.s2_set == "fair";
    let fair_opts = s2fair::FairOpts {
        base: a.s2_base,
        per_kind: a.s2_per_kind,
        min_distractors: a.s2_min_distractors,
        max_distractors: a.s2_max_distractors,
        seed: a.data.seed,
    };
    anyhow::ensure!(
        fair_opts.min_distractors <= fair_opts.max_distractors,
        "--s2-min-distractors is more than --s2-max-distractors"
    );
    let mut fair_info = None;
    let fair_set = if fair {
        let t0 = Instant::now();
        let set = s2fair::FairSet::generate(&fair_opts);
        let secs = t0.elapsed().as_secs_f64();
        s2_queries = set.eval_queries();
        s2_people = Some(set.persons());
        eprintln!(
            "S2 fair set: {} records ({} base), {} pairs, distractors {:?}, generated in {secs:.1} s",
            set.people.len(),
            a.s2_base,
            s2_queries.len(),
            set.distractor_counts()
        );
        fair_info = Some(FairInfo {
            base: a.s2_base,
            records: set.people.len(),
            min_distractors: a.s2_min_distractors,
            max_distractors: a.s2_max_distractors,
            distractors: set
                .distractor_counts()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            plan_secs: secs,
            everyday_pairs: set.everyday_pairs.clone(),
            partial_redrawn: set.partial_redrawn,
        });
        Some(set)
    } else {
        None
    };
    for e in engines {
        if want("s1") || (want("s2") && !fair) {
            let (env, running, dataset) = env_for(e, &a, data::Fill::Bulk)
                .await
                .with_context(|| format!("opening {}", e.name()))?;
            if want("s1") {
                s1s.push(
                    s1(&env, e, &a, &dataset)
                        .await
                        .with_context(|| format!("S1 on {}", e.name()))?,
                );
            }
            if want("s2") && !fair {
                if s2_people.is_none() {
                    let people = s2::population(env.store.as_ref()).await?;
                    s2_queries = s2::eval_set(&people, a.s2_per_kind, a.data.seed);
                    eprintln!("S2: {} variant pairs", s2_queries.len());
                    s2_people = Some(people);
                }
                s2_ours.push(s2_engine(&env, e, &s2_queries, &dataset).await?);
            }
            running.stop().await?;
        }
        if let Some(set) = &fair_set {
            let (env, running, dataset) =
                env_for(e, &a, data::Fill::Fair(set, &fair_opts))
                    .await
                    .with_context(|| format!("opening the S2 fair set on {}", e.name()))?;
            s2fair::verify(env.store.as_ref(), set).await?;
            s2_ours.push(s2_engine(&env, e, &s2_queries, &dataset).await?);
            running.stop().await?;
        }
    }
    let s2 = match s2_people {
        None => None,
        Some(people) => {
            let exact = if a.s2_no_baselines {
                BTreeMap::new()
            } else {
                s2::score(&s2_queries, &s2::exact(&people, &s2_queries), None)
            };
            eprintln!("S2 exact after NFKC: {:?}", exact.get("overall"));
            let dir = a.data.data_dir.join("s2-recordlinkage");
            let rl = if a.s2_no_baselines {
                Err(anyhow::anyhow!("--s2-no-baselines"))
            } else {
                s2::recordlinkage(&a.s2_python, &dir, &people, &s2_queries)
            };
            let (rl, run, err) = match rl {
                Ok((answers, run)) => {
                    let sc = s2::score(&s2_queries, &answers, None);
                    eprintln!(
                        "S2 recordlinkage: {:?} ({:.1} s)",
                        sc.get("overall"),
                        run.secs
                    );
                    (Some(sc), Some(run), None)
                }
                Err(e) => {
                    eprintln!("S2 recordlinkage baseline NOT run: {e:#}");
                    (None, None, Some(format!("{e:#}")))
                }
            };
            let mut examples = BTreeMap::new();
            for q in &s2_queries {
                examples
                    .entry(q.kind.to_string())
                    .or_insert_with(|| format!("q={} birth={}", q.q, q.birth));
            }
            Some(S2Result {
                set: a.s2_set.clone(),
                fair: fair_info,
                population: people.len(),
                queries: s2_queries.len(),
                per_kind: a.s2_per_kind,
                examples,
                ours: s2_ours,
                exact,
                recordlinkage: rl,
                recordlinkage_run: run,
                recordlinkage_error: err,
            })
        }
    };
    let report = Report {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine: machine(&a).await,
        seconds: a.seconds,
        warmup: a.warmup,
        workers: a.workers,
        s1: s1s,
        s2,
    };
    if let Some(out) = &a.out {
        std::fs::write(out, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    print!("{}", markdown(&report, &a));
    Ok(())
}

fn mib(b: Option<i64>) -> String {
    b.map(|b| format!("{:.0} MiB", b as f64 / 1048576.0))
        .unwrap_or_else(|| "-".into())
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**not met**"
    }
}

fn markdown(r: &Report, a: &SearchArgs) -> String {
    let mut s = String::new();
    let m = &r.machine;
    let _ = writeln!(
        s,
        "Machine: {} cores ({}), {} RAM; PostgreSQL {}, SQLite {}.\n",
        m["cores"],
        m["cpu"].as_str().unwrap_or(""),
        m["memory"].as_str().unwrap_or(""),
        m["postgres"].as_str().unwrap_or("-"),
        m["sqlite"].as_str().unwrap_or("-"),
    );
    if !r.s1.is_empty() {
        let _ = writeln!(
            s,
            "### S1: search latency (target p50 ≤ 5 ms, p99 ≤ 25 ms), vs `LIKE '%…%'`\n\n\
             {} queries per engine, drawn from records picked uniformly from the data, {} kinds in \
             equal shares (below). Timed phases: {} s after {} s warm-up; LIKE: one scan at a time \
             over the same queries for {} s and at least 10 scans; \
             `service` = `AppState::search` (parse, index lookups, ranking, grouping, the audit \
             append), `HTTP` = `GET /api/v1/search` on the in-process server; `LIKE` = \
             `Storage::like_scan`: `SELECT id FROM records WHERE name_key LIKE '%…%' OR kana_key \
             LIKE '%…%' LIMIT {}` with the typed name in key form.\n",
            r.s1.first().map(|x| x.queries).unwrap_or(0),
            S1_KINDS.len(),
            r.seconds,
            r.warmup,
            a.like_seconds,
            CANDIDATE_CAP + 1
        );
        let _ = writeln!(
            s,
            "| engine | records | path | workers | queries/s | p50 ms | p90 ms | p99 ms | max ms | errors | target |"
        );
        let _ = writeln!(s, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|");
        for e in &r.s1 {
            for (path, mm, w, t) in [
                ("service", &e.service_1, 1, true),
                ("HTTP", &e.http_1, 1, true),
                ("service", &e.service_n, r.workers, false),
                ("LIKE '%…%'", &e.like_1, 1, false),
            ] {
                let target = if t {
                    verdict(mm.p50_ms <= 5.0 && mm.p99_ms <= 25.0 && mm.errors == 0)
                } else {
                    ""
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {path} | {w} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {target} |",
                    e.engine, e.records, mm.per_sec, mm.p50_ms, mm.p90_ms, mm.p99_ms, mm.max_ms, mm.errors
                );
            }
        }
        let _ = writeln!(
            s,
            "\nRatio to the LIKE scan in the same run (one worker each):\n"
        );
        let _ = writeln!(
            s,
            "| engine | LIKE p50 / search p50 | search q/s / LIKE q/s |"
        );
        let _ = writeln!(s, "|---|---:|---:|");
        for e in &r.s1 {
            let _ = writeln!(
                s,
                "| {} | {:.0}× | {:.0}× |",
                e.engine, e.speedup_p50, e.speedup_throughput
            );
        }
        let _ = writeln!(
            s,
            "\nPer kind (one pass over every query, one at a time, service path; `found` = the \
             record the query was drawn from is on the first page):\n"
        );
        let mut head = String::from("| kind | example |");
        let mut rule = String::from("|---|---|");
        for e in &r.s1 {
            let _ = write!(head, " {0} p50 | {0} p99 |", e.engine);
            rule.push_str("---:|---:|");
        }
        let _ = write!(head, " found | capped | mean hits |");
        rule.push_str("---:|---:|---:|");
        let _ = writeln!(s, "{head}\n{rule}");
        if let Some(first) = r.s1.first() {
            for (k, st) in &first.kinds {
                let _ = write!(s, "| {k} | `{}` |", st.example);
                for e in &r.s1 {
                    match e.kinds.get(k) {
                        Some(x) => {
                            let _ = write!(s, " {:.2} | {:.2} |", x.p50_ms, x.p99_ms);
                        }
                        None => s.push_str(" - | - |"),
                    }
                }
                let _ = writeln!(
                    s,
                    " {:.0}% | {} | {:.0} |",
                    st.found * 100.0,
                    st.capped,
                    st.mean_hits
                );
            }
            let _ = write!(s, "| **all** | |");
            for e in &r.s1 {
                let _ = write!(
                    s,
                    " **{:.2}** | **{:.2}** |",
                    e.sweep_p50_ms, e.sweep_p99_ms
                );
            }
            let _ = writeln!(s, " | | |");
        }
        let _ = writeln!(s, "\nIndex (`search_keys` + `search_docs`):\n");
        let _ = writeln!(
            s,
            "| engine | records | key rows | keys size | docs size | records table (for scale) | database | rebuild (`rebuild_search_index`) |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---|");
        for e in &r.s1 {
            let i = &e.index;
            let rb = match &e.rebuild {
                Some(rb) => format!(
                    "{:.0} s for {} records{}",
                    rb.secs,
                    rb.records,
                    if rb.rows_unchanged {
                        ", same row counts after"
                    } else {
                        ", **row counts changed**"
                    }
                ),
                None => "not run".into(),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {rb} |",
                e.engine,
                i.doc_rows,
                i.key_rows,
                mib(i.keys_bytes),
                mib(i.docs_bytes),
                mib(i.records_bytes),
                mib(i.database_bytes)
            );
        }
        let _ = writeln!(s);
    }
    if let Some(t) = &r.s2 {
        let _ = writeln!(
            s,
            "### S2: finding a child written differently (target recall@10 ≥ 0.98, precision@1 ≥ 0.9)\n"
        );
        match &t.fair {
            Some(f) => {
                let _ = writeln!(
                    s,
                    "Fair set: {} variant pairs ({} per kind); each target generated from the \
                     name dictionary with {}–{} fair look-alike distractors ({}), shuffled with \
                     a base population of {} into {} records registered in random order. Each \
                     query is the name written as its class says plus the date of birth (ISO; a \
                     Japanese era for `era_date`; the year alone for `partial_combo`). A \
                     target's exact twins (same name, reading and date of birth) count as \
                     correct.\n",
                    t.queries,
                    t.per_kind,
                    f.min_distractors,
                    f.max_distractors,
                    f.distractors
                        .iter()
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    f.base,
                    f.records
                );
                let _ = writeln!(
                    s,
                    "`variant_kanji_everyday` draws from the {} everyday variant pairs (both \
                     forms in CP932) that the dictionary has in one name with one reading: {}.\n",
                    f.everyday_pairs.len(),
                    f.everyday_pairs.join(" ")
                );
                let _ = writeln!(
                    s,
                    "A `partial_combo` query that another record fits as well as its target \
                     (both typed parts at the start of the same parts, born the same year) has \
                     no one right first answer; {} such queries were drawn again.\n",
                    f.partial_redrawn
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "{} variant pairs ({} per kind) drawn from the {} synthetic records of the \
                     database; each query is the name written with one variation plus the date \
                     of birth (ISO, or a Japanese era for `era_date`). A record's exact twins \
                     (same name, reading and date of birth) count as correct.\n",
                    t.queries, t.per_kind, t.population
                );
            }
        }
        let mut head = String::from("| kind | pairs | example |");
        let mut rule = String::from("|---|---:|---|");
        for e in &t.ours {
            let _ = write!(
                head,
                " tsunagu ({}) R@10 | P@1 | P@1 ties missed |",
                e.engine
            );
            rule.push_str("---:|---:|---:|");
        }
        head.push_str(" exact (NFKC) R@10 | P@1 | recordlinkage R@10 | P@1 |");
        rule.push_str("---:|---:|---:|---:|");
        let _ = writeln!(s, "{head}\n{rule}");
        let listed: &[&str] = if t.fair.is_some() {
            &s2fair::FAIR_KINDS
        } else {
            &s2::KINDS
        };
        let mut kinds: Vec<String> = listed.iter().map(|k| k.to_string()).collect();
        kinds.push("overall".into());
        for k in &kinds {
            let ex = t.examples.get(k).cloned().unwrap_or_default();
            let bold = k == "overall";
            let f = |x: f64| {
                if bold {
                    format!("**{x:.3}**")
                } else {
                    format!("{x:.3}")
                }
            };
            let n = t
                .ours
                .first()
                .and_then(|e| e.scores.get(k))
                .map_or(0, |sc| sc.queries);
            let _ = write!(
                s,
                "| {k} | {n} | {} |",
                if ex.is_empty() {
                    String::new()
                } else {
                    format!("`{ex}`")
                }
            );
            for e in &t.ours {
                let sc = e.scores.get(k).copied().unwrap_or_default();
                let _ = write!(
                    s,
                    " {} | {} | {} |",
                    f(sc.recall_at_10),
                    f(sc.precision_at_1),
                    f(sc.precision_at_1_ties_missed.unwrap_or(0.0))
                );
            }
            match t.exact.get(k) {
                Some(sc) => {
                    let _ = write!(s, " {} | {} |", f(sc.recall_at_10), f(sc.precision_at_1));
                }
                None => s.push_str(" - | - |"),
            }
            match &t.recordlinkage {
                Some(rl) => {
                    let sc = rl.get(k).copied().unwrap_or_default();
                    let _ = writeln!(s, " {} | {} |", f(sc.recall_at_10), f(sc.precision_at_1));
                }
                None => {
                    let _ = writeln!(s, " - | - |");
                }
            }
        }
        for e in &t.ours {
            let o = e.scores.get("overall").copied().unwrap_or_default();
            let _ = writeln!(
                s,
                "\ntsunagu on {}: {} queries in {:.1} s; recall@10 {:.3} (target {}), precision@1 {:.3} (target {}), precision@1 with ties as misses {:.3}.",
                e.engine,
                o.queries,
                e.secs,
                o.recall_at_10,
                verdict(o.recall_at_10 >= 0.98),
                o.precision_at_1,
                verdict(o.precision_at_1 >= 0.9),
                o.precision_at_1_ties_missed.unwrap_or(0.0)
            );
        }
        match (&t.recordlinkage_run, &t.recordlinkage_error) {
            (Some(run), _) => {
                let _ = writeln!(
                    s,
                    "\nrecordlinkage run: {} ({:.1} s in all).",
                    run.info, run.secs
                );
            }
            (None, Some(e)) => {
                let _ = writeln!(s, "\nrecordlinkage baseline **not run**: {e}");
            }
            _ => {}
        }
    }
    s
}
