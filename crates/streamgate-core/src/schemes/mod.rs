//! Token schemes behind one trait, and where their credentials live in a URL.

pub mod edgeauth;
pub mod jwt;
pub mod secure_link;
pub mod session;
pub mod wmsauth;

use core::fmt;
use std::borrow::Cow;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::denial::Denial;
use crate::grant::Grant;
use crate::policy::RequestFacts;

/// Credentials longer than this are refused before any parsing work.
pub const MAX_CREDENTIAL_BYTES: usize = 8 * 1024;

/// The supported credential formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SchemeKind {
    /// streamgate playback JWT (`token=`).
    Jwt,
    /// Nimble Streamer / WMSPanel `wmsAuthSign=`.
    WmsAuth,
    /// Akamai EdgeAuth 2.0 (`hdnts=` or `__token__=`).
    EdgeAuth,
    /// nginx `secure_link_md5` (`md5=` and `expires=`).
    SecureLink,
    /// The gate's own sliding session credential (`sgs=`), put into rewritten manifests.
    Session,
}

impl SchemeKind {
    /// Every scheme, in detection order (the gate's session credential first: a rewritten
    /// URL carries it besides whatever the origin's playlist had).
    pub const ALL: [SchemeKind; 5] =
        [SchemeKind::Session, SchemeKind::Jwt, SchemeKind::WmsAuth, SchemeKind::EdgeAuth, SchemeKind::SecureLink];

    /// The name used in configuration, output and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemeKind::Jwt => "jwt",
            SchemeKind::WmsAuth => "wmsauth",
            SchemeKind::EdgeAuth => "edgeauth",
            SchemeKind::SecureLink => "secure-link",
            SchemeKind::Session => "session",
        }
    }

    /// Parses a scheme name.
    pub fn parse(name: &str) -> Option<SchemeKind> {
        SchemeKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The query parameters that carry this scheme's credential.
    pub fn query_params(self) -> &'static [&'static str] {
        match self {
            SchemeKind::Jwt => &["token"],
            SchemeKind::WmsAuth => &["wmsAuthSign"],
            SchemeKind::EdgeAuth => &["hdnts", "__token__"],
            SchemeKind::SecureLink => &["md5", "expires"],
            SchemeKind::Session => &["sgs"],
        }
    }
}

impl fmt::Display for SchemeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scheme verifies a credential's signature and format, and says what it grants.
/// Time, IP, scope and every other policy check happen afterwards, in the policy engine.
pub trait Scheme: Send + Sync {
    /// Which scheme this is.
    fn kind(&self) -> SchemeKind;
    /// Verifies `credential` for the request described by `facts`.
    fn verify(&self, credential: &str, facts: &RequestFacts) -> Result<Grant, Denial>;
}

/// A credential found in a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    /// Its scheme.
    pub kind: SchemeKind,
    /// Its text. For secure-link, `md5,expires` (nginx's `secure_link` order).
    pub value: String,
}

/// Splits a URL or path-with-query into `(path, query)`; the fragment is dropped. Only a
/// URL that starts with a scheme (`https://`) has an authority to skip: a `://` later on,
/// in a path-relative URL's query say, is data.
pub fn split_url(url: &str) -> (&str, &str) {
    let no_fragment = url.split('#').next().unwrap_or("");
    let is_scheme = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    };
    let rest = match no_fragment.split_once("://").filter(|(scheme, _)| is_scheme(scheme)) {
        Some((_, after_scheme)) => {
            let end = after_scheme.find(['/', '?']).unwrap_or(after_scheme.len());
            after_scheme.get(end..).unwrap_or("")
        }
        None => no_fragment,
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    (if path.is_empty() { "/" } else { path }, query)
}

fn query_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query.split('&').filter(|p| !p.is_empty()).map(|p| p.split_once('=').unwrap_or((p, "")))
}

/// Percent-decodes `value` (invalid UTF-8 replaced). Text without a `%` is its own
/// decoding, borrowed: found with one SIMD search instead of decoding byte by byte and
/// validating the UTF-8 again.
fn decode(value: &str) -> Cow<'_, str> {
    if value.contains('%') {
        percent_decode_str(value).decode_utf8_lossy()
    } else {
        Cow::Borrowed(value)
    }
}

/// How many query parameter names carry credentials, over every scheme.
const CREDENTIAL_PARAM_COUNT: usize = 7;

/// Every credential parameter name, scheme by scheme in detection order.
fn credential_param_names() -> impl Iterator<Item = &'static str> {
    SchemeKind::ALL.into_iter().flat_map(|kind| kind.query_params().iter().copied())
}

/// Finds the first credential in a query string (without the leading `?`).
/// Values are percent-decoded (never `+` to space: base64 uses `+`), except EdgeAuth's,
/// which Akamai signs as they appear in the URL.
pub fn find_in_query(query: &str) -> Option<Credential> {
    // One pass over the query keeps the first value of each credential parameter; the
    // schemes then choose among them in detection order.
    let mut first: [Option<&str>; CREDENTIAL_PARAM_COUNT] = [None; CREDENTIAL_PARAM_COUNT];
    for (key, value) in query_pairs(query) {
        let key = decode(key);
        if let Some(slot) = credential_param_names().position(|name| name == key).and_then(|i| first.get_mut(i)) {
            slot.get_or_insert(value);
        }
    }
    credential_from(|name| {
        credential_param_names().position(|n| n == name).and_then(|i| first.get(i).copied().flatten())
    })
}

/// The credential detection order picks, given the first value of each parameter name.
fn credential_from<'q>(get: impl Fn(&str) -> Option<&'q str>) -> Option<Credential> {
    for kind in SchemeKind::ALL {
        let value = match kind {
            SchemeKind::SecureLink => match (get("md5"), get("expires")) {
                (Some(md5), expires) => Some(format!("{},{}", decode(md5), expires.map(decode).unwrap_or_default())),
                (None, _) => None,
            },
            SchemeKind::EdgeAuth => kind.query_params().iter().find_map(|n| get(n)).map(str::to_owned),
            _ => kind.query_params().iter().find_map(|n| get(n)).map(|v| decode(v).into_owned()),
        };
        if let Some(value) = value {
            return Some(Credential { kind, value });
        }
    }
    None
}

/// Removes every credential parameter from a query, keeping all others byte-identical and
/// in order (LL-HLS `_HLS_msn`, `_HLS_part`, `_HLS_skip` included). A name is judged as
/// the URL parser that receives the query may read it: WHATWG parsers drop ASCII tabs and
/// newlines anywhere in a URL and trim C0 controls and spaces from its ends, so `to\tken=`
/// and a last parameter `md5\0` are credentials too. A `#` ends the query, as it ends it
/// for every URL parser: nothing after it is kept.
pub fn strip_credentials(query: &str) -> String {
    let query = query.split('#').next().unwrap_or("");
    let is_credential = |key: &str| {
        let key = key.replace(['\t', '\n', '\r'], "");
        let key = decode(key.trim_matches(|c: char| c <= ' '));
        SchemeKind::ALL.iter().any(|k| k.query_params().contains(&&*key))
    };
    query
        .split('&')
        .filter(|p| !p.is_empty() && !is_credential(p.split_once('=').map_or(*p, |(k, _)| k)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Characters escaped in query values we write: everything but RFC 3986 unreserved.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The query parameters that carry `credential` in a URL, ready to append.
pub fn credential_params(credential: &Credential) -> Vec<(&'static str, String)> {
    let escaped = |v: &str| utf8_percent_encode(v, QUERY_VALUE).to_string();
    match credential.kind {
        SchemeKind::Jwt => vec![("token", credential.value.clone())],
        SchemeKind::Session => vec![("sgs", credential.value.clone())],
        SchemeKind::WmsAuth => vec![("wmsAuthSign", escaped(&credential.value))],
        // Akamai's generators put the token into the URL as is.
        SchemeKind::EdgeAuth => vec![("hdnts", credential.value.clone())],
        SchemeKind::SecureLink => {
            let (md5, expires) = credential.value.split_once(',').unwrap_or((&credential.value, ""));
            let mut params = vec![("md5", md5.to_owned())];
            if !expires.is_empty() {
                params.push(("expires", expires.to_owned()));
            }
            params
        }
    }
}

/// Appends the credential to `url`, before any `#fragment`, keeping the existing query.
pub fn signed_url(url: &str, credential: &Credential) -> String {
    let (base, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let mut out = base.to_owned();
    for (name, value) in credential_params(credential) {
        // The query starts at the first `?`; a later `?` is data, not a separator.
        let sep = match out.split_once('?') {
            None => "?",
            Some((_, query)) if query.is_empty() || query.ends_with('&') => "",
            Some(_) => "&",
        };
        out.push_str(sep);
        out.push_str(name);
        out.push('=');
        out.push_str(&value);
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// Guesses the scheme of a bare credential (for tools; the edge uses parameter names). A
/// secure_link credential is `md5` or `md5,expires`.
pub fn detect_scheme(token: &str) -> Option<SchemeKind> {
    let t = token.trim();
    if t.starts_with("v1.") && t.split('.').count() == 3 {
        return Some(SchemeKind::Session);
    }
    if t.contains("hmac=") && t.contains("exp=") {
        return Some(SchemeKind::EdgeAuth);
    }
    if t.split('.').count() == 3 && t.starts_with("eyJ") {
        return Some(SchemeKind::Jwt);
    }
    if wmsauth::decode(t).is_ok() {
        return Some(SchemeKind::WmsAuth);
    }
    secure_link::canonical_unverified(t).is_ok().then_some(SchemeKind::SecureLink)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls() {
        assert_eq!(split_url("https://h.test/a/b.m3u8?x=1&y=2#f"), ("/a/b.m3u8", "x=1&y=2"));
        assert_eq!(split_url("https://h.test"), ("/", ""));
        assert_eq!(split_url("https://h.test?token=a"), ("/", "token=a"));
        assert_eq!(split_url("/live/x.ts?token=a"), ("/live/x.ts", "token=a"));
    }

    #[test]
    fn finds_each_scheme() {
        let c = find_in_query("a=1&token=eyJ.x.y").unwrap();
        assert_eq!((c.kind, c.value.as_str()), (SchemeKind::Jwt, "eyJ.x.y"));
        let c = find_in_query("wmsAuthSign=c2Vy%2B%3D").unwrap();
        assert_eq!((c.kind, c.value.as_str()), (SchemeKind::WmsAuth, "c2Vy+="));
        let c = find_in_query("__token__=exp=1~acl=%2f*~hmac=ab").unwrap();
        assert_eq!((c.kind, c.value.as_str()), (SchemeKind::EdgeAuth, "exp=1~acl=%2f*~hmac=ab"));
        let c = find_in_query("expires=5&md5=abc").unwrap();
        assert_eq!((c.kind, c.value.as_str()), (SchemeKind::SecureLink, "abc,5"));
        assert_eq!(find_in_query("a=1&b=2"), None);
    }

    #[test]
    fn counts_every_credential_parameter() {
        assert_eq!(credential_param_names().count(), CREDENTIAL_PARAM_COUNT);
    }

    /// The scheme order decides, then the scheme's own order of names, then the first
    /// occurrence; encoded names count, and `expires` alone is no credential.
    #[test]
    fn chooses_among_several_credentials_as_detection_order_says() {
        let c = find_in_query("token=j1&sgs=s1&token=j2&sgs=s2").unwrap();
        assert_eq!((c.kind, c.value.as_str()), (SchemeKind::Session, "s1"));
        let c = find_in_query("md5=m&__token__=t&hdnts=h&%68dnts=h2").unwrap();
        assert_eq!((c.kind, c.value.as_str()), (SchemeKind::EdgeAuth, "h"));
        let c = find_in_query("%74oken=enc&token=plain").unwrap();
        assert_eq!((c.kind, c.value.as_str()), (SchemeKind::Jwt, "enc"));
        let c = find_in_query("expires=1&md5=a&expires=2&md5=b").unwrap();
        assert_eq!((c.kind, c.value.as_str()), (SchemeKind::SecureLink, "a,1"));
        assert_eq!(find_in_query("expires=5&tokens=x&Token=y"), None);
    }

    /// Regression (fuzz target `path`): a raw tab or newline inside a credential's name hid
    /// it from the strip, and the origin's URL parser, which drops them, read `token=`.
    #[test]
    fn strips_credentials_whose_names_hold_tabs_or_newlines() {
        assert_eq!(strip_credentials("_HLS_msn=1&\ntoken=x&to\tken=y&md5\r=z&x=1"), "_HLS_msn=1&x=1");
        let url = crate::policy::path::origin_url("https://o.test", "/a", "a=1&\ntoken=x&expires\0\0");
        assert_eq!(url, "https://o.test/a?a=1");
        // After a `#`, a URL parser reads a fragment; the query before it was `token`.
        assert_eq!(strip_credentials("token#=x&a=1"), "");
        assert_eq!(strip_credentials("a=1#&token=x"), "a=1");
    }

    /// Regression (fuzz target `unverified`): a `://` in the query of a path-relative URL
    /// was taken for the scheme's, so `verify_url` decided on a path from the query.
    #[test]
    fn only_a_leading_scheme_starts_an_authority() {
        let url = "/private/secret.m3u8?x=://h/public/a.m3u8?token=T";
        assert_eq!(split_url(url), ("/private/secret.m3u8", "x=://h/public/a.m3u8?token=T"));
        assert_eq!(split_url("/a://b/c?q=1"), ("/a://b/c", "q=1"));
        assert_eq!(split_url("HTTPS://h.test/a?x=https://b/c"), ("/a", "x=https://b/c"));
        assert_eq!(split_url("svc+ws.1://h.test/a"), ("/a", ""));
        assert_eq!(split_url("1a://h.test/a"), ("1a://h.test/a", ""));
    }

    proptest::proptest! {
        #[test]
        fn decoding_without_a_percent_sign_borrows_what_decoding_would_give(raw in "[a%2eE+=\u{85}é\u{0}]{0,12}") {
            let decoded = decode(&raw);
            proptest::prop_assert_eq!(&*decoded, &*percent_decode_str(&raw).decode_utf8_lossy());
            proptest::prop_assert!(raw.contains('%') || matches!(decoded, Cow::Borrowed(_)));
        }

        /// The one-pass search keeps what searching the query name by name finds: the first
        /// value of each credential parameter.
        #[test]
        fn the_one_pass_search_agrees_with_searching_name_by_name(
            pairs in proptest::collection::vec(("(sgs|token|%74oken|wmsAuthSign|hdnts|__token__|md5|expires|x)", "[a-z%2=]{0,4}"), 0..8),
        ) {
            let query = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
            let name_by_name = credential_from(|name| query_pairs(&query).find(|(k, _)| decode(k) == name).map(|(_, v)| v));
            proptest::prop_assert_eq!(find_in_query(&query), name_by_name);
        }
    }

    #[test]
    fn strips_only_credentials() {
        assert_eq!(strip_credentials("_HLS_msn=5&token=abc&_HLS_part=2&x=%20y"), "_HLS_msn=5&_HLS_part=2&x=%20y");
        assert_eq!(strip_credentials("md5=a&expires=1"), "");
    }

    #[test]
    fn signed_urls_keep_query_and_fragment() {
        let c = Credential { kind: SchemeKind::Jwt, value: "t".into() };
        assert_eq!(signed_url("https://h/a.m3u8?x=1#frag", &c), "https://h/a.m3u8?x=1&token=t#frag");
        assert_eq!(signed_url("/a.m3u8", &c), "/a.m3u8?token=t");
        let w = Credential { kind: SchemeKind::WmsAuth, value: "ab+/=".into() };
        assert_eq!(signed_url("/a", &w), "/a?wmsAuthSign=ab%2B%2F%3D");
        let s = Credential { kind: SchemeKind::SecureLink, value: "m,9".into() };
        assert_eq!(signed_url("/a", &s), "/a?md5=m&expires=9");
        // Regression (fuzz target `unverified`): a query ending in a `?` got the credential
        // glued to its last value, where nobody finds it.
        assert_eq!(signed_url("/a?x=1?", &c), "/a?x=1?&token=t");
        assert_eq!(signed_url("/a?", &c), "/a?token=t");
    }
}
