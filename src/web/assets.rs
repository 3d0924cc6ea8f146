//! The site icon. Browsers ask for `/favicon.ico` on every origin whatever the page
//! links, so both paths answer with the same SVG instead of a logged 404.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

const FAVICON: &str = include_str!("../../static/favicon.svg");

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/favicon.ico", web::get().to(favicon))
        .route("/static/favicon.svg", web::get().to(favicon));
}

async fn favicon() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(FAVICON)
}
