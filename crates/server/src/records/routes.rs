//! The routes of records and case lists: HTTP in, `records/service.rs`, HTTP out, with the
//! parsing of the case list's query string.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use tsunagu_record::api::{
    ApiError, CaseList, ListOp, RecordViewEntry, UpdateRecord, VersionEntry,
};
use tsunagu_record::lists::{ListChange, ListName};
use tsunagu_record::{RecordBody, RecordView, Restrictions};

use crate::api::extract::{parse_json, record_id, JsonBody};
use crate::error::{AppError, AppResult};
use crate::records::service::{decode_cursor, CaseListParams};
use crate::state::{AppState, Viewer};
use crate::storage::CaseSort;

/// Body of `PUT /records/{id}/restrictions`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRestrictions {
    pub version: i64,
    pub restrictions: Restrictions,
}

#[utoipa::path(post, path = "/api/v1/records", request_body = RecordBody,
    responses((status = 201, description = "登録しました（所有機関の表示）", body = RecordView),
        (status = 403, description = "この利用者は記録を登録できません", body = ApiError),
        (status = 422, description = "入力内容の誤り（`fields` に項目ごと）", body = ApiError)))]
pub async fn create_record(
    State(s): State<AppState>,
    v: Viewer,
    JsonBody(body): JsonBody<RecordBody>,
) -> AppResult<impl IntoResponse> {
    let view = s.create_record(&v, body).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(get, path = "/api/v1/records/{id}", params(("id" = i64, Path, minimum = 1, description = "記録のID（正の整数）")),
    responses((status = 200, description = "閲覧区分に応じた記録", body = RecordView),
        (status = 403, description = "運用者は記録を閲覧できません", body = ApiError),
        (status = 404, description = "記録が見つからないか、閲覧する権限がありません", body = ApiError)))]
pub async fn get_record(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
) -> AppResult<Json<RecordView>> {
    Ok(Json(s.get_record(&v, record_id(&id)?).await?))
}

#[utoipa::path(put, path = "/api/v1/records/{id}", params(("id" = i64, Path, minimum = 1, description = "記録のID（正の整数）")), request_body = UpdateRecord,
    responses((status = 200, description = "更新しました。古い版からの保存は、その後の保存と項目ごとに統合します（`Tsunagu-Merged` に相手の変更を残した項目）", body = RecordView,
            headers(("Tsunagu-Merged" = String, description = "相手の変更を残した項目のパス（カンマ区切り、なければ空）"))),
        (status = 403, description = "記録を更新できるのは所有機関のみです", body = ApiError),
        (status = 404, description = "記録が見つからないか、閲覧する権限がありません", body = ApiError),
        (status = 409, description = "同じ項目が両方で変更された競合（`current` に現在の記録、`conflicts` に項目ごとの元・自分・相手の値）", body = ApiError),
        (status = 422, description = "入力内容の誤り（`fields` に項目ごと）", body = ApiError)))]
pub async fn update_record(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<UpdateRecord>,
) -> AppResult<impl IntoResponse> {
    let (view, merged) = s.update_record_merging(&v, record_id(&id)?, req).await?;
    Ok((merged_header(&merged), Json(view)))
}

/// The header of a saved change: the fields where a change saved meanwhile was kept beside
/// this one (ASCII paths; empty when none).
fn merged_header(merged: &[String]) -> [(axum::http::HeaderName, axum::http::HeaderValue); 1] {
    [(
        axum::http::HeaderName::from_static("tsunagu-merged"),
        axum::http::HeaderValue::from_str(&merged.join(", "))
            .unwrap_or_else(|_| axum::http::HeaderValue::from_static("")),
    )]
}

/// The schema of a list operation's `item` and `was`: an entry of the list the path names.
pub struct ListEntry;

impl utoipa::PartialSchema for ListEntry {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::ToSchema as _;
        let mut one = utoipa::openapi::schema::OneOfBuilder::new().description(Some(
            "一覧の項目: guardians は Guardian、household は HouseholdMember、progress は ProgressEntry（author などはサーバーが記録し、送られた値は使いません）、attachments は Attachment、intake_reports は IntakeReport",
        ));
        for name in [
            tsunagu_record::schema::Guardian::name(),
            tsunagu_record::schema::HouseholdMember::name(),
            tsunagu_record::schema::ProgressEntry::name(),
            tsunagu_record::schema::Attachment::name(),
            tsunagu_record::schema::IntakeReport::name(),
        ] {
            one = one.item(utoipa::openapi::Ref::from_schema_name(name));
        }
        one.into()
    }
}

impl utoipa::ToSchema for ListEntry {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use tsunagu_record::schema::*;
        fn add<T: utoipa::ToSchema>(
            out: &mut Vec<(
                String,
                utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
            )>,
        ) {
            out.push((T::name().into(), T::schema()));
            T::schemas(out);
        }
        add::<Guardian>(schemas);
        add::<HouseholdMember>(schemas);
        add::<ProgressEntry>(schemas);
        add::<Attachment>(schemas);
        add::<IntakeReport>(schemas);
    }
}

/// A list operation's body, typed by the list the path names. Read field by field, so that a
/// problem is named by its path (serde names none inside an enum tagged by `op`).
fn list_op<T: serde::de::DeserializeOwned>(body: &serde_json::Value) -> AppResult<ListOp<T>> {
    const OPS: [(&str, &[&str]); 4] = [
        ("add", &["item"]),
        ("change", &["index", "was", "item"]),
        ("remove", &["index", "was"]),
        ("move", &["index", "was", "to"]),
    ];
    let Some(obj) = body.as_object() else {
        return Err(AppError::bad_field(
            "",
            "本文: 一覧の操作は JSON のオブジェクトで送ってください",
        ));
    };
    let names = || OPS.map(|(n, _)| n).join(", ");
    let op = match obj.get("op") {
        None => {
            return Err(AppError::bad_field(
                "op",
                format!("op: 必須の項目がありません（{} のいずれか）", names()),
            ))
        }
        Some(op) => op.as_str().unwrap_or_default(),
    };
    let Some((op, fields)) = OPS.into_iter().find(|(n, _)| *n == op) else {
        return Err(AppError::bad_field(
            "op",
            format!(
                "op: 操作「{}」はありません（{} のいずれか）",
                body["op"],
                names()
            ),
        ));
    };
    if let Some(k) = obj
        .keys()
        .find(|k| *k != "op" && !fields.contains(&k.as_str()))
    {
        return Err(AppError::bad_field(
            k.clone(),
            format!(
                "{k}: 不明な項目です（{op} に使う項目: {}）",
                fields.join(", ")
            ),
        ));
    }
    fn field<T: serde::de::DeserializeOwned>(
        obj: &serde_json::Map<String, serde_json::Value>,
        key: &str,
    ) -> AppResult<T> {
        let Some(v) = obj.get(key) else {
            return Err(AppError::bad_field(
                key,
                format!("{key}: 必須の項目がありません"),
            ));
        };
        let bytes = serde_json::to_vec(v).map_err(|e| AppError::Internal(e.into()))?;
        parse_json(&bytes).map_err(|e| match e {
            AppError::BadRequest {
                code,
                message,
                field,
            } => {
                let inner = field.unwrap_or_default();
                let at = if inner.is_empty() {
                    key.to_string()
                } else {
                    format!("{key}.{inner}")
                };
                let what = message.split_once(": ").map(|(_, m)| m).unwrap_or(&message);
                AppError::BadRequest {
                    code,
                    message: format!("{at}: {what}"),
                    field: Some(at),
                }
            }
            other => other,
        })
    }
    Ok(match op {
        "add" => ListOp::Add {
            item: field(obj, "item")?,
        },
        "change" => ListOp::Change {
            index: field(obj, "index")?,
            was: field(obj, "was")?,
            item: field(obj, "item")?,
        },
        "remove" => ListOp::Remove {
            index: field(obj, "index")?,
            was: field(obj, "was")?,
        },
        _ => ListOp::Move {
            index: field(obj, "index")?,
            was: field(obj, "was")?,
            to: field(obj, "to")?,
        },
    })
}

/// A list operation's body, typed by the list the path names; errors name the field.
fn list_change(list: &str, body: &serde_json::Value) -> AppResult<ListChange> {
    let name = ListName::from_name(list).ok_or_else(|| {
        AppError::bad_field(
            "list",
            format!(
                "一覧「{list}」はありません（使用できるもの: {}）",
                ListName::ALL.map(ListName::name).join(", ")
            ),
        )
    })?;
    Ok(match name {
        ListName::Guardians => ListChange::Guardians(list_op(body)?),
        ListName::Household => ListChange::Household(list_op(body)?),
        ListName::Progress => ListChange::Progress(list_op(body)?),
        ListName::Attachments => ListChange::Attachments(list_op(body)?),
        ListName::IntakeReports => ListChange::IntakeReports(list_op(body)?),
    })
}

#[utoipa::path(post, path = "/api/v1/records/{id}/lists/{list}",
    params(("id" = i64, Path, minimum = 1, description = "記録のID（正の整数）"),
           ("list" = ListName, Path, example = "progress", description = "一覧: guardians（core.guardians）, household（family.household）, progress（casework.progress）, attachments（casework.attachments）, intake_reports（admin.intake_reports）")),
    request_body(content = ListOp<ListEntry>, description = "一覧の1件の追加・変更・削除・移動。現在の版に対して行うので版は不要です。`index` と `was` は表示したときの位置と内容で、位置が変わっていれば内容で探します"),
    responses((status = 200, description = "変更しました（所有機関の表示、新しい版）", body = RecordView,
            headers(("Tsunagu-Merged" = String, description = "常に空（一覧の操作は現在の版に対して行うため）"))),
        (status = 403, description = "記録を更新できるのは所有機関のみです", body = ApiError),
        (status = 404, description = "記録が見つからないか、閲覧する権限がありません", body = ApiError),
        (status = 409, description = "`was` の項目が一覧にもうありません（`list_item_changed`: 他の職員が変更または削除しました）", body = ApiError),
        (status = 422, description = "変更後の記録の入力内容の誤り（`fields` に項目ごと）", body = ApiError)))]
pub async fn change_list(
    State(s): State<AppState>,
    v: Viewer,
    Path((id, list)): Path<(String, String)>,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> AppResult<impl IntoResponse> {
    let id = record_id(&id)?;
    let op = list_change(&list, &body)?;
    let view = s.change_list(&v, id, op).await?;
    Ok((merged_header(&[]), Json(view)))
}

#[utoipa::path(put, path = "/api/v1/records/{id}/restrictions", params(("id" = i64, Path, minimum = 1, description = "記録のID（正の整数）")), request_body = SetRestrictions,
    responses((status = 200, description = "閲覧制限を設定しました", body = RecordView),
        (status = 403, description = "閲覧制限を設定できるのは所有機関のみです", body = ApiError),
        (status = 404, description = "記録が見つからないか、閲覧する権限がありません", body = ApiError),
        (status = 409, description = "版の競合（`current` に現在の記録）", body = ApiError)))]
pub async fn set_restrictions(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<SetRestrictions>,
) -> AppResult<Json<RecordView>> {
    Ok(Json(
        s.set_restrictions(&v, record_id(&id)?, req.version, req.restrictions)
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/records/{id}/versions", params(("id" = i64, Path, minimum = 1, description = "記録のID（正の整数）")),
    responses((status = 200, description = "版の履歴（閲覧区分に応じた表示）", body = Vec<VersionEntry>),
        (status = 403, description = "運用者は記録を閲覧できません", body = ApiError),
        (status = 404, description = "記録が見つからないか、閲覧する権限がありません", body = ApiError)))]
pub async fn list_versions(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<VersionEntry>>> {
    Ok(Json(s.list_versions(&v, record_id(&id)?).await?))
}

#[utoipa::path(get, path = "/api/v1/records/{id}/views", params(("id" = i64, Path, minimum = 1, description = "記録のID（正の整数）")),
    responses((status = 200, description = "他機関による閲覧の記録", body = Vec<RecordViewEntry>),
        (status = 403, description = "閲覧履歴を確認できるのは所有機関のみです", body = ApiError),
        (status = 404, description = "記録が見つからないか、閲覧する権限がありません", body = ApiError)))]
pub async fn record_views(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<RecordViewEntry>>> {
    Ok(Json(s.record_views(&v, record_id(&id)?).await?))
}

const LIST_PARAMS: &[&str] = &[
    "status",
    "municipality",
    "updated_since",
    "sort",
    "cursor",
    "limit",
];

/// The case list's `sort` values; the parser and the OpenAPI document both read this table.
const SORTS: &[(&str, CaseSort)] = &[
    ("updated_desc", CaseSort::UpdatedDesc),
    ("updated_asc", CaseSort::UpdatedAsc),
    ("next_review", CaseSort::NextReview),
    ("case_number", CaseSort::CaseNumber),
];

/// The schema of `sort`: the names in [`SORTS`].
pub struct CaseSortParam;

impl utoipa::PartialSchema for CaseSortParam {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(SORTS.iter().map(|(n, _)| *n)))
            .default(Some("updated_desc".into()))
            .into()
    }
}

impl utoipa::ToSchema for CaseSortParam {}

/// Parses the case list query; unknown parameters and bad values are refused by name.
fn list_params(q: &HashMap<String, String>) -> AppResult<CaseListParams> {
    if let Some(k) = q.keys().find(|k| !LIST_PARAMS.contains(&k.as_str())) {
        return Err(AppError::bad_field(
            k.clone(),
            format!(
                "不明な検索条件「{k}」です（使用できるもの: {}）",
                LIST_PARAMS.join(", ")
            ),
        ));
    }
    let status = match q.get("status") {
        Some(s) if tsunagu_record::CaseStatus::from_code(s).is_none() => {
            return Err(AppError::bad_field(
                "status",
                "status は open, closed, transferred_out のいずれかです",
            ))
        }
        other => other.cloned(),
    };
    let municipality = match q.get("municipality") {
        Some(m) if !tsunagu_record::codes::lgcode_is_valid(m) => {
            return Err(AppError::bad_field(
                "municipality",
                "municipality は6桁の全国地方公共団体コードです",
            ))
        }
        other => other.cloned(),
    };
    let updated_since = match q.get("updated_since") {
        None => None,
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .map(|d| d.timestamp_micros())
                .map_err(|_| {
                    AppError::bad_field(
                        "updated_since",
                        "updated_since は RFC 3339 の日時です（例: 2026-04-01T00:00:00+09:00）",
                    )
                })?,
        ),
    };
    let sort = match q.get("sort") {
        None => CaseSort::UpdatedDesc,
        Some(name) => SORTS
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| *s)
            .ok_or_else(|| {
                AppError::bad_field(
                    "sort",
                    "sort は updated_desc, updated_asc, next_review, case_number のいずれかです",
                )
            })?,
    };
    let cursor = match q.get("cursor") {
        None => None,
        Some(c) => Some(
            decode_cursor(c)
                .filter(|c| c.fits(sort))
                .ok_or_else(|| AppError::bad_field("cursor", "cursor が正しくありません"))?,
        ),
    };
    let limit = match q.get("limit") {
        None => None,
        Some(l) => Some(
            l.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| AppError::bad_field("limit", "limit は正の整数です"))?,
        ),
    };
    Ok(CaseListParams {
        status,
        municipality,
        updated_since,
        sort,
        cursor,
        limit,
    })
}

#[utoipa::path(get, path = "/api/v1/records",
    params(("status" = Option<tsunagu_record::CaseStatus>, Query),
           ("municipality" = Option<String>, Query, pattern = "^[0-9]{6}$", description = "検査数字付きの6桁の全国地方公共団体コード"),
           ("updated_since" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "RFC 3339 の日時"),
           ("sort" = Option<CaseSortParam>, Query), ("cursor" = Option<String>, Query, description = "前のページの `next_cursor`"),
           ("limit" = Option<i64>, Query, minimum = 1, description = "1ページの件数（上限を超える値は上限になります）")),
    responses((status = 200, description = "ケース一覧", body = CaseList),
        (status = 400, description = "不明な、または正しくない検索条件（`fields` に名前）", body = ApiError),
        (status = 403, description = "この利用者はケース一覧を使えません", body = ApiError)))]
pub async fn list_cases(
    State(s): State<AppState>,
    v: Viewer,
    Query(q): Query<HashMap<String, String>>,
) -> AppResult<Json<CaseList>> {
    Ok(Json(s.list_cases(&v, list_params(&q)?).await?))
}
