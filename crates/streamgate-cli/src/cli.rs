//! Command-line flags, defined once; clap generates help and usage errors (exit 2) from them.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Sign, verify and inspect video stream tokens (JWT, WMSAuth, EdgeAuth, nginx secure_link).
#[derive(Parser, Debug)]
#[command(name = "streamgate", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Generate a new key (JWK by default; PEM where it applies).
    Keygen(KeygenArgs),
    /// Sign a token, or a full URL with --url.
    #[command(subcommand)]
    Sign(SignCommand),
    /// Verify a token or signed URL against keys and request facts.
    Verify(VerifyArgs),
    /// Decode a token or signed URL WITHOUT verifying it.
    Inspect(InspectArgs),
    /// Print the reason-code table (code, HTTP status, meaning).
    Reasons(JsonFlag),
}

#[derive(Args, Debug)]
pub struct JsonFlag {
    /// Machine-readable JSON output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum KeyFormat {
    Jwk,
    Pem,
}

#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Algorithm: HS256, HS384, HS512, RS256, ES256 or EdDSA.
    #[arg(long)]
    pub alg: String,
    /// Key id to embed.
    #[arg(long)]
    pub kid: Option<String>,
    /// Output format (PEM only for asymmetric keys).
    #[arg(long, value_enum, default_value_t = KeyFormat::Jwk)]
    pub format: KeyFormat,
    /// Write the private key to FILE (mode 0600) and the public key to FILE.pub.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
}

/// Time options shared by every signer.
#[derive(Args, Debug)]
pub struct Lifetime {
    /// Expiry, unix seconds.
    #[arg(long, conflicts_with = "ttl")]
    pub exp: Option<i64>,
    /// Lifetime in seconds from now (default 3600).
    #[arg(long)]
    pub ttl: Option<i64>,
    /// Sign as of this time (unix seconds) instead of the clock.
    #[arg(long)]
    pub now: Option<i64>,
}

#[derive(Subcommand, Debug)]
pub enum SignCommand {
    /// A streamgate playback JWT.
    Jwt(SignJwtArgs),
    /// A Nimble Streamer wmsAuthSign.
    Wmsauth(SignWmsArgs),
    /// An Akamai EdgeAuth 2.0 token.
    Edgeauth(SignEdgeArgs),
    /// An nginx secure_link_md5 link.
    SecureLink(SignSecureLinkArgs),
}

#[derive(Args, Debug)]
pub struct SignJwtArgs {
    /// Signing key: secret, @file (PEM/JWK/JWKS/raw) or env:NAME.
    #[arg(long)]
    pub key: String,
    /// Algorithm for a secret key (HS256/HS384/HS512); PEM and JWK keys carry their own.
    #[arg(long)]
    pub alg: Option<String>,
    /// Key id for the header (overrides the key's own).
    #[arg(long)]
    pub kid: Option<String>,
    #[command(flatten)]
    pub lifetime: Lifetime,
    /// Viewer or user id (makes the token user-bound for session limits).
    #[arg(long)]
    pub sub: Option<String>,
    /// Token id (for revocation); a random one when not given.
    #[arg(long)]
    pub jti: Option<String>,
    /// Issuer.
    #[arg(long)]
    pub iss: Option<String>,
    /// Audience.
    #[arg(long)]
    pub aud: Option<String>,
    /// Stream glob the token covers (repeatable): live/match-*, vod/**.
    #[arg(long = "stream")]
    pub streams: Vec<String>,
    /// Bind to an IP address or CIDR range.
    #[arg(long)]
    pub ip: Option<String>,
    /// play or publish.
    #[arg(long, default_value = "play")]
    pub purpose: String,
    /// Concurrent session limit.
    #[arg(long)]
    pub max_sessions: Option<u32>,
    /// Allowed Referer host (repeatable; *.example.com wildcards).
    #[arg(long = "referrer")]
    pub referrers: Vec<String>,
    /// Allowed User-Agent pattern (repeatable; * wildcards).
    #[arg(long = "user-agent")]
    pub user_agents: Vec<String>,
    /// Block a country (repeatable; access rule).
    #[arg(long = "block-country")]
    pub block_countries: Vec<String>,
    /// Allow only these countries (repeatable; then a block-any rule).
    #[arg(long = "allow-country")]
    pub allow_countries: Vec<String>,
    /// Extra claims as a JSON object, merged in.
    #[arg(long)]
    pub claims: Option<String>,
    /// Print the full signed URL instead of the token.
    #[arg(long)]
    pub url: Option<String>,
}

#[derive(Args, Debug)]
pub struct SignWmsArgs {
    /// The WMSAuth key: literal, @file or env:NAME.
    #[arg(long)]
    pub key: String,
    /// The viewer's IP (empty string for tokens not bound to an IP).
    #[arg(long)]
    pub ip: String,
    /// Minutes of validity.
    #[arg(long, default_value_t = 60)]
    pub valid_minutes: u32,
    /// Bind to a stream prefix (the stream-based variant), e.g. live/stream.
    #[arg(long)]
    pub stream: Option<String>,
    /// server_time style: php (5/4/2012 8:33:05 AM) or padded (05/04/2012 08:33:05 AM).
    #[arg(long, default_value = "php")]
    pub date_style: String,
    /// Sign as of this time (unix seconds) instead of the clock.
    #[arg(long)]
    pub now: Option<i64>,
    /// Print the full signed URL instead of the token.
    #[arg(long)]
    pub url: Option<String>,
}

#[derive(Args, Debug)]
pub struct SignEdgeArgs {
    /// The EdgeAuth key as Akamai shows it (hex): literal, @file or env:NAME.
    #[arg(long)]
    pub key: String,
    /// HMAC digest: sha256, sha1 or md5.
    #[arg(long, default_value = "sha256")]
    pub alg: String,
    /// ACL pattern (repeatable; joined with '!'), e.g. /live/*.
    #[arg(long = "acl")]
    pub acls: Vec<String>,
    /// Sign a URL token for this path instead of an ACL token.
    #[arg(long)]
    pub url_path: Option<String>,
    /// Start time, unix seconds.
    #[arg(long)]
    pub start: Option<i64>,
    #[command(flatten)]
    pub lifetime: Lifetime,
    /// Bind to an IP.
    #[arg(long)]
    pub ip: Option<String>,
    /// Session id.
    #[arg(long)]
    pub id: Option<String>,
    /// Opaque payload.
    #[arg(long)]
    pub data: Option<String>,
    /// Salt.
    #[arg(long)]
    pub salt: Option<String>,
    /// Akamai's escape_early option.
    #[arg(long)]
    pub escape_early: bool,
    /// Which generator's escaping to reproduce with --escape-early: python or node.
    #[arg(long, default_value = "python")]
    pub escape_style: String,
    /// Print the full signed URL instead of the token.
    #[arg(long)]
    pub url: Option<String>,
}

#[derive(Args, Debug)]
pub struct SignSecureLinkArgs {
    /// The secret word: literal, @file or env:NAME.
    #[arg(long)]
    pub key: String,
    /// The nginx secure_link_md5 expression, with the secret written as $key.
    #[arg(long, default_value = streamgate_core::schemes::secure_link::DEFAULT_EXPRESSION)]
    pub expression: String,
    /// The URI to sign (defaults to the path of --url).
    #[arg(long)]
    pub uri: Option<String>,
    /// The client IP ($remote_addr).
    #[arg(long)]
    pub ip: Option<String>,
    #[command(flatten)]
    pub lifetime: Lifetime,
    /// Print the full signed URL instead of md5,expires.
    #[arg(long)]
    pub url: Option<String>,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The token, or a signed URL (the scheme is detected from its parameters).
    pub input: String,
    /// Scheme of a bare token: jwt, wmsauth, edgeauth, secure-link (md5,expires) or session.
    #[arg(long)]
    pub scheme: Option<String>,
    /// Key (repeatable, to form a key set): secret, @file (PEM/JWK/JWKS/raw) or env:NAME.
    #[arg(long = "key", required = true)]
    pub keys: Vec<String>,
    /// Algorithm a secret key is for: HS256/HS384/HS512, or sha256/sha1/md5 for EdgeAuth.
    #[arg(long)]
    pub alg: Option<String>,
    /// Request path (defaults to the URL's path).
    #[arg(long)]
    pub path: Option<String>,
    /// Client IP.
    #[arg(long)]
    pub ip: Option<String>,
    /// X-Forwarded-For, believed when --ip is a --trusted-proxy.
    #[arg(long)]
    pub forwarded_for: Option<String>,
    /// Proxy range whose X-Forwarded-For is believed (repeatable).
    #[arg(long = "trusted-proxy")]
    pub trusted_proxies: Vec<String>,
    /// Client range exempt from IP binding (repeatable).
    #[arg(long = "ip-bypass")]
    pub ip_bypass: Vec<String>,
    /// Referer header.
    #[arg(long)]
    pub referer: Option<String>,
    /// User-Agent header.
    #[arg(long)]
    pub user_agent: Option<String>,
    /// Client country (two letters).
    #[arg(long)]
    pub country: Option<String>,
    /// Request purpose: play or publish.
    #[arg(long, default_value = "play")]
    pub purpose: String,
    /// Verify as of this time (unix seconds) instead of the clock.
    #[arg(long)]
    pub now: Option<i64>,
    /// Clock leeway in seconds (JWT default 30, EdgeAuth/secure-link 0).
    #[arg(long)]
    pub leeway: Option<u32>,
    /// WMSAuth clock tolerance in seconds.
    #[arg(long, default_value_t = streamgate_core::schemes::wmsauth::DEFAULT_TOLERANCE)]
    pub tolerance: u32,
    /// WMSAuth tokens signed with an empty IP.
    #[arg(long)]
    pub no_ip_binding: bool,
    /// Required JWT issuer.
    #[arg(long)]
    pub issuer: Option<String>,
    /// Required JWT audience.
    #[arg(long)]
    pub audience: Option<String>,
    /// EdgeAuth salt.
    #[arg(long)]
    pub salt: Option<String>,
    /// secure_link expression, with the secret as $key.
    #[arg(long, default_value = streamgate_core::schemes::secure_link::DEFAULT_EXPRESSION)]
    pub expression: String,
    /// Treat this token id as revoked (repeatable).
    #[arg(long = "revoked")]
    pub revoked: Vec<String>,
    /// Treat this IP or range as blocked (repeatable).
    #[arg(long = "blocked-ip")]
    pub blocked_ips: Vec<String>,
    /// Sessions already active for the token (checks max_sessions as a new session start).
    #[arg(long)]
    pub active_sessions: Option<u32>,
    /// On denial, show which check failed and what the verifier signed.
    #[arg(long)]
    pub explain: bool,
    /// Machine-readable JSON output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The token or signed URL.
    pub input: String,
    /// Machine-readable JSON output.
    #[arg(long)]
    pub json: bool,
}
