//! The small pieces every HTML surface shares: HTML and redirect responses, the
//! error page, cookies (with `__Host-` names over https), local return paths, random
//! tokens and constant-time comparison.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use super::request_info;

/// Every page's Content-Security-Policy: no inline script or style, no framing,
/// forms post only to this origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// [`CONTENT_SECURITY_POLICY`] with one more origin forms may go to (a page whose
/// form's answer redirects to a client's loopback listener).
pub fn content_security_policy_with_form_action(origin: &str) -> String {
    CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'",
        &format!("form-action 'self' {origin}"),
    )
}

/// `base` over http; `__Host-base` over https (Secure, path `/`, no domain: the
/// cookie can be set only by this origin).
pub(crate) fn host_cookie_name(request: &HttpRequest, base: &'static str) -> String {
    if request_info::is_https(request) {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

pub(crate) fn random_token(random: &crate::clock::Random) -> String {
    random.token()
}

pub(crate) use crate::secrets::same_secret as same;

/// Only local paths: never an absolute URL or a scheme-relative `//host`.
pub(crate) fn safe_return_to(candidate: &str) -> &str {
    let ok = candidate.starts_with('/')
        && !candidate.starts_with("//")
        && !candidate.contains('\\')
        && !candidate.chars().any(char::is_control);
    if ok { candidate } else { "/start" }
}

pub(crate) fn cookie<'c>(request: &HttpRequest, name: &'c str, value: String) -> Cookie<'c> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(request_info::is_https(request))
        .finish()
}

pub(crate) fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

pub(crate) fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    next_href: &'a str,
    next_label: &'a str,
}

fn error_page(
    status: StatusCode,
    title: &str,
    message: &str,
    next_href: &str,
    next_label: &str,
) -> HttpResponse {
    let page = ErrorPage {
        title,
        message,
        next_href,
        next_label,
    };
    html(status, page.render().unwrap_or_else(|_| message.to_owned()))
}

/// The error of an HTML handler: an error page with a status, a title, a sentence
/// for people and one link onwards. Handlers return `Result<HttpResponse, PageError>`
/// and use `?`; actix renders the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageError {
    status: StatusCode,
    title: String,
    message: String,
    next_href: String,
    next_label: String,
}

impl PageError {
    /// A page whose link leads back to the person's accounts.
    pub(crate) fn new(status: StatusCode, title: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            title: title.to_owned(),
            message: message.into(),
            next_href: "/start".to_owned(),
            next_label: "Your accounts".to_owned(),
        }
    }

    /// Where the page's one link leads instead.
    pub(crate) fn next(mut self, href: impl Into<String>, label: impl Into<String>) -> Self {
        self.next_href = href.into();
        self.next_label = label.into();
        self
    }

    /// A dependency (the cache, the store) failed: the cause goes to the log, the
    /// person reads only that `what` could not be done now.
    pub(crate) fn unavailable(cause: &dyn std::fmt::Display, title: &str, what: &str) -> Self {
        tracing::error!(error = %cause, "{what}");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, title, what)
    }

    /// The page itself, for handlers that answer with an `HttpResponse`.
    pub(crate) fn into_response(self) -> HttpResponse {
        actix_web::ResponseError::error_response(&self)
    }

    /// A sign-in form that did not come from this site's own page (or is too old).
    pub(crate) fn sign_in_form_expired(form: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Sign-in form expired",
            format!(
                "The {form} was not accepted (it may have expired, or came from another site). Please sign in again."
            ),
        )
        .next("/signin", "Sign in")
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.title, self.message)
    }
}

impl actix_web::ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        error_page(
            self.status,
            &self.title,
            &self.message,
            &self.next_href,
            &self.next_label,
        )
    }
}

/// A `302` to `to` that no cache keeps (it may carry a one-time code).
pub(crate) fn found(to: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, to))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// `value` as one URL path segment (every byte but ASCII letters and digits
/// percent-encoded), for links built from ids and names.
pub(crate) fn path_segment(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}
