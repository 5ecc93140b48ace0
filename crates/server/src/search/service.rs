//! The use case of nationwide person search: the plan's lookups through the store, then
//! ranking, grouping, paging and the audit entry (the rules are in `search/mod.rs`).

use serde_json::json;
use tsunagu_record::api::{SearchGroup, SearchHit, SearchResults};

use crate::audit::action;
use crate::error::{AppError, AppResult};
use crate::state::{AppState, Viewer};
use crate::tier::{self, RecordFacts};

impl AppState {
    /// Nationwide person search for centres and municipalities. Candidates come from indexed
    /// lookups only (see `search/mod.rs`); hits carry only the search fields, whatever the tier.
    /// The search is audited (the query's shape and the hit count, never the names) before
    /// anything is returned.
    pub async fn search(&self, v: &Viewer, q: crate::search::Query) -> AppResult<SearchResults> {
        use crate::search::{self, CANDIDATE_CAP, GROUPS_PER_PAGE};
        if !matches!(
            v.org.kind,
            tsunagu_record::OrgKind::Cgc | tsunagu_record::OrgKind::Municipality
        ) {
            return Err(AppError::Forbidden(
                "全国検索を利用できるのは児童相談所と市区町村の職員のみです".into(),
            ));
        }
        let mut ids: Vec<i64> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut capped = false;
        let limit = CANDIDATE_CAP as i64 + 1;
        for (pass, lookups) in [search::plan(&q), search::fallback_plan(&q)]
            .into_iter()
            .enumerate()
        {
            if pass == 1 && ids.len() >= search::FALLBACK_BELOW {
                break;
            }
            // The pass's lookups run at once (each is one index range scan on the read pool);
            // their answers are then taken in plan order, so the result is what running them
            // one by one would give.
            let answers = futures::future::try_join_all(
                lookups.iter().map(|l| self.store.search_lookup(l, limit)),
            )
            .await?;
            for found in answers {
                if ids.len() >= CANDIDATE_CAP {
                    capped = true;
                    break;
                }
                // A lookup that filled its limit may have left matches out, in either pass.
                if found.len() as i64 >= limit {
                    capped = true;
                }
                for id in found {
                    if seen.insert(id) {
                        ids.push(id);
                    }
                }
            }
        }
        if ids.len() > CANDIDATE_CAP {
            ids.truncate(CANDIDATE_CAP);
            capped = true;
        }
        let docs = self.store.search_docs(&ids).await?;
        let ranked = search::rank_docs(&q, docs);
        let total_hits = ranked.len();
        let groups = search::group(ranked);
        let group_count = groups.len();
        let start = (q.page as usize - 1) * GROUPS_PER_PAGE;
        let has_more = group_count > start + GROUPS_PER_PAGE;
        // Ties are decided over all groups, so a page's first group knows whether it ties the
        // last group of the page before.
        let group_ties: Vec<bool> = (0..groups.len())
            .map(|i| {
                i > 0
                    && search::evidence_cmp(&groups[i - 1][0], &groups[i][0])
                        == std::cmp::Ordering::Equal
            })
            .collect();
        let mut out = Vec::new();
        for (g, group_tied) in groups
            .into_iter()
            .zip(group_ties)
            .skip(start)
            .take(GROUPS_PER_PAGE)
        {
            let mut hits = Vec::with_capacity(g.len());
            let ties: Vec<bool> = (0..g.len())
                .map(|i| {
                    i > 0 && search::evidence_cmp(&g[i - 1], &g[i]) == std::cmp::Ordering::Equal
                })
                .collect();
            for (h, tied_with_previous) in g.into_iter().zip(ties) {
                let owner = self.org(&h.doc.owner_org)?;
                let t = tier::decide(
                    &v.org,
                    owner,
                    RecordFacts {
                        serious: h.doc.serious,
                        transfer_to: None,
                    },
                );
                let f = h.doc.fields;
                hits.push(SearchHit {
                    record_id: h.doc.record_id,
                    score: h.score,
                    reasons: h.reasons,
                    child_name: f.child,
                    sex: f.sex.and_then(tsunagu_record::Sex::from_iso5218),
                    birth_date: f.birth_date,
                    guardians: f.guardians,
                    owner: owner.contact(),
                    tier: t.name().to_string(),
                    tied_with_previous,
                });
            }
            out.push(SearchGroup {
                score: hits.first().map(|h| h.score).unwrap_or(0.0),
                hits,
                tied_with_previous: group_tied,
            });
        }
        let mut detail = q.shape();
        detail["hits"] = json!(total_hits);
        detail["groups"] = json!(group_count);
        detail["capped"] = json!(capped);
        // Which records the page showed (ids only), so a search is traceable to the children
        // it revealed, as a case-list page is.
        let shown: Vec<i64> = out
            .iter()
            .flat_map(|g| g.hits.iter().map(|h| h.record_id))
            .collect();
        detail["records"] = json!(shown);
        self.read_audit
            .append(v.audit(
                self.clock.now(),
                v.org.pref_code,
                action::SEARCHED,
                None,
                detail,
            ))
            .await?;
        Ok(SearchResults {
            groups: out,
            total_hits,
            capped,
            page: q.page,
            has_more,
            address_withheld: true,
        })
    }
}
