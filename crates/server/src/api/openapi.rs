//! The OpenAPI document, served at `/api/v1/openapi.json`.
//!
//! It must be the wire: `tests/openapi_wire.rs` sends every enum value and every example in it
//! to the real server, and `scripts/schemathesis.sh` fuzzes the server from it in CI.

use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

/// Every area's routes under one name: utoipa tags each operation with the module path written
/// in `paths(...)`, and the document's tag has been `handlers` since the routes were one file.
mod handlers {
    pub use crate::auth::routes::*;
    pub use crate::intake::routes::*;
    pub use crate::notify::routes::*;
    pub use crate::records::routes::*;
    pub use crate::search::routes::*;
    pub use crate::transfers::routes::*;
}

#[derive(OpenApi)]
#[openapi(
    info(title = "tsunagu API", description = "要保護児童等に関する情報共有システム 中央サーバーAPI。\
        エラーはすべて `ApiError`（`code`, 日本語の `message`, `request_id`, 項目ごとの `fields`）で返します。"),
    paths(
        handlers::login, handlers::logout, handlers::me,
        handlers::create_record, handlers::get_record, handlers::update_record, handlers::set_restrictions,
        handlers::change_list, handlers::list_versions, handlers::record_views, handlers::list_cases, handlers::search,
        handlers::notifications, handlers::mark_read, handlers::mark_unread, handlers::stream,
        handlers::create_intake, handlers::list_intakes, handlers::get_intake, handlers::update_intake,
        handlers::attach_intake, handlers::convert_intake, handlers::confirm_safety, handlers::record_intakes,
        handlers::offer_transfer, handlers::list_transfers, handlers::get_transfer, handlers::confirm_transfer,
        handlers::decline_transfer, handlers::withdraw_transfer,
    ),
    components(schemas(tsunagu_record::api::ApiError, handlers::CaseSortParam, tsunagu_record::lists::ListName,
        tsunagu_record::transfer::TransferBox, tsunagu_record::transfer::TransferStatus)),
    modifiers(&BearerAuth, &CommonResponses, &Examples),
    security(("bearer" = []))
)]
pub struct ApiDoc;

/// The document, built once: it is the same for every request.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    DOC.get_or_init(ApiDoc::openapi)
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Answers that do not depend on the operation but on what every request passes through
/// (`api/mod.rs` layers, the `Viewer` and `JsonBody` extractors, the path id parser), added by
/// rule so a new endpoint cannot forget them.
struct CommonResponses;

const METHODS: [HttpMethod; 4] = [
    HttpMethod::Get,
    HttpMethod::Post,
    HttpMethod::Put,
    HttpMethod::Delete,
];

fn error(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ApiError")))
                .build(),
        )
        .build()
        .into()
}

fn add(op: &mut Operation, status: &str, response: RefOr<Response>) {
    op.responses
        .responses
        .entry(status.to_string())
        .or_insert(response);
}

impl Modify for CommonResponses {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        for (path, item) in doc.paths.paths.iter_mut() {
            for method in METHODS {
                let op = match method {
                    HttpMethod::Get => item.get.as_mut(),
                    HttpMethod::Post => item.post.as_mut(),
                    HttpMethod::Put => item.put.as_mut(),
                    _ => item.delete.as_mut(),
                };
                let Some(op) = op else { continue };
                let public = op
                    .security
                    .as_ref()
                    .is_some_and(|s| s.iter().all(|r| r == &Default::default()));
                if !public {
                    add(
                        op,
                        "401",
                        error("ログインしていない、またはセッションが切れています"),
                    );
                }
                if op.request_body.is_some() {
                    add(op, "400", error("JSONの形式、項目名または値の型が正しくありません（`fields` に項目のパス）"));
                    add(
                        op,
                        "415",
                        error("Content-Type が application/json ではありません"),
                    );
                }
                if path.contains("{id}") {
                    add(op, "400", error("IDが正の整数ではありません"));
                }
                let has_query = op.parameters.as_ref().is_some_and(|ps| {
                    ps.iter()
                        .any(|p| p.parameter_in == utoipa::openapi::path::ParameterIn::Query)
                });
                if has_query {
                    add(op, "400", error("正しくない条件（`fields` に名前）"));
                }
                let json_200 = op.responses.responses.get("200").is_some_and(
                    |r| matches!(r, RefOr::T(r) if r.content.contains_key("application/json")),
                );
                if method == HttpMethod::Get && json_200 {
                    add(
                        op,
                        "304",
                        ResponseBuilder::new()
                            .description("If-None-Match の ETag と同じ内容です（本文なし）")
                            .build()
                            .into(),
                    );
                }
                // The body limit is checked on the declared length of any request.
                add(op, "413", error("送信されたデータが大きすぎます"));
                // Every /api/v1 request is rate limited per client address (`[limits]`).
                if path.starts_with("/api/v1") {
                    add(
                        op,
                        "429",
                        error("要求が多すぎます。Retry-After の秒数の後に再度お試しください"),
                    );
                }
                add(
                    op,
                    "503",
                    error("時間内に終わらなかった、またはデータベースに接続できません"),
                );
            }
        }
    }
}

/// Request examples: each is sent by `tests/openapi_wire.rs` to the real server, which must
/// answer with the first success status the operation documents.
struct Examples;

/// A valid record body for a synthetic child: the names are drawn from the demo name tables
/// (`tsunagu_masterdata::people`, fixed seed), never a real person.
pub fn record_example() -> serde_json::Value {
    let mut people = tsunagu_masterdata::people::PeopleGenerator::new(2026);
    let child = people.name();
    let parent = people.name();
    serde_json::json!({
        "core": {
            "child_name": { "family": child.family, "given": child.given, "family_kana": child.family_kana, "given_kana": child.given_kana },
            "sex": 1,
            "birth_date": { "date": "2019-06-14", "estimated": false },
            "address": { "municipality_code": "131016", "postal_code": "100-0001", "street": "架空町1-2-3" },
            "guardians": [
                { "name": { "family": child.family, "given": parent.given, "family_kana": child.family_kana, "given_kana": parent.given_kana }, "relationship": "father" }
            ]
        },
        "family": {
            "guardian_workplace": "",
            "household": [{ "name": format!("{}\u{3000}{}", child.family, parent.given), "relationship": "father", "birth_year": 1990, "cohabiting": true, "note": "" }],
            "schooling": { "facility_type": "nursery", "facility_name": "架空保育園" },
            "upbringing": "",
            "welfare_services": ""
        },
        "casework": {
            "interview": "",
            "investigation": "",
            "findings": "",
            "support_plan": "",
            "progress": [{ "date": "2026-01-10", "text": "保育園から連絡。家庭訪問を予定。" }],
            "risk": { "level": "medium", "urgent": false },
            "next_review": "2026-12-01",
            "attachments": [{ "file_name": "連絡票.pdf", "media_type": "application/pdf", "size": 48213, "sha256": "9f2c1e0b7d4a3c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6" }]
        },
        "admin": {
            "case_number": "例-2026-0001",
            "status": "open",
            "consultation_type": "abuse_neglect",
            "intake_reports": [{ "received_on": "2026-01-09", "source": "保育所", "summary": "登園時にあざを確認" }],
            "serious_case": false,
            "missing": false
        }
    })
}

fn set_example(
    doc: &mut utoipa::openapi::OpenApi,
    path: &str,
    put: bool,
    example: serde_json::Value,
) {
    let Some(item) = doc.paths.paths.get_mut(path) else {
        return;
    };
    let op = if put {
        item.put.as_mut()
    } else {
        item.post.as_mut()
    };
    if let Some(content) = op
        .and_then(|op| op.request_body.as_mut())
        .and_then(|b| b.content.get_mut("application/json"))
    {
        content.example = Some(example);
    }
}

/// `hours` before the document was built, in JST: examples of times stay valid as it ages.
fn hours_ago_jst(hours: i64) -> String {
    let jst = chrono::FixedOffset::east_opt(9 * 3600).expect("JST offset");
    (chrono::Utc::now() - chrono::Duration::hours(hours))
        .with_timezone(&jst)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// An intake as staff type it during a call (synthetic names, received two hours before the
/// document was built).
pub fn intake_example() -> serde_json::Value {
    let mut people = tsunagu_masterdata::people::PeopleGenerator::new(2027);
    let child = people.name();
    serde_json::json!({
        "received_at": hours_ago_jst(2),
        "channel": "phone",
        "reporter_relationship": "近所の住民",
        "content": "夜中に子どもの泣き声が続いている。",
        "child": {
            "name": { "family": child.family, "given": child.given, "family_kana": child.family_kana, "given_kana": child.given_kana },
            "sex": 2,
            "birth_date": { "date": "2018-04-02", "estimated": true },
            "age_note": "小学生くらい",
            "municipality_code": "131016",
            "address_note": "架空町の団地"
        },
        "guardians": [{ "name": { "family": child.family, "given": "" }, "relationship": "mother" }],
        "urgency": "high"
    })
}

impl Modify for Examples {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        set_example(doc, "/api/v1/intakes", false, intake_example());
        set_example(
            doc,
            "/api/v1/intakes/{id}",
            true,
            serde_json::json!({ "version": 1, "input": intake_example() }),
        );
        set_example(
            doc,
            "/api/v1/intakes/{id}/safety",
            false,
            serde_json::json!({
                "version": 1,
                "confirmation": { "confirmed_at": hours_ago_jst(1), "method": "direct_sighting", "note": "家庭訪問で本人を確認" }
            }),
        );
        set_example(doc, "/api/v1/records", false, record_example());
        set_example(
            doc,
            "/api/v1/records/{id}/transfers",
            false,
            serde_json::json!({
                "to_org_id": "cgc-27-01",
                "message": "転居のため移管します。前任: 担当係（内線 123）",
                "withhold": ["casework.findings"],
                "siblings": []
            }),
        );
        set_example(
            doc,
            "/api/v1/transfers/{id}/decline",
            false,
            serde_json::json!({ "reason": "転居先が当機関の管轄外のため（大阪市こども相談センターへ）" }),
        );
        set_example(
            doc,
            "/api/v1/records/{id}/lists/{list}",
            false,
            serde_json::json!({ "op": "add", "item": { "date": "2026-01-12", "text": "家庭訪問。母と面接し、本人の様子を確認。" } }),
        );
        set_example(
            doc,
            "/api/v1/records/{id}",
            true,
            serde_json::json!({ "version": 1, "record": record_example() }),
        );
        set_example(
            doc,
            "/api/v1/records/{id}/restrictions",
            true,
            serde_json::json!({
                "version": 1,
                "restrictions": { "groups": ["casework"], "fields": ["core.address"], "reason": "DV被害のため住所非開示" }
            }),
        );
    }
}
