//! Request extractors: the caller from the bearer token, and JSON bodies whose problems are
//! reported with the field path in Japanese.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::AppError;
use crate::service::{AppState, Viewer};

impl FromRequestParts<AppState> for Viewer {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|h| h.to_str().ok());
        let token = header
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty());
        match token {
            Some(t) => state.authenticate(t).await,
            None => Err(AppError::Unauthenticated {
                code: "unauthenticated",
                message: "ログインしてください（Authorization ヘッダーにトークンがありません）"
                    .into(),
            }),
        }
    }
}

/// A JSON body: `application/json` required, unknown fields refused, errors name the field.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                let mime = v
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                mime == "application/json"
            })
            .unwrap_or(false);
        if !is_json {
            return Err(AppError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::PayloadTooLarge
            } else {
                AppError::bad("bad_body", "リクエスト本文を読み取れませんでした")
            }
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses JSON, translating serde's first error into a field path and a Japanese message.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let detail = inner.to_string();
        let what = if inner.is_syntax() || inner.is_eof() {
            return AppError::bad(
                "malformed_json",
                format!(
                    "JSONの形式が正しくありません（{}行{}列）",
                    inner.line(),
                    inner.column()
                ),
            );
        } else if detail.starts_with("unknown field") {
            "不明な項目です"
        } else if detail.starts_with("missing field") {
            "必須の項目がありません"
        } else if detail.starts_with("invalid type") {
            "値の型が正しくありません"
        } else if detail.starts_with("unknown variant") {
            "コード表にない値です"
        } else {
            "値が正しくありません"
        };
        let field = if path == "." { String::new() } else { path };
        AppError::BadRequest {
            code: "invalid_json_value",
            message: format!(
                "{}: {what}（{detail}）",
                if field.is_empty() { "本文" } else { &field }
            ),
            field: Some(field),
        }
    })
}
