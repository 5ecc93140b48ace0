//! S4: record updates per second. The service path (`authenticate` + `update_record`: owner
//! check, validation, version check, record and version rows, audit append and notifications
//! in one transaction) and the same through `PUT /api/v1/records/{id}`, against `bare_update`
//! (one single-row UPDATE) of the same rows through the same pool.
//!
//! The records are those of the first centre of every prefecture, each updated by a benchmark
//! user of that centre, interleaved so that concurrent workers are mostly on different
//! prefectures: there is one audit chain per prefecture and appends to one chain are serialised,
//! as a national load spread over the country would be. Every record belongs to one worker, so
//! versions never conflict.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use serde::Serialize;
use tsunagu_record::api::UpdateRecord;
use tsunagu_record::RecordBody;
use tsunagu_server::error::AppError;

use crate::data::{self, ID_BASE};
use crate::load::{self, Measured};
use crate::Ctx;

/// Records taken from each prefecture's first centre.
const PER_PREF: i64 = 200;

#[derive(Debug, Clone, Serialize)]
pub struct S4Result {
    /// Records updated (each by its own centre's user) and the prefectures they span.
    pub records: usize,
    pub prefectures: usize,
    pub bare: Measured,
    pub service: Measured,
    pub http: Measured,
    pub ratio_service: f64,
    pub ratio_http: f64,
}

struct Item {
    id: i64,
    token: usize,
    body: RecordBody,
    version: AtomicI64,
}

/// The body with one free-text field changed, so each update is a real change of about the
/// same size.
fn changed(body: &RecordBody, n: u64) -> RecordBody {
    let mut b = body.clone();
    b.casework.investigation = format!("近隣及び関係機関への調査を実施。（追記{n}）");
    b
}

pub async fn run(ctx: &Ctx, tokens: &HashMap<String, String>) -> anyhow::Result<S4Result> {
    let store = ctx.state.store.clone();
    let mut per_pref = Vec::new();
    let mut token_list = Vec::new();
    for pref in 1..=47i64 {
        let login = data::bench_login(pref);
        let Some(token) = tokens.get(&login) else {
            continue;
        };
        let recs = data::owned_by(
            store.as_ref(),
            &[format!("cgc-{pref:02}-01")],
            pref,
            PER_PREF,
        )
        .await?;
        if !recs.is_empty() {
            per_pref.push((token_list.len(), recs));
            token_list.push(token.clone());
        }
    }
    let prefectures = per_pref.len();
    // Round-robin over prefectures: item k is in prefecture k mod P (while all have records).
    let mut items = Vec::new();
    let longest = per_pref.iter().map(|(_, r)| r.len()).max().unwrap_or(0);
    for i in 0..longest {
        for (token, recs) in &per_pref {
            if let Some(r) = recs.get(i) {
                items.push(Item {
                    id: r.id,
                    token: *token,
                    body: r.body.clone(),
                    version: AtomicI64::new(r.version),
                });
            }
        }
    }
    let workers = ctx.shape.workers;
    // A multiple of the worker count: worker w only ever touches items ≡ w (mod workers).
    items.truncate(items.len() / workers * workers);
    anyhow::ensure!(
        !items.is_empty(),
        "no records of the prefectures' first centres"
    );
    let items = Arc::new(items);
    let tokens = Arc::new(token_list);
    eprintln!(
        "S4: {} records of {prefectures} prefectures' first centres",
        items.len()
    );
    let w64 = workers as u64;
    let idx = move |len: usize, w: usize, n: u64| ((n * w64 + w as u64) % len as u64) as usize;

    let (st, its) = (store.clone(), items.clone());
    let clock = ctx.state.clock.clone();
    let bare = load::run(ctx.shape, move |w, n| {
        let (st, its, clock) = (st.clone(), its.clone(), clock.clone());
        async move {
            let it = &its[idx(its.len(), w, n)];
            st.bare_update(it.id / ID_BASE, it.id, clock.now()).await?;
            Ok(())
        }
    })
    .await;
    eprintln!("  bare_update {}", crate::brief(&bare));

    let (state, its, toks) = (ctx.state.clone(), items.clone(), tokens.clone());
    let service = load::run(ctx.shape, move |w, n| {
        let (state, its, toks) = (state.clone(), its.clone(), toks.clone());
        async move {
            let it = &its[idx(its.len(), w, n)];
            let v = state
                .authenticate(&toks[it.token])
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let version = it.version.load(Ordering::Relaxed);
            let req = UpdateRecord {
                version,
                record: changed(&it.body, n),
                resolve: Default::default(),
            };
            match state.update_record(&v, it.id, req).await {
                Ok(view) => {
                    // A save from a stale version is merged: the version is the view's.
                    let now = match &view {
                        tsunagu_record::RecordView::Owner(f) => f.meta.version,
                        _ => version + 1,
                    };
                    it.version.store(now, Ordering::Relaxed);
                    Ok(())
                }
                Err(AppError::Conflict(current, _)) => {
                    it.version.store(current.meta.version, Ordering::Relaxed);
                    anyhow::bail!("version conflict on {}", it.id)
                }
                Err(e) => anyhow::bail!("update {}: {e:?}", it.id),
            }
        }
    })
    .await;
    eprintln!("  service     {}", crate::brief(&service));

    let (client, base) = (ctx.client.clone(), Arc::new(ctx.base.clone()));
    let (its, toks) = (items.clone(), tokens.clone());
    let http = load::run(ctx.shape, move |w, n| {
        let (client, base, its, toks) = (client.clone(), base.clone(), its.clone(), toks.clone());
        async move {
            let it = &its[idx(its.len(), w, n)];
            let version = it.version.load(Ordering::Relaxed);
            let res = client
                .put(format!("{base}/api/v1/records/{}", it.id))
                .bearer_auth(&toks[it.token])
                .json(&UpdateRecord {
                    version,
                    record: changed(&it.body, n),
                    resolve: Default::default(),
                })
                .send()
                .await?;
            crate::load::expect_ok(res, || format!("PUT {}", it.id)).await?;
            it.version.store(version + 1, Ordering::Relaxed);
            Ok(())
        }
    })
    .await;
    eprintln!("  http        {}", crate::brief(&http));

    Ok(S4Result {
        records: items.len(),
        prefectures,
        ratio_service: service.per_sec / bare.per_sec,
        ratio_http: http.per_sec / bare.per_sec,
        bare,
        service,
        http,
    })
}
