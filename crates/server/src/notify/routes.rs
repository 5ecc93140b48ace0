//! The routes of an organisation's inbox: listing, marking read or unread, and the event
//! stream (server-sent events) fed by the hub.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;
use tsunagu_record::api::{ApiError, NotificationList};

use crate::api::extract::record_id;
use crate::error::{AppError, AppResult};
use crate::state::{AppState, Viewer};

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
                    yield Ok(event(&s, &v, &n).await);
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

async fn event(s: &AppState, v: &Viewer, n: &crate::storage::NotificationRow) -> Event {
    // A failed lookup sends the entry without its subject rather than dropping it.
    let subjects = match s.subjects(v, std::slice::from_ref(n)).await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = ?e, "notification subject lookup failed");
            Default::default()
        }
    };
    let json = serde_json::to_string(&s.notification(n, &subjects)).expect("plain data");
    Event::default()
        .id(n.id.to_string())
        .event("notification")
        .data(json)
}
