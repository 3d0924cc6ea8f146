//! The small pieces every HTML surface shares: HTML and redirect responses, the
//! error page, cookies (with `__Host-` names over https), local return paths, random
//! tokens and constant-time comparison.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use subtle::ConstantTimeEq;

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

pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

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

pub(crate) fn error_page(
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

/// A `302` to `to` that no cache keeps (it may carry a one-time code).
pub(crate) fn found(to: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, to))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}
