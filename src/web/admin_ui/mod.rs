//! The admin web UI under `/admin`: server-rendered pages (askama) for reading, and
//! `static/admin.js` for every change, which it sends to the admin API
//! (`/admin/api/v1/`) with the session's CSRF token. So the UI holds no write logic
//! of its own: validation, stale-edit checks (`If-Match`), the lock-out guard and
//! auditing are the API's, and a field's error comes back with a JSON pointer that
//! the page shows beside that field.
//!
//! Every page starts with the [`AdminPage`] extractor: a signed-in person who is an
//! admin on this request; anyone else is sent to sign in, or gets an audited 403 page.

mod accounts;
mod audit;
mod identity_sources;
mod line_diff;
mod overview;
mod people;
mod policies;
mod rules;
mod tokens;

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::InternalError;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse, middleware, web};
use askama::Template;
use serde_json::json;

use super::AppState;
use super::audit::audit;
use super::page::{PageError, html, redirect};
use crate::idp::identity::Identity;
use crate::service::admin_access::person_actor;
use crate::store::Outcome;

/// Where the admin UI lives.
pub const PREFIX: &str = "/admin";

/// Registers the admin pages and their assets. After the admin API's scope, which
/// is more specific and must match first.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/admin.css", web::get().to(css))
        .route("/static/admin.js", web::get().to(js))
        .route("/static/admin-rules.js", web::get().to(rules_js))
        .route("/static/admin-people.js", web::get().to(people_js))
        .route("/static/admin-policies.js", web::get().to(policies_js))
        .service(
            web::scope(PREFIX)
                .wrap(middleware::DefaultHeaders::new().add((header::CACHE_CONTROL, "no-store")))
                .configure(overview::routes)
                .configure(rules::routes)
                .configure(identity_sources::routes)
                .configure(accounts::routes)
                .configure(people::routes)
                .configure(audit::routes)
                .configure(tokens::routes)
                .configure(policies::routes)
                .default_service(web::to(unknown)),
        );
}

async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(include_str!("../../../static/admin.css"))
}

async fn js() -> HttpResponse {
    script(include_str!("../../../static/admin.js"))
}

async fn policies_js() -> HttpResponse {
    script(include_str!("../../../static/admin-policies.js"))
}

async fn unknown(_admin: AdminPage) -> Result<HttpResponse, PageError> {
    Err(PageError::new(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is no admin page at this address.",
    )
    .next(PREFIX, "Admin overview"))
}

async fn rules_js() -> HttpResponse {
    script(include_str!("../../../static/admin-rules.js"))
}

/// A page script: revalidated on every load, so a new release takes effect at once.
fn script(body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

async fn people_js() -> HttpResponse {
    script(include_str!("../../../static/admin-people.js"))
}

/// The sections of the admin UI, for the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Sources,
    Accounts,
    Policies,
    Rules,
    People,
    Audit,
    Tokens,
}

impl Section {
    const ALL: [Section; 8] = [
        Section::Overview,
        Section::Sources,
        Section::Accounts,
        Section::Policies,
        Section::Rules,
        Section::People,
        Section::Audit,
        Section::Tokens,
    ];

    fn href(self) -> &'static str {
        match self {
            Section::Overview => "/admin",
            Section::Sources => "/admin/identity-sources",
            Section::Accounts => "/admin/accounts",
            Section::Policies => "/admin/policies",
            Section::Rules => "/admin/rules",
            Section::People => "/admin/people",
            Section::Audit => "/admin/audit",
            Section::Tokens => "/admin/tokens",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Section::Overview => "Overview",
            Section::Sources => "Identity sources",
            Section::Accounts => "Accounts and roles",
            Section::Policies => "Policies",
            Section::Rules => "Mapping rules",
            Section::People => "People",
            Section::Audit => "Audit log",
            Section::Tokens => "API tokens",
        }
    }
}

/// One link of the navigation bar.
pub struct NavLink {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// What `templates/admin/base.html` needs: the signed-in admin, the CSRF token
/// `admin.js` sends with every change, the navigation and the page title.
pub struct Layout {
    pub title: String,
    pub who: String,
    pub csrf: String,
    pub nav: Vec<NavLink>,
}

/// A signed-in admin on an admin page. Extracting it is the page's authorization:
/// no session sends the browser to sign in (and back); a person who is not an
/// admin gets a 403 page and an audit event.
pub struct AdminPage {
    pub identity: Identity,
    /// The audit actor (`directory:alice`).
    pub actor: String,
    pub csrf: String,
}

impl AdminPage {
    /// The layout of a page in `section` titled `title`.
    pub fn layout(&self, section: Section, title: impl Into<String>) -> Layout {
        Layout {
            title: title.into(),
            who: if self.identity.display_name.is_empty() {
                self.identity.user_name.clone()
            } else {
                self.identity.display_name.clone()
            },
            csrf: self.csrf.clone(),
            nav: Section::ALL
                .iter()
                .map(|s| NavLink {
                    href: s.href(),
                    label: s.label(),
                    current: *s == section,
                })
                .collect(),
        }
    }
}

impl FromRequest for AdminPage {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move { admin_page(&request).await })
    }
}

async fn admin_page(request: &HttpRequest) -> Result<AdminPage, actix_web::Error> {
    let Some(state) = request.app_data::<web::Data<AppState>>().cloned() else {
        return Err(PageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Admin unavailable",
            "The admin pages are not configured on this server.",
        )
        .into());
    };
    let Some((_, session)) = super::session::session(&state, request).await else {
        let back = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| PREFIX.to_owned());
        let to = format!(
            "/signin?return_to={}",
            percent_encoding::utf8_percent_encode(&back, percent_encoding::NON_ALPHANUMERIC)
        );
        return Err(InternalError::from_response("sign in first", redirect(&to)).into());
    };
    let identity = session.identity;
    let actor = person_actor(&identity);
    if !state.admin.is_admin(&identity) {
        audit(
            &state,
            request,
            &actor,
            "admin:Authenticate",
            &format!("{} {}", request.method(), request.path()),
            Outcome::Denied,
            json!({ "reason": "not a member of an admin group", "groups": identity.groups }),
        )
        .await;
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Not an administrator",
            "You are signed in, but not as a member of an admin group, so the admin pages are closed to you.",
        )
        .into());
    }
    Ok(AdminPage {
        identity,
        actor,
        csrf: session.csrf,
    })
}

/// Renders a page template; a template that fails to render is a 500 page (logged).
pub(crate) fn render(page: &impl Template) -> Result<HttpResponse, PageError> {
    page.render()
        .map(|body| html(StatusCode::OK, body))
        .map_err(|error| {
            PageError::unavailable(&error, "Page unavailable", "This page could not be shown.")
        })
}

/// A page's failure to read what it shows: logged, and a 503 page.
pub(crate) fn unavailable(error: impl std::fmt::Display) -> PageError {
    PageError::unavailable(
        &error,
        "Admin page unavailable",
        "What this page shows could not be read just now. Please try again shortly.",
    )
    .next(PREFIX, "Admin overview")
}

/// Pretty JSON for a `<pre>` or a `<textarea>` (askama escapes it).
pub fn pretty(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}
