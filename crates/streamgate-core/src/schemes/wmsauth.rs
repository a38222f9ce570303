//! Nimble Streamer / WMSPanel hot-link protection (`wmsAuthSign`).
//!
//! `wmsAuthSign = base64("server_time=T&hash_value=H&validminutes=N[&strm_len=L]")` where
//! `H = base64(md5(ip + key + T + N [+ signed_stream]))`. The hash covers the literal text
//! of `T` and `N` as they appear in the token, so no re-formatting can drift from what the
//! signer hashed. `T` is UTC in either PHP `n/j/Y g:i:s A` or zero-padded
//! `%m/%d/%Y %I:%M:%S %p` form.
//!
//! Identity: the hash covers `server_time` and `validminutes` as written, not the base64
//! wrapper, the field order or `strm_len` (the signed stream is). So the canonical form
//! ([`Grant::credential`]) keeps the signed texts and `hash_value` (strictly decoded, so
//! it has one spelling) and rewrites the rest: fixed field order, `strm_len` as a plain
//! number. Reordered fields, `strm_len=011` and a `+` sent as a space all name one token.
//!
//! Keys: the operator chooses the key in Nimble/WMSPanel, often a short word, so no
//! minimum length is enforced here (that would break working deployments). MD5 under a
//! short key is brute-forceable offline from one token: use 32 random bytes or more.

use md5::{Digest, Md5};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::denial::{Denial, Error, SignatureExplanation};
use crate::encoding::{b64_std, b64_std_decode, ct_eq};
use crate::grant::{Grant, Scope, Validity};
use crate::policy::ip::IpRange;
use crate::policy::RequestFacts;
use crate::schemes::{Scheme, SchemeKind, MAX_CREDENTIAL_BYTES};
use crate::timestamp::check_seconds;

/// Nimble's default tolerance for clock differences between signer and server, seconds.
pub const DEFAULT_TOLERANCE: u32 = 90;

/// Ten years of minutes: the longest validity accepted.
const MAX_VALID_MINUTES: u32 = 10 * 366 * 24 * 60;

/// Verifier settings for WMSAuth.
#[derive(Clone, Debug)]
pub struct WmsAuthScheme {
    /// The shared key.
    pub key: String,
    /// Clock tolerance, seconds, applied at both ends of the window.
    pub tolerance: u32,
    /// Whether the client IP is part of the hash (Nimble's default). When `false`, tokens
    /// are signed with an empty IP.
    pub ip_bound: bool,
}

impl DateStyle {
    /// Parses `php` or `padded`.
    pub fn parse(name: &str) -> Option<DateStyle> {
        match name {
            "php" => Some(DateStyle::Php),
            "padded" => Some(DateStyle::ZeroPadded),
            _ => None,
        }
    }
}

impl WmsAuthScheme {
    /// A verifier with Nimble's defaults: 90 s tolerance, IP-bound.
    pub fn new(key: impl Into<String>) -> WmsAuthScheme {
        WmsAuthScheme { key: key.into(), tolerance: DEFAULT_TOLERANCE, ip_bound: true }
    }
}

/// How `server_time` is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DateStyle {
    /// PHP `n/j/Y g:i:s A`: `5/4/2012 8:33:05 AM` (Nimble's PHP sample).
    #[default]
    Php,
    /// `%m/%d/%Y %I:%M:%S %p`: `05/04/2012 08:33:05 AM`.
    ZeroPadded,
}

/// The fields of a decoded `wmsAuthSign`, unverified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WmsAuthFields {
    /// `server_time`, as written.
    pub server_time: String,
    /// `server_time` in unix seconds.
    pub server_time_unix: i64,
    /// `hash_value`, as written.
    pub hash_value: String,
    /// `hash_value` decoded: the MD5 digest.
    pub hash_digest: [u8; 16],
    /// `validminutes`, as written.
    pub valid_minutes_text: String,
    /// `validminutes`.
    pub valid_minutes: u32,
    /// `strm_len`, for stream-bound tokens.
    pub stream_len: Option<usize>,
}

/// Decodes a `wmsAuthSign` value without verifying it. UNVERIFIED.
pub fn decode(sign: &str) -> Result<WmsAuthFields, Denial> {
    if sign.len() > MAX_CREDENTIAL_BYTES {
        return Err(Denial::malformed(format!("wmsAuthSign is over the {MAX_CREDENTIAL_BYTES}-byte limit")));
    }
    // A query decoder may have turned base64 `+` into a space.
    let cleaned = sign.trim().replace(' ', "+");
    let bytes = b64_std_decode(&cleaned).ok_or_else(|| Denial::malformed("wmsAuthSign is not base64"))?;
    let text = String::from_utf8(bytes).map_err(|_| Denial::malformed("wmsAuthSign does not decode to text"))?;
    let (mut time, mut hash, mut minutes, mut stream_len) = (None, None, None, None);
    for pair in text.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match name {
            "server_time" => &mut time,
            "hash_value" => &mut hash,
            "validminutes" => &mut minutes,
            "strm_len" => &mut stream_len,
            other => return Err(Denial::malformed(format!("unknown wmsAuthSign field {other:?}"))),
        };
        if slot.replace(value.to_owned()).is_some() {
            return Err(Denial::malformed(format!("wmsAuthSign field {name:?} appears twice")));
        }
    }
    let missing = |f: &str| Denial::malformed(format!("wmsAuthSign lacks {f}"));
    let server_time = time.ok_or_else(|| missing("server_time"))?;
    let valid_minutes_text = minutes.ok_or_else(|| missing("validminutes"))?;
    let valid_minutes = parse_number::<u32>(&valid_minutes_text, "validminutes")?;
    if valid_minutes > MAX_VALID_MINUTES {
        return Err(Denial::malformed(format!("validminutes {valid_minutes} is over ten years")));
    }
    let stream_len = stream_len.map(|l| parse_number::<usize>(&l, "strm_len")).transpose()?;
    let hash_value = hash.ok_or_else(|| missing("hash_value"))?;
    let hash_digest = b64_std_decode(&hash_value)
        .and_then(|h| <[u8; 16]>::try_from(h).ok())
        .ok_or_else(|| Denial::malformed("hash_value is not a base64 MD5 digest"))?;
    Ok(WmsAuthFields {
        server_time_unix: parse_server_time(&server_time)?,
        server_time,
        hash_value,
        hash_digest,
        valid_minutes_text,
        valid_minutes,
        stream_len,
    })
}

impl WmsAuthFields {
    /// The canonical form: what [`Grant::fingerprint`] hashes (see the module docs).
    pub fn canonical(&self) -> String {
        let mut text = format!(
            "wmsauth:server_time={}&hash_value={}&validminutes={}",
            self.server_time,
            b64_std(&self.hash_digest),
            self.valid_minutes_text
        );
        if let Some(len) = self.stream_len {
            text.push_str(&format!("&strm_len={len}"));
        }
        text
    }
}

fn parse_number<T: core::str::FromStr>(text: &str, field: &str) -> Result<T, Denial> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Denial::malformed(format!("{field} {text:?} is not a whole number")));
    }
    text.parse().map_err(|_| Denial::malformed(format!("{field} {text:?} is out of range")))
}

/// Parses `M/D/YYYY h:mm:ss AM|PM` (padded or not), UTC, into unix seconds.
pub fn parse_server_time(text: &str) -> Result<i64, Denial> {
    let bad = || Denial::malformed(format!("server_time {text:?} is not M/D/YYYY h:mm:ss AM|PM"));
    let mut words = text.split(' ');
    let (Some(date), Some(clock), Some(meridiem), None) = (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(bad());
    };
    let numbers = |s: &str| -> Option<Vec<u32>> {
        s.split(['/', ':'])
            .map(|n| {
                (!n.is_empty() && n.len() <= 4 && n.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| n.parse().ok())
                    .flatten()
            })
            .collect()
    };
    let (Some([month, day, year]), Some([hour, minute, second])) = (
        numbers(date).and_then(|v| <[u32; 3]>::try_from(v).ok()),
        numbers(clock).and_then(|v| <[u32; 3]>::try_from(v).ok()),
    ) else {
        return Err(bad());
    };
    if !(1..=12).contains(&hour) {
        return Err(bad());
    }
    let hour24 = match meridiem {
        "AM" => hour % 12,
        "PM" => hour % 12 + 12,
        _ => return Err(bad()),
    };
    let month = u8::try_from(month).ok().and_then(|m| Month::try_from(m).ok()).ok_or_else(bad)?;
    let date =
        Date::from_calendar_date(i32::try_from(year).map_err(|_| bad())?, month, u8::try_from(day).map_err(|_| bad())?)
            .map_err(|_| bad())?;
    let clock = Time::from_hms(
        u8::try_from(hour24).map_err(|_| bad())?,
        u8::try_from(minute).map_err(|_| bad())?,
        u8::try_from(second).map_err(|_| bad())?,
    )
    .map_err(|_| bad())?;
    Ok(PrimitiveDateTime::new(date, clock).assume_utc().unix_timestamp())
}

/// Formats unix seconds as `server_time` in `style`.
pub fn format_server_time(unix: i64, style: DateStyle) -> Result<String, Error> {
    let t = OffsetDateTime::from_unix_timestamp(check_seconds("server_time", unix)?)
        .map_err(|e| Error::input("server_time", e.to_string()))?;
    let (hour12, meridiem) = match t.hour() {
        0 => (12, "AM"),
        h @ 1..=11 => (h, "AM"),
        12 => (12, "PM"),
        h => (h - 12, "PM"),
    };
    let month = u8::from(t.month());
    Ok(match style {
        DateStyle::Php => {
            format!("{month}/{}/{} {hour12}:{:02}:{:02} {meridiem}", t.day(), t.year(), t.minute(), t.second())
        }
        DateStyle::ZeroPadded => {
            format!("{month:02}/{:02}/{} {hour12:02}:{:02}:{:02} {meridiem}", t.day(), t.year(), t.minute(), t.second())
        }
    })
}

fn digest(ip: &str, key: &str, time: &str, minutes: &str, stream: &str) -> [u8; 16] {
    let mut md5 = Md5::new();
    for part in [ip, key, time, minutes, stream] {
        md5.update(part.as_bytes());
    }
    md5.finalize().into()
}

impl Scheme for WmsAuthScheme {
    fn kind(&self) -> SchemeKind {
        SchemeKind::WmsAuth
    }

    fn verify(&self, sign: &str, facts: &RequestFacts) -> Result<Grant, Denial> {
        let fields = decode(sign)?;
        let ip = match (self.ip_bound, facts.client_ip) {
            (false, _) => String::new(),
            (true, Some(ip)) => ip.to_string(),
            (true, None) => {
                return Err(Denial::IpMismatch { client: None, expected: "the signing IP (hashed)".into() })
            }
        };
        // The signer's stream is the first strm_len characters of the path, written with or
        // without the leading slash; both are tried and the one that matched is recorded.
        let streams: Vec<&str> = match fields.stream_len {
            None => vec![""],
            Some(len) => {
                let path = facts.path.as_str();
                let relative = path.strip_prefix('/').unwrap_or(path);
                // `validminutes` and the stream are hashed back to back: a stream that starts
                // with a digit would let `20` + `1/live/x` read as `201` + `/live/x`. Such
                // streams are never signed here, and never accepted.
                let found: Vec<&str> = [path, relative]
                    .iter()
                    .filter_map(|p| p.get(..len))
                    .filter(|s| !s.starts_with(|c: char| c.is_ascii_digit()))
                    .collect();
                if found.is_empty() {
                    return Err(Denial::ScopeMismatch {
                        path: facts.path.clone(),
                        scope: format!("a signed stream of {len} characters"),
                    });
                }
                found
            }
        };
        let matched = streams.iter().find(|stream| {
            let d = digest(&ip, &self.key, &fields.server_time, &fields.valid_minutes_text, stream);
            ct_eq(&d, &fields.hash_digest)
        });
        let Some(stream) = matched else {
            let tried = streams
                .iter()
                .map(|stream| format!("{ip}<secret>{}{}{stream}", fields.server_time, fields.valid_minutes_text))
                .collect();
            return Err(Denial::BadSignature {
                explanation: Some(SignatureExplanation {
                    tried,
                    recipe: "base64(md5(ip + key + server_time + validminutes [+ signed_stream]))".into(),
                }),
            });
        };
        let claims = crate::grant::present_fields(serde_json::json!({
            "server_time": fields.server_time,
            "server_time_unix": fields.server_time_unix,
            "validminutes": fields.valid_minutes,
            "strm_len": fields.stream_len,
            "signed_stream": fields.stream_len.map(|_| *stream),
            "ip_bound": self.ip_bound,
        }));
        let mut grant = Grant::new(SchemeKind::WmsAuth, fields.canonical(), claims.to_string());
        grant.validity = Validity {
            not_before: Some(fields.server_time_unix),
            expires_at: Some(fields.server_time_unix + i64::from(fields.valid_minutes) * 60),
            leeway: self.tolerance,
        };
        if fields.stream_len.is_some() {
            grant.scope = Scope::SignedPrefix((*stream).to_owned());
        }
        // The IP hashed into the signature binds it: carried into session credentials.
        grant.ip_binding = facts.client_ip.filter(|_| self.ip_bound).map(IpRange::single);
        Ok(grant)
    }
}

/// What to sign into a `wmsAuthSign`.
#[derive(Clone, Debug)]
pub struct WmsAuthRequest<'a> {
    /// The viewer's IP as the server will see it (empty for tokens not bound to an IP).
    pub ip: &'a str,
    /// Signing time, unix seconds.
    pub server_time: i64,
    /// Minutes of validity.
    pub valid_minutes: u32,
    /// The stream prefix to bind (`live/stream`), for the stream-based variant.
    pub stream: Option<&'a str>,
    /// How to write `server_time`.
    pub date_style: DateStyle,
}

/// Produces a `wmsAuthSign` value.
pub fn sign(key: &str, request: &WmsAuthRequest<'_>) -> Result<String, Error> {
    if key.is_empty() {
        return Err(Error::key("WMSAuth key is empty"));
    }
    if !request.ip.is_empty() && request.ip.parse::<std::net::IpAddr>().is_err() {
        return Err(Error::input("ip", format!("{:?} is not an IP address", request.ip)));
    }
    if request.valid_minutes == 0 || request.valid_minutes > MAX_VALID_MINUTES {
        return Err(Error::input("validminutes", "must be between 1 minute and ten years"));
    }
    let time = format_server_time(request.server_time, request.date_style)?;
    let minutes = request.valid_minutes.to_string();
    let stream = request.stream.unwrap_or("");
    let hash = b64_std(&digest(request.ip, key, &time, &minutes, stream));
    let mut text = format!("server_time={time}&hash_value={hash}&validminutes={minutes}");
    if let Some(s) = request.stream {
        if s.is_empty() {
            return Err(Error::input("stream", "empty stream"));
        }
        if s.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(Error::input(
                "stream",
                "a stream that starts with a digit is ambiguous (the hash joins validminutes and the stream: \
                 20 + \"1/live/x\" reads as 201 + \"/live/x\"); name it without a leading digit",
            ));
        }
        text.push_str(&format!("&strm_len={}", s.len()));
    }
    Ok(b64_std(text.as_bytes()))
}

#[cfg(test)]
mod tests {

    /// Regression (review of 2026-11-30): a token for stream `1/live/x` valid 20 minutes
    /// re-read as 201 minutes for `/live/x`.
    #[test]
    fn streams_that_start_with_a_digit_are_never_signed_nor_accepted() {
        let request = |stream| WmsAuthRequest {
            ip: "",
            server_time: 1_700_000_000,
            valid_minutes: 20,
            stream: Some(stream),
            date_style: DateStyle::default(),
        };
        let err = sign("key", &request("1/live/x")).unwrap_err();
        assert!(err.to_string().contains("starts with a digit"), "{err}");
        // A token another signer made for `1/live/x` (20 min), re-read as 201 min for `/live/x`.
        let time = format_server_time(1_700_000_000, DateStyle::default()).unwrap();
        let hash = b64_std(&digest("", "key", &time, "20", "1/live/x"));
        let forged = b64_std(format!("server_time={time}&hash_value={hash}&validminutes=201&strm_len=7").as_bytes());
        let mut scheme = WmsAuthScheme::new("key");
        scheme.ip_bound = false;
        let facts = RequestFacts { path: "/live/x/index.m3u8".into(), client_ip: None };
        let shifted = RequestFacts { path: "/1/live/x/index.m3u8".into(), client_ip: None };
        let reread = scheme.verify(&forged, &facts);
        assert!(reread.is_ok(), "the ambiguity itself: a peer signer token re-reads: {reread:?}");
        let original = b64_std(format!("server_time={time}&hash_value={hash}&validminutes=20&strm_len=8").as_bytes());
        assert!(scheme.verify(&original, &shifted).is_err(), "a digit-leading stream is never accepted");
    }
    use super::*;

    #[test]
    fn both_date_styles_parse_to_the_same_instant() {
        let php = parse_server_time("5/4/2012 8:33:05 AM").unwrap();
        let padded = parse_server_time("05/04/2012 08:33:05 AM").unwrap();
        assert_eq!(php, 1_336_120_385);
        assert_eq!(php, padded);
        assert_eq!(
            parse_server_time("5/4/2012 12:00:00 AM").unwrap() + 12 * 3600,
            parse_server_time("5/4/2012 12:00:00 PM").unwrap()
        );
        for bad in ["5/4/2012 13:00:00 PM", "5/4/2012 8:33:05", "2012-05-04 08:33:05 AM", "2/30/2012 1:00:00 AM", ""] {
            assert!(parse_server_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for unix in [0, 1_336_120_385, 1_700_000_000, 1_336_132_800] {
            for style in [DateStyle::Php, DateStyle::ZeroPadded] {
                let text = format_server_time(unix, style).unwrap();
                assert_eq!(parse_server_time(&text).unwrap(), unix, "{text}");
            }
        }
        assert_eq!(format_server_time(1_336_120_385, DateStyle::Php).unwrap(), "5/4/2012 8:33:05 AM");
        assert_eq!(format_server_time(1_336_120_385, DateStyle::ZeroPadded).unwrap(), "05/04/2012 08:33:05 AM");
    }
}
