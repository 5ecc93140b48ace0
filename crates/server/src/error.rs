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
    /// A save against a stale version that could not be merged: the record now and the
    /// fields both sides changed.
    Conflict(Box<FullRecord>, Vec<tsunagu_record::merge::FieldConflict>),
    /// The request does not fit the current state of what it changes (an intake changed
    /// since it was read, already linked, already confirmed): 409 with a code saying which.
    State {
        code: &'static str,
        message: String,
    },
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

/// Whether a database error means the database could not be reached (or dropped the
/// connection), rather than that the request or the data is wrong: the server's fault, answered
/// 503 with `Retry-After`, never 500.
pub fn is_connection_loss(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|c| {
            // Class 08: connection exception. 57P01–57P03: the server is shutting down, was
            // restarted, or is starting up. 53300: too many connections.
            c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AppError::NotFound("記録が見つかりません".into()),
            StoreError::Db(ref d) if is_connection_loss(d) => AppError::Unavailable,
            other => AppError::Internal(other.into()),
        }
    }
}

/// Whether an error that reached `Internal` is a lost database connection underneath.
fn is_lost_connection(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<sqlx::Error>().is_some_and(is_connection_loss)
            || matches!(c.downcast_ref::<StoreError>(), Some(StoreError::Db(d)) if is_connection_loss(d))
    })
}

/// Marks an answer given because the database could not be reached, for `api::db_circuit`.
#[derive(Debug, Clone, Copy)]
pub struct DatabaseUnreachable;

/// Seconds a client is asked to wait before retrying when the database is unreachable.
pub const RETRY_AFTER_SECS: u64 = 5;

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
        conflicts: Vec::new(),
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let unreachable = matches!(self, AppError::Unavailable);
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
            AppError::Conflict(current, conflicts) => {
                let mut e = body(
                    "version_conflict",
                    format!(
                        "他の職員がこの記録を更新しました（現在の版: {}）。同じ項目が両方で変更されています（{}）。項目ごとに内容を確認して保存してください",
                        current.meta.version,
                        conflicts.iter().map(|c| c.field.as_str()).collect::<Vec<_>>().join("、")
                    ),
                );
                e.current = Some(current);
                e.conflicts = conflicts;
                (StatusCode::CONFLICT, e)
            }
            AppError::State { code, message } => (StatusCode::CONFLICT, body(code, message)),
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
            AppError::Internal(e) if is_lost_connection(&e) => {
                return AppError::Unavailable.into_response();
            }
            AppError::Internal(e) => {
                // The cause goes to the log (it holds no personal data: store and SQL errors);
                // the user gets a plain message.
                tracing::error!(error = %e, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, body("internal", "サーバー内部でエラーが発生しました"))
            }
        };
        let mut resp = (status, Json(err)).into_response();
        if unreachable {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(RETRY_AFTER_SECS),
            );
            resp.extensions_mut().insert(DatabaseUnreachable);
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    /// A PostgreSQL error with a given SQLSTATE, as sqlx reports one.
    #[derive(Debug)]
    struct PgLike(&'static str);

    impl std::fmt::Display for PgLike {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "SQLSTATE {}", self.0)
        }
    }

    impl std::error::Error for PgLike {}

    impl sqlx::error::DatabaseError for PgLike {
        fn message(&self) -> &str {
            "test"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn status_of(e: AppError) -> (StatusCode, Option<String>) {
        let r = e.into_response();
        let retry = r
            .headers()
            .get(axum::http::header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_string());
        (r.status(), retry)
    }

    #[test]
    fn a_lost_connection_is_503_with_retry_after_and_other_database_errors_stay_500() {
        let unavailable = (StatusCode::SERVICE_UNAVAILABLE, Some("5".to_string()));
        for code in [
            "08006", "08003", "08001", "57P01", "57P02", "57P03", "53300",
        ] {
            let e = StoreError::Db(sqlx::Error::Database(Box::new(PgLike(code))));
            assert_eq!(status_of(e.into()), unavailable, "SQLSTATE {code}");
            // Also when it reaches the answer wrapped in anyhow.
            let e = StoreError::Db(sqlx::Error::Database(Box::new(PgLike(code))));
            assert_eq!(
                status_of(AppError::Internal(anyhow::Error::from(e).context("a step"))),
                unavailable,
                "SQLSTATE {code} inside anyhow"
            );
        }
        for e in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
        ] {
            assert_eq!(status_of(StoreError::Db(e).into()), unavailable);
        }
        for code in ["23505", "22021", "42P01"] {
            let e = StoreError::Db(sqlx::Error::Database(Box::new(PgLike(code))));
            assert_eq!(
                status_of(e.into()),
                (StatusCode::INTERNAL_SERVER_ERROR, None),
                "SQLSTATE {code}"
            );
        }
    }
}
