//! Manifest token propagation: HLS playlists and DASH MPDs are rewritten so that every
//! follow-up request a stock player makes (variant playlists, segments, keys, init
//! segments, parts, preload hints, rendition reports, MPD refreshes) carries a credential.
//!
//! Rules, in one place for both formats:
//! - only URIs on the gate's own host get the credential: relative URIs, absolute paths,
//!   and absolute `http(s)` URIs whose host is the gate's; anything else (other hosts,
//!   `skd:`, `data:`, `javascript:` …) is left byte-identical, so credentials never leak;
//! - the credential goes into the query before any `#fragment`, replacing a parameter of
//!   the same name and keeping every other one;
//! - nothing else changes: comments, blank lines, line endings, tag and element order.
//!
//! Pure functions on text: the caller fetches and serves.

pub mod dash;
pub mod hls;

/// Which kind of manifest a response is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestKind {
    /// An HLS playlist (`.m3u8`).
    Hls,
    /// A DASH MPD (`.mpd`).
    Dash,
}

/// Recognises a manifest by Content-Type, then by the path's extension.
pub fn manifest_kind(content_type: Option<&str>, path: &str) -> Option<ManifestKind> {
    let mime = content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    match mime.as_deref() {
        Some("application/vnd.apple.mpegurl" | "application/x-mpegurl" | "audio/mpegurl" | "audio/x-mpegurl") => {
            return Some(ManifestKind::Hls)
        }
        Some("application/dash+xml") => return Some(ManifestKind::Dash),
        _ => {}
    }
    let lower = path.split(['?', '#']).next().unwrap_or("").to_ascii_lowercase();
    if lower.ends_with(".m3u8") || lower.ends_with(".m3u") {
        Some(ManifestKind::Hls)
    } else if lower.ends_with(".mpd") {
        Some(ManifestKind::Dash)
    } else {
        None
    }
}

/// How long a complete (VOD) manifest plays, in seconds; `None` for live ones. A player
/// loads a VOD playlist once and fetches its segments for that long, so the credentials
/// in it must outlive the presentation.
pub fn presentation_seconds(kind: ManifestKind, text: &str) -> Option<u64> {
    match kind {
        ManifestKind::Hls => hls::presentation_seconds(text),
        ManifestKind::Dash => dash::presentation_seconds(text),
    }
}

/// What to add, and where requests may go with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Propagation {
    /// The gate's host as clients address it (`gate.example.com`, with a port if any).
    pub host: String,
    /// The query parameter name.
    pub param: String,
    /// The credential value, already safe in a URL query (base64url, JWT, …).
    pub credential: String,
}

/// Where a URI points, for the leak rule.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// Relative, or absolute on the gate's host: gets the credential.
    Ours,
    /// Another host or scheme: left alone.
    Foreign,
}

/// Whether `uri` names its own scheme or host (rather than resolving against a base).
fn is_absolute(uri: &str) -> bool {
    let uri = uri.trim();
    if uri.starts_with("//") {
        return true;
    }
    match (uri.find(':'), uri.find(['/', '?', '#'])) {
        (Some(colon), p) => p.is_none_or(|p| colon < p),
        (None, _) => false,
    }
}

impl Propagation {
    fn target(&self, uri: &str) -> Target {
        let uri = uri.trim();
        if let Some(rest) = uri.strip_prefix("//") {
            return self.host_target(rest);
        }
        let scheme_end = uri.find(':');
        let path_start = uri.find(['/', '?', '#']);
        match (scheme_end, path_start) {
            // `scheme:` before any `/`, `?` or `#`: an absolute URI.
            (Some(colon), p) if p.is_none_or(|p| colon < p) => {
                let scheme = uri.get(..colon).unwrap_or("").to_ascii_lowercase();
                match (scheme.as_str(), uri.get(colon + 1..).and_then(|r| r.strip_prefix("//"))) {
                    ("http" | "https", Some(rest)) => self.host_target(rest),
                    _ => Target::Foreign,
                }
            }
            _ => Target::Ours,
        }
    }

    fn host_target(&self, after_slashes: &str) -> Target {
        let authority = after_slashes.split(['/', '?', '#']).next().unwrap_or("");
        let host = authority.rsplit('@').next().unwrap_or("");
        if !authority.contains('@') && host.eq_ignore_ascii_case(&self.host) {
            Target::Ours
        } else {
            Target::Foreign
        }
    }

    /// `uri` with the credential added, or unchanged when it points elsewhere.
    /// `amp` is how `&` is written (`&amp;` inside XML).
    fn apply(&self, uri: &str, amp: &str) -> Option<String> {
        if self.target(uri) == Target::Foreign || uri.trim().is_empty() {
            return None;
        }
        let (base, fragment) = match uri.find('#') {
            Some(i) => (uri.get(..i).unwrap_or(uri), uri.get(i..).unwrap_or("")),
            None => (uri, ""),
        };
        let (path, query) = base.split_once('?').unwrap_or((base, ""));
        let mut out = String::with_capacity(uri.len() + self.param.len() + self.credential.len() + 8);
        out.push_str(path);
        out.push('?');
        let mut first = true;
        for pair in query.split(amp) {
            let name = pair.split('=').next().unwrap_or("");
            if pair.is_empty() || name == self.param {
                continue;
            }
            if !first {
                out.push_str(amp);
            }
            out.push_str(pair);
            first = false;
        }
        if !first {
            out.push_str(amp);
        }
        out.push_str(&self.param);
        out.push('=');
        out.push_str(&self.credential);
        out.push_str(fragment);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> Propagation {
        Propagation { host: "gate.example.com".into(), param: "token".into(), credential: "T".into() }
    }

    #[test]
    fn recognises_manifests() {
        assert_eq!(manifest_kind(Some("application/vnd.apple.mpegurl; charset=utf-8"), "/x"), Some(ManifestKind::Hls));
        assert_eq!(manifest_kind(Some("application/dash+xml"), "/x"), Some(ManifestKind::Dash));
        assert_eq!(manifest_kind(Some("application/octet-stream"), "/a/index.M3U8?x=1"), Some(ManifestKind::Hls));
        assert_eq!(manifest_kind(None, "/a/manifest.mpd"), Some(ManifestKind::Dash));
        assert_eq!(manifest_kind(Some("video/mp2t"), "/a/seg.ts"), None);
    }

    #[test]
    fn applies_only_to_our_host() {
        let p = p();
        assert_eq!(p.apply("seg.ts", "&").as_deref(), Some("seg.ts?token=T"));
        assert_eq!(p.apply("../a/seg.ts?x=1#f", "&").as_deref(), Some("../a/seg.ts?x=1&token=T#f"));
        assert_eq!(p.apply("/a/b.m3u8?token=old&_HLS_msn=3", "&").as_deref(), Some("/a/b.m3u8?_HLS_msn=3&token=T"));
        assert_eq!(
            p.apply("https://GATE.example.com/a.ts", "&").as_deref(),
            Some("https://GATE.example.com/a.ts?token=T")
        );
        assert_eq!(p.apply("//gate.example.com/a.ts", "&").as_deref(), Some("//gate.example.com/a.ts?token=T"));
        for foreign in [
            "https://cdn.other.com/a.ts",
            "//other.com/a.ts",
            "https://gate.example.com.evil.com/a.ts",
            "https://user@gate.example.com/a.ts",
            "skd://key-id",
            "data:text/plain;base64,AAAA",
            "javascript:alert(1)",
            "ftp://gate.example.com/a",
        ] {
            assert_eq!(p.apply(foreign, "&"), None, "{foreign}");
        }
        assert_eq!(p.apply("a.m4s?x=1&amp;y=2", "&amp;").as_deref(), Some("a.m4s?x=1&amp;y=2&amp;token=T"));
    }
}
