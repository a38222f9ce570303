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
///
/// It deserializes as serde's derive would (every claim optional, unknown ones ignored, a
/// repeated one refused, an array read by position), with a faster claim-name match.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
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

/// The claims of [`PlaybackClaims`], in declaration order.
#[derive(Clone, Copy)]
enum Claim {
    Sub,
    Iss,
    Aud,
    Exp,
    Nbf,
    Iat,
    Jti,
    Streams,
    Ip,
    Purpose,
    MaxSessions,
    Referrers,
    AllowNoReferrer,
    UserAgents,
    AccessRules,
}

/// The names of [`Claim`], in the same order.
const CLAIM_NAMES: &[&str] = &[
    "sub",
    "iss",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "streams",
    "ip",
    "purpose",
    "max_sessions",
    "referrers",
    "allow_no_referrer",
    "user_agents",
    "access_rules",
];

impl Claim {
    /// The claim named `name`, if it is one. Decided by length and bytes: the `match` on
    /// string literals that serde's derive writes compares the name against every claim of
    /// the same length in turn.
    fn named(name: &str) -> Option<Claim> {
        Some(match name.as_bytes() {
            [b's', b'u', b'b'] => Claim::Sub,
            [b'i', b's', b's'] => Claim::Iss,
            [b'a', b'u', b'd'] => Claim::Aud,
            [b'e', b'x', b'p'] => Claim::Exp,
            [b'n', b'b', b'f'] => Claim::Nbf,
            [b'i', b'a', b't'] => Claim::Iat,
            [b'j', b't', b'i'] => Claim::Jti,
            [b'i', b'p'] => Claim::Ip,
            b"streams" => Claim::Streams,
            b"purpose" => Claim::Purpose,
            b"max_sessions" => Claim::MaxSessions,
            b"referrers" => Claim::Referrers,
            b"allow_no_referrer" => Claim::AllowNoReferrer,
            b"user_agents" => Claim::UserAgents,
            b"access_rules" => Claim::AccessRules,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        CLAIM_NAMES.get(self as usize).copied().unwrap_or("")
    }
}

/// A map key: a claim, or a member to ignore.
struct ClaimKey(Option<Claim>);

impl<'de> Deserialize<'de> for ClaimKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = ClaimKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("field identifier")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ClaimKey, E> {
                Ok(ClaimKey(Claim::named(v)))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<ClaimKey, E> {
                Ok(ClaimKey(core::str::from_utf8(v).ok().and_then(Claim::named)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ClaimKey, E> {
                let index = usize::try_from(v).ok();
                Ok(ClaimKey(index.and_then(|i| CLAIM_NAMES.get(i)).and_then(|name| Claim::named(name))))
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for PlaybackClaims {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut claims = PlaybackClaims::default();
        de::DeserializeSeed::deserialize(ClaimsInto(&mut claims), deserializer)?;
        Ok(claims)
    }
}

impl PlaybackClaims {
    /// Reads the claims of the JSON object `text` into `self`, which must be the default
    /// (members absent from `text` keep their value), as [`Deserialize`] does, without
    /// moving the claims through the deserializer's layers: the verify path's copies of
    /// this struct cost more than some of its checks.
    pub(crate) fn read_json(&mut self, text: &str) -> Result<(), serde_json::Error> {
        debug_assert!(*self == PlaybackClaims::default(), "read_json reads into default claims");
        let mut deserializer = serde_json::Deserializer::from_str(text);
        de::DeserializeSeed::deserialize(ClaimsInto(self), &mut deserializer)?;
        deserializer.end()
    }
}

/// Deserializes claims into the struct it holds.
struct ClaimsInto<'c>(&'c mut PlaybackClaims);

impl<'de> de::DeserializeSeed<'de> for ClaimsInto<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_struct("PlaybackClaims", CLAIM_NAMES, self)
    }
}

impl<'de> Visitor<'de> for ClaimsInto<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct PlaybackClaims")
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let c = self.0;
        let mut seen = 0_u32;
        while let Some(ClaimKey(key)) = map.next_key()? {
            let Some(claim) = key else {
                map.next_value::<de::IgnoredAny>()?;
                continue;
            };
            let bit = 1_u32 << (claim as u32);
            if seen & bit != 0 {
                return Err(de::Error::duplicate_field(claim.name()));
            }
            seen |= bit;
            match claim {
                Claim::Sub => c.sub = map.next_value()?,
                Claim::Iss => c.iss = map.next_value()?,
                Claim::Aud => c.aud = map.next_value()?,
                Claim::Exp => c.exp = map.next_value()?,
                Claim::Nbf => c.nbf = map.next_value()?,
                Claim::Iat => c.iat = map.next_value()?,
                Claim::Jti => c.jti = map.next_value()?,
                Claim::Streams => c.streams = map.next_value()?,
                Claim::Ip => c.ip = map.next_value()?,
                Claim::Purpose => c.purpose = map.next_value()?,
                Claim::MaxSessions => c.max_sessions = map.next_value()?,
                Claim::Referrers => c.referrers = map.next_value()?,
                Claim::AllowNoReferrer => c.allow_no_referrer = map.next_value()?,
                Claim::UserAgents => c.user_agents = map.next_value()?,
                Claim::AccessRules => c.access_rules = map.next_value()?,
            }
        }
        Ok(())
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        // By position, in declaration order; missing trailing elements keep their default.
        fn next<'de, A: de::SeqAccess<'de>, T: Deserialize<'de> + Default>(seq: &mut A) -> Result<T, A::Error> {
            Ok(seq.next_element()?.unwrap_or_default())
        }
        let s = &mut seq;
        *self.0 = PlaybackClaims {
            sub: next(s)?,
            iss: next(s)?,
            aud: next(s)?,
            exp: next(s)?,
            nbf: next(s)?,
            iat: next(s)?,
            jti: next(s)?,
            streams: next(s)?,
            ip: next(s)?,
            purpose: next(s)?,
            max_sessions: next(s)?,
            referrers: next(s)?,
            allow_no_referrer: next(s)?,
            user_agents: next(s)?,
            access_rules: next(s)?,
        };
        Ok(())
    }
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

    /// What serde's derive makes of the same struct: the reference for the hand-written
    /// `Deserialize`.
    #[derive(Debug, PartialEq, Deserialize)]
    struct Derived {
        #[serde(default)]
        sub: Option<String>,
        #[serde(default)]
        iss: Option<String>,
        #[serde(default)]
        aud: Option<Audience>,
        #[serde(default)]
        exp: Option<NumericDate>,
        #[serde(default)]
        nbf: Option<NumericDate>,
        #[serde(default)]
        iat: Option<NumericDate>,
        #[serde(default)]
        jti: Option<String>,
        #[serde(default)]
        streams: Option<Vec<String>>,
        #[serde(default)]
        ip: Option<IpRange>,
        #[serde(default)]
        purpose: Option<Purpose>,
        #[serde(default)]
        max_sessions: Option<u32>,
        #[serde(default)]
        referrers: Option<Vec<String>>,
        #[serde(default)]
        allow_no_referrer: Option<bool>,
        #[serde(default)]
        user_agents: Option<Vec<String>>,
        #[serde(default)]
        access_rules: Option<Vec<AccessRule>>,
    }

    impl From<PlaybackClaims> for Derived {
        fn from(c: PlaybackClaims) -> Derived {
            let PlaybackClaims {
                sub,
                iss,
                aud,
                exp,
                nbf,
                iat,
                jti,
                streams,
                ip,
                purpose,
                max_sessions,
                referrers,
                allow_no_referrer,
                user_agents,
                access_rules,
            } = c;
            Derived {
                sub,
                iss,
                aud,
                exp,
                nbf,
                iat,
                jti,
                streams,
                ip,
                purpose,
                max_sessions,
                referrers,
                allow_no_referrer,
                user_agents,
                access_rules,
            }
        }
    }

    fn member() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let name = prop_oneof![
            proptest::sample::select(CLAIM_NAMES.to_vec()).prop_map(str::to_owned),
            Just("\\u0065xp".to_owned()),
            Just("other".to_owned()),
            Just("Exp".to_owned()),
        ];
        let value = proptest::sample::select(vec![
            "null",
            "1700000000",
            "1700000000.5",
            "-1",
            "\"u1\"",
            "\"play\"",
            "\"10.0.0.0/8\"",
            "[\"a\"]",
            "[]",
            "true",
            "3",
            "{}",
            "[{\"type\":\"any\",\"action\":\"block\"}]",
            "[\"a\",1]",
        ]);
        (name, value).prop_map(|(n, v)| format!("\"{n}\":{v}"))
    }

    proptest::proptest! {
        #[test]
        fn deserializes_as_the_derive_would(members in proptest::collection::vec(member(), 0..6), array in proptest::bool::ANY) {
            let json = if array {
                let values: Vec<&str> = members.iter().map(|m| m.split_once(':').map_or("", |(_, v)| v)).collect();
                format!("[{}]", values.join(","))
            } else {
                format!("{{{}}}", members.join(","))
            };
            let ours = serde_json::from_str::<PlaybackClaims>(&json).map(Derived::from).map_err(|e| e.to_string());
            let derived = serde_json::from_str::<Derived>(&json).map_err(|e| e.to_string());
            proptest::prop_assert_eq!(&ours, &derived, "{}", json);
            // The verify path's reader, in place, reads the same (trailing text included).
            for text in [json.clone(), format!("{json} "), format!("{json}x")] {
                let mut read = PlaybackClaims::default();
                let in_place = read.read_json(&text).map(|()| Derived::from(read)).map_err(|e| e.to_string());
                let derived = serde_json::from_str::<Derived>(&text).map_err(|e| e.to_string());
                proptest::prop_assert_eq!(in_place, derived, "{}", text);
            }
            let value = serde_json::from_str::<serde_json::Value>(&json);
            if let Ok(value) = value {
                let ours = serde_json::from_value::<PlaybackClaims>(value.clone()).map(Derived::from).map_err(|e| e.to_string());
                proptest::prop_assert_eq!(ours, serde_json::from_value::<Derived>(value).map_err(|e| e.to_string()));
            }
        }
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
