//! The routes of logging in and out: HTTP in, `auth/service.rs`, HTTP out.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use tsunagu_record::api::{ApiError, LoginRequest, LoginResponse, Me};

use crate::api::extract::JsonBody;
use crate::error::AppResult;
use crate::state::{AppState, Viewer};

#[utoipa::path(post, path = "/api/v1/auth/login", request_body = LoginRequest, security(()),
    responses((status = 200, description = "ログインしました", body = LoginResponse),
        (status = 401, description = "ログインID、パスワードまたはワンタイムコードが正しくありません", body = ApiError),
        (status = 423, description = "失敗が続いたためロック中", body = ApiError)))]
pub async fn login(
    State(s): State<AppState>,
    JsonBody(req): JsonBody<LoginRequest>,
) -> AppResult<Json<LoginResponse>> {
    // Refused before the store sees them: PostgreSQL cannot even compare a text holding NUL.
    crate::api::extract::single_line("login", &req.login)?;
    crate::api::extract::single_line("otp", &req.otp)?;
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
