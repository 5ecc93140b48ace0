//! The OpenAPI document, served at `/api/v1/openapi.json`.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::handlers;

#[derive(OpenApi)]
#[openapi(
    info(title = "tsunagu API", description = "要保護児童等に関する情報共有システム 中央サーバーAPI"),
    paths(
        handlers::login, handlers::logout, handlers::me,
        handlers::create_record, handlers::get_record, handlers::update_record, handlers::set_restrictions,
        handlers::list_versions, handlers::record_views, handlers::list_cases, handlers::search,
        handlers::notifications, handlers::mark_read, handlers::mark_unread, handlers::stream,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

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
