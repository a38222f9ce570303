//! Akamai EdgeAuth 2.0 tokens: `[ip=…~][st=…~]exp=…~(acl=…|)[~id=…][~data=…]~hmac=…`.
//!
//! The HMAC covers the token text before `~hmac=`, then `~url=<escaped path>` for URL
//! tokens, then `~salt=<salt>` when a salt is configured. Akamai's Python and Node
//! generators escape the URL differently when `escape_early` is on (space as `+` vs
//! `%20`, `~ ! ' ( ) *` escaped or not); the verifier accepts each and reports which matched.
//!
//! Identity: Akamai signs the fields as written, so verification stays on the literal
//! text (then on the text percent-decoded once, for clients that encode the token). The
//! canonical form ([`Grant::credential`]) is what the fields mean, from the text that
//! verified: fixed field order, times as plain numbers, `ip` as a canonical range, values
//! unescaped (`viewer+42` and `viewer%2042` are one id, `acl=%2f*` is `acl=/*`), the
//! `hmac` left out (its case is not signed) and, for a URL token, the URL it was checked
//! against. Re-encoding a token, or the generators' escaping styles, names one token.
//!
//! Keys: the hex key comes from Akamai Property Manager as the property has it; any
//! non-empty length is accepted so existing properties keep working. For new properties
//! use at least as many bytes as the digest (32 for SHA-256).

use hmac::Hmac;
use md5::Md5;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};
use sha1::Sha1;
use sha2::Sha256;

use crate::denial::{Denial, Error, SignatureExplanation};
use crate::encoding::{ct_eq, hex, hex_decode, hmac_tag};
use crate::grant::{oversized_identity, Grant, Scope, Validity};
use crate::policy::ip::IpRange;
use crate::policy::RequestFacts;
use crate::schemes::{Scheme, SchemeKind, MAX_CREDENTIAL_BYTES};
use crate::timestamp::{check_seconds, parse_seconds};

/// The HMAC digest Akamai lets a property choose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EdgeAlgorithm {
    /// HMAC-SHA256 (Akamai's default).
    #[default]
    Sha256,
    /// HMAC-SHA1.
    Sha1,
    /// HMAC-MD5.
    Md5,
}

impl EdgeAlgorithm {
    /// Parses `sha256`, `sha1` or `md5` (any case).
    pub fn parse(name: &str) -> Option<EdgeAlgorithm> {
        match name.to_ascii_lowercase().as_str() {
            "sha256" => Some(EdgeAlgorithm::Sha256),
            "sha1" => Some(EdgeAlgorithm::Sha1),
            "md5" => Some(EdgeAlgorithm::Md5),
            _ => None,
        }
    }

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeAlgorithm::Sha256 => "sha256",
            EdgeAlgorithm::Sha1 => "sha1",
            EdgeAlgorithm::Md5 => "md5",
        }
    }

    fn mac(self, key: &[u8], message: &[u8]) -> Vec<u8> {
        match self {
            EdgeAlgorithm::Sha256 => hmac_tag::<Hmac<Sha256>>(key, message),
            EdgeAlgorithm::Sha1 => hmac_tag::<Hmac<Sha1>>(key, message),
            EdgeAlgorithm::Md5 => hmac_tag::<Hmac<Md5>>(key, message),
        }
    }
}

/// How `escape_early` escapes a value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EscapeStyle {
    /// No escaping (`escape_early` off, Akamai's default).
    #[default]
    None,
    /// The Python generator: `quote_plus`, lower-case escapes.
    Python,
    /// The Node generator: `encodeURIComponent` plus `~ ' *`, lower-case escapes.
    Node,
}

impl EscapeStyle {
    /// The name shown in explanations.
    pub fn as_str(self) -> &'static str {
        match self {
            EscapeStyle::None => "unescaped",
            EscapeStyle::Python => "escape_early (Python style)",
            EscapeStyle::Node => "escape_early (Node style)",
        }
    }

    /// The `escape_early` style of Akamai's generator named `python` or `node`.
    pub fn of_generator(name: &str) -> Option<EscapeStyle> {
        match name {
            "python" => Some(EscapeStyle::Python),
            "node" => Some(EscapeStyle::Node),
            _ => None,
        }
    }

    /// Escapes `text` the way the generator of this style does.
    pub fn escape(self, text: &str) -> String {
        if self == EscapeStyle::None {
            // As written, UTF-8 included (byte by byte below would re-encode each byte of a
            // non-ASCII character as a Latin-1 character of its own).
            return text.to_owned();
        }
        let keep = |b: u8| match self {
            EscapeStyle::None => true,
            EscapeStyle::Python => b.is_ascii_alphanumeric() || b"_.-~".contains(&b),
            EscapeStyle::Node => b.is_ascii_alphanumeric() || b"-_.!()".contains(&b),
        };
        let mut out = String::with_capacity(text.len());
        for &b in text.as_bytes() {
            if keep(b) {
                out.push(char::from(b));
            } else if b == b' ' && self == EscapeStyle::Python {
                out.push('+');
            } else {
                out.push('%');
                out.push_str(&hex(&[b]));
            }
        }
        out
    }
}

/// Verifier settings for EdgeAuth.
#[derive(Clone, Debug)]
pub struct EdgeAuthScheme {
    key: Vec<u8>,
    /// HMAC digest.
    pub algorithm: EdgeAlgorithm,
    /// Optional salt, appended to the signed text.
    pub salt: Option<String>,
    /// Clock leeway, seconds.
    pub leeway: u32,
}

impl EdgeAuthScheme {
    /// A verifier for the hex key Akamai shows in Property Manager.
    pub fn new(hex_key: &str, algorithm: EdgeAlgorithm) -> Result<EdgeAuthScheme, Error> {
        Ok(EdgeAuthScheme { key: parse_key(hex_key)?, algorithm, salt: None, leeway: 0 })
    }
}

fn parse_key(hex_key: &str) -> Result<Vec<u8>, Error> {
    match hex_decode(hex_key.trim()) {
        Some(k) if !k.is_empty() => Ok(k),
        _ => Err(Error::key("EdgeAuth key must be a non-empty, even-length hex string")),
    }
}

/// The fields of an EdgeAuth token, unverified.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EdgeAuthFields {
    /// `ip=`, unescaped.
    pub ip: Option<String>,
    /// `st=`.
    pub start: Option<i64>,
    /// `exp=`.
    pub expires: i64,
    /// `acl=` split on `!`.
    pub acl: Option<Vec<String>>,
    /// `id=`, unescaped.
    pub id: Option<String>,
    /// `data=`, unescaped.
    pub data: Option<String>,
    /// `hmac=`, hex.
    pub hmac: String,
    /// Everything before `~hmac=`: the signed prefix.
    pub signed_text: String,
}

/// Escapes a value of the canonical form, so no value can spell a delimiter.
const CANONICAL_VALUE: &AsciiSet = &CONTROLS.add(b' ').add(b'%').add(b'~').add(b'!').add(b'=');

impl EdgeAuthFields {
    /// The canonical form: what [`Grant::fingerprint`] hashes (see the module docs).
    /// `url` is the path a URL token (one without `acl`) was verified for; a URL token
    /// without one, or an `ip` that is not an address or range, is malformed.
    pub fn canonical(&self, url: Option<&str>) -> Result<String, Denial> {
        let esc = |v: &str| utf8_percent_encode(v, CANONICAL_VALUE).to_string();
        let mut fields = Vec::new();
        if let Some(ip) = &self.ip {
            let range = IpRange::parse(ip).map_err(|e| Denial::malformed(format!("ip field: {e}")))?;
            fields.push(format!("ip={range}"));
        }
        if let Some(start) = self.start {
            fields.push(format!("st={start}"));
        }
        fields.push(format!("exp={}", self.expires));
        match (&self.acl, url) {
            (Some(acl), _) => {
                let acl: Vec<String> = acl.iter().map(|a| esc(&percent_decode_str(a).decode_utf8_lossy())).collect();
                fields.push(format!("acl={}", acl.join("!")));
            }
            (None, Some(url)) => fields.push(format!("url={}", esc(url))),
            (None, None) => {
                return Err(Denial::malformed(
                    "an EdgeAuth URL token (no acl=) is bound to the URL it was signed for: give the signed URL",
                ))
            }
        }
        for (name, value) in [("id", &self.id), ("data", &self.data)] {
            if let Some(value) = value {
                fields.push(format!("{name}={}", esc(value)));
            }
        }
        Ok(format!("edgeauth:{}", fields.join("~")))
    }
}

/// Parses `token` as written, or percent-decoded once when it does not parse as written
/// (a client encoded it whole), the order in which [`EdgeAuthScheme`] verifies. UNVERIFIED.
pub(crate) fn decode_as_sent(token: &str) -> Result<EdgeAuthFields, Denial> {
    match decode(token) {
        Err(first) if may_be_encoded(token) => {
            decode(&percent_decode_str(token).decode_utf8_lossy()).map_err(|_| first)
        }
        parsed => parsed,
    }
}

/// Whether a token that fails as written is worth a second look percent-decoded: it holds
/// a `%`, and is within the size limit as sent (decoding must not bring an oversized token
/// under it).
fn may_be_encoded(token: &str) -> bool {
    token.contains('%') && token.len() <= MAX_CREDENTIAL_BYTES
}

fn unescape(value: &str) -> String {
    percent_decode_str(&value.replace('+', " ")).decode_utf8_lossy().into_owned()
}

/// Parses an EdgeAuth token without verifying it. UNVERIFIED.
pub fn decode(token: &str) -> Result<EdgeAuthFields, Denial> {
    if token.len() > MAX_CREDENTIAL_BYTES {
        return Err(Denial::malformed(format!("token is over the {MAX_CREDENTIAL_BYTES}-byte limit")));
    }
    let token = token.trim();
    let (signed_text, hmac) =
        token.rsplit_once("~hmac=").ok_or_else(|| Denial::malformed("EdgeAuth token lacks a final ~hmac= field"))?;
    let mut fields =
        EdgeAuthFields { hmac: hmac.to_owned(), signed_text: signed_text.to_owned(), ..Default::default() };
    let mut expires = None;
    let mut seen: Vec<&str> = Vec::new();
    for piece in signed_text.split('~') {
        let (name, value) =
            piece.split_once('=').ok_or_else(|| Denial::malformed(format!("field {piece:?} has no '='")))?;
        if seen.contains(&name) {
            return Err(Denial::malformed(format!("field {name:?} appears twice")));
        }
        seen.push(name);
        let seconds = |field| parse_seconds(field, value).map_err(|e| Denial::malformed(e.to_string()));
        match name {
            "ip" => fields.ip = Some(unescape(value)),
            "st" => fields.start = Some(seconds("st")?),
            "exp" => expires = Some(seconds("exp")?),
            "acl" => fields.acl = Some(value.split('!').map(str::to_owned).collect()),
            "id" => fields.id = Some(unescape(value)),
            "data" => fields.data = Some(unescape(value)),
            // A field we would not enforce must not be waved through.
            other => return Err(Denial::malformed(format!("unknown EdgeAuth field {other:?}"))),
        }
    }
    fields.expires = expires.ok_or_else(|| Denial::malformed("EdgeAuth token lacks exp="))?;
    if hmac.is_empty() || hex_decode(hmac).is_none() {
        return Err(Denial::malformed("hmac is not hex"));
    }
    Ok(fields)
}

impl EdgeAuthScheme {
    fn hash_source(&self, signed_text: &str, url: Option<&str>) -> String {
        let mut source = signed_text.to_owned();
        if let Some(url) = url {
            source.push_str("~url=");
            source.push_str(url);
        }
        if let Some(salt) = &self.salt {
            source.push_str("~salt=");
            source.push_str(salt);
        }
        source
    }

    fn check(&self, fields: &EdgeAuthFields, facts: &RequestFacts) -> Result<Option<EscapeStyle>, Denial> {
        let expected = hex_decode(&fields.hmac).ok_or_else(|| Denial::malformed("hmac is not hex"))?;
        let urls: Vec<(Option<String>, Option<EscapeStyle>)> = if fields.acl.is_some() {
            vec![(None, None)]
        } else {
            [EscapeStyle::None, EscapeStyle::Python, EscapeStyle::Node]
                .into_iter()
                .map(|style| (Some(style.escape(&facts.path)), Some(style)))
                .collect()
        };
        for (url, style) in &urls {
            let source = self.hash_source(&fields.signed_text, url.as_deref());
            if ct_eq(&self.algorithm.mac(&self.key, source.as_bytes()), &expected) {
                return Ok(*style);
            }
        }
        let mask = |source: String| match &self.salt {
            Some(salt) => source.replace(&format!("~salt={salt}"), "~salt=<secret>"),
            None => source,
        };
        let tried = urls.iter().map(|(url, _)| mask(self.hash_source(&fields.signed_text, url.as_deref()))).collect();
        Err(Denial::BadSignature {
            explanation: Some(SignatureExplanation {
                tried,
                recipe: format!(
                    "hmac-{}(hex key, token fields before ~hmac= [+ ~url=path] [+ ~salt=salt]); url tried unescaped, Python- and Node-escaped",
                    self.algorithm.as_str()
                ),
            }),
        })
    }
}

impl Scheme for EdgeAuthScheme {
    fn kind(&self) -> SchemeKind {
        SchemeKind::EdgeAuth
    }

    fn verify(&self, token: &str, facts: &RequestFacts) -> Result<Grant, Denial> {
        // Some clients percent-encode the token in the query, in part or whole; Akamai
        // signs it raw. As written first, then decoded once.
        // A denial names the form that parsed: as written when it did, else decoded.
        let literal = decode(token);
        let parsed_as_written = literal.is_ok();
        let attempt = literal.and_then(|fields| Ok((self.check(&fields, facts)?, fields)));
        let (fields, style) = match attempt {
            Ok((style, fields)) => (fields, style),
            Err(first) if may_be_encoded(token) => {
                let decoded = percent_decode_str(token).decode_utf8_lossy().into_owned();
                let fields = decode(&decoded).map_err(|_| first.clone())?;
                match self.check(&fields, facts) {
                    Ok(style) => (fields, style),
                    Err(second) => return Err(if parsed_as_written { first } else { second }),
                }
            }
            Err(first) => return Err(first),
        };
        let ip_binding = match &fields.ip {
            Some(ip) => Some(IpRange::parse(ip).map_err(|e| Denial::malformed(format!("ip field: {e}")))?),
            None => None,
        };
        let claims = crate::grant::present_fields(serde_json::json!({
            "ip": fields.ip, "st": fields.start, "exp": fields.expires,
            "acl": fields.acl, "url": fields.acl.is_none().then(|| facts.path.clone()),
            "id": fields.id, "data": fields.data,
            "url_escaping": style.map(EscapeStyle::as_str),
        }));
        let canonical = fields.canonical(Some(&facts.path))?;
        let mut grant = Grant::new(SchemeKind::EdgeAuth, &canonical, claims.to_string());
        grant.validity = Validity { not_before: fields.start, expires_at: Some(fields.expires), leeway: self.leeway };
        grant.scope = match fields.acl {
            Some(acl) => Scope::Acl(acl),
            None => Scope::SignedPath(facts.path.clone()),
        };
        grant.ip_binding = ip_binding;
        grant.token_id = fields.id;
        Ok(grant)
    }
}

/// What to sign into an EdgeAuth token.
#[derive(Clone, Debug, Default)]
pub struct EdgeAuthRequest {
    /// ACLs (joined with `!`); empty for a URL token.
    pub acl: Vec<String>,
    /// The URL path for a URL token.
    pub url: Option<String>,
    /// Optional IP binding.
    pub ip: Option<String>,
    /// Optional start time, unix seconds.
    pub start: Option<i64>,
    /// End time, unix seconds.
    pub expires: i64,
    /// Optional session id.
    pub id: Option<String>,
    /// Optional opaque payload.
    pub data: Option<String>,
    /// Optional salt.
    pub salt: Option<String>,
    /// `escape_early` style.
    pub escape: EscapeStyle,
}

/// Produces an EdgeAuth token, byte-identical to Akamai's generators for the same inputs.
pub fn sign(hex_key: &str, algorithm: EdgeAlgorithm, request: &EdgeAuthRequest) -> Result<String, Error> {
    let key = parse_key(hex_key)?;
    let expires = check_seconds("exp", request.expires)?;
    if let Some(start) = request.start {
        check_seconds("st", start)?;
        if expires <= start {
            return Err(Error::input("exp", "token would expire before it starts"));
        }
    }
    let is_url = match (request.acl.is_empty(), &request.url) {
        (false, None) => false,
        (true, Some(_)) => true,
        _ => return Err(Error::input("acl", "give either ACLs or a URL, not both or neither")),
    };
    if let Some(ip) = &request.ip {
        IpRange::parse(ip).map_err(|e| Error::input("ip", e))?;
    }
    // A value holding the field delimiter would split the token (Akamai's Python
    // generator does not escape `~`); refuse rather than emit a token no edge can parse.
    let delimiter_free = |field: &'static str, value: &str| {
        if value.contains('~') {
            Err(Error::input(field, "contains '~', the EdgeAuth field delimiter"))
        } else {
            Ok(value.to_owned())
        }
    };
    let esc = |field: &'static str, v: &str| delimiter_free(field, &request.escape.escape(v));
    let mut fields = Vec::new();
    if let Some(ip) = &request.ip {
        fields.push(format!("ip={}", esc("ip", ip)?));
    }
    if let Some(st) = request.start {
        fields.push(format!("st={st}"));
    }
    fields.push(format!("exp={expires}"));
    if !is_url {
        fields.push(format!("acl={}", delimiter_free("acl", &request.acl.join("!"))?));
    }
    if let Some(id) = &request.id {
        if let Some((_, why)) = oversized_identity(None, Some(id)) {
            return Err(Error::input("id", why));
        }
        fields.push(format!("id={}", esc("id", id)?));
    }
    if let Some(data) = &request.data {
        fields.push(format!("data={}", esc("data", data)?));
    }
    let signed_text = fields.join("~");
    let scheme = EdgeAuthScheme { key, algorithm, salt: request.salt.clone(), leeway: 0 };
    let url = request.url.as_deref().map(|u| request.escape.escape(u));
    let mac = algorithm.mac(&scheme.key, scheme.hash_source(&signed_text, url.as_deref()).as_bytes());
    Ok(format!("{signed_text}~hmac={}", hex(&mac)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_styles_differ_where_the_generators_do() {
        let text = "a b~c!d'e(f)g*h/i";
        assert_eq!(EscapeStyle::Python.escape(text), "a+b~c%21d%27e%28f%29g%2ah%2fi");
        assert_eq!(EscapeStyle::Node.escape(text), "a%20b%7ec!d%27e(f)g%2ah%2fi");
        assert_eq!(EscapeStyle::None.escape(text), text);
    }

    /// Regression (fuzz target `edgeauth`): unescaped, a non-ASCII path was signed and
    /// checked as mojibake (`é` as `Ã©`), so Akamai's URL tokens for such paths, signed
    /// over the UTF-8 path as written, were refused.
    #[test]
    fn unescaped_urls_keep_their_utf8() {
        assert_eq!(EscapeStyle::None.escape("/vod/café.mp4"), "/vod/café.mp4");
        assert_eq!(EscapeStyle::Python.escape("é"), "%c3%a9");
        let signed_text = "exp=1700000600";
        let key = hex_decode("00112233").unwrap();
        let mac = EdgeAlgorithm::Sha256.mac(&key, format!("{signed_text}~url=/vod/café.mp4").as_bytes());
        let token = format!("{signed_text}~hmac={}", hex(&mac));
        let facts = RequestFacts { path: "/vod/café.mp4".into(), client_ip: None };
        let scheme = EdgeAuthScheme::new("00112233", EdgeAlgorithm::Sha256).unwrap();
        assert!(scheme.verify(&token, &facts).is_ok());
        let request =
            EdgeAuthRequest { url: Some("/vod/café.mp4".into()), expires: 1_700_000_600, ..Default::default() };
        assert_eq!(sign("00112233", EdgeAlgorithm::Sha256, &request).unwrap(), token);
    }

    /// Regression (fuzz target `edgeauth`): a token over the size limit as sent was
    /// percent-decoded under it, parsed, and refused as `bad_signature`; it is `malformed`
    /// (oversized), as every other oversized credential.
    #[test]
    fn a_token_oversized_as_sent_is_malformed_even_if_it_decodes_shorter() {
        let scheme = EdgeAuthScheme::new("00112233", EdgeAlgorithm::Sha256).unwrap();
        let facts = RequestFacts { path: "/a".into(), client_ip: None };
        let token = format!("exp=1700000600~acl={}~hmac={}", "%2f".repeat(2_800), "0".repeat(64));
        assert!(token.len() > MAX_CREDENTIAL_BYTES && percent_decode_str(&token).count() < MAX_CREDENTIAL_BYTES);
        let denial = scheme.verify(&token, &facts).unwrap_err();
        assert_eq!(denial.reason(), crate::ReasonCode::Malformed, "{denial:?}");
        assert!(decode_as_sent(&token).is_err());
    }

    #[test]
    fn decode_refuses_unknown_and_duplicate_fields() {
        assert!(decode("exp=1~foo=2~hmac=00").is_err());
        assert!(decode("exp=1~exp=2~hmac=00").is_err());
        assert!(decode("acl=/*~hmac=00").is_err());
        assert!(decode("exp=1.5~acl=/*~hmac=00").is_err());
        let f = decode("ip=1.2.3.4~st=1~exp=2~acl=/a/*!/b/*~id=x%20y~hmac=ab").unwrap();
        assert_eq!(f.acl, Some(vec!["/a/*".into(), "/b/*".into()]));
        assert_eq!(f.id.as_deref(), Some("x y"));
        assert_eq!(f.signed_text, "ip=1.2.3.4~st=1~exp=2~acl=/a/*!/b/*~id=x%20y");
    }
}
