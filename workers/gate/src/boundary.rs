//! The gate's per-request calls into the runtime, batched. Through web-sys every header read,
//! property and constructor is its own crossing of the JS/wasm boundary, each with its string
//! copies: a segment request took about forty. Here reading the headers, fetching and passing
//! the response on are one call each (`boundary.js`), and a segment makes about ten in all.
//! Which headers, what to fetch and what to add is decided on this side.

use worker::js_sys::Promise;
use worker::wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{Headers, ReadableStream, Response};
use worker::{CfProperties, Result};

#[wasm_bindgen(module = "/src/boundary.js")]
extern "C" {
    #[wasm_bindgen(js_name = headerValues, catch)]
    fn header_values_js(headers: &Headers, names: &str) -> std::result::Result<String, JsValue>;

    #[wasm_bindgen(js_name = fetchOrigin, catch)]
    fn fetch_origin_js(
        url: &str,
        method: &str,
        incoming: &Headers,
        forwarded: &str,
        body: Option<ReadableStream>,
        cf: &JsValue,
    ) -> std::result::Result<Promise, JsValue>;

    #[wasm_bindgen(js_name = passOn, catch)]
    fn pass_on_js(response: &Response, set: &str) -> std::result::Result<Response, JsValue>;
}

thread_local! {
    /// The `cf` options of a cacheable fetch, built once per isolate (workers-rs's own
    /// serialization of them, so the origin sees what it always did); fetch copies them.
    static CACHE_EVERYTHING: JsValue =
        JsValue::from(&CfProperties { cache_everything: Some(true), ..CfProperties::default() });
}

/// The values of the headers `names`, in order (`None` for an absent one).
pub fn header_values<const N: usize>(headers: &Headers, names: [&str; N]) -> Result<[Option<String>; N]> {
    let joined = header_values_js(headers, &names.join("\n"))?;
    let mut values = joined.split('\n').map(|value| (value != "\0").then(|| value.to_owned()));
    Ok(std::array::from_fn(|_| values.next().flatten()))
}

/// Fetches `url` with `method`, those of the headers `forwarded` that `incoming` has, and
/// `body`; a `cacheable` fetch is cached whatever its type (`cacheEverything`).
pub async fn fetch(
    url: &str,
    method: &str,
    incoming: &Headers,
    forwarded: &[&str],
    body: Option<ReadableStream>,
    cacheable: bool,
) -> Result<Response> {
    let cf = if cacheable { CACHE_EVERYTHING.with(JsValue::clone) } else { JsValue::UNDEFINED };
    let response = JsFuture::from(fetch_origin_js(url, method, incoming, &forwarded.join("\n"), body, &cf)?).await?;
    Ok(response.unchecked_into())
}

/// `response` passed on with `set` (name, value) set: its status, headers and body, the body
/// unread.
pub fn pass_on(response: &Response, set: &[(&str, &str)]) -> Result<Response> {
    let pairs: Vec<&str> = set.iter().flat_map(|(name, value)| [*name, *value]).collect();
    Ok(pass_on_js(response, &pairs.join("\n"))?)
}
