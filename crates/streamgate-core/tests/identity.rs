//! Token identity: every encoding of one token that a verifier accepts has one fingerprint,
//! and `unverified::identity` names the same fingerprint from the text alone.
//!
//! Regression for "identity by text" (PITFALLS.md): the fingerprint hashed the credential
//! as presented, so revocations and session counts keyed on it were dodged by re-encoding
//! a token that still verified.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use streamgate_core::claims::{NumericDate, PlaybackClaims};
use streamgate_core::encoding::{b64_std, b64_std_decode, b64_url, b64_url_decode, hex};
use streamgate_core::grant::{fingerprint, Grant};
use streamgate_core::keys::{Algorithm, Key, KeySet};
use streamgate_core::policy::RequestFacts;
use streamgate_core::schemes::edgeauth::{EdgeAlgorithm, EdgeAuthScheme};
use streamgate_core::schemes::jwt::{self, JwtScheme};
use streamgate_core::schemes::secure_link::{SecureLinkScheme, DEFAULT_EXPRESSION};
use streamgate_core::schemes::wmsauth::{self, DateStyle, WmsAuthRequest, WmsAuthScheme};
use streamgate_core::schemes::{Scheme, SchemeKind};
use streamgate_core::unverified::{identity, TokenIdentity};
use streamgate_core::{Denial, ReasonCode};

fn facts(path: &str, ip: &str) -> RequestFacts {
    RequestFacts { path: path.into(), client_ip: ip.parse().ok() }
}

fn verified(scheme: &dyn Scheme, credential: &str, facts: &RequestFacts) -> Grant {
    match scheme.verify(credential, facts) {
        Ok(grant) => grant,
        Err(denial) => panic!("{credential:?} was refused: {denial}"),
    }
}

fn refused(scheme: &dyn Scheme, credential: &str, facts: &RequestFacts) -> Denial {
    match scheme.verify(credential, facts) {
        Ok(grant) => panic!("{credential:?} was accepted: {grant:?}"),
        Err(denial) => denial,
    }
}

fn named(text: &str) -> TokenIdentity {
    match identity(text) {
        Ok(id) => id,
        Err(denial) => panic!("identity({text:?}) failed: {denial}"),
    }
}

fn malformed(text: &str) -> String {
    match identity(text) {
        Ok(id) => panic!("identity({text:?}) named {id:?}"),
        Err(Denial::Malformed { why }) => why,
        Err(other) => panic!("identity({text:?}) failed with {other:?}, not Malformed"),
    }
}

// ---------------------------------------------------------------------------------------
// WMSAuth: the base64 wrapper, field order and `strm_len` are not signed.

const WMS_KEY: &str = "defaultpassword";
const WMS_IP: &str = "203.0.113.7";
const WMS_TIME: i64 = 1_700_000_000;

fn wms_sign(stream: Option<&str>, server_time: i64) -> String {
    let request = WmsAuthRequest { ip: WMS_IP, server_time, valid_minutes: 20, stream, date_style: DateStyle::Php };
    wmsauth::sign(WMS_KEY, &request).unwrap()
}

fn wms_payload(sign: &str) -> String {
    String::from_utf8(b64_std_decode(sign).unwrap()).unwrap()
}

#[test]
fn wmsauth_reordered_fields_have_one_fingerprint() {
    let scheme = WmsAuthScheme::new(WMS_KEY);
    let at = facts("/live/stream/playlist.m3u8", WMS_IP);
    let plain = wms_sign(Some("live/stream"), WMS_TIME);
    let payload = wms_payload(&plain);
    let fields: Vec<&str> = payload.split('&').collect();
    assert_eq!(fields.len(), 4, "{payload}");
    let reversed = b64_std(fields.iter().rev().copied().collect::<Vec<_>>().join("&").as_bytes());
    let padded_len = b64_std(payload.replace("strm_len=11", "strm_len=0011").as_bytes());
    let expected = verified(&scheme, &plain, &at).fingerprint();
    for variant in [&reversed, &padded_len, &format!("  {plain}\n")] {
        assert_ne!(variant, &plain);
        assert_eq!(verified(&scheme, variant, &at).fingerprint(), expected, "{}", wms_payload(variant.trim()));
        assert_eq!(named(variant).fingerprint, expected);
    }
    let url = format!("https://h.test/live/stream/playlist.m3u8?wmsAuthSign={}", reversed.replace('+', "%2B"));
    assert_eq!(named(&url).fingerprint, expected);
    assert_eq!(named(&url).scheme, SchemeKind::WmsAuth);
}

#[test]
fn wmsauth_spaces_inside_the_payload_are_refused() {
    // What the verifier accepts today: spaces inside the decoded fields are not trimmed.
    let scheme = WmsAuthScheme::new(WMS_KEY);
    let at = facts("/live/x.m3u8", WMS_IP);
    let payload = wms_payload(&wms_sign(None, WMS_TIME));
    for bad in [
        payload.replace("validminutes=20", "validminutes=20 "),
        payload.replace("validminutes=20", "validminutes= 20"),
        payload.replace("server_time=", " server_time="),
        payload.replace("hash_value=", "hash_value= "),
    ] {
        let variant = b64_std(bad.as_bytes());
        assert_eq!(refused(&scheme, &variant, &at).reason(), ReasonCode::Malformed, "{bad}");
        malformed(&variant);
    }
}

// ---------------------------------------------------------------------------------------
// EdgeAuth: Akamai signs the fields as written; the fingerprint is of their meaning.

const EDGE_KEY: &str = "52a152a152a152a152a152a152a1";
/// Akamai's Python generator: start 1700000000, end 1700000600, acl "/live/match-*".
const EDGE_ACL_TOKEN: &str = "st=1700000000~exp=1700000600~acl=/live/match-*~hmac=54f2f61ccfa735a66ef891a28adfbd476e75e3377c513e3154c2e7ae4879cb41";

fn edge_scheme() -> EdgeAuthScheme {
    EdgeAuthScheme::new(EDGE_KEY, EdgeAlgorithm::Sha256).unwrap()
}

/// Signs `fields` exactly as written, the way Akamai's edge checks them.
fn edge_sign(fields: &str, url: Option<&str>) -> String {
    let key = streamgate_core::encoding::hex_decode(EDGE_KEY).unwrap();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
    mac.update(fields.as_bytes());
    if let Some(url) = url {
        mac.update(format!("~url={url}").as_bytes());
    }
    format!("{fields}~hmac={}", hex(&mac.finalize().into_bytes()))
}

#[test]
fn edgeauth_encodings_of_one_token_have_one_fingerprint() {
    let scheme = edge_scheme();
    let at = facts("/live/match-7/index.m3u8", "192.0.2.1");
    let expected = verified(&scheme, EDGE_ACL_TOKEN, &at).fingerprint();
    let (fields, mac) = EDGE_ACL_TOKEN.rsplit_once("~hmac=").unwrap();
    let upper = format!("{fields}~hmac={}", mac.to_ascii_uppercase());
    // A client percent-encodes some characters; the verifier decodes and retries.
    let encoded_acl = EDGE_ACL_TOKEN.replace("acl=/live/", "acl=%2Flive%2F");
    let encoded_all = EDGE_ACL_TOKEN.replace('=', "%3D").replace('~', "%7E").replace('/', "%2F");
    // Signed in another field order, and with the acl escaped before signing.
    let reordered = edge_sign("exp=1700000600~st=1700000000~acl=/live/match-*", None);
    let signed_escaped = edge_sign("st=1700000000~exp=1700000600~acl=%2flive%2fmatch-*", None);
    let leading_zeros = edge_sign("st=01700000000~exp=1700000600~acl=/live/match-*", None);
    for variant in [&upper, &encoded_acl, &encoded_all, &reordered, &signed_escaped, &leading_zeros] {
        assert_eq!(verified(&scheme, variant, &at).fingerprint(), expected, "{variant}");
    }
    for variant in [EDGE_ACL_TOKEN, &upper, &encoded_acl, &reordered, &signed_escaped, &leading_zeros] {
        assert_eq!(named(variant).fingerprint, expected, "{variant}");
    }
    let url = format!("https://h.test/live/match-7/index.m3u8?x=1&hdnts={EDGE_ACL_TOKEN}");
    assert_eq!(named(&url).fingerprint, expected);
    let url = format!("/live/match-7/index.m3u8?__token__={encoded_all}");
    assert_eq!(named(&url).fingerprint, expected);
}

#[test]
fn edgeauth_escape_styles_of_one_id_have_one_fingerprint() {
    // Akamai's Python generator writes a space as `+`, the Node one as `%20`.
    let scheme = edge_scheme();
    let at = facts("/vod/x.ts", "203.0.113.7");
    let python = edge_sign("ip=203.0.113.7~exp=1700000600~acl=/vod/*~id=viewer+42", None);
    let node = edge_sign("ip=203.0.113.7~exp=1700000600~acl=/vod/*~id=viewer%2042", None);
    let expected = verified(&scheme, &python, &at).fingerprint();
    assert_eq!(verified(&scheme, &node, &at).fingerprint(), expected);
    assert_eq!(named(&node).fingerprint, expected);
    assert_eq!(named(&python).token_id.as_deref(), Some("viewer 42"));
    // Another id is another token.
    let other = edge_sign("ip=203.0.113.7~exp=1700000600~acl=/vod/*~id=viewer+43", None);
    assert_ne!(verified(&scheme, &other, &at).fingerprint(), expected);
    // So is another IP binding.
    let other_ip = edge_sign("ip=203.0.113.8~exp=1700000600~acl=/vod/*~id=viewer+42", None);
    assert_ne!(verified(&scheme, &other_ip, &facts("/vod/x.ts", "203.0.113.8")).fingerprint(), expected);
}

#[test]
fn edgeauth_url_tokens_are_named_with_their_url() {
    let scheme = edge_scheme();
    let token = edge_sign("exp=1700000600", Some("/vod/a.m3u8"));
    let at = facts("/vod/a.m3u8", "192.0.2.1");
    let expected = verified(&scheme, &token, &at).fingerprint();
    assert_eq!(named(&format!("https://h.test/vod/a.m3u8?hdnts={token}")).fingerprint, expected);
    // The same fields signed for another URL are another token.
    let other = edge_sign("exp=1700000600", Some("/vod/b.m3u8"));
    assert_ne!(verified(&scheme, &other, &facts("/vod/b.m3u8", "192.0.2.1")).fingerprint(), expected);
    // Without its URL a URL token cannot be named.
    let why = malformed(&token);
    assert!(why.contains("URL"), "{why}");
}

// ---------------------------------------------------------------------------------------
// secure_link: nginx hashes the literal `expires`; the md5 spelling is not signed.

const NGINX_MD5: &str = "_e4Nc3iduzkWRm01TBBNYw";

fn nginx_link() -> (SecureLinkScheme, RequestFacts) {
    (SecureLinkScheme::new("secret", DEFAULT_EXPRESSION).unwrap(), facts("/s/link", "127.0.0.1"))
}

#[test]
fn secure_link_padding_has_one_fingerprint() {
    let (scheme, at) = nginx_link();
    let expected = verified(&scheme, &format!("{NGINX_MD5},2147483647"), &at).fingerprint();
    for variant in [format!("{NGINX_MD5}=,2147483647"), format!("{NGINX_MD5}==,2147483647")] {
        assert_eq!(verified(&scheme, &variant, &at).fingerprint(), expected, "{variant}");
        assert_eq!(named(&variant).fingerprint, expected, "{variant}");
    }
    let url = format!("https://h.test/s/link?md5={NGINX_MD5}%3D%3D&expires=2147483647");
    assert_eq!(named(&url).fingerprint, expected);
    assert_eq!(named(&url).scheme, SchemeKind::SecureLink);
}

#[test]
fn secure_link_refuses_what_nginx_refuses() {
    let (scheme, at) = nginx_link();
    // nginx takes at most 24 characters of md5; more padding was accepted here.
    let long = format!("{NGINX_MD5}===,2147483647");
    assert_eq!(refused(&scheme, &long, &at).reason(), ReasonCode::Malformed);
    malformed(&long);
    // nginx decodes base64url only: the standard alphabet is refused by both.
    let standard = format!("{},2147483647", NGINX_MD5.replace('_', "/"));
    assert_eq!(refused(&scheme, &standard, &at).reason(), ReasonCode::Malformed);
    malformed(&standard);
}

#[test]
fn secure_link_refuses_noncanonical_trailing_bits() {
    // nginx ignores the 4 spare bits of the 22nd character; no signer sets them, and
    // refusing them keeps one spelling per digest.
    let (scheme, at) = nginx_link();
    let twin = format!("{}x,2147483647", NGINX_MD5.trim_end_matches('w'));
    assert_eq!(b64_url_decode(NGINX_MD5).unwrap().len(), 16);
    assert_eq!(refused(&scheme, &twin, &at).reason(), ReasonCode::Malformed);
}

#[test]
fn secure_link_expires_with_leading_zeros_has_the_fingerprint_of_its_value() {
    let (scheme, at) = nginx_link();
    // nginx hashes `expires` as written, so `02147483647` needs its own signature.
    let zeros = b64_url(&Md5::digest(b"02147483647/s/link127.0.0.1 secret"));
    let padded = format!("{zeros},02147483647");
    let expected = verified(&scheme, &format!("{NGINX_MD5},2147483647"), &at).fingerprint();
    assert_eq!(verified(&scheme, &padded, &at).fingerprint(), expected);
    // The other's md5 does not verify the padded text: the literal is what is checked.
    assert_eq!(refused(&scheme, &format!("{NGINX_MD5},02147483647"), &at).reason(), ReasonCode::BadSignature);
    // Without the secret its canonical md5 is unknown: naming it fails loudly.
    let why = malformed(&format!("https://h.test/s/link?md5={zeros}&expires=02147483647"));
    assert!(why.contains("leading zero"), "{why}");
}

#[test]
fn secure_link_unsigned_expires_is_not_part_of_the_identity() {
    // With no $secure_link_expires in the expression the expires argument is ignored,
    // so it must not make a new fingerprint either.
    let scheme = SecureLinkScheme::new("secret", "$uri $key").unwrap();
    let at = facts("/s/link", "127.0.0.1");
    let md5 = b64_url(&Md5::digest(b"/s/link secret"));
    let expected = verified(&scheme, &format!("{md5},"), &at).fingerprint();
    for variant in [format!("{md5},5"), format!("{md5},6"), format!("{md5},")] {
        assert_eq!(verified(&scheme, &variant, &at).fingerprint(), expected, "{variant}");
    }
    assert_eq!(named(&md5).fingerprint, expected);
}

// ---------------------------------------------------------------------------------------
// JWT: the signature is not part of the identity.

const NOW: i64 = 1_700_000_000;

fn jwt_claims() -> PlaybackClaims {
    PlaybackClaims {
        exp: Some(NumericDate(NOW + 600)),
        sub: Some("user-1".into()),
        jti: Some("token-1".into()),
        ..Default::default()
    }
}

#[cfg(feature = "public-key")]
#[test]
#[allow(clippy::disallowed_types)] // tests bring their own randomness, as callers do
fn jwt_es256_high_s_twin_has_one_fingerprint() {
    use p256::ecdsa::Signature;
    let key = Key::generate(Algorithm::ES256, &mut rand_core::OsRng).unwrap();
    let scheme = JwtScheme::new(KeySet::new(vec![key.public_key().unwrap()]));
    let at = facts("/live/a.m3u8", "192.0.2.1");
    let token = jwt::sign(&jwt_claims(), &key).unwrap();
    let (input, sig) = token.rsplit_once('.').unwrap();
    let signature = Signature::from_slice(&b64_url_decode(sig).unwrap()).unwrap();
    let (r, s) = signature.split_scalars();
    // s' = n - s: the same signature for ECDSA, other bytes.
    let twin = Signature::from_scalars(r, -s).unwrap();
    let twin_token = format!("{input}.{}", b64_url(&twin.to_bytes()));
    assert_ne!(twin_token, token);
    let expected = verified(&scheme, &token, &at).fingerprint();
    assert_eq!(verified(&scheme, &twin_token, &at).fingerprint(), expected);
    assert_eq!(named(&twin_token).fingerprint, expected);
}

#[test]
fn jwt_whitespace_is_trimmed_and_padding_refused() {
    let key = Key::hmac(Algorithm::HS256, b"an HS256 secret of thirty-two bytes").unwrap();
    let scheme = JwtScheme::new(KeySet::new(vec![key.clone()]));
    let at = facts("/live/a.m3u8", "192.0.2.1");
    let token = jwt::sign(&jwt_claims(), &key).unwrap();
    let expected = verified(&scheme, &token, &at).fingerprint();
    assert_eq!(verified(&scheme, &format!(" {token}\n"), &at).fingerprint(), expected);
    let parts: Vec<&str> = token.split('.').collect();
    let padded = format!("{}=.{}.{}", parts[0], parts[1], parts[2]);
    assert_eq!(refused(&scheme, &padded, &at).reason(), ReasonCode::Malformed);
    malformed(&padded);
    let id = named(&format!("https://h.test/live/a.m3u8?token={token}"));
    assert_eq!(
        (id.scheme, id.fingerprint, id.token_id.as_deref(), id.subject.as_deref()),
        (SchemeKind::Jwt, expected, Some("token-1"), Some("user-1"))
    );
}

#[test]
fn jwt_fingerprint_is_of_the_signed_content() {
    let key = Key::hmac(Algorithm::HS256, b"an HS256 secret of thirty-two bytes").unwrap();
    let token = jwt::sign(&jwt_claims(), &key).unwrap();
    let (input, _) = token.rsplit_once('.').unwrap();
    assert_eq!(named(&token).fingerprint, fingerprint(&format!("jwt:{input}")));
}

// ---------------------------------------------------------------------------------------
// identity() names nothing it cannot parse.

#[test]
fn identity_fails_loudly_on_garbage() {
    for text in ["", "   ", "hello", "https://h.test/live/a.m3u8?x=1", "https://h.test/a?token=abc", "a.b.c", "exp=5"] {
        let why = malformed(text);
        assert!(!why.is_empty(), "{text:?}");
    }
    let why = malformed("https://h.test/a?x=1");
    assert!(why.contains("token") && why.contains("hdnts"), "{why}");
}

#[test]
fn identity_refuses_session_credentials() {
    let why = malformed("https://h.test/live/a/1.ts?sgs=v1.eyJrZXkiOiJ4In0.sig");
    assert!(why.contains("session credential"), "{why}");
}

#[test]
fn identity_carries_the_session_key() {
    let key = Key::hmac(Algorithm::HS256, b"an HS256 secret of thirty-two bytes").unwrap();
    let token = jwt::sign(&jwt_claims(), &key).unwrap();
    assert_eq!(named(&token).session_key(), "sub:user-1");
    let wms = named(&wms_sign(None, WMS_TIME));
    assert_eq!(wms.session_key(), format!("fp:{}", wms.fingerprint));
    let edge = named(&edge_sign("exp=1700000600~acl=/*~id=v1", None));
    assert_eq!(edge.session_key(), "jti:v1");
}

/// The spellings the fuzzers tried against revocation by text (h-fuzz, 2026-12-01), through
/// the gate's own query parsing: each is refused, or named as the token it re-encodes.
#[test]
fn reencodings_from_the_query_are_refused_or_named_as_the_original() {
    use streamgate_core::schemes::find_in_query;
    let escape = |t: &str| t.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
    let sign = wms_sign(None, WMS_TIME);
    let mut wms = WmsAuthScheme::new(WMS_KEY);
    wms.ip_bound = true;
    let at = facts("/live/stream/playlist.m3u8", WMS_IP);
    let original = named(&sign).fingerprint;
    for query in [format!("wmsAuthSign={}%20", escape(&sign)), format!("wmsAuthSign=%20{}", escape(&sign))] {
        let credential = find_in_query(&query).unwrap();
        if let Ok(grant) = wms.verify(&credential.value, &at) {
            assert_eq!(grant.fingerprint(), original, "{query}");
        }
    }
    let (link, link_at) = nginx_link();
    let expected = verified(&link, &format!("{NGINX_MD5},2147483647"), &link_at).fingerprint();
    for query in [format!("md5={NGINX_MD5}%3D%3D&expires=2147483647"), format!("expires=2147483647&md5={NGINX_MD5}")] {
        let credential = find_in_query(&query).unwrap();
        assert_eq!(verified(&link, &credential.value, &link_at).fingerprint(), expected, "{query}");
    }
}
