//! HTTP handlers: translate requests to service calls and results to responses, nothing more.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::Json;
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;
use tsunagu_record::api::{
    ApiError, CaseList, LoginRequest, LoginResponse, Me, NotificationList, RecordViewEntry,
    SearchResults, UpdateRecord, VersionEntry,
};
use tsunagu_record::{RecordBody, RecordView, Restrictions};

use super::extract::JsonBody;
use crate::error::{AppError, AppResult};
use crate::records::service::{decode_cursor, CaseListParams};
use crate::state::{AppState, Viewer};
use crate::storage::CaseSort;

/// Body of `PUT /records/{id}/restrictions`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRestrictions {
    pub version: i64,
    pub restrictions: Restrictions,
}

#[utoipa::path(post, path = "/api/v1/auth/login", request_body = LoginRequest, security(()),
    responses((status = 200, description = "ログインしました", body = LoginResponse),
        (status = 401, description = "ログインID、パスワードまたはワンタイムコードが正しくありません", body = ApiError),
        (status = 423, description = "失敗が続いたためロック中", body = ApiError)))]
pub async fn login(
    State(s): State<AppState>,
    JsonBody(req): JsonBody<LoginRequest>,
) -> AppResult<Json<LoginResponse>> {
    // Refused before the store sees them: PostgreSQL cannot even compare a text holding NUL.
    super::extract::single_line("login", &req.login)?;
    super::extract::single_line("otp", &req.otp)?;
    Ok(Json(s.login(req).await?))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", responses((status = 204, description = "ログアウトしました")))]
pub async fn logout(State(s): State<AppState>, v: Viewer) -> AppResult<StatusCode> {
    s.logout(&v).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/me", responses((status = 200, description = "ログイン中の利用者", body = Me)))]
pub async fn me(v: Viewer) -> Json<Me> {
    Json(v.me())
}

#[utoipa::path(post, path = "/api/v1/records", request_body = RecordBody,
    responses((status = 201, description = "登録しました（所有機関の表示）", body = RecordView),
        (status = 403, description = "この利用者は記録を登録できません", body = ApiError),
        (status = 422, description = "入力内容の誤り（`fields` に項目ごと）", body = ApiError)))]
pub async fn create_record(
    State(s): State<AppState>,
    v: Viewer,
    JsonBody(body): JsonBody<RecordBody>,
) -> AppResult<impl IntoResponse> {
    let view = s.create_record(&v, body).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// A path id: a positive integer in its one written form (ASCII digits, no sign, no leading
/// zero), refused by name otherwise, so one record has one URL (`i64::from_str` alone would
/// also take `+13`, which the document does not allow).
fn record_id(raw: &str) -> AppResult<i64> {
    Some(raw)
        .filter(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()) && !r.starts_with('0'))
        .and_then(|r| r.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .ok_or_else(|| AppError::bad_field("id", "IDは正の整数で指定してください"))
}

#[utoipa::path(get, path = "/api/v1/records/{id}", params(("id" = i64, Path, minimum = 1, description = "記録のID（正の整数）")),
    responses((status = 200, description = "閲覧区分に応じた記録", body = RecordView),
        (status = 403, description = "運用者は記録を閲覧できません", body = ApiError),
        (status = 404, description = "記録が見つからないか、閲覧する権限がありません", body = ApiError)))]
pub async fn get_record(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
) -> AppResult<Json<RecordView>> {
    Ok(Json(s.get_record(&v, record_id(&id)?).await?))
}

#[utoipa::path(put, path = "/api/v1/records/{id}", params(("id" = i64, Path, minimum = 1, description = "記録のID（正の整数）")), request_body = UpdateRecord,
    responses((status = 200, description = "更新しました", body = RecordView),
        (status = 403, description = "記録を更新できるのは所有機関のみです", body = ApiError),
        (status = 404, description = "記録が見つからないか、閲覧する権限がありません", body = ApiError),
        (status = 409, description = "版の競合（`current` に現在の記録）", body = ApiError),
        (status = 422, description = "入力内容の誤り（`fields` に項目ごと）", body = ApiError)))]
pub async fn update_record(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<UpdateRecord>,
) -> AppResult<Json<RecordView>> {
    Ok(Json(s.update_record(&v, record_id(&id)?, req).await?))
}

#[utoipa::path(put, path = "/api/v1/records/{id}/restrictions", params(("id" = i64, Path, minimum = 1, description = "記録のID（正の整数）")), request_body = SetRestrictions,
    responses((status = 200, description = "閲覧制限を設定しました", body = RecordView),
        (status = 403, description = "閲覧制限を設定できるのは所有機関のみです", body = ApiError),
        (status = 404, description = "記録が見つからないか、閲覧する権限がありません", body = ApiError),
        (status = 409, description = "版の競合（`current` に現在の記録）", body = ApiError)))]
pub async fn set_restrictions(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<SetRestrictions>,
) -> AppResult<Json<RecordView>> {
    Ok(Json(
        s.set_restrictions(&v, record_id(&id)?, req.version, req.restrictions)
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/records/{id}/versions", params(("id" = i64, Path, minimum = 1, description = "記録のID（正の整数）")),
    responses((status = 200, description = "版の履歴（閲覧区分に応じた表示）", body = Vec<VersionEntry>),
        (status = 403, description = "運用者は記録を閲覧できません", body = ApiError),
        (status = 404, description = "記録が見つからないか、閲覧する権限がありません", body = ApiError)))]
pub async fn list_versions(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<VersionEntry>>> {
    Ok(Json(s.list_versions(&v, record_id(&id)?).await?))
}

#[utoipa::path(get, path = "/api/v1/records/{id}/views", params(("id" = i64, Path, minimum = 1, description = "記録のID（正の整数）")),
    responses((status = 200, description = "他機関による閲覧の記録", body = Vec<RecordViewEntry>),
        (status = 403, description = "閲覧履歴を確認できるのは所有機関のみです", body = ApiError),
        (status = 404, description = "記録が見つからないか、閲覧する権限がありません", body = ApiError)))]
pub async fn record_views(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<RecordViewEntry>>> {
    Ok(Json(s.record_views(&v, record_id(&id)?).await?))
}

const LIST_PARAMS: &[&str] = &[
    "status",
    "municipality",
    "updated_since",
    "sort",
    "cursor",
    "limit",
];

/// The case list's `sort` values; the parser and the OpenAPI document both read this table.
const SORTS: &[(&str, CaseSort)] = &[
    ("updated_desc", CaseSort::UpdatedDesc),
    ("updated_asc", CaseSort::UpdatedAsc),
    ("next_review", CaseSort::NextReview),
    ("case_number", CaseSort::CaseNumber),
];

/// The schema of `sort`: the names in [`SORTS`].
pub struct CaseSortParam;

impl utoipa::PartialSchema for CaseSortParam {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(SORTS.iter().map(|(n, _)| *n)))
            .default(Some("updated_desc".into()))
            .into()
    }
}

impl utoipa::ToSchema for CaseSortParam {}

/// Parses the case list query; unknown parameters and bad values are refused by name.
fn list_params(q: &HashMap<String, String>) -> AppResult<CaseListParams> {
    if let Some(k) = q.keys().find(|k| !LIST_PARAMS.contains(&k.as_str())) {
        return Err(AppError::bad_field(
            k.clone(),
            format!(
                "不明な検索条件「{k}」です（使用できるもの: {}）",
                LIST_PARAMS.join(", ")
            ),
        ));
    }
    let status = match q.get("status") {
        Some(s) if tsunagu_record::CaseStatus::from_code(s).is_none() => {
            return Err(AppError::bad_field(
                "status",
                "status は open, closed, transferred_out のいずれかです",
            ))
        }
        other => other.cloned(),
    };
    let municipality = match q.get("municipality") {
        Some(m) if !tsunagu_record::codes::lgcode_is_valid(m) => {
            return Err(AppError::bad_field(
                "municipality",
                "municipality は6桁の全国地方公共団体コードです",
            ))
        }
        other => other.cloned(),
    };
    let updated_since = match q.get("updated_since") {
        None => None,
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .map(|d| d.timestamp_micros())
                .map_err(|_| {
                    AppError::bad_field(
                        "updated_since",
                        "updated_since は RFC 3339 の日時です（例: 2026-04-01T00:00:00+09:00）",
                    )
                })?,
        ),
    };
    let sort = match q.get("sort") {
        None => CaseSort::UpdatedDesc,
        Some(name) => SORTS
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| *s)
            .ok_or_else(|| {
                AppError::bad_field(
                    "sort",
                    "sort は updated_desc, updated_asc, next_review, case_number のいずれかです",
                )
            })?,
    };
    let cursor = match q.get("cursor") {
        None => None,
        Some(c) => Some(
            decode_cursor(c)
                .filter(|c| c.fits(sort))
                .ok_or_else(|| AppError::bad_field("cursor", "cursor が正しくありません"))?,
        ),
    };
    let limit = match q.get("limit") {
        None => None,
        Some(l) => Some(
            l.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| AppError::bad_field("limit", "limit は正の整数です"))?,
        ),
    };
    Ok(CaseListParams {
        status,
        municipality,
        updated_since,
        sort,
        cursor,
        limit,
    })
}

#[utoipa::path(get, path = "/api/v1/records",
    params(("status" = Option<tsunagu_record::CaseStatus>, Query),
           ("municipality" = Option<String>, Query, pattern = "^[0-9]{6}$", description = "検査数字付きの6桁の全国地方公共団体コード"),
           ("updated_since" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "RFC 3339 の日時"),
           ("sort" = Option<CaseSortParam>, Query), ("cursor" = Option<String>, Query, description = "前のページの `next_cursor`"),
           ("limit" = Option<i64>, Query, minimum = 1, description = "1ページの件数（上限を超える値は上限になります）")),
    responses((status = 200, description = "ケース一覧", body = CaseList),
        (status = 400, description = "不明な、または正しくない検索条件（`fields` に名前）", body = ApiError),
        (status = 403, description = "この利用者はケース一覧を使えません", body = ApiError)))]
pub async fn list_cases(
    State(s): State<AppState>,
    v: Viewer,
    Query(q): Query<HashMap<String, String>>,
) -> AppResult<Json<CaseList>> {
    Ok(Json(s.list_cases(&v, list_params(&q)?).await?))
}

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

fn int_param(q: &HashMap<String, String>, key: &str, default: i64) -> AppResult<i64> {
    match q.get(key) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| AppError::bad_field(key, format!("{key} は整数です"))),
    }
}

#[utoipa::path(get, path = "/api/v1/notifications",
    params(("after" = Option<i64>, Query, description = "このIDより後の通知"), ("unread" = Option<bool>, Query, description = "`true`: 未読のみ"),
           ("limit" = Option<i64>, Query, description = "件数（1から上限までに丸めます）")),
    responses((status = 200, description = "通知の一覧", body = NotificationList),
        (status = 400, description = "正しくない条件（`fields` に名前）", body = ApiError)))]
pub async fn notifications(
    State(s): State<AppState>,
    v: Viewer,
    Query(q): Query<HashMap<String, String>>,
) -> AppResult<Json<NotificationList>> {
    let after = int_param(&q, "after", 0)?;
    let limit = int_param(&q, "limit", 100)?;
    let unread = match q.get("unread").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(AppError::bad_field(
                "unread",
                "unread は true または false です",
            ))
        }
    };
    Ok(Json(s.notifications(&v, after, unread, limit).await?))
}

#[utoipa::path(post, path = "/api/v1/notifications/{id}/read", params(("id" = i64, Path, minimum = 1, description = "通知のID（正の整数）")),
    responses((status = 204, description = "既読/未読にしました"),
        (status = 404, description = "通知が見つかりません", body = ApiError)))]
pub async fn mark_read(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    s.mark_notification(&v, record_id(&id)?, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/notifications/{id}/unread", params(("id" = i64, Path, minimum = 1, description = "通知のID（正の整数）")),
    responses((status = 204, description = "既読/未読にしました"),
        (status = 404, description = "通知が見つかりません", body = ApiError)))]
pub async fn mark_unread(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    s.mark_notification(&v, record_id(&id)?, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Server-sent events: what was missed since `Last-Event-ID` first, then new entries as they
/// commit. Subscribing before reading the backlog means nothing falls between the two.
#[utoipa::path(get, path = "/api/v1/notifications/stream",
    params(("Last-Event-ID" = Option<i64>, Header, description = "最後に受け取った通知のID（`last_event_id` より優先。整数でなければ無視します）"),
           ("last_event_id" = Option<i64>, Query, description = "最後に受け取った通知のID")),
    responses((status = 200, description = "通知の Server-Sent Events（event: notification, data: Notification）", content_type = "text/event-stream"),
        (status = 400, description = "正しくない last_event_id", body = ApiError)))]
pub async fn stream(
    State(s): State<AppState>,
    v: Viewer,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> AppResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let header_id = headers
        .get("last-event-id")
        .and_then(|h| h.to_str().ok())
        .and_then(|s| s.trim().parse::<i64>().ok());
    let mut last = match header_id {
        Some(id) => id,
        None => int_param(&q, "last_event_id", 0)?,
    };
    let mut rx = s.hub.subscribe();
    let org = v.org.id.clone();
    let backlog = s.store.notifications(&org, last, false, 1000).await?;
    let mut recheck = tokio::time::interval(Duration::from_secs(
        s.config.auth.stream_recheck_secs.max(1),
    ));
    recheck.tick().await; // the first tick is immediate; the session was just checked
    let stream = async_stream::stream! {
        let mut pending = backlog;
        loop {
            for n in pending.drain(..) {
                if n.id > last {
                    last = n.id;
                    yield Ok(event(&s, &n));
                }
            }
            let received = tokio::select! {
                r = rx.recv() => r,
                _ = s.hub.closed() => break,
                _ = recheck.tick() => {
                    match s.session_is_live(&v.token_hash).await {
                        Ok(true) => continue,
                        Ok(false) => break,
                        Err(e) => { tracing::warn!(error = ?e, "event stream session check failed"); break; }
                    }
                }
            };
            match received {
                Ok(n) if n.org_id == org && n.id > last => pending.push(n),
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    // Fell behind the hub: the inbox has everything.
                    match s.store.notifications(&org, last, false, 1000).await {
                        Ok(rows) => pending = rows,
                        Err(e) => { tracing::warn!(error = %e, "event stream re-read failed"); break; }
                    }
                }
                Err(RecvError::Closed) => break,
            }
        }
    };
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn event(s: &AppState, n: &crate::storage::NotificationRow) -> Event {
    let json = serde_json::to_string(&s.notification(n)).expect("plain data");
    Event::default()
        .id(n.id.to_string())
        .event("notification")
        .data(json)
}

/// How long `/healthz` waits for the database before answering 503.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);

pub async fn health(State(s): State<AppState>) -> impl IntoResponse {
    match tokio::time::timeout(HEALTH_TIMEOUT, s.store.audit_heads()).await {
        Ok(Ok(_)) => (StatusCode::OK, "ok"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable"),
    }
}
