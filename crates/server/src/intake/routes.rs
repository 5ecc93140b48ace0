//! The routes of intakes: HTTP in, `intake/service.rs`, HTTP out.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use tsunagu_record::api::ApiError;
use tsunagu_record::intake::{
    AttachIntake, ConfirmSafety, IntakeInput, IntakeList, IntakeView, UpdateIntake,
};

use crate::api::extract::{record_id, JsonBody};
use crate::error::{AppError, AppResult};
use crate::intake::service::{ConvertIntake, Converted};
use crate::state::{AppState, Viewer};

const LIST_PARAMS: [&str; 2] = ["filter", "limit"];

#[utoipa::path(post, path = "/api/v1/intakes", request_body = IntakeInput,
    responses((status = 201, description = "通告を受理しました（この時点で保存済み）", body = IntakeView),
        (status = 403, description = "この利用者は通告を受理できません", body = ApiError),
        (status = 422, description = "入力内容の誤り（`fields` に項目ごと）", body = ApiError)))]
pub async fn create_intake(
    State(s): State<AppState>,
    v: Viewer,
    JsonBody(body): JsonBody<IntakeInput>,
) -> AppResult<impl IntoResponse> {
    let view = s.create_intake(&v, body).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(get, path = "/api/v1/intakes",
    params(("filter" = Option<String>, Query, description = "`unconfirmed`: 安全確認がまだの通告を期限の早い順に（既定）。`all`: すべてを新しい順に"),
        ("limit" = Option<i64>, Query, minimum = 1, description = "件数（既定 50）")),
    responses((status = 200, description = "自機関が受理した通告", body = IntakeList),
        (status = 400, description = "不明な条件または不正な値", body = ApiError),
        (status = 403, description = "この利用者は通告を閲覧できません", body = ApiError)))]
pub async fn list_intakes(
    State(s): State<AppState>,
    v: Viewer,
    Query(q): Query<HashMap<String, String>>,
) -> AppResult<Json<IntakeList>> {
    if let Some(k) = q.keys().find(|k| !LIST_PARAMS.contains(&k.as_str())) {
        return Err(AppError::bad_field(
            k.clone(),
            format!(
                "不明な条件「{k}」です（使用できるもの: {}）",
                LIST_PARAMS.join(", ")
            ),
        ));
    }
    let unconfirmed_only = match q.get("filter").map(String::as_str) {
        None | Some("unconfirmed") => true,
        Some("all") => false,
        Some(_) => {
            return Err(AppError::bad_field(
                "filter",
                "filter は unconfirmed または all です",
            ))
        }
    };
    let limit = match q.get("limit") {
        None => 50,
        Some(l) => match l.parse::<i64>() {
            Ok(n) if n >= 1 => n,
            _ => return Err(AppError::bad_field("limit", "limit は1以上の整数です")),
        },
    };
    Ok(Json(s.list_intakes(&v, unconfirmed_only, limit).await?))
}

#[utoipa::path(get, path = "/api/v1/intakes/{id}", params(("id" = i64, Path, minimum = 1, description = "通告のID（正の整数）")),
    responses((status = 200, description = "通告（受理機関、または紐づく記録のケース記録を閲覧できる機関）", body = IntakeView),
        (status = 404, description = "通告が見つからないか、閲覧する権限がありません", body = ApiError)))]
pub async fn get_intake(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
) -> AppResult<Json<IntakeView>> {
    Ok(Json(s.get_intake(&v, record_id(&id)?).await?))
}

#[utoipa::path(put, path = "/api/v1/intakes/{id}", params(("id" = i64, Path, minimum = 1, description = "通告のID（正の整数）")), request_body = UpdateIntake,
    responses((status = 200, description = "通告を修正しました", body = IntakeView),
        (status = 403, description = "修正できるのは受理した機関のみです", body = ApiError),
        (status = 404, description = "通告が見つからないか、閲覧する権限がありません", body = ApiError),
        (status = 409, description = "版の競合、または処理済みの通告", body = ApiError),
        (status = 422, description = "入力内容の誤り（`fields` に項目ごと）", body = ApiError)))]
pub async fn update_intake(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<UpdateIntake>,
) -> AppResult<Json<IntakeView>> {
    Ok(Json(s.update_intake(&v, record_id(&id)?, req).await?))
}

#[utoipa::path(post, path = "/api/v1/intakes/{id}/attach", params(("id" = i64, Path, minimum = 1, description = "通告のID（正の整数）")), request_body = AttachIntake,
    responses((status = 200, description = "自機関の記録に追加しました（`attached`）、または他機関の記録の所有機関へ送付しました（`forwarded`）", body = IntakeView),
        (status = 403, description = "処理できるのは受理した機関のみです", body = ApiError),
        (status = 404, description = "通告が見つからないか、閲覧する権限がありません", body = ApiError),
        (status = 409, description = "版の競合、または処理済みの通告", body = ApiError),
        (status = 422, description = "指定された記録が見つかりません", body = ApiError)))]
pub async fn attach_intake(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<AttachIntake>,
) -> AppResult<Json<IntakeView>> {
    Ok(Json(s.attach_intake(&v, record_id(&id)?, req).await?))
}

#[utoipa::path(post, path = "/api/v1/intakes/{id}/convert", params(("id" = i64, Path, minimum = 1, description = "通告のID（正の整数）")), request_body = ConvertIntake,
    responses((status = 201, description = "通告から新しい記録を作成しました（記録と通告の紐づけは同時に）", body = Converted),
        (status = 403, description = "処理できるのは受理した機関のみです", body = ApiError),
        (status = 404, description = "通告が見つからないか、閲覧する権限がありません", body = ApiError),
        (status = 409, description = "版の競合、または処理済みの通告", body = ApiError),
        (status = 422, description = "記録の入力内容の誤り（`fields` に項目ごと）", body = ApiError)))]
pub async fn convert_intake(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<ConvertIntake>,
) -> AppResult<impl IntoResponse> {
    let out = s.convert_intake(&v, record_id(&id)?, req).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(post, path = "/api/v1/intakes/{id}/safety", params(("id" = i64, Path, minimum = 1, description = "通告のID（正の整数）")), request_body = ConfirmSafety,
    responses((status = 200, description = "安全確認を記録しました", body = IntakeView),
        (status = 404, description = "通告が見つからないか、閲覧する権限がありません", body = ApiError),
        (status = 409, description = "版の競合、または記録済み", body = ApiError),
        (status = 422, description = "入力内容の誤り（`fields` に項目ごと）", body = ApiError)))]
pub async fn confirm_safety(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<ConfirmSafety>,
) -> AppResult<Json<IntakeView>> {
    Ok(Json(s.confirm_safety(&v, record_id(&id)?, req).await?))
}

#[utoipa::path(get, path = "/api/v1/records/{id}/intakes", params(("id" = i64, Path, minimum = 1, description = "記録のID（正の整数）")),
    responses((status = 200, description = "記録に紐づく通告のうち閲覧できるもの（受理の古い順）", body = IntakeList),
        (status = 404, description = "記録が見つからないか、閲覧する権限がありません", body = ApiError)))]
pub async fn record_intakes(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
) -> AppResult<Json<IntakeList>> {
    Ok(Json(s.record_intakes(&v, record_id(&id)?).await?))
}
