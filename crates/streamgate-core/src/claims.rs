//! Playback claims: the typed content of a streamgate JWT, validated as it is parsed.

use core::fmt;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::policy::ip::IpRange;

/// What a token lets its holder do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    /// Watch a stream (the default).
    #[default]
    Play,
    /// Push a stream to the origin.
    Publish,
}

impl Purpose {
    /// The wire form: `play` or `publish`.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Play => "play",
            Purpose::Publish => "publish",
        }
    }

    /// Parses `play` / `publish`.
    pub fn parse(text: &str) -> Option<Purpose> {
        match text {
            "play" => Some(Purpose::Play),
            "publish" => Some(Purpose::Publish),
            _ => None,
        }
    }
}

/// A JWT NumericDate as whole unix seconds. Fractions are truncated on read (RFC 7519
/// allows them); signing always writes integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NumericDate(pub i64);

impl Serialize for NumericDate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.0)
    }
}

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DateVisitor;
        impl Visitor<'_> for DateVisitor {
            type Value = NumericDate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a NumericDate in unix seconds")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NumericDate, E> {
                crate::timestamp::check_seconds("NumericDate", v).map(NumericDate).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NumericDate, E> {
                let v = i64::try_from(v).map_err(|_| E::custom("NumericDate out of range"))?;
                self.visit_i64(v)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<NumericDate, E> {
                let max = crate::timestamp::MAX_UNIX_SECONDS as f64;
                if !(0.0..=max * 1000.0).contains(&v) {
                    return Err(E::custom(format!("NumericDate {v} is out of range")));
                }
                // In range, so the truncating cast is exact for the integer part.
                self.visit_i64(v.trunc() as i64)
            }
        }
        deserializer.deserialize_any(DateVisitor)
    }
}

/// `aud`: one audience or several.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience string.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A direct visitor: `untagged` would buffer the value and try each variant.
        struct AudienceVisitor;
        impl<'de> Visitor<'de> for AudienceVisitor {
            type Value = Audience;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Audience, E> {
                Ok(Audience::One(v.to_owned()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Audience, A::Error> {
                let mut all = Vec::new();
                while let Some(one) = seq.next_element::<String>()? {
                    all.push(one);
                }
                Ok(Audience::Many(all))
            }
        }
        deserializer.deserialize_any(AudienceVisitor)
    }
}

impl Audience {
    /// Whether `expected` is among the audiences.
    pub fn contains(&self, expected: &str) -> bool {
        match self {
            Audience::One(a) => a == expected,
            Audience::Many(list) => list.iter().any(|a| a == expected),
        }
    }
}

/// An ISO 3166-1 alpha-2 country code, upper-cased (`XX`/`T1` style codes are accepted as given).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CountryCode(String);

impl CountryCode {
    /// Parses a two-character alphanumeric code, case-insensitively.
    pub fn parse(text: &str) -> Result<CountryCode, String> {
        let t = text.trim();
        if t.len() == 2 && t.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(CountryCode(t.to_ascii_uppercase()))
        } else {
            Err(format!("{text:?} is not a two-letter country code"))
        }
    }

    /// The upper-case code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CountryCode {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        CountryCode::parse(&value)
    }
}

impl From<CountryCode> for String {
    fn from(value: CountryCode) -> String {
        value.0
    }
}

/// Allow or block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    /// Let the request through and stop evaluating.
    Allow,
    /// Refuse the request and stop evaluating.
    Block,
}

/// What an access rule matches, in the style of Cloudflare Stream `accessRules`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum RuleMatcher {
    /// Client IP in any of the ranges.
    #[serde(rename = "ip.src")]
    Ip {
        /// Addresses or CIDR ranges.
        ip: Vec<IpRange>,
    },
    /// Request country is one of these.
    #[serde(rename = "ip.geoip.country")]
    Country {
        /// Country codes.
        country: Vec<CountryCode>,
    },
    /// Every request (a catch-all, normally last).
    #[serde(rename = "any")]
    Any,
}

/// One ordered access rule; the first rule that matches decides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRule {
    /// Allow or block.
    pub action: RuleAction,
    /// What the rule matches.
    #[serde(flatten)]
    pub matcher: RuleMatcher,
}

/// The claims of a streamgate playback JWT that the gate enforces. Other claims are
/// ignored here (they stay in the signed payload, see [`crate::Grant::claims_json`]);
/// no `flatten` catch-all, which would make serde buffer every token twice.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlaybackClaims {
    /// Viewer or user id; a token with `sub` is user-bound for session counting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// Expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<NumericDate>,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<NumericDate>,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<NumericDate>,
    /// Token id, used for revocation and session grouping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Stream globs (`live/match-*`, `vod/**`); absent means every stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams: Option<Vec<String>>,
    /// IP binding: an address or CIDR range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpRange>,
    /// `play` (default) or `publish`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<Purpose>,
    /// Concurrent session limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sessions: Option<u32>,
    /// Allowed Referer hosts (DNS-style wildcards such as `*.example.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrers: Option<Vec<String>>,
    /// Whether a request without Referer passes the token's referrer list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_no_referrer: Option<bool>,
    /// Allowed User-Agent patterns (`*` wildcards, case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agents: Option<Vec<String>>,
    /// Ordered IP/country rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_rules: Option<Vec<AccessRule>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_claims_and_ignores_others() {
        let json = r#"{"sub":"u1","aud":["a","b"],"exp":1700000000.9,"streams":["live/a"],"ip":"10.0.0.0/8",
            "purpose":"publish","max_sessions":2,"custom":{"x":1},
            "access_rules":[{"type":"ip.geoip.country","action":"block","country":["fr"]},
                            {"type":"any","action":"allow"}]}"#;
        let claims: PlaybackClaims = serde_json::from_str(json).unwrap();
        assert_eq!(claims.exp, Some(NumericDate(1_700_000_000)));
        assert_eq!(claims.purpose, Some(Purpose::Publish));
        assert!(claims.aud.as_ref().is_some_and(|a| a.contains("b") && !a.contains("c")));
        assert!(serde_json::from_str::<PlaybackClaims>(r#"{"aud":7}"#).is_err());
        let rules = claims.access_rules.unwrap();
        assert_eq!(rules[0].matcher, RuleMatcher::Country { country: vec![CountryCode::parse("FR").unwrap()] });
        assert_eq!(rules[1].matcher, RuleMatcher::Any);
    }

    #[test]
    fn rejects_bad_values_with_reasons() {
        let ms = serde_json::from_str::<PlaybackClaims>(r#"{"exp":1700000000000}"#).unwrap_err();
        assert!(ms.to_string().contains("milliseconds"), "{ms}");
        let ip = serde_json::from_str::<PlaybackClaims>(r#"{"ip":"not-an-ip"}"#).unwrap_err();
        assert!(ip.to_string().contains("not-an-ip"), "{ip}");
        let purpose = serde_json::from_str::<PlaybackClaims>(r#"{"purpose":"admin"}"#);
        assert!(purpose.is_err());
        let cc = serde_json::from_str::<PlaybackClaims>(
            r#"{"access_rules":[{"type":"ip.geoip.country","action":"allow","country":["FRA"]}]}"#,
        );
        assert!(cc.is_err());
    }
}
