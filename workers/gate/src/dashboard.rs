//! The Guardian view's static files (`workers/gate/admin`), embedded in the worker and served
//! at `/admin/` under a strict Content-Security-Policy: scripts and styles only from these
//! files, no inline code, no other origin, no framing. They hold no secret: the page asks
//! for the admin token and sends it as a header on each API call.

use worker::{Headers, Response, Result};

/// One embedded file.
pub struct Asset {
    body: &'static str,
    content_type: &'static str,
}

const INDEX: Asset = Asset { body: include_str!("../admin/index.html"), content_type: "text/html; charset=utf-8" };
const SCRIPT: Asset = Asset { body: include_str!("../admin/app.js"), content_type: "text/javascript; charset=utf-8" };
const STYLE: Asset = Asset { body: include_str!("../admin/app.css"), content_type: "text/css; charset=utf-8" };

/// The policy for every file of the view.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The file at `path`, if it is one of the view's.
pub fn asset(path: &str) -> Option<&'static Asset> {
    match path {
        "/admin" | "/admin/" | "/admin/index.html" => Some(&INDEX),
        "/admin/app.js" => Some(&SCRIPT),
        "/admin/app.css" => Some(&STYLE),
        _ => None,
    }
}

/// Serves a file with its type and the security headers.
pub fn serve(asset: &Asset) -> Result<Response> {
    let headers = Headers::new();
    headers.set("Content-Type", asset.content_type)?;
    headers.set("Content-Security-Policy", CONTENT_SECURITY_POLICY)?;
    headers.set("X-Content-Type-Options", "nosniff")?;
    headers.set("Referrer-Policy", "no-referrer")?;
    headers.set("Cache-Control", "no-cache")?;
    Ok(Response::ok(asset.body)?.with_headers(headers))
}
