//! Errors as the API returns them: an HTTP status, a stable code and a Japanese message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use tsunagu_record::api::ApiError;
use tsunagu_record::validate::FieldError;
use tsunagu_record::views::FullRecord;

use crate::storage::StoreError;

#[derive(Debug)]
pub enum AppError {
    Unauthenticated {
        code: &'static str,
        message: String,
    },
    LoginFailed,
    Locked {
        minutes: i64,
    },
    Forbidden(String),
    NotFound(String),
    BadRequest {
        code: &'static str,
        message: String,
        field: Option<String>,
    },
    Validation(Vec<FieldError>),
    Conflict(Box<FullRecord>),
    UnsupportedMediaType,
    PayloadTooLarge,
    Unavailable,
    /// Over a per-address rate limit (`[limits]`); try again after that many seconds.
    RateLimited {
        retry_after_secs: u64,
    },
    /// The request took longer than `[limits] request_timeout_secs`.
    Timeout,
    Internal(anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn bad(code: &'static str, message: impl Into<String>) -> Self {
        AppError::BadRequest {
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn bad_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::BadRequest {
            code: "invalid_parameter",
            message: message.into(),
            field: Some(field.into()),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AppError::NotFound("記録が見つかりません".into()),
            StoreError::Db(sqlx::Error::PoolTimedOut) | StoreError::Db(sqlx::Error::Io(_)) => {
                AppError::Unavailable
            }
            other => AppError::Internal(other.into()),
        }
    }
}

impl From<anyhow::Error> for AppError {
    fn from(e: anyhow::Error) -> Self {
        AppError::Internal(e)
    }
}

fn body(code: &str, message: impl Into<String>) -> ApiError {
    ApiError {
        code: code.into(),
        message: message.into(),
        request_id: None,
        fields: Vec::new(),
        current: None,
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, err) = match self {
            AppError::Unauthenticated { code, message } => (StatusCode::UNAUTHORIZED, body(code, message)),
            AppError::LoginFailed => (
                StatusCode::UNAUTHORIZED,
                body("login_failed", "ログインID、パスワードまたはワンタイムコードが正しくありません"),
            ),
            AppError::Locked { minutes } => (
                StatusCode::LOCKED,
                body(
                    "account_locked",
                    format!("ログインの失敗が続いたためアカウントがロックされています。約{minutes}分後に再度お試しいただくか、組織管理者に連絡してください"),
                ),
            ),
            AppError::Forbidden(m) => (StatusCode::FORBIDDEN, body("forbidden", m)),
            AppError::NotFound(m) => (StatusCode::NOT_FOUND, body("not_found", m)),
            AppError::BadRequest { code, message, field } => {
                let mut e = body(code, message.clone());
                if let Some(f) = field {
                    e.fields.push(FieldError::new(f, code, message));
                }
                (StatusCode::BAD_REQUEST, e)
            }
            AppError::Validation(fields) => {
                let mut e = body("validation_failed", format!("入力内容に{}件の誤りがあります", fields.len()));
                e.fields = fields;
                (StatusCode::UNPROCESSABLE_ENTITY, e)
            }
            AppError::Conflict(current) => {
                let mut e = body(
                    "version_conflict",
                    format!("他の職員がこの記録を更新しました（現在の版: {}）。最新の内容を確認してから保存してください", current.meta.version),
                );
                e.current = Some(current);
                (StatusCode::CONFLICT, e)
            }
            AppError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                body("unsupported_media_type", "Content-Type は application/json にしてください"),
            ),
            AppError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                body("payload_too_large", "送信されたデータが大きすぎます"),
            ),
            AppError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                body("unavailable", "データベースに接続できません。しばらくしてから再度お試しください"),
            ),
            AppError::RateLimited { retry_after_secs } => {
                let e = body(
                    "rate_limited",
                    format!("短時間に送信されたリクエストが多すぎます。{retry_after_secs}秒後に再度お試しください"),
                );
                let mut resp = (StatusCode::TOO_MANY_REQUESTS, Json(e)).into_response();
                resp.headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, retry_after_secs.into());
                return resp;
            }
            AppError::Timeout => (
                StatusCode::SERVICE_UNAVAILABLE,
                // A write whose commit had not finished was rolled back; one that had is kept,
                // so the user is asked to look rather than told either way.
                body("timeout", "処理が時間内に終わりませんでした。再読み込みして結果を確認してください"),
            ),
            AppError::Internal(e) => {
                // The cause goes to the log (it holds no personal data: store and SQL errors);
                // the user gets a plain message.
                tracing::error!(error = %e, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, body("internal", "サーバー内部でエラーが発生しました"))
            }
        };
        (status, Json(err)).into_response()
    }
}
