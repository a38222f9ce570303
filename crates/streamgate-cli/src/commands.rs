//! The subcommands. Each turns flags into core calls and prints the result; no decision
//! logic lives here.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use rand_core::{OsRng, RngCore};
use serde_json::{json, Map, Value};
use streamgate_core::claims::Purpose;
use streamgate_core::config::{jwt_keys, GateConfig, JwtOptions};
use streamgate_core::keys::{Algorithm, Key};
use streamgate_core::manifests::manifest_kind;
use streamgate_core::policy::ip::IpRange;
use streamgate_core::policy::path::normalize_path;
use streamgate_core::revocation::{MemoryBlocklist, MemoryRevocations};
use streamgate_core::schemes::edgeauth::{self, EdgeAlgorithm, EdgeAuthRequest, EscapeStyle};
use streamgate_core::schemes::jwt;
use streamgate_core::schemes::secure_link::SecureLinkScheme;
use streamgate_core::schemes::session::widened_directory;
use streamgate_core::schemes::wmsauth::{self, DateStyle, WmsAuthRequest};
use streamgate_core::schemes::{detect_scheme, find_in_query, signed_url, split_url, Credential, SchemeKind};
use streamgate_core::sessions::{KnownCount, SessionLimiter};
use streamgate_core::{unverified, Decision, Denial, Gate, Hooks, Policy, ReasonCode, RequestContext};

use crate::cli::*;
use crate::keysource;

/// How a command ended, beyond errors.
pub enum Outcome {
    /// Done, or the request was allowed.
    Success,
    /// The request was denied, or a scan has findings (exit 1).
    Denied,
}

pub type Result<T> = std::result::Result<T, String>;

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<Outcome> {
    match cli.command {
        Command::Keygen(a) => keygen(a),
        Command::Sign(SignCommand::Jwt(a)) => sign_jwt(a),
        Command::Sign(SignCommand::Wmsauth(a)) => sign_wmsauth(a),
        Command::Sign(SignCommand::Edgeauth(a)) => sign_edgeauth(a),
        Command::Sign(SignCommand::SecureLink(a)) => sign_secure_link(a),
        Command::Verify(a) => verify(a),
        Command::Inspect(a) => inspect(a),
        Command::Reasons(a) => reasons(a),
        Command::Scan(a) => crate::scan::scan(a),
        Command::Serve(a) => crate::serve::serve(a),
    }
}

fn clock() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn parse_alg(name: &str) -> Result<Algorithm> {
    Algorithm::parse(name).ok_or_else(|| {
        let all: Vec<&str> = Algorithm::ALL.iter().map(|a| a.as_str()).collect();
        format!("unknown algorithm {name:?} (expected one of {})", all.join(", "))
    })
}

fn expiry(lifetime: &Lifetime) -> (i64, i64) {
    let now = lifetime.now.unwrap_or_else(clock);
    let exp = lifetime.exp.unwrap_or_else(|| now.saturating_add(lifetime.ttl.unwrap_or(3600)));
    (now, exp)
}

fn print_signed(credential: Credential, url: Option<&str>) -> Result<Outcome> {
    match url {
        Some(url) => println!("{}", signed_url(url, &credential)),
        None => println!("{}", credential.value),
    }
    Ok(Outcome::Success)
}

fn keygen(a: KeygenArgs) -> Result<Outcome> {
    let alg = parse_alg(&a.alg)?;
    let key = Key::generate(alg, &mut OsRng).map_err(|e| e.to_string())?.with_kid(a.kid.as_deref());
    let public = key.public_key();
    let render = |k: &Key, private: bool| -> Result<String> {
        match a.format {
            KeyFormat::Jwk => serde_json::to_string_pretty(&k.to_jwk(private)).map_err(|e| e.to_string()),
            KeyFormat::Pem => {
                k.to_pem().ok_or_else(|| format!("{alg} keys are secrets with no PEM form; use --format jwk"))
            }
        }
    };
    let private_text = render(&key, true)?;
    match &a.out {
        None => println!("{private_text}"),
        Some(path) => {
            write_private(path, &private_text)?;
            eprintln!("wrote private key to {}", path.display());
            if let Some(public) = public {
                let pub_path = path.with_extension(match path.extension() {
                    Some(ext) => format!("{}.pub", ext.to_string_lossy()),
                    None => "pub".into(),
                });
                std::fs::write(&pub_path, render(&public, false)? + "\n")
                    .map_err(|e| format!("cannot write {}: {e}", pub_path.display()))?;
                eprintln!("wrote public key to {}", pub_path.display());
            }
        }
    }
    Ok(Outcome::Success)
}

fn write_private(path: &std::path::Path, text: &str) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file =
        options.open(path).map_err(|e| format!("cannot create {} (it must not exist yet): {e}", path.display()))?;
    writeln!(file, "{text}").map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    streamgate_core::encoding::hex(&bytes)
}

fn sign_jwt(a: SignJwtArgs) -> Result<Outcome> {
    let mut keys = Vec::new();
    for entry in keysource::jwt_entries(&a.key, a.alg.as_deref())? {
        keys.extend(jwt_keys(&entry).map_err(|e| format!("--key: {e}"))?.unwrap_or_default());
    }
    if keys.len() != 1 {
        return Err(format!("--key holds {} keys; signing needs exactly one", keys.len()));
    }
    let mut key = keys.remove(0);
    if a.kid.is_some() {
        key = key.with_kid(a.kid.as_deref());
    }
    let (now, exp) = expiry(&a.lifetime);
    let mut claims: Map<String, Value> = match &a.claims {
        Some(text) => match serde_json::from_str(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err("--claims must be a JSON object".into()),
            Err(e) => return Err(format!("--claims is not JSON: {e}")),
        },
        None => Map::new(),
    };
    let mut set = |name: &str, value: Value| {
        claims.insert(name.to_owned(), value);
    };
    set("exp", json!(exp));
    set("iat", json!(now));
    set("jti", json!(a.jti.clone().unwrap_or_else(random_id)));
    let optional = [("sub", &a.sub), ("iss", &a.iss), ("aud", &a.aud), ("ip", &a.ip)];
    for (name, value) in optional {
        if let Some(v) = value {
            set(name, json!(v));
        }
    }
    if !a.streams.is_empty() {
        set("streams", json!(a.streams));
    }
    if Purpose::parse(&a.purpose).is_none() {
        return Err(format!("--purpose must be play or publish, not {:?}", a.purpose));
    }
    if a.purpose != "play" {
        set("purpose", json!(a.purpose));
    }
    if let Some(n) = a.max_sessions {
        set("max_sessions", json!(n));
    }
    if !a.referrers.is_empty() {
        set("referrers", json!(a.referrers));
    }
    if !a.user_agents.is_empty() {
        set("user_agents", json!(a.user_agents));
    }
    let mut rules = Vec::new();
    if !a.block_countries.is_empty() {
        rules.push(json!({"type": "ip.geoip.country", "action": "block", "country": a.block_countries}));
    }
    if !a.allow_countries.is_empty() {
        rules.push(json!({"type": "ip.geoip.country", "action": "allow", "country": a.allow_countries}));
        rules.push(json!({"type": "any", "action": "block"}));
    }
    if !rules.is_empty() {
        set("access_rules", Value::Array(rules));
    }
    if !claims.contains_key("streams") {
        eprintln!("streamgate: warning: no --stream given; the token is valid for every stream");
    }
    let token = jwt::sign_json(&claims, &key).map_err(|e| e.to_string())?;
    print_signed(Credential { kind: SchemeKind::Jwt, value: token }, a.url.as_deref())
}

fn sign_wmsauth(a: SignWmsArgs) -> Result<Outcome> {
    let key = keysource::read_text(&a.key)?;
    let date_style = DateStyle::parse(&a.date_style)
        .ok_or_else(|| format!("--date-style must be php or padded, not {:?}", a.date_style))?;
    let request = WmsAuthRequest {
        ip: &a.ip,
        server_time: a.now.unwrap_or_else(clock),
        valid_minutes: a.valid_minutes,
        stream: a.stream.as_deref(),
        date_style,
    };
    let sign = wmsauth::sign(&key, &request).map_err(|e| e.to_string())?;
    print_signed(Credential { kind: SchemeKind::WmsAuth, value: sign }, a.url.as_deref())
}

fn edge_algorithm(name: &str) -> Result<EdgeAlgorithm> {
    EdgeAlgorithm::parse(name).ok_or_else(|| format!("EdgeAuth algorithm must be sha256, sha1 or md5, not {name:?}"))
}

fn sign_edgeauth(a: SignEdgeArgs) -> Result<Outcome> {
    let key = keysource::read_text(&a.key)?;
    let escape = match a.escape_early {
        false => EscapeStyle::None,
        true => EscapeStyle::of_generator(&a.escape_style)
            .ok_or_else(|| format!("--escape-style must be python or node, not {:?}", a.escape_style))?,
    };
    let url_path = match (&a.url_path, a.acls.is_empty(), &a.url) {
        (Some(p), _, _) => Some(p.clone()),
        (None, true, Some(url)) => Some(split_url(url).0.to_owned()),
        _ => None,
    };
    let url_path = url_path.map(|p| normalize_path(&p).map_err(|d| d.to_string())).transpose()?;
    let (_, exp) = expiry(&a.lifetime);
    let request = EdgeAuthRequest {
        acl: a.acls,
        url: url_path,
        ip: a.ip,
        start: a.start,
        expires: exp,
        id: a.id,
        data: a.data,
        salt: a.salt,
        escape,
    };
    let token = edgeauth::sign(&key, edge_algorithm(&a.alg)?, &request).map_err(|e| e.to_string())?;
    if let Some(path) = &request.url {
        warn_if_playlist(path);
    }
    print_signed(Credential { kind: SchemeKind::EdgeAuth, value: token }, a.url.as_deref())
}

fn sign_secure_link(a: SignSecureLinkArgs) -> Result<Outcome> {
    let secret = keysource::read_text(&a.key)?;
    let scheme = SecureLinkScheme::new(&secret, &a.expression).map_err(|e| e.to_string())?;
    let uri = match (&a.uri, &a.url) {
        (Some(u), _) => u.clone(),
        (None, Some(url)) => split_url(url).0.to_owned(),
        (None, None) => return Err("give --uri or --url".into()),
    };
    let uri = normalize_path(&uri).map_err(|d| d.to_string())?;
    let ip = a.ip.as_deref().map(|s| s.parse().map_err(|_| format!("--ip {s:?} is not an IP address"))).transpose()?;
    let expires = a.expression.contains("secure_link_expires").then(|| expiry(&a.lifetime).1);
    let md5 = scheme.sign(&uri, ip, expires).map_err(|e| e.to_string())?;
    if scheme.signs_one_url() {
        warn_if_playlist(&uri);
    }
    let value = format!("{md5},{}", expires.map(|e| e.to_string()).unwrap_or_default());
    print_signed(Credential { kind: SchemeKind::SecureLink, value }, a.url.as_deref())
}

/// A token for one URL opens that URL only: signed for a playlist, its segments need the
/// gate to widen its sessions.
fn warn_if_playlist(path: &str) {
    if manifest_kind(None, path).is_none() {
        return;
    }
    let widen = match widened_directory(path) {
        None => "",
        Some(_) => " with sessions.urlTokenScope \"directory\" (SESSION_URL_TOKEN_SCOPE), or",
    };
    eprintln!(
        "streamgate: warning: this token opens {path} only; at the gate, the playlist's segments play{widen} \
         with a token for an ACL or a stream glob"
    );
}

fn looks_like_url(input: &str) -> bool {
    input.contains("://") || input.starts_with('/') || input.contains('?')
}

/// The configuration document the `--key` flags stand for: one key-set entry per `--key`
/// for the credential's scheme, the JWT options and the policy flags. The core builds the
/// gate from it, as it builds one from a `--config` file.
fn config_from_flags(kind: SchemeKind, a: &VerifyArgs) -> Result<GateConfig> {
    let first_key = || keysource::read_text(a.keys.first().map(String::as_str).unwrap_or(""));
    let mut config = GateConfig {
        jwt: JwtOptions { leeway: a.leeway, issuer: a.issuer.clone(), audience: a.audience.clone(), require_exp: None },
        policy: Policy {
            trusted_proxies: ranges("--trusted-proxy", &a.trusted_proxies)?,
            ip_bypass: ranges("--ip-bypass", &a.ip_bypass)?,
            ..Policy::default()
        },
        ..GateConfig::default()
    };
    match kind {
        SchemeKind::Jwt => {
            for key in &a.keys {
                config.keys.extend(keysource::jwt_entries(key, a.alg.as_deref())?);
            }
        }
        SchemeKind::WmsAuth => config.keys.push(json!({
            "scheme": "wmsauth", "secret": first_key()?, "tolerance": a.tolerance, "ipBound": !a.no_ip_binding,
        })),
        SchemeKind::EdgeAuth => config.keys.push(json!({
            "scheme": "edgeauth", "key": first_key()?, "algorithm": a.alg, "salt": a.salt, "leeway": a.leeway,
        })),
        SchemeKind::SecureLink => config.keys.push(json!({
            "scheme": "secure-link", "secret": first_key()?, "expression": a.expression, "leeway": a.leeway,
        })),
        // The gate's session credentials, checked with its session secret (for support).
        SchemeKind::Session => config.sessions.secret = Some(first_key()?),
    }
    Ok(config)
}

/// The gate a `verify` runs: the `--config` file's, or the one the flags describe.
fn verify_gate(credential: Option<&Credential>, a: &VerifyArgs) -> Result<Gate> {
    let config = match (&a.config, credential) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            GateConfig::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        (None, Some(credential)) => config_from_flags(credential.kind, a)?,
        // Nothing to verify: the policy alone decides (a missing token, or a bad path).
        (None, None) => return Ok(Gate::new(config_from_flags(SchemeKind::Jwt, a)?.policy)),
    };
    let source = a.config.as_ref().map_or("--key".to_owned(), |p| p.display().to_string());
    config.build_deployment().map(|d| d.gate).map_err(|e| format!("{source}: {e}"))
}

fn ranges(flag: &str, values: &[String]) -> Result<Vec<IpRange>> {
    values.iter().map(|v| IpRange::parse(v).map_err(|e| format!("{flag}: {e}"))).collect()
}

fn verify(a: VerifyArgs) -> Result<Outcome> {
    let now = a.now.unwrap_or_else(clock);
    let input = a.input.trim();
    let (url_path, credential) = if looks_like_url(input) {
        let (path, query) = split_url(input);
        (Some(path.to_owned()), find_in_query(query))
    } else {
        let kind = match &a.scheme {
            Some(name) => SchemeKind::parse(name)
                .ok_or_else(|| format!("unknown --scheme {name:?} (jwt, wmsauth, edgeauth, secure-link)"))?,
            None => detect_scheme(input).ok_or("cannot tell the token's scheme; pass --scheme")?,
        };
        (None, Some(Credential { kind, value: input.to_owned() }))
    };
    let credential = match (credential, &a.scheme) {
        (Some(c), Some(name)) if c.kind.as_str() != name => {
            return Err(format!("the URL carries a {} credential, not {name}", c.kind))
        }
        (c, _) => c,
    };
    let gate = verify_gate(credential.as_ref(), &a)?;
    let purpose =
        Purpose::parse(&a.purpose).ok_or_else(|| format!("--purpose must be play or publish, not {:?}", a.purpose))?;
    let peer_ip =
        a.ip.as_deref().map(|s| s.parse().map_err(|_| format!("--ip {s:?} is not an IP address"))).transpose()?;
    let ctx = RequestContext {
        path: a.path.clone().or(url_path).unwrap_or_else(|| "/".into()),
        peer_ip,
        forwarded_for: a.forwarded_for.clone(),
        referer: a.referer.clone(),
        user_agent: a.user_agent.clone(),
        country: a.country.clone(),
        asn: None,
        purpose,
        method: a.method.clone(),
        session_id: None,
        starts_session: a.active_sessions.is_some(),
    };
    let mut revocations = MemoryRevocations::default();
    for id in &a.revoked {
        revocations.revoke(id.clone(), None);
    }
    let mut blocklist = MemoryBlocklist::default();
    for range in ranges("--blocked-ip", &a.blocked_ips)? {
        blocklist.block(range, None);
    }
    let mut sessions = KnownCount(a.active_sessions.unwrap_or(0));
    let mut hooks = Hooks {
        revocations: &revocations,
        blocklist: &blocklist,
        sessions: a.active_sessions.map(|_| &mut sessions as &mut dyn SessionLimiter),
    };
    let decision = gate.check(credential.as_ref(), &ctx, now, &mut hooks);
    report(&decision, credential.as_ref().map(|c| c.kind), &a, now);
    Ok(if decision.is_allowed() { Outcome::Success } else { Outcome::Denied })
}

fn explanation(denial: &Denial) -> Value {
    let failed = denial.stage();
    let position = Denial::STAGES.iter().position(|s| *s == failed).unwrap_or(0);
    let checks: Vec<Value> = Denial::STAGES
        .iter()
        .enumerate()
        .map(|(i, stage)| {
            let status = match i.cmp(&position) {
                std::cmp::Ordering::Less => "passed",
                std::cmp::Ordering::Equal => "failed",
                std::cmp::Ordering::Greater => "not reached",
            };
            json!({"check": stage, "status": status})
        })
        .collect();
    let mut out = json!({ "failed_check": failed, "checks": checks });
    if let (Denial::BadSignature { explanation: Some(e) }, Some(obj)) = (denial, out.as_object_mut()) {
        obj.insert("tried".into(), json!(e.tried));
        obj.insert("recipe".into(), json!(e.recipe));
    }
    out
}

fn report(decision: &Decision, scheme: Option<SchemeKind>, a: &VerifyArgs, now: i64) {
    let claims = decision.grant().map(streamgate_core::Grant::claims).unwrap_or(Value::Null);
    let denial = decision.denial();
    if a.json {
        let mut out = json!({
            "allowed": decision.is_allowed(),
            "reason": denial.map(|d| d.reason().as_str()),
            "scheme": scheme.map(SchemeKind::as_str),
            "claims": claims,
            "message": denial.map(ToString::to_string),
            "now": now,
        });
        if let (Decision::Allow { facts, .. }, Some(obj)) = (decision, out.as_object_mut()) {
            obj.insert("path".into(), json!(facts.path));
            obj.insert("client_ip".into(), json!(facts.client_ip.map(|ip| ip.to_string())));
        }
        if let (Some(d), true, Some(obj)) = (denial, a.explain, out.as_object_mut()) {
            obj.insert("explain".into(), explanation(d));
        }
        println!("{out}");
        return;
    }
    let scheme_name = scheme.map_or("none", SchemeKind::as_str);
    match decision {
        Decision::Allow { facts, .. } => {
            println!("ALLOWED ({scheme_name})");
            println!("  path:      {}", facts.path);
            println!("  client ip: {}", facts.client_ip.map_or("(none)".into(), |ip| ip.to_string()));
        }
        Decision::Deny { denial, .. } => {
            println!("DENIED ({scheme_name}): {}", denial.reason());
            println!("  {denial}");
            eprintln!("streamgate: denied: {}", denial.reason());
        }
    }
    if !claims.is_null() {
        let label = if decision.is_allowed() { "claims" } else { "claims (signature verified)" };
        println!("  {label}: {}", serde_json::to_string_pretty(&claims).unwrap_or_default().replace('\n', "\n  "));
    }
    if let (Some(d), true) = (denial, a.explain) {
        let e = explanation(d);
        println!("checks, in order:");
        for check in e["checks"].as_array().into_iter().flatten() {
            println!("  {:<12} {}", check["status"].as_str().unwrap_or(""), check["check"].as_str().unwrap_or(""));
        }
        if let (Some(tried), Some(recipe)) = (e["tried"].as_array(), e["recipe"].as_str()) {
            println!("what the verifier signed (secrets masked), each variant tried:");
            for canonical in tried {
                println!("  {}", canonical.as_str().unwrap_or(""));
            }
            println!("recipe:\n  {recipe}");
        }
    }
}

fn inspect(a: InspectArgs) -> Result<Outcome> {
    match unverified::inspect(&a.input) {
        Ok(found) => {
            if a.json {
                println!("{}", json!({"verified": false, "scheme": found.scheme.as_str(), "fields": found.fields}));
            } else {
                println!("UNVERIFIED: decoded only; signature, expiry and keys were NOT checked");
                println!("scheme: {}", found.scheme);
                println!("{}", serde_json::to_string_pretty(&found.fields).unwrap_or_default());
            }
            Ok(Outcome::Success)
        }
        Err(denial) => {
            if a.json {
                println!(
                    "{}",
                    json!({"verified": false, "reason": denial.reason().as_str(), "message": denial.to_string()})
                );
            }
            eprintln!("streamgate: cannot decode: {}: {denial}", denial.reason());
            Ok(Outcome::Denied)
        }
    }
}

fn reasons(a: JsonFlag) -> Result<Outcome> {
    if a.json {
        let rows: Vec<Value> = ReasonCode::ALL
            .iter()
            .map(|c| json!({"code": c.as_str(), "http_status": c.http_status(), "description": c.description()}))
            .collect();
        println!("{}", Value::Array(rows));
    } else {
        for c in ReasonCode::ALL {
            println!("{:<18} {}  {}", c.as_str(), c.http_status(), c.description());
        }
    }
    Ok(Outcome::Success)
}
