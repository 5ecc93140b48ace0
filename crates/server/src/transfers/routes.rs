//! The routes of transfers: HTTP in, `transfers/service.rs`, HTTP out.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use tsunagu_record::api::ApiError;
use tsunagu_record::transfer::{
    DeclineTransfer, OfferTransfer, TransferBox, TransferList, TransferStatus, TransferView,
};

use crate::api::extract::{record_id, JsonBody};
use crate::error::{AppError, AppResult};
use crate::state::{AppState, Viewer};

const LIST_PARAMS: [&str; 3] = ["box", "status", "limit"];

#[utoipa::path(post, path = "/api/v1/records/{id}/transfers", params(("id" = i64, Path, minimum = 1, description = "移管する記録のID（正の整数）")), request_body = OfferTransfer,
    responses((status = 201, description = "移管を申し出ました（移管先へ通知済み）", body = TransferView),
        (status = 403, description = "移管を申し出られるのは記録の所有機関のみです", body = ApiError),
        (status = 404, description = "記録が見つからないか、閲覧する権限がありません", body = ApiError),
        (status = 409, description = "移管済みの記録（`transferred_out`）、または回答待ちの申出がある記録（`transfer_pending`）", body = ApiError),
        (status = 422, description = "移管先・兄弟姉妹・連絡事項の誤り（`fields` に項目ごと）", body = ApiError)))]
pub async fn offer_transfer(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<OfferTransfer>,
) -> AppResult<impl IntoResponse> {
    let view = s.offer_transfer(&v, record_id(&id)?, req).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(get, path = "/api/v1/transfers",
    params(("box" = Option<TransferBox>, Query, description = "`incoming`: 自機関への申出（受付、既定）。`outgoing`: 自機関からの申出（送付）"),
        ("status" = Option<TransferStatus>, Query, description = "この状態の移管のみ"),
        ("limit" = Option<i64>, Query, minimum = 1, description = "件数（既定 50、上限を超える値は上限になります）")),
    responses((status = 200, description = "移管の一覧（新しい順、状態と経過時間つき）", body = TransferList),
        (status = 403, description = "この利用者は記録の移管を扱えません", body = ApiError)))]
pub async fn list_transfers(
    State(s): State<AppState>,
    v: Viewer,
    Query(q): Query<HashMap<String, String>>,
) -> AppResult<Json<TransferList>> {
    if let Some(k) = q.keys().find(|k| !LIST_PARAMS.contains(&k.as_str())) {
        return Err(AppError::bad_field(
            k.clone(),
            format!(
                "不明な条件「{k}」です（使用できるもの: {}）",
                LIST_PARAMS.join(", ")
            ),
        ));
    }
    let which = match q.get("box") {
        None => TransferBox::Incoming,
        Some(b) => TransferBox::from_code(b)
            .ok_or_else(|| AppError::bad_field("box", "box は incoming または outgoing です"))?,
    };
    let status = match q.get("status") {
        None => None,
        Some(st) => Some(TransferStatus::from_code(st).ok_or_else(|| {
            AppError::bad_field(
                "status",
                "status は pending, confirmed, declined, withdrawn のいずれかです",
            )
        })?),
    };
    let limit = match q.get("limit") {
        None => 50,
        Some(l) => match l.parse::<i64>() {
            Ok(n) if n >= 1 => n,
            _ => return Err(AppError::bad_field("limit", "limit は1以上の整数です")),
        },
    };
    Ok(Json(s.list_transfers(&v, which, status, limit).await?))
}

#[utoipa::path(get, path = "/api/v1/transfers/{id}", params(("id" = i64, Path, minimum = 1, description = "移管のID（正の整数）")),
    responses((status = 200, description = "移管（移管元と移管先のみ）。記録は閲覧区分に応じた表示で、回答待ちの移管先には提供された範囲（`tier: \"transfer\"`）", body = TransferView),
        (status = 404, description = "移管が見つからないか、閲覧する権限がありません", body = ApiError)))]
pub async fn get_transfer(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
) -> AppResult<Json<TransferView>> {
    Ok(Json(s.get_transfer(&v, record_id(&id)?).await?))
}

#[utoipa::path(post, path = "/api/v1/transfers/{id}/confirm", params(("id" = i64, Path, minimum = 1, description = "移管のID（正の整数）")),
    responses((status = 200, description = "受け入れました: 提供された範囲から自機関の記録を登録し（`records[].new_record_id`）、移管元の記録は移管済み（読み取り専用）になりました", body = TransferView),
        (status = 403, description = "受入できるのは移管先の機関のみです", body = ApiError),
        (status = 404, description = "移管が見つからないか、閲覧する権限がありません", body = ApiError),
        (status = 409, description = "回答待ちではない移管（`transfer_decided`）", body = ApiError)))]
pub async fn confirm_transfer(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
) -> AppResult<Json<TransferView>> {
    Ok(Json(s.confirm_transfer(&v, record_id(&id)?).await?))
}

#[utoipa::path(post, path = "/api/v1/transfers/{id}/decline", params(("id" = i64, Path, minimum = 1, description = "移管のID（正の整数）")), request_body = DeclineTransfer,
    responses((status = 200, description = "辞退しました（移管元へ理由とともに通知）", body = TransferView),
        (status = 403, description = "辞退できるのは移管先の機関のみです", body = ApiError),
        (status = 404, description = "移管が見つからないか、閲覧する権限がありません", body = ApiError),
        (status = 409, description = "回答待ちではない移管（`transfer_decided`）", body = ApiError),
        (status = 422, description = "辞退の理由がない、または長すぎる（`fields` に項目）", body = ApiError)))]
pub async fn decline_transfer(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<DeclineTransfer>,
) -> AppResult<Json<TransferView>> {
    Ok(Json(s.decline_transfer(&v, record_id(&id)?, req).await?))
}

#[utoipa::path(post, path = "/api/v1/transfers/{id}/withdraw", params(("id" = i64, Path, minimum = 1, description = "移管のID（正の整数）")),
    responses((status = 200, description = "取り下げました（移管先へ通知）", body = TransferView),
        (status = 403, description = "取下げできるのは移管元の機関のみです", body = ApiError),
        (status = 404, description = "移管が見つからないか、閲覧する権限がありません", body = ApiError),
        (status = 409, description = "回答待ちではない移管（`transfer_decided`）", body = ApiError)))]
pub async fn withdraw_transfer(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
) -> AppResult<Json<TransferView>> {
    Ok(Json(s.withdraw_transfer(&v, record_id(&id)?).await?))
}
