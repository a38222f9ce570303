//! nginx `secure_link_md5` links: `md5 = base64url(md5(expression))`, `expires` in seconds.
//!
//! The expression is nginx's own template, e.g. nginx's documented
//! `$secure_link_expires$uri$remote_addr secret`. Because nginx writes the secret literally
//! into the expression, streamgate uses the variable `$key` for it so the template can be
//! shared without the secret. Supported variables: `$secure_link_expires`, `$uri`,
//! `$remote_addr`, `$key` (also as `${name}`).
//!
//! Identity: nginx hashes `expires` as written, so the literal text is what is verified,
//! and the md5 is what makes one link differ from another (it covers the URI and address
//! too). The canonical form ([`Grant::credential`]) is `secure-link:` and the base64url of
//! the md5 a signer writing `expires` without leading zeros would produce: the presented
//! digest, or for `expires=0042` the digest over `42`, which the verifier recomputes with
//! the secret. The md5 spelling is not signed: padding (up to nginx's 24 characters) is
//! accepted and left out; more padding, the standard base64 alphabet (both refused by
//! nginx) and non-zero spare bits in the last character (which nginx ignores, but no
//! signer writes) are refused, so each digest has one spelling. An `expires` the
//! expression does not sign is not part of the identity.
//!
//! Secrets: nginx takes whatever the operator wrote into `secure_link_md5`, so no minimum
//! length is enforced here (that would break working links). An MD5 over a short secret
//! is brute-forceable offline from one link: use 32 random bytes or more.

use std::net::IpAddr;

use md5::{Digest, Md5};

use crate::denial::{Denial, Error, SignatureExplanation};
use crate::encoding::{b64_url, b64_url_decode, ct_eq};
use crate::grant::{Grant, Scope, Validity};
use crate::policy::ip::IpRange;
use crate::policy::RequestFacts;
use crate::schemes::{Scheme, SchemeKind, MAX_CREDENTIAL_BYTES};
use crate::timestamp::{check_seconds, parse_seconds};

/// nginx's documented example expression, with the secret as `$key`.
pub const DEFAULT_EXPRESSION: &str = "$secure_link_expires$uri$remote_addr $key";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variable {
    Expires,
    Uri,
    RemoteAddr,
    Key,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(Variable),
}

/// A parsed `secure_link_md5` expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expression {
    pieces: Vec<Piece>,
}

impl Expression {
    /// Parses a template; an unknown variable is an error, never silently empty.
    pub fn parse(template: &str) -> Result<Expression, Error> {
        let mut pieces = Vec::new();
        let mut rest = template;
        while let Some(at) = rest.find('$') {
            if at > 0 {
                pieces.push(Piece::Text(rest.get(..at).unwrap_or("").to_owned()));
            }
            let after = rest.get(at + 1..).unwrap_or("");
            let (name, remaining) = if let Some(braced) = after.strip_prefix('{') {
                let end = braced.find('}').ok_or_else(|| Error::input("expression", "unclosed ${"))?;
                (braced.get(..end).unwrap_or(""), braced.get(end + 1..).unwrap_or(""))
            } else {
                let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
                (after.get(..end).unwrap_or(""), after.get(end..).unwrap_or(""))
            };
            let var = match name {
                "secure_link_expires" => Variable::Expires,
                "uri" => Variable::Uri,
                "remote_addr" => Variable::RemoteAddr,
                "key" => Variable::Key,
                "" => return Err(Error::input("expression", "a lone '$' (write the secret as $key)")),
                other => {
                    return Err(Error::input(
                        "expression",
                        format!(
                            "unsupported variable ${other} (supported: $secure_link_expires, $uri, $remote_addr, $key)"
                        ),
                    ))
                }
            };
            pieces.push(Piece::Var(var));
            rest = remaining;
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        let expression = Expression { pieces };
        if !expression.uses(Variable::Key) {
            return Err(Error::input("expression", "must contain $key, or the link is signed with no secret"));
        }
        Ok(expression)
    }

    fn uses(&self, var: Variable) -> bool {
        self.pieces.contains(&Piece::Var(var))
    }

    fn render(&self, key: &str, expires: &str, uri: &str, addr: &str) -> String {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.as_str(),
                Piece::Var(Variable::Expires) => expires,
                Piece::Var(Variable::Uri) => uri,
                Piece::Var(Variable::RemoteAddr) => addr,
                Piece::Var(Variable::Key) => key,
            })
            .collect()
    }
}

/// Verifier settings for secure_link.
#[derive(Clone, Debug)]
pub struct SecureLinkScheme {
    secret: String,
    expression: Expression,
    /// Clock leeway, seconds.
    pub leeway: u32,
}

impl SecureLinkScheme {
    /// Whether a link signs one exact URL (the expression hashes `$uri`): the gate's
    /// session credentials then cover that URL only, unless `sessions.urlTokenScope` widens
    /// them.
    pub fn signs_one_url(&self) -> bool {
        self.expression.uses(Variable::Uri)
    }

    /// A verifier for `secret` and the nginx `template`.
    pub fn new(secret: &str, template: &str) -> Result<SecureLinkScheme, Error> {
        if secret.is_empty() {
            return Err(Error::key("secure_link secret is empty"));
        }
        Ok(SecureLinkScheme { secret: secret.to_owned(), expression: Expression::parse(template)?, leeway: 0 })
    }

    fn remote_addr(&self, client: Option<IpAddr>) -> Result<String, Denial> {
        match (self.expression.uses(Variable::RemoteAddr), client) {
            (false, _) => Ok(String::new()),
            (true, Some(ip)) => Ok(ip.to_string()),
            (true, None) => Err(Denial::IpMismatch { client: None, expected: "$remote_addr (hashed)".into() }),
        }
    }

    /// The `md5` value for a link.
    pub fn sign(&self, uri: &str, client: Option<IpAddr>, expires: Option<i64>) -> Result<String, Error> {
        let expires = match (expires, self.expression.uses(Variable::Expires)) {
            (Some(e), true) => check_seconds("expires", e)?.to_string(),
            (None, false) => String::new(),
            (None, true) => return Err(Error::input("expires", "the expression uses $secure_link_expires")),
            (Some(_), false) => {
                return Err(Error::input("expires", "the expression has no $secure_link_expires to sign it"))
            }
        };
        let addr = self.remote_addr(client).map_err(|_| Error::input("ip", "the expression uses $remote_addr"))?;
        let text = self.expression.render(&self.secret, &expires, uri, &addr);
        Ok(b64_url(&Md5::digest(text.as_bytes())))
    }
}

impl Scheme for SecureLinkScheme {
    fn kind(&self) -> SchemeKind {
        SchemeKind::SecureLink
    }

    fn verify(&self, credential: &str, facts: &RequestFacts) -> Result<Grant, Denial> {
        let (digest, expires_text) = split(credential)?;
        let expires = match (expires_text.is_empty(), self.expression.uses(Variable::Expires)) {
            (_, false) => None,
            (true, true) => return Err(Denial::malformed("link lacks expires=")),
            (false, true) => Some(parse_expires(expires_text)?),
        };
        let addr = self.remote_addr(facts.client_ip)?;
        // nginx hashes `expires` as written, leading zeros included.
        let expires_signed = if expires.is_some() { expires_text } else { "" };
        let text = self.expression.render(&self.secret, expires_signed, &facts.path, &addr);
        if !ct_eq(&Md5::digest(text.as_bytes()), &digest) {
            return Err(Denial::BadSignature {
                explanation: Some(SignatureExplanation {
                    tried: vec![self.expression.render("<secret>", expires_signed, &facts.path, &addr)],
                    recipe: "base64url(md5(expression)), without padding".into(),
                }),
            });
        }
        let canonical_digest = match expires.map(|e| e.to_string()) {
            Some(canonical) if canonical != expires_text => {
                Md5::digest(self.expression.render(&self.secret, &canonical, &facts.path, &addr).as_bytes()).to_vec()
            }
            _ => digest,
        };
        let claims = crate::grant::present_fields(serde_json::json!({
            "expires": expires, "uri": facts.path, "remote_addr": (!addr.is_empty()).then_some(&addr),
        }));
        let mut grant = Grant::new(SchemeKind::SecureLink, canonical(&canonical_digest), claims.to_string());
        grant.validity = Validity { not_before: None, expires_at: expires, leeway: self.leeway };
        if self.expression.uses(Variable::Uri) {
            grant.scope = Scope::SignedPath(facts.path.clone());
        }
        // The address hashed into the link binds it: carried into session credentials.
        grant.ip_binding = facts.client_ip.filter(|_| !addr.is_empty()).map(IpRange::single);
        Ok(grant)
    }
}

/// nginx reads at most this many characters of `md5` (22 of base64url and 2 of padding).
const MAX_MD5_TEXT: usize = 24;

/// Splits a credential into its md5 digest and its `expires` text (maybe empty).
fn split(credential: &str) -> Result<(Vec<u8>, &str), Denial> {
    if credential.len() > MAX_CREDENTIAL_BYTES {
        return Err(Denial::malformed(format!("credential is over the {MAX_CREDENTIAL_BYTES}-byte limit")));
    }
    let (md5_text, expires_text) = credential.split_once(',').unwrap_or((credential, ""));
    if md5_text.len() > MAX_MD5_TEXT {
        return Err(Denial::malformed(format!("md5 is over nginx's {MAX_MD5_TEXT} characters")));
    }
    let digest = b64_url_decode(md5_text.trim_end_matches('='))
        .filter(|d| d.len() == 16)
        .ok_or_else(|| Denial::malformed("md5 is not a base64url MD5 digest"))?;
    Ok((digest, expires_text))
}

fn parse_expires(text: &str) -> Result<i64, Denial> {
    parse_seconds("expires", text).map_err(|e| Denial::malformed(e.to_string()))
}

fn canonical(digest: &[u8]) -> String {
    format!("secure-link:{}", b64_url(digest))
}

/// The canonical form of a credential (`md5` or `md5,expires`) from its text alone,
/// UNVERIFIED. An `expires` with leading zeros is refused: the canonical md5 is then over
/// the value without them, which only the secret can compute.
pub(crate) fn canonical_unverified(credential: &str) -> Result<String, Denial> {
    let (digest, expires_text) = split(credential.trim())?;
    if !expires_text.is_empty() {
        let expires = parse_expires(expires_text)?;
        if expires.to_string() != expires_text {
            return Err(Denial::malformed(format!(
                "expires {expires_text:?} has leading zeros: the link is named by the md5 signed for \
                 expires={expires}, which needs the secret; give that link"
            )));
        }
    }
    Ok(canonical(&digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_parse_and_refuse_unknowns() {
        assert!(Expression::parse(DEFAULT_EXPRESSION).is_ok());
        assert!(Expression::parse("${secure_link_expires}${uri}${key}").is_ok());
        let unknown = Expression::parse("$http_host$key").unwrap_err();
        assert!(unknown.to_string().contains("$http_host"), "{unknown}");
        assert!(Expression::parse("$uri secret").is_err());
        assert!(Expression::parse("$key${uri").is_err());
    }

    #[test]
    fn renders_nginx_documented_shape() {
        let e = Expression::parse(DEFAULT_EXPRESSION).unwrap();
        assert_eq!(e.render("secret", "2147483647", "/s/link", "127.0.0.1"), "2147483647/s/link127.0.0.1 secret");
    }
}
