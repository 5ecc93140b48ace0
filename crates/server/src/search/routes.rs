//! The route of nationwide person search: the query string parsed by `search::Query`, then
//! `search/service.rs`.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::Json;
use tsunagu_record::api::{ApiError, SearchResults};

use crate::error::{AppError, AppResult};
use crate::state::{AppState, Viewer};

const SEARCH_PARAMS: &[&str] = &["q", "guardian", "birth", "sex", "page"];

/// Nationwide person search. Hits carry only the search fields (child name and reading, sex,
/// birth date, guardian names, owning organisation and its phone): never an address.
#[utoipa::path(get, path = "/api/v1/search",
    params(
        ("q" = Option<String>, Query, description = "氏名またはフリガナ（一部、姓名入替、漢字・かな混在可）。`q` か `guardian` のどちらかは必須"),
        ("guardian" = Option<String>, Query, description = "保護者の氏名またはフリガナ"),
        ("birth" = Option<String>, Query, description = "生年月日: 2015-04-01, 2015, 2015-04, H27.4.1, 平成27年, 2014..2016"),
        ("sex" = Option<tsunagu_record::Sex>, Query),
        ("page" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1から")),
    responses((status = 200, description = "検索結果（住所は含みません）", body = SearchResults),
        (status = 400, description = "不明な、または正しくない検索条件（`fields` に名前）", body = ApiError),
        (status = 403, description = "この利用者は検索を使えません", body = ApiError)))]
pub async fn search(
    State(s): State<AppState>,
    v: Viewer,
    Query(q): Query<HashMap<String, String>>,
) -> AppResult<Json<SearchResults>> {
    if let Some(k) = q.keys().find(|k| !SEARCH_PARAMS.contains(&k.as_str())) {
        return Err(AppError::bad_field(
            k.clone(),
            format!(
                "不明な検索条件「{k}」です（使用できるもの: {}）",
                SEARCH_PARAMS.join(", ")
            ),
        ));
    }
    let get = |k: &str| q.get(k).map(String::as_str);
    let query = crate::search::Query::parse(
        get("q"),
        get("guardian"),
        get("birth"),
        get("sex"),
        get("page"),
    )
    .map_err(|e| AppError::bad_field(e.field, e.message))?;
    Ok(Json(s.search(&v, query).await?))
}
