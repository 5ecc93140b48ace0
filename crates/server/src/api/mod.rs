//! The HTTP API (`/api/v1`): routes, and the layers every request passes through (request id,
//! tracing without personal data, body limit, timeout, compression, ETag).

use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

use crate::error::AppError;
use crate::service::AppState;

pub mod extract;
pub mod handlers;
mod openapi;

pub use openapi::ApiDoc;

pub fn router(state: AppState) -> Router {
    let limits = state.config.limits.clone();
    let api = Router::new()
        .route("/auth/login", post(handlers::login))
        .route("/auth/logout", post(handlers::logout))
        .route("/me", get(handlers::me))
        .route(
            "/records",
            get(handlers::list_cases).post(handlers::create_record),
        )
        .route(
            "/records/{id}",
            get(handlers::get_record).put(handlers::update_record),
        )
        .route(
            "/records/{id}/restrictions",
            put(handlers::set_restrictions),
        )
        .route("/records/{id}/versions", get(handlers::list_versions))
        .route("/records/{id}/views", get(handlers::record_views))
        .route("/search", get(handlers::search))
        .route("/notifications", get(handlers::notifications))
        .route("/notifications/stream", get(handlers::stream))
        .route("/notifications/{id}/read", post(handlers::mark_read))
        .route("/notifications/{id}/unread", post(handlers::mark_unread))
        .route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
        .fallback(|| async { AppError::NotFound("そのAPIはありません".into()) });

    let x_request_id = header::HeaderName::from_static("x-request-id");
    let body_limit = limits.body_bytes;
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(handlers::health))
        .with_state(state)
        .layer(middleware::from_fn(etag))
        .layer(CompressionLayer::new())
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(middleware::from_fn(move |req: Request, next: Next| refuse_declared_oversize(body_limit, req, next)))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(limits.request_timeout_secs),
        ))
        // Spans carry method, route, status and request id: never bodies or query strings.
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
}

/// ETag on successful JSON GETs, and 304 when the client already has that body.
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
