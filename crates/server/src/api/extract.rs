//! Request extractors: the caller from the bearer token, and JSON bodies whose problems are
//! reported with the field path in Japanese.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::{AppError, AppResult};
use crate::state::{AppState, Viewer};

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

/// Parses JSON, translating serde's first error into a field path and a Japanese message. One
/// document only: anything after it but whitespace is refused. Every string in it is checked for
/// characters no field may hold (`forbidden_text`); which fields may hold line breaks is the
/// business of each field's own validation.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let value: T = parse_one_document(bytes)?;
    // A second pass over the document as plain JSON, so that every string is checked whatever
    // type it ends up in (logins, passwords, restriction reasons, record fields).
    if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(bytes) {
        forbidden_text(&doc, &mut String::new())?;
    }
    Ok(value)
}

fn parse_one_document<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = parse_with_path(de)?;
    de.end().map_err(|e| {
        AppError::bad(
            "malformed_json",
            format!(
                "JSONの後に余分なデータがあります（{}行{}列）。本文はJSONの値1つにしてください",
                e.line(),
                e.column()
            ),
        )
    })?;
    Ok(value)
}

/// Refuses a string (or key) anywhere in `v` that holds a character no text field accepts,
/// naming its path.
fn forbidden_text(v: &serde_json::Value, path: &mut String) -> Result<(), AppError> {
    use serde_json::Value;
    let refuse = |path: &str, c: char| {
        let field = if path.is_empty() { "本文" } else { path };
        AppError::BadRequest {
            code: "invalid_character",
            message: format!(
                "{field}: 使用できない文字（制御文字など、U+{:04X}）が含まれています",
                c as u32
            ),
            field: Some(path.to_string()),
        }
    };
    match v {
        Value::String(s) => {
            if let Some(c) = tsunagu_record::validate::forbidden_char(s, true) {
                return Err(refuse(path, c));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                forbidden_text(item, path)?;
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                if let Some(c) = tsunagu_record::validate::forbidden_char(k, false) {
                    return Err(refuse(path, c));
                }
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                forbidden_text(item, path)?;
                path.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

/// A one-line text value (a login, a code, a query parameter): refused by name if it holds a
/// line break, a tab or any other character `forbidden_char` refuses.
pub fn single_line(field: &str, value: &str) -> Result<(), AppError> {
    match tsunagu_record::validate::forbidden_char(value, false) {
        None => Ok(()),
        Some(c) => Err(AppError::BadRequest {
            code: "invalid_character",
            message: format!(
                "{field}: 使用できない文字（制御文字など、U+{:04X}）が含まれています",
                c as u32
            ),
            field: Some(field.to_string()),
        }),
    }
}

/// A path id: a positive integer in its one written form (ASCII digits, no sign, no leading
/// zero), refused by name otherwise, so one record has one URL (`i64::from_str` alone would
/// also take `+13`, which the document does not allow).
pub fn record_id(raw: &str) -> AppResult<i64> {
    Some(raw)
        .filter(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()) && !r.starts_with('0'))
        .and_then(|r| r.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .ok_or_else(|| AppError::bad_field("id", "IDは正の整数で指定してください"))
}

fn parse_with_path<T: DeserializeOwned>(
    de: &mut serde_json::Deserializer<serde_json::de::SliceRead<'_>>,
) -> Result<T, AppError> {
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
