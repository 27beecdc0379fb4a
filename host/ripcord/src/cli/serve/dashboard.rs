//! The dashboard's files, built into the binary: one page, its script and its style, each served from the
//! server's own origin so the page's Content-Security-Policy can forbid everything else (no inline script, no
//! other origin, no framing).

use super::api::respond;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode, header};

pub(super) const PAGE: &str = include_str!("assets/dashboard.html");
const SCRIPT: &str = include_str!("assets/dashboard.js");
const STYLE: &str = include_str!("assets/dashboard.css");

/// The dashboard's policy: its own script, style and API only.
pub(super) const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
     img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// The report's policy: no script at all; its style and charts are inline.
pub(super) const REPORT_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'";

pub(super) fn asset(name: &str) -> Response<Full<Bytes>> {
    let (content_type, body) = match name {
        "dashboard.js" => ("text/javascript; charset=utf-8", SCRIPT),
        _ => ("text/css; charset=utf-8", STYLE),
    };
    let mut response = respond(StatusCode::OK, content_type, body.to_string());
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-cache"));
    response
}
