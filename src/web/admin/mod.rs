//! The admin API, `/admin/api/v1/`: JSON over HTTP for admins (see `auth`), errors
//! as [`AdminError`], never cached, described by the hand-maintained OpenAPI 3.1
//! document `openapi.json` served at `GET /admin/api/v1/openapi.json`. Each
//! submodule registers its routes in the scope through its `routes`.

pub mod auth;
pub mod error;

mod accounts;
pub(crate) mod audit;
mod common;
mod directory;
mod iam_users;
mod identity_sources;
mod oidc_providers;
mod people;
mod policies;
mod role_policies;
mod roles;
pub(crate) mod rules;
mod saml_providers;
mod tokens;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, middleware, web};
use serde_json::json;

pub use auth::{Admin, AdminRead, AdminWrite, Scope, Via};
/// For the admin pages: the ETag and the view the API answers, so that a page's
/// edit sends back exactly what the API's stale check compares.
pub(crate) use common::content_etag;
pub use error::AdminError;
pub(crate) use policies::document_json;
pub(crate) use roles::view as role_view;

/// Where the admin API lives.
pub const PREFIX: &str = "/admin/api/v1";

/// The OpenAPI 3.1 document of every admin endpoint.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Registers the admin scope and every admin route in it.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope(PREFIX)
            .app_data(web::JsonConfig::default().error_handler(error::json_error))
            .app_data(web::QueryConfig::default().error_handler(error::query_error))
            .wrap(middleware::DefaultHeaders::new().add((header::CACHE_CONTROL, "no-store")))
            .route("/openapi.json", web::get().to(openapi))
            .route("/whoami", web::get().to(whoami))
            .configure(tokens::routes)
            .configure(audit::routes)
            .configure(people::routes)
            .configure(rules::routes)
            .configure(directory::routes)
            .configure(identity_sources::routes)
            .configure(accounts::routes)
            .configure(roles::routes)
            .configure(role_policies::routes)
            .configure(policies::routes)
            .configure(iam_users::routes)
            .configure(oidc_providers::routes)
            .configure(saml_providers::routes)
            .default_service(web::to(unknown)),
    );
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(OPENAPI)
}

/// `GET /admin/api/v1/whoami`: who the caller is to the admin API.
async fn whoami(request: HttpRequest, AdminRead(admin): AdminRead) -> HttpResponse {
    let mut body = json!({
        "actor": admin.actor,
        "scope": admin.scope,
        "via": match &admin.via {
            Via::Session => "session",
            Via::Token(_) => "token",
        },
    });
    if let Via::Token(id) = &admin.via {
        body["token_id"] = json!(id);
    }
    if let Some(identity) = &admin.identity {
        body["identity"] = json!({
            "source": identity.source_id,
            "user_name": identity.user_name,
            "display_name": identity.display_name,
            "groups": identity.groups,
        });
        // What a browser client sends in X-CSRF-Token with its writes.
        if let Some(csrf) = auth::session_csrf(&request).await {
            body["csrf_token"] = json!(csrf);
        }
    }
    HttpResponse::Ok().json(body)
}

async fn unknown(request: HttpRequest) -> Result<HttpResponse, AdminError> {
    Err(AdminError::not_found(
        "NOT_FOUND",
        format!(
            "No admin API endpoint {} {}.",
            request.method(),
            request.path()
        ),
    ))
}
