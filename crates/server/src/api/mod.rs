//! The HTTP API (`/api/v1`): the router of every area's routes (`<area>/routes.rs`), and the
//! layers every request passes through (request id, tracing without personal data, body limit,
//! timeout, compression, ETag).

use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::{auth, intake, notify, records, search, transfers};

use crate::error::AppError;
use crate::state::AppState;

pub mod extract;
mod openapi;
pub mod rate_limit;

pub use openapi::ApiDoc;

pub fn router(state: AppState) -> Router {
    let limits = state.config.limits.clone();
    let api = Router::new()
        .route(
            "/auth/login",
            rate_limit::limit_login(post(auth::routes::login), &limits),
        )
        .route("/auth/logout", post(auth::routes::logout))
        .route("/me", get(auth::routes::me))
        .route(
            "/records",
            get(records::routes::list_cases).post(records::routes::create_record),
        )
        .route(
            "/records/{id}",
            get(records::routes::get_record).put(records::routes::update_record),
        )
        .route(
            "/records/{id}/restrictions",
            put(records::routes::set_restrictions),
        )
        .route(
            "/records/{id}/versions",
            get(records::routes::list_versions),
        )
        .route(
            "/records/{id}/lists/{list}",
            post(records::routes::change_list),
        )
        .route("/records/{id}/views", get(records::routes::record_views))
        .route("/records/{id}/intakes", get(intake::routes::record_intakes))
        .route(
            "/records/{id}/transfers",
            post(transfers::routes::offer_transfer),
        )
        .route("/transfers", get(transfers::routes::list_transfers))
        .route("/transfers/{id}", get(transfers::routes::get_transfer))
        .route(
            "/transfers/{id}/confirm",
            post(transfers::routes::confirm_transfer),
        )
        .route(
            "/transfers/{id}/decline",
            post(transfers::routes::decline_transfer),
        )
        .route(
            "/transfers/{id}/withdraw",
            post(transfers::routes::withdraw_transfer),
        )
        .route(
            "/intakes",
            get(intake::routes::list_intakes).post(intake::routes::create_intake),
        )
        .route(
            "/intakes/{id}",
            get(intake::routes::get_intake).put(intake::routes::update_intake),
        )
        .route("/intakes/{id}/attach", post(intake::routes::attach_intake))
        .route(
            "/intakes/{id}/convert",
            post(intake::routes::convert_intake),
        )
        .route("/intakes/{id}/safety", post(intake::routes::confirm_safety))
        .route("/search", get(search::routes::search))
        .route("/notifications", get(notify::routes::notifications))
        .route("/notifications/stream", get(notify::routes::stream))
        .route("/notifications/{id}/read", post(notify::routes::mark_read))
        .route(
            "/notifications/{id}/unread",
            post(notify::routes::mark_unread),
        )
        .route("/openapi.json", get(|| async { Json(openapi::document()) }))
        .fallback(|| async { AppError::NotFound("そのAPIはありません".into()) });
    let api = rate_limit::limit_api(api, &limits);

    let circuit_state = state.clone();
    let x_request_id = header::HeaderName::from_static("x-request-id");
    let body_limit = limits.body_bytes;
    let timeout = Duration::from_secs(limits.request_timeout_secs);
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(health))
        .with_state(state)
        .layer(middleware::from_fn(etag))
        .layer(middleware::from_fn(refuse_forbidden_query_text))
        .layer(middleware::from_fn(move |req: Request, next: Next| db_circuit(circuit_state.clone(), req, next)))
        .layer(middleware::from_fn(move |req: Request, next: Next| time_limit(timeout, req, next)))
        .layer(middleware::from_fn(move |req: Request, next: Next| refuse_declared_oversize(body_limit, req, next)))
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        // Inside compression (it reads the plain body), outside everything that answers errors.
        .layer(middleware::from_fn(request_id_in_errors))
        // gzip's fastest level: records are a few KB of JSON, which it still shrinks several
        // times, at a fraction of the default level's CPU per request.
        .layer(CompressionLayer::new().quality(tower_http::CompressionLevel::Fastest))
        // Spans carry method, route, status and request id: never bodies or query strings.
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
        .layer(middleware::from_fn(drop_unfit_request_id))
}

/// How long `/healthz` waits for the database before answering 503.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);

pub async fn health(State(s): State<AppState>) -> impl IntoResponse {
    match tokio::time::timeout(HEALTH_TIMEOUT, s.store.audit_heads()).await {
        Ok(Ok(_)) => (StatusCode::OK, "ok"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable"),
    }
}

/// The longest client `x-request-id` kept.
pub const REQUEST_ID_MAX: usize = 64;

/// A client's `x-request-id` is kept only if it is short and plain (`[A-Za-z0-9._-]`, at most
/// `REQUEST_ID_MAX`): it goes into every log line and back into the answer. Any other is
/// dropped, and the request gets a fresh UUID like one that sent none.
async fn drop_unfit_request_id(mut req: Request, next: Next) -> Response {
    let fit = |v: &HeaderValue| {
        let b = v.as_bytes();
        !b.is_empty()
            && b.len() <= REQUEST_ID_MAX
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(c))
    };
    let headers = req.headers_mut();
    let all: Vec<HeaderValue> = headers.get_all("x-request-id").iter().cloned().collect();
    if all.len() > 1 || all.first().is_some_and(|v| !fit(v)) {
        headers.remove("x-request-id");
    }
    next.run(req).await
}

/// Whether the database is known to be unreachable. Set by an answer that found it so; while
/// set, requests are answered 503 at once instead of each waiting for the pool's acquire
/// timeout, and one task probes the database (on a connection of its own, so a busy pool does
/// not count) until it answers, which clears it.
#[derive(Debug, Default)]
pub struct DbCircuit {
    open: std::sync::atomic::AtomicBool,
}

/// How often the database is probed while it is unreachable, and how long one probe may take.
const PROBE_EVERY: Duration = Duration::from_millis(250);
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

impl DbCircuit {
    pub fn is_open(&self) -> bool {
        self.open.load(std::sync::atomic::Ordering::Acquire)
    }

    fn trip(self: &std::sync::Arc<Self>, store: std::sync::Arc<dyn crate::storage::Storage>) {
        use std::sync::atomic::Ordering;
        if self.open.swap(true, Ordering::AcqRel) {
            return; // a probe is already running
        }
        tracing::warn!("the database is unreachable: answering 503 until it answers again");
        let circuit = self.clone();
        tokio::spawn(async move {
            loop {
                if let Ok(Ok(())) = tokio::time::timeout(PROBE_TIMEOUT, store.probe()).await {
                    circuit.open.store(false, Ordering::Release);
                    tracing::info!("the database answers again");
                    return;
                }
                tokio::time::sleep(PROBE_EVERY).await;
            }
        });
    }
}

async fn db_circuit(state: AppState, req: Request, next: Next) -> Response {
    // `/healthz` makes its own bounded check.
    if state.db_circuit.is_open() && req.uri().path() != "/healthz" {
        return AppError::Unavailable.into_response();
    }
    let resp = next.run(req).await;
    if resp
        .extensions()
        .get::<crate::error::DatabaseUnreachable>()
        .is_some()
    {
        state.db_circuit.trip(state.store.clone());
    }
    resp
}

/// Every query parameter, name and value, is one line of text: one holding a control character
/// (or another character no field accepts) is refused by name before any handler sees it. A
/// parameter given twice is refused too: handlers read one value per name, and which of two
/// they took would be a guess.
async fn refuse_forbidden_query_text(req: Request, next: Next) -> Response {
    // Decoded as the handlers' `Query` decodes it; a query that does not decode is theirs to
    // refuse.
    if let Ok(axum::extract::Query(pairs)) =
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(req.uri())
    {
        for (k, v) in &pairs {
            // A bad name is reported as `query`: the name itself is what cannot be shown.
            let checked =
                extract::single_line("query", k).and_then(|()| extract::single_line(k, v));
            if let Err(e) = checked {
                return e.into_response();
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (k, _) in &pairs {
            if !seen.insert(k.as_str()) {
                return AppError::bad_field(
                    k.clone(),
                    format!("条件「{k}」が2回以上指定されています（1回だけ指定してください）"),
                )
                .into_response();
            }
        }
    }
    next.run(req).await
}

/// A body whose declared Content-Length is over the limit is refused before any of it is read,
/// so a client cannot hold a connection open by promising a huge body it never sends.
/// (`DefaultBodyLimit` still catches chunked bodies as they arrive.)
async fn refuse_declared_oversize(limit: usize, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 => AppError::PayloadTooLarge.into_response(),
        _ => next.run(req).await,
    }
}

/// A request that takes too long is answered with a JSON error (the handler's future is
/// dropped, which rolls back an open transaction). For the event stream only the answer's
/// head is timed, not the stream.
async fn time_limit(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => AppError::Timeout.into_response(),
    }
}

/// Error answers carry the request id in their body too, so a user can quote it to operators
/// (it is also in the `x-request-id` header and in the server's log line).
async fn request_id_in_errors(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let resp = next.run(req).await;
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let Some(id) = id.filter(|_| {
        is_json && (resp.status().is_client_error() || resp.status().is_server_error())
    }) else {
        return resp;
    };
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = body.collect().await.map(|b| b.to_bytes()) else {
        return AppError::Internal(anyhow::anyhow!("error body unreadable")).into_response();
    };
    let out = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(mut m)) => {
            m.insert("request_id".into(), serde_json::Value::String(id));
            serde_json::to_vec(&m).unwrap_or_else(|_| bytes.to_vec())
        }
        _ => bytes.to_vec(),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(out))
}

/// ETag on successful JSON GETs, and 304 when the client already has that body.
async fn etag(req: Request, next: Next) -> Response {
    let is_get = req.method() == Method::GET;
    let if_none_match = req.headers().get(header::IF_NONE_MATCH).cloned();
    let res = next.run(req).await;
    let json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !is_get || !json || res.status() != StatusCode::OK {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let tag = format!("\"{}\"", hex::encode(&Sha256::digest(&bytes)[..16]));
    let tag_value = HeaderValue::from_str(&tag).expect("hex is a valid header value");
    parts.headers.insert(header::ETAG, tag_value.clone());
    parts.headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    if if_none_match.is_some_and(|v| {
        v.as_bytes()
            .split(|b| *b == b',')
            .any(|t| t.trim_ascii() == tag.as_bytes())
    }) {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::empty());
    }
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use tower::ServiceExt;

    use super::*;

    async fn slow() -> &'static str {
        tokio::time::sleep(Duration::from_secs(5)).await;
        "late"
    }

    fn app() -> Router {
        Router::new()
            .route("/slow", get(slow))
            .route(
                "/missing",
                get(|| async { AppError::NotFound("ありません".into()) }),
            )
            .layer(middleware::from_fn(|req: Request, next: Next| {
                time_limit(Duration::from_millis(50), req, next)
            }))
            .layer(middleware::from_fn(request_id_in_errors))
    }

    async fn json(resp: Response) -> serde_json::Value {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn a_slow_request_gets_a_json_timeout_with_its_request_id() {
        let req = Request::get("/slow")
            .header("x-request-id", "req-1")
            .body(Body::empty())
            .unwrap();
        let resp = app().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        let v = json(resp).await;
        assert_eq!(v["code"], "timeout");
        assert_eq!(v["request_id"], "req-1");
        assert!(v["message"].as_str().unwrap().contains("時間内"));
    }

    #[tokio::test]
    async fn error_bodies_carry_the_request_id() {
        let req = Request::get("/missing")
            .header("x-request-id", "req-2")
            .body(Body::empty())
            .unwrap();
        let resp = app().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert_eq!(json(resp).await["request_id"], "req-2");
    }
}
