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
    /// Find misused tokens (sharing, relays, restreams) in usage events or access logs.
    Scan(ScanArgs),
    /// Run the gate: forward-auth for nginx, Caddy and Traefik, or a proxy with --origin.
    Serve(ServeArgs),
}

/// `streamgate serve`. Exit 0 after a clean shutdown (SIGTERM or ctrl-c), 2 when it cannot start.
#[derive(Args, Debug)]
#[command(after_help = "The admin API (/admin/*) is on when the environment variable \
STREAMGATE_ADMIN_TOKEN holds a token of 32 bytes or more (never a flag, so it stays out of ps). \
In proxy mode /metrics needs that token or STREAMGATE_METRICS_TOKEN (32 bytes or more, reads \
/metrics only), so a scraper need not hold the admin token.")]
pub struct ServeArgs {
    /// The configuration document: JSON with keys, jwt, policy, sessions and clientIpHeader.
    #[arg(long)]
    pub config: std::path::PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub listen: std::net::SocketAddr,
    /// Serve the admin API and /metrics (open there) on this address of the operators' own
    /// instead of --listen, with connections of their own, so a flood of viewers never locks
    /// the operator out. Bind it where viewers cannot reach (loopback, a private network).
    #[arg(long)]
    pub admin_listen: Option<std::net::SocketAddr>,
    /// Proxy mode: the origin to stand in front of (http:// or https://). Without it, forward-auth only (/auth).
    #[arg(long)]
    pub origin: Option<String>,
    /// Keep revocations and blocks in this file (replaced atomically on every change, read at start).
    #[arg(long)]
    pub state: Option<std::path::PathBuf>,
    /// Share revocations, blocks, sessions and usage with other nodes in this Redis
    /// (redis://[:password@]host:port/db). Prefer the environment variable: a flag shows in ps.
    #[arg(long, env = "STREAMGATE_REDIS_URL", hide_env_values = true, conflicts_with = "state")]
    pub redis: Option<String>,
    /// Seconds the origin may take to send a response's head or a whole manifest (then 504 origin_timeout).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub origin_timeout: u64,
    /// Client connections served at once; more wait in the listen backlog.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,
}

/// Input format of a scan input.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// JSON Lines of usage events (`GET /admin/usage`).
    Jsonl,
    /// nginx/Apache combined access log with the credential in the query.
    Combined,
}

/// Output format of a scan.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    /// Aligned columns, highest score first.
    Table,
    /// One JSON object per line per token (the `GET /admin/tokens` row).
    Json,
    /// CSV with a header; lists joined with `;`.
    Csv,
}

/// Lowest severity reported.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum MinSeverity {
    /// Every token with an indicator.
    Low,
    /// Likely misuse and worse (default).
    Medium,
    /// Misuse only.
    High,
}

impl From<MinSeverity> for streamgate_core::detection::Severity {
    fn from(value: MinSeverity) -> Self {
        match value {
            MinSeverity::Low => Self::Low,
            MinSeverity::Medium => Self::Medium,
            MinSeverity::High => Self::High,
        }
    }
}

/// `streamgate scan`. Exit 0 with no finding, 1 with findings, 2 on usage errors.
#[derive(Args, Debug)]
pub struct ScanArgs {
    /// Input file, or - for standard input (repeatable).
    #[arg(long = "input", required = true)]
    pub inputs: Vec<String>,
    /// Input format; detected per file when absent (a first line starting with { is JSON Lines).
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// Judge the last span before the newest event in the input (e.g. 3h, 90m, 1d).
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub window: Option<String>,
    /// Window start: unix seconds or RFC 3339.
    #[arg(long)]
    pub from: Option<String>,
    /// Window end (excluded): unix seconds or RFC 3339.
    #[arg(long)]
    pub to: Option<String>,
    /// Referer host of the operator's pages (repeatable; *.example.com wildcards).
    #[arg(long = "allowed-referrer")]
    pub allowed_referrers: Vec<String>,
    /// Data-centre ASN list (AS<n> per line), replacing the shipped one; `shipped` adds it back (repeatable).
    #[arg(long = "hosting-asns", value_name = "FILE")]
    pub hosting_asns: Vec<String>,
    /// Data-centre CIDR list, replacing the shipped one; `shipped` adds it back (repeatable).
    #[arg(long = "hosting-cidrs", value_name = "FILE")]
    pub hosting_cidrs: Vec<String>,
    /// Detector configuration (JSON, see streamgate_core::detection::DetectorConfig); flags override it.
    #[arg(long)]
    pub config: Option<String>,
    /// Lowest severity reported (and counted for the exit code).
    #[arg(long, value_enum, default_value_t = MinSeverity::Medium)]
    pub min_severity: MinSeverity,
    #[command(flatten)]
    pub thresholds: Thresholds,
    /// Print lines, events, MB/s and events/s on standard error (inputs of 256 MiB or more always do).
    #[arg(long)]
    pub stats: bool,
    /// Threads parsing the input (default: one per core); the result does not depend on it.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Bytes read and parsed as one block (for tests of the parallel path).
    #[arg(long, hide = true, default_value_t = 8 << 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub block_size: u32,
}

/// Detector thresholds; each overrides the configuration's.
#[derive(Args, Debug)]
pub struct Thresholds {
    /// A session ends after this idle gap (default 60s).
    #[arg(long)]
    pub idle: Option<String>,
    /// many_ips: report above this many IPv4 addresses / IPv6 /64s (default 5).
    #[arg(long)]
    pub many_ips: Option<u32>,
    /// many_sessions: report above this many sessions (default 20).
    #[arg(long)]
    pub many_sessions: Option<u32>,
    /// multi_country: report above this many countries within --country-window (default 2).
    #[arg(long)]
    pub many_countries: Option<u32>,
    /// The sub-window for multi_country (default 1h).
    #[arg(long)]
    pub country_window: Option<String>,
    /// long_playback: report above this playback, and above 2x the stream's p95 (default 8h).
    #[arg(long)]
    pub long_playback: Option<String>,
    /// concurrency: sessions a user-bound token may play at once (default 2).
    #[arg(long)]
    pub user_bound_limit: Option<u32>,
}

impl Thresholds {
    /// `config` with these flags applied.
    pub fn apply(
        &self,
        mut config: streamgate_core::detection::DetectorConfig,
        allowed_referrers: &[String],
    ) -> Result<streamgate_core::detection::DetectorConfig, String> {
        use crate::scan::parse_duration;
        config.allowed_referrers.extend(allowed_referrers.iter().cloned());
        if let Some(idle) = &self.idle {
            config.timing.idle_seconds = parse_duration(idle)?;
        }
        if let Some(window) = &self.country_window {
            config.timing.country_window_seconds = parse_duration(window)?;
        }
        if let Some(n) = self.many_ips {
            config.rules.many_ips.above = n;
        }
        if let Some(n) = self.many_sessions {
            config.rules.many_sessions.above = n;
        }
        if let Some(n) = self.many_countries {
            config.rules.multi_country.above = n;
        }
        if let Some(playback) = &self.long_playback {
            config.rules.long_playback.seconds = parse_duration(playback)?;
        }
        if let Some(n) = self.user_bound_limit {
            config.rules.concurrency.user_bound_limit = n;
        }
        Ok(config)
    }
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
    /// The configuration document the gate runs with (keys, jwt, policy, sessions: the file
    /// `streamgate serve` reads, the worker's KEYS + GATE_CONFIG), so a denial at the edge is
    /// reproduced with the operator's real policy.
    #[arg(long, required_unless_present = "keys", conflicts_with_all = [
        "keys", "alg", "leeway", "issuer", "audience", "salt", "expression", "tolerance", "no_ip_binding",
        "trusted_proxies", "ip_bypass",
    ])]
    pub config: Option<std::path::PathBuf>,
    /// Key (repeatable, to form a key set): secret, @file (PEM/JWK/JWKS/raw) or env:NAME.
    #[arg(long = "key")]
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
    /// HTTP method of the request (GET and HEAD play, POST and PUT publish, others are refused).
    #[arg(long)]
    pub method: Option<String>,
    /// Verify as of this time (unix seconds) instead of the clock.
    #[arg(long)]
    pub now: Option<i64>,
    /// Clock leeway in seconds (JWT default 30, EdgeAuth/secure-link 0).
    #[arg(long)]
    pub leeway: Option<u32>,
    /// WMSAuth clock tolerance in seconds (default 90).
    #[arg(long)]
    pub tolerance: Option<u32>,
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
    /// secure_link expression, with the secret as $key (default `$secure_link_expires$uri$remote_addr $key`).
    #[arg(long)]
    pub expression: Option<String>,
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
