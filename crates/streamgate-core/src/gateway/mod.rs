//! The gate's request flow, written once for every adapter that stands in front of an origin
//! (the edge worker, `streamgate serve`): find the credential, verify it, look up revocations
//! and block lists, apply the policy, fetch from the origin without the credential, count
//! sessions on playlist fetches, and rewrite manifests so every follow-up request carries a
//! session credential.
//!
//! Sans-IO like the rest of the core: the adapter describes the request ([`Incoming`]), passes
//! `now`, and implements [`Io`] over its stores and HTTP client; the flow answers an
//! [`Outcome`]: a [`Reply`] to send, or the origin's response to pass on untouched.

pub mod forward;
mod reply;
mod tally;
pub mod transport;

use std::net::IpAddr;

use crate::claims::Purpose;
use crate::config::{Deployment, OnStoreError};
use crate::denial::{Denial, Error};
use crate::detection::UsageEvent;
use crate::manifests::{dash, hls, manifest_kind, presentation_seconds, ManifestKind, Propagation};
use crate::policy::ip::{canonical_ip, network_of};
use crate::policy::path::origin_url;
use crate::policy::{check_blocklist, check_referrer_blocklist, RequestContext, RequestFacts};
use crate::revocation::{Blocks, RevocationList};
use crate::schemes::session::{lift_expiry_for_renewal, SessionScheme, MAX_PRESENTATION_SECONDS};
use crate::schemes::Credential;
use crate::sessions::{agent_of, reconnect_id, BeatKind, Heartbeat, TokenShape, Verdict, Viewer};
use crate::{Decision, Grant, Hooks};

pub use reply::{Reply, CORS_HEADERS};
pub use tally::{Tallies, MAX_TALLIED_SESSIONS};

/// Request headers the origin receives from the viewer's request; never cookies or
/// credentials.
pub const FORWARDED_HEADERS: [&str; 5] = ["Range", "Accept", "If-None-Match", "If-Modified-Since", "Content-Type"];

/// The viewer's headers a playlist request forwards: no range and no revalidation, since
/// the gate rewrites (and counts sessions on) whole playlists only.
pub const MANIFEST_FORWARDED_HEADERS: [&str; 2] = ["Accept", "Content-Type"];

/// The parameter that carries session credentials in rewritten manifests.
pub const SESSION_PARAM: &str = "sgs";

/// A viewer's request, as much of it as the gate reads.
#[derive(Clone, Debug, Default)]
pub struct Incoming {
    /// The method as received (never mapped: an unknown method must stay unknown).
    pub method: String,
    /// The URL path as received, still percent-encoded.
    pub path: String,
    /// The query without `?`.
    pub query: String,
    /// `scheme://host[:port]` the viewer addressed: manifests are rewritten for it.
    pub base: String,
    /// The connecting peer (`CF-Connecting-IP` at the edge, the socket natively).
    pub peer_ip: Option<IpAddr>,
    /// The configured client IP header ([`Deployment::client_ip_header`]); believed only
    /// from trusted proxies.
    pub forwarded_for: Option<String>,
    /// `Referer`.
    pub referer: Option<String>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// `Cookie`.
    pub cookie: Option<String>,
    /// `Authorization`.
    pub authorization: Option<String>,
}

impl Incoming {
    /// A `method` request for `url`, with its headers and peer still to fill in. `url` is
    /// absolute and serialized as the WHATWG URL standard writes it (`Request.url` in workerd),
    /// so base, path and query are cut out of it without parsing it again; userinfo and
    /// fragment are dropped.
    pub fn for_url(method: String, url: &str) -> Incoming {
        let (base, rest) = match url.split_once("://") {
            Some((scheme, rest)) => {
                let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                let (authority, rest) = rest.split_at_checked(end).unwrap_or((rest, ""));
                let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
                (format!("{scheme}://{host}"), rest)
            }
            None => (String::new(), url),
        };
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let path = if path.is_empty() { "/" } else { path };
        Incoming { method, path: path.to_owned(), query: query.to_owned(), base, ..Incoming::default() }
    }
}

/// Where a viewer connects from, as the platform knows it ([`Io::geo`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Geo {
    /// ISO country code.
    pub country: Option<String>,
    /// Autonomous system number.
    pub asn: Option<u32>,
    /// Autonomous system organization.
    pub as_organization: Option<String>,
}

/// What the adapter fetches from the origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginRequest {
    /// The (checked) method.
    pub method: String,
    /// The origin URL, built from the normalized path with every segment re-encoded.
    pub url: String,
    /// Stream the viewer's body through (a publish request).
    pub forward_body: bool,
    /// Whether a shared cache may keep the response whatever its type (segments are the
    /// same for every viewer; manifests are rewritten per viewer).
    pub cacheable: bool,
    /// The viewer's headers to forward: [`FORWARDED_HEADERS`], or for a playlist
    /// [`MANIFEST_FORWARDED_HEADERS`].
    pub viewer_headers: &'static [&'static str],
}

/// The origin's response as the adapter holds it.
pub trait Upstream {
    /// The status code.
    fn status(&self) -> u16;
    /// A header's value.
    fn header(&self, name: &str) -> Option<String>;
}

/// The adapter's stores and HTTP client.
#[allow(async_fn_in_trait)]
pub trait Io {
    /// The origin's response.
    type Response: Upstream;
    /// The block lists as the adapter holds them (often shared and cached).
    type Blocks: core::ops::Deref<Target = Blocks>;
    /// A store or network failure.
    type Error: core::fmt::Display;

    /// Which of `ids` are revoked at `now`.
    async fn revoked(&self, ids: &[String], now: i64) -> Result<Vec<String>, Self::Error>;
    /// Whether the revocation store is known to hold nothing, so the gate can skip asking
    /// (and hashing the credential for its fingerprint). Stores that cannot tell cheaply
    /// keep the provided `false`.
    fn revocations_known_empty(&self) -> bool {
        false
    }
    /// The IP and referrer block lists at `now`.
    async fn blocks(&self, now: i64) -> Result<Self::Blocks, Self::Error>;
    /// Fetches from the origin.
    async fn fetch(&self, request: OriginRequest) -> Result<Self::Response, Self::Error>;
    /// Reads a (manifest) response's body as text.
    async fn text(&self, response: Self::Response) -> Result<String, Self::Error>;
    /// Sends a heartbeat to the session store of `key` and returns its verdict.
    async fn heartbeat(&self, key: &str, beat: &Heartbeat) -> Result<Verdict, Self::Error>;
    /// Sends a heartbeat whose verdict nobody waits for (it only keeps a session counted);
    /// the answer settles the tallies ([`Tallies::settle`]) when it comes.
    fn heartbeat_in_background(&self, key: String, beat: Heartbeat);
    /// Runs `update` on this process's session tallies.
    fn tallies<T>(&self, update: impl FnOnce(&mut Tallies) -> T) -> T;
    /// Where the viewer of this request connects from. Asked only when an access rule or a
    /// usage record needs it (at the edge it is `request.cf`, costly to read); nothing by
    /// default.
    fn geo(&self) -> Geo {
        Geo::default()
    }
}

/// Where the viewer connects from, as the platform tells it ([`Io::geo`]), when the client
/// IP is the connecting peer's. When it came from a trusted proxy's forwarded header, the
/// platform describes the proxy: country and network are then unknown, so neither a
/// country rule nor detection judges the proxy's (every token would show the proxy's
/// hosting network, and no token several countries).
fn viewer_geo<I: Io>(io: &I, ctx: &RequestContext, facts: &RequestFacts) -> Geo {
    if facts.client_ip.map(canonical_ip) == ctx.peer_ip.map(canonical_ip) {
        io.geo()
    } else {
        Geo::default()
    }
}

/// What to answer.
#[derive(Debug)]
pub enum Outcome<R> {
    /// Answer this.
    Reply(Reply),
    /// Pass the origin's response on as it is.
    Pass(R),
}

/// The gate in front of one origin ([`Gateway::handle`]), or beside a proxy that asks it
/// ([`Gateway::authorize`]).
#[derive(Debug)]
pub struct Gateway {
    /// The gate and its session rules.
    pub deployment: Deployment,
    /// The origin and the session credentials manifests are rewritten with; `None` for
    /// forward-auth only.
    proxy: Option<Proxy>,
}

#[derive(Debug)]
struct Proxy {
    /// The origin's base URL, without a trailing `/`.
    origin: String,
    sessions: SessionScheme,
}

impl Gateway {
    /// A gateway in front of `origin`; rewriting manifests needs `sessions.secret`.
    pub fn new(deployment: Deployment, origin: &str) -> Result<Gateway, Error> {
        let sessions = deployment.sessions.clone().ok_or_else(|| {
            Error::input("sessions.secret", "the gate issues session credentials: set a secret of at least 32 bytes")
        })?;
        let origin = url_base(origin).ok_or_else(|| Error::input("origin", "must be an http(s) URL"))?;
        Ok(Gateway { deployment, proxy: Some(Proxy { origin, sessions }) })
    }

    /// A gateway that only answers [`Gateway::authorize`] (forward-auth): no origin, and no
    /// session credentials to issue. [`Gateway::handle`] refuses every request with 500.
    pub fn forward_auth(deployment: Deployment) -> Gateway {
        Gateway { deployment, proxy: None }
    }

    /// The origin's base URL, for a gateway in front of one.
    pub fn origin(&self) -> Option<&str> {
        self.proxy.as_ref().map(|p| p.origin.as_str())
    }

    /// The `Location` of an origin's redirect as the viewer gets it: one naming a place
    /// under the origin's base (an absolute or scheme-relative URL of the origin, or a path
    /// under its base path) becomes that place at the gate, so the viewer follows it
    /// through the gate and never learns the origin's address. `None` keeps the origin's.
    pub fn viewer_location(&self, location: &str) -> Option<String> {
        let origin = self.origin()?;
        let authority = origin.find("://")?.saturating_add(3);
        let site_end = origin.get(authority..)?.find('/').map_or(origin.len(), |i| authority.saturating_add(i));
        let (site, base_path) = (origin.get(..site_end)?, origin.get(site_end..)?);
        let scheme_relative = origin.get(authority.saturating_sub(2)..site_end)?;
        let location = location.trim();
        let after = |prefix: &str| {
            let head = location.get(..prefix.len())?;
            head.eq_ignore_ascii_case(prefix).then(|| location.get(prefix.len()..)).flatten()
        };
        let path = match after(site).or_else(|| after(scheme_relative)) {
            Some(path) => path,
            // A path of the origin's own is the gate's too, unless the base has a path.
            None if !base_path.is_empty() && location.starts_with('/') && !location.starts_with("//") => location,
            None => return None,
        };
        let under = path.strip_prefix(base_path)?;
        let rewritten = match under.as_bytes().first() {
            None => "/".to_owned(),
            Some(b'/') => under.to_owned(),
            Some(b'?' | b'#') => format!("/{under}"),
            Some(_) => return None,
        };
        (rewritten != location).then_some(rewritten)
    }

    /// The request facts the core decides on, without the viewer's [`Geo`] (the flow asks for
    /// it when a rule needs it).
    pub fn context(&self, req: &Incoming, path: &str) -> RequestContext {
        RequestContext {
            path: path.to_owned(),
            peer_ip: req.peer_ip,
            forwarded_for: req.forwarded_for.clone(),
            referer: req.referer.clone(),
            user_agent: req.user_agent.clone(),
            country: None,
            asn: None,
            purpose: Purpose::Play,
            method: Some(req.method.clone()),
            session_id: None,
            starts_session: false,
        }
    }

    /// Handles one viewer request at `now`.
    pub async fn handle<I: Io>(&self, io: &I, req: &Incoming, now: i64) -> Result<Outcome<I::Response>, I::Error> {
        let Some(proxy) = &self.proxy else {
            return Ok(Outcome::Reply(Reply::misconfigured("this gate has no origin (forward-auth only)")));
        };
        if req.method == "OPTIONS" {
            return Ok(Outcome::Reply(Reply::preflight()));
        }
        let checked = match self.check(io, req, Transports::WithPath, now).await? {
            Checked::Public { path } => {
                return io.fetch(proxy.origin_request(&req.method, &path, &req.query)).await.map(Outcome::Pass);
            }
            Checked::Denied(reply) => return Ok(Outcome::Reply(reply)),
            Checked::Allowed(allowed) => allowed,
        };
        let Allowed { grant, facts, ctx, renewing, lapsed_at } = *checked;
        let upstream = io.fetch(proxy.origin_request(&req.method, &facts.path, &req.query)).await?;
        let content_type = upstream.header("Content-Type");
        let kind = manifest_kind(content_type.as_deref(), &facts.path);
        if kind.is_some() && matches!(upstream.status(), 206 | 304) {
            // A part of a playlist, or "not modified", for one known by its type only (its
            // path forwards no range or revalidation): it can be neither rewritten nor
            // counted, so it is never passed as it is.
            return Ok(Outcome::Reply(Reply::partial_manifest()));
        }
        let (Some(kind), 200) = (kind, upstream.status()) else {
            if renewing {
                // Only a playlist renews a lapsed credential.
                let denial = Denial::Expired { expires_at: lapsed_at.unwrap_or(now), now, leeway: 0 };
                return Ok(Outcome::Reply(Reply::deny(&denial).concerning(token_id_of(&grant))));
            }
            self.count_media(io, req, &ctx, &grant, &facts, &upstream, now);
            return Ok(Outcome::Pass(upstream));
        };
        let sid = match self.admit(io, &grant, beat_kind(&grant, renewing), &ctx, &facts, now).await? {
            Ok(sid) => sid,
            Err(reply) => return Ok(Outcome::Reply(reply)),
        };
        let text = io.text(upstream).await?;
        Ok(Outcome::Reply(proxy.rewrite(&self.deployment, req, &grant, &facts, &sid, kind, content_type, &text, now)))
    }

    /// Forward-auth: decides on a request a proxy in front of the origin asks about (nginx
    /// `auth_request`, Caddy `forward_auth`, Traefik `ForwardAuth`). Playlist requests (by
    /// their extension) count sessions, as in [`Gateway::handle`]; nothing is fetched.
    ///
    /// A CORS preflight (`OPTIONS`) is refused (405 `method_not_allowed`): allowing it lets
    /// the proxy serve it, and a file server may answer `OPTIONS` with the file (Caddy's
    /// does). The proxy answers preflights itself, as `deploy/caddy/Caddyfile` does.
    pub async fn authorize<I: Io>(&self, io: &I, req: &Incoming, now: i64) -> Result<Authorization, I::Error> {
        if req.method == "OPTIONS" {
            let denial = Denial::MethodNotAllowed { method: req.method.clone() };
            return Ok(Authorization::Denied(Reply::deny(&denial)));
        }
        // The proxy serves the path it was asked for, `/~sg/…` and all: the gate decides on
        // that same path, so the path transport is not read here.
        let Allowed { grant, facts, ctx, renewing, .. } = match self.check(io, req, Transports::NoPath, now).await? {
            Checked::Public { .. } => return Ok(Authorization::Allowed { subject: None, token_id: None }),
            Checked::Denied(reply) => return Ok(Authorization::Denied(reply)),
            Checked::Allowed(allowed) => *allowed,
        };
        if manifest_kind(None, &facts.path).is_some() {
            if let Err(reply) = self.admit(io, &grant, beat_kind(&grant, renewing), &ctx, &facts, now).await? {
                return Ok(Authorization::Denied(reply));
            }
        }
        let token_id = token_id_of(&grant);
        Ok(Authorization::Allowed { subject: grant.subject, token_id })
    }

    /// The block lists alone, for requests without a credential (public paths, preflights).
    async fn screen<I: Io>(
        &self,
        io: &I,
        client: Option<IpAddr>,
        referer: Option<&str>,
        now: i64,
    ) -> Result<Result<(), Reply>, I::Error> {
        let blocks = io.blocks(now).await?;
        Ok(check_blocklist(client, &blocks.lookup, now)
            .and_then(|()| check_referrer_blocklist(referer, &blocks.referrers))
            .map_err(|denial| Reply::deny(&denial)))
    }

    /// Everything before the origin: credential, signature, revocations, block lists, policy.
    async fn check<I: Io>(
        &self,
        io: &I,
        req: &Incoming,
        transports: Transports,
        now: i64,
    ) -> Result<Checked, I::Error> {
        let in_path = match transports {
            Transports::WithPath => transport::path_credential(&req.path),
            Transports::NoPath => None,
        };
        let (in_path, path) = match in_path {
            // Refused whichever credential counts: a proxy in front (a CDN) may resolve the
            // segment's dot segments and ask for another path than the one checked.
            Some((credential, _)) if transport::holds_dot_segment(&credential) => {
                let why =
                    "a dot segment in the path credential (a proxy would serve another path than the one checked)";
                return Ok(Checked::Denied(Reply::deny(&Denial::malformed(why))));
            }
            Some((credential, rest)) => (Some(credential), rest),
            None => (None, req.path.clone()),
        };
        let mut ctx = self.context(req, &path);
        let gate = &self.deployment.gate;
        if let Some(facts) = gate.public(&ctx) {
            return Ok(match self.screen(io, facts.client_ip, ctx.referer.as_deref(), now).await? {
                Ok(()) => Checked::Public { path: facts.path },
                Err(reply) => Checked::Denied(reply),
            });
        }
        let credential: Option<Credential> =
            transport::credential(&req.query, req.cookie.as_deref(), req.authorization.as_deref()).or(in_path);
        let (grant, facts) = match gate.verify(credential.as_ref(), &ctx) {
            Ok(verified) => verified,
            Err(denial) => return Ok(Checked::Denied(Reply::deny(&denial))),
        };
        // Players reload a playlist by the URL they were first given, so a live stream keeps
        // presenting the credential issued with its master playlist. Past its expiry it still
        // names its session: the reload is renewed if the session store confirms the session
        // is active and the same viewer. Segments are never renewed; each playlist hands out
        // fresh credentials.
        let lapsed_at = grant.validity.expires_at;
        let playlist = manifest_kind(None, &facts.path).is_some();
        let renewal = playlist.then(|| lift_expiry_for_renewal(&grant, now)).flatten();
        let renewing = renewal.is_some();
        let grant = renewal.unwrap_or(grant);
        let revoked = if io.revocations_known_empty() {
            Revoked(Vec::new())
        } else {
            Revoked(io.revoked(&grant.revocation_ids(), now).await?)
        };
        let blocks = io.blocks(now).await?;
        if let Err(denial) = check_referrer_blocklist(ctx.referer.as_deref(), &blocks.referrers) {
            return Ok(Checked::Denied(Reply::deny(&denial).concerning(token_id_of(&grant))));
        }
        if gate.policy.reads_country(&grant) {
            ctx.country = viewer_geo(io, &ctx, &facts).country;
        }
        let mut hooks = Hooks { revocations: &revoked, blocklist: &blocks.lookup, sessions: None };
        Ok(match gate.evaluate(grant, &ctx, facts, now, &mut hooks) {
            Decision::Allow { grant, facts } => {
                // Media of a session the store has refused since (its background heartbeat's
                // answer). A playlist reload still asks the store, which may admit it again.
                let interval = self.background_beat_interval();
                let refused = grant
                    .session_id
                    .as_deref()
                    .filter(|_| !playlist)
                    .and_then(|sid| io.tallies(|t| t.refusal(sid, now, interval)));
                match refused {
                    Some(denial) => Checked::Denied(Reply::deny(&denial).concerning(token_id_of(&grant))),
                    None => Checked::Allowed(Box::new(Allowed { grant, facts, ctx, renewing, lapsed_at })),
                }
            }
            Decision::Deny { denial, grant } => {
                Checked::Denied(Reply::deny(&denial).concerning(grant.and_then(|grant| token_id_of(&grant))))
            }
        })
    }

    /// How often a session that fetches only media sends a heartbeat: every half idle gap.
    fn background_beat_interval(&self) -> i64 {
        (self.deployment.idle_seconds / 2).max(1)
    }

    /// Media served under a session credential counts toward the session's usage record, and
    /// keeps a session that reloads no playlist (a VOD) counted, in the background.
    #[allow(clippy::too_many_arguments)]
    fn count_media<I: Io>(
        &self,
        io: &I,
        req: &Incoming,
        ctx: &RequestContext,
        grant: &Grant,
        facts: &RequestFacts,
        upstream: &I::Response,
        now: i64,
    ) {
        let Some(sid) = &grant.session_id else { return };
        if !matches!(upstream.status(), 200 | 206) || req.method != "GET" {
            return;
        }
        if let Some(bytes) = upstream.header("Content-Length").and_then(|l| l.trim().parse().ok()) {
            io.tallies(|t| t.count_served(sid, bytes, now));
        }
        let interval = self.background_beat_interval();
        if io.tallies(|t| t.beat_due(sid, now, interval)) {
            let beat = self.heartbeat(io, grant, sid, BeatKind::Background, ctx, facts, now);
            io.heartbeat_in_background(grant.session_key(), beat);
        }
    }

    /// A heartbeat of session `sid`, with what this request tells about its viewer and the
    /// media bytes this process served it since its previous heartbeat.
    #[allow(clippy::too_many_arguments)]
    fn heartbeat<I: Io>(
        &self,
        io: &I,
        grant: &Grant,
        sid: &str,
        kind: BeatKind,
        ctx: &RequestContext,
        facts: &RequestFacts,
        now: i64,
    ) -> Heartbeat {
        let token = token_id_of(grant).unwrap_or_default();
        let shape =
            (kind == BeatKind::Start).then(|| TokenShape::new(&token, &grant.claims_json(), &grant.scope.to_string()));
        let deployment = &self.deployment;
        let geo = viewer_geo(io, ctx, facts);
        Heartbeat {
            sid: sid.to_owned(),
            kind,
            shape,
            ids: grant.revocation_ids(),
            limit: grant.max_sessions.or(deployment.gate.policy.default_max_sessions),
            now,
            idle: deployment.idle_seconds,
            at_limit: deployment.at_limit,
            viewer: Viewer { agent: agent_of(ctx.user_agent.as_deref()), network: facts.client_ip.map(network_of) },
            record: UsageEvent {
                at: now,
                token,
                sub: grant.subject.clone(),
                max_sessions: grant.max_sessions,
                stream: Some(facts.path.clone()),
                sid: sid.to_owned(),
                ip: facts.client_ip.map(|ip| ip.to_string()),
                country: geo.country,
                asn: geo.asn,
                as_organization: geo.as_organization,
                referer: ctx.referer.clone(),
                user_agent: ctx.user_agent.clone(),
                bytes: io.tallies(|t| t.take_served(sid, now)),
            }
            .bounded(),
        }
    }

    /// Registers a playlist fetch with the session store and maps its verdict: a new session
    /// (entry token) is admitted against the limit; a reload (session credential) is a
    /// heartbeat; a renewal goes through only for the session's own player while it is active.
    #[allow(clippy::too_many_arguments)]
    async fn admit<I: Io>(
        &self,
        io: &I,
        grant: &Grant,
        kind: BeatKind,
        ctx: &RequestContext,
        facts: &RequestFacts,
        now: i64,
    ) -> Result<Result<String, Reply>, I::Error> {
        // A reload with the entry token (same viewer: token, IP, User-Agent) maps to the same
        // session, so it does not count twice; a session credential names its session.
        let sid = match &grant.session_id {
            Some(sid) => sid.clone(),
            None => reconnect_id(&grant.fingerprint(), facts.client_ip, ctx.user_agent.as_deref()),
        };
        let beat = self.heartbeat(io, grant, &sid, kind, ctx, facts, now);
        io.tallies(|t| t.note_beat(&sid, now));
        let answer = io.heartbeat(&grant.session_key(), &beat).await;
        io.tallies(|t| t.settle(&beat, &answer));
        match answer {
            Ok(verdict) => Ok(match verdict.denial() {
                None => Ok(sid),
                Some(denial) => Err(Reply::deny(&denial).concerning(token_id_of(grant))),
            }),
            Err(error) => {
                // Admitted sessions keep playing through a store hiccup; a new session, or
                // renewing a lapsed credential unconfirmed, is what `onStoreError: open` allows.
                if kind == BeatKind::Reload || self.deployment.on_store_error == OnStoreError::Open {
                    Ok(Ok(sid))
                } else {
                    Ok(Err(Reply::store_unavailable(&error.to_string())))
                }
            }
        }
    }
}

impl Proxy {
    fn origin_request(&self, method: &str, normalized_path: &str, query: &str) -> OriginRequest {
        let manifest = manifest_kind(None, normalized_path).is_some();
        OriginRequest {
            method: method.to_owned(),
            url: origin_url(&self.origin, normalized_path, query),
            forward_body: matches!(method, "POST" | "PUT"),
            cacheable: !matches!(method, "POST" | "PUT") && !manifest,
            viewer_headers: if manifest { &MANIFEST_FORWARDED_HEADERS } else { &FORWARDED_HEADERS },
        }
    }

    /// The manifest, rewritten so every URI it names carries a session credential.
    #[allow(clippy::too_many_arguments)]
    fn rewrite(
        &self,
        deployment: &Deployment,
        req: &Incoming,
        grant: &Grant,
        facts: &RequestFacts,
        sid: &str,
        kind: ManifestKind,
        content_type: Option<String>,
        text: &str,
        now: i64,
    ) -> Reply {
        let sessions = &self.sessions;
        // A VOD manifest is loaded once and played to its end: its credentials cover that.
        let presentation = presentation_seconds(kind, text);
        let credential = match sessions.issue(grant, sid, &facts.path, facts.client_ip, now, presentation) {
            Ok(credential) => credential,
            Err(error) => return Reply::deny(&Denial::malformed(error.to_string())),
        };
        let host = req.base.split_once("://").map_or(req.base.as_str(), |(_, host)| host).to_owned();
        let propagation = Propagation { host, param: SESSION_PARAM.into(), credential };
        let body = match kind {
            ManifestKind::Hls => hls::rewrite(text, &propagation),
            ManifestKind::Dash => {
                // Live MPDs are refreshed from this URL, credential-free here; the rewrite adds one.
                let own_url = origin_url(&req.base, &facts.path, &req.query);
                dash::rewrite_with_refresh(text, &propagation, &own_url)
            }
        };
        let cookie = deployment.cookie.then(|| {
            let lifetime = u64::from(sessions.options.ttl) + presentation.unwrap_or(0).min(MAX_PRESENTATION_SECONDS);
            let directory = sessions.scope_for(grant, &facts.path).directory();
            transport::session_cookie(&propagation.credential, &directory, lifetime)
        });
        Reply::manifest(body, content_type, cookie)
    }
}

/// What a playlist fetch is to the session store: a start (an entry token), a reload (a
/// session credential), or the renewal of a lapsed one.
fn beat_kind(grant: &Grant, renewing: bool) -> BeatKind {
    match (&grant.session_id, renewing) {
        (None, _) => BeatKind::Start,
        (Some(_), false) => BeatKind::Reload,
        (Some(_), true) => BeatKind::Renewal,
    }
}

/// A forward-auth decision.
#[derive(Debug)]
pub enum Authorization {
    /// Let the request through; the proxy may log the subject and token id.
    Allowed {
        /// The verified `sub`.
        subject: Option<String>,
        /// The token id (a `jti`, or the credential's fingerprint).
        token_id: Option<String>,
    },
    /// Refuse it with this reply.
    Denied(Reply),
}

/// Where [`Gateway::check`] looks for a credential.
#[derive(Clone, Copy)]
enum Transports {
    /// The query, the cookie, `Authorization`, and the `/~sg/<credential>` path prefix,
    /// which the gate strips before it fetches.
    WithPath,
    /// All but the path prefix: in forward-auth the proxy fetches the path as asked.
    NoPath,
}

enum Checked {
    Public { path: String },
    Denied(Reply),
    Allowed(Box<Allowed>),
}

struct Allowed {
    grant: Grant,
    facts: RequestFacts,
    ctx: RequestContext,
    renewing: bool,
    lapsed_at: Option<i64>,
}

/// The id a token is known by in usage records, logs and forward-auth answers: its `jti`
/// (EdgeAuth `id`), else its entry token's fingerprint.
fn token_id_of(grant: &Grant) -> Option<String> {
    grant.token_id.clone().or_else(|| grant.entry_fingerprint())
}

/// The ids a request names that the store says are revoked.
struct Revoked(Vec<String>);

impl RevocationList for Revoked {
    fn is_revoked(&self, token_id: &str, _now: i64) -> bool {
        self.0.iter().any(|id| id == token_id)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `scheme://host[:port][/path]` without a trailing `/`, or `None` if not http(s).
fn url_base(origin: &str) -> Option<String> {
    let trimmed = origin.trim().trim_end_matches('/');
    let rest = trimmed.strip_prefix("https://").or_else(|| trimmed.strip_prefix("http://"))?;
    let valid = !rest.is_empty() && !rest.contains(['?', '#', '\\', ' ']) && !rest.starts_with('/');
    valid.then(|| trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::Incoming;

    fn gateway(origin: &str) -> super::Gateway {
        let doc = r#"{"keys": [{"alg": "HS256", "secret": "a secret of thirty-two bytes or more"}],
                      "sessions": {"secret": "a session secret of thirty-two bytes!"}}"#;
        let deployment =
            crate::config::GateConfig::from_json(doc).and_then(crate::config::GateConfig::build_deployment);
        deployment.and_then(|d| super::Gateway::new(d, origin)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Regression (review): an origin's redirect to its own address (nginx's 301 for a
    /// directory) told viewers where the origin is, so they could skip the gate.
    #[test]
    fn an_origins_redirect_to_itself_is_followed_through_the_gate() {
        let expect = |origin: &str, cases: &[(&str, Option<&str>)]| {
            let gate = gateway(origin);
            for (location, viewer) in cases {
                assert_eq!(gate.viewer_location(location).as_deref(), *viewer, "{origin}: {location}");
            }
        };
        expect(
            "http://origin-internal:8080/",
            &[
                ("http://origin-internal:8080/hls/low/", Some("/hls/low/")),
                ("HTTP://Origin-Internal:8080/a?b=1", Some("/a?b=1")),
                ("//origin-internal:8080/a", Some("/a")),
                ("http://origin-internal:8080", Some("/")),
                ("http://origin-internal:8080?x", Some("/?x")),
                ("http://origin-internal:8080.evil.example/x", None),
                ("http://origin-internal:80801/x", None),
                ("https://elsewhere.example/x", None),
                ("/hls/x", None),
                ("relative/x", None),
            ],
        );
        expect(
            "https://o.example/base",
            &[
                ("https://o.example/base/x", Some("/x")),
                ("https://o.example/base", Some("/")),
                ("/base/x?y", Some("/x?y")),
                ("/basement/x", None),
                ("/other", None),
                ("https://o.example/other", None),
            ],
        );
    }

    fn parts(url: &str) -> (String, String, String) {
        let incoming = Incoming::for_url("GET".into(), url);
        (incoming.base, incoming.path, incoming.query)
    }

    #[test]
    fn for_url_cuts_base_path_and_query_as_received() {
        let cases = [
            (
                "https://gate.example/hls/a%2Fb.m3u8?token=x&_HLS_msn=3",
                "https://gate.example",
                "/hls/a%2Fb.m3u8",
                "token=x&_HLS_msn=3",
            ),
            ("http://127.0.0.1:8787/", "http://127.0.0.1:8787", "/", ""),
            ("http://[::1]:8080/x?", "http://[::1]:8080", "/x", ""),
            ("http://user:pw@gate.example/x#frag", "http://gate.example", "/x", ""),
            ("http://gate.example?x=1", "http://gate.example", "/", "x=1"),
            ("http://gate.example/p?a?b=%3F#f?g", "http://gate.example", "/p", "a?b=%3F"),
        ];
        for (url, base, path, query) in cases {
            assert_eq!(parts(url), (base.to_owned(), path.to_owned(), query.to_owned()), "{url}");
        }
    }
}
