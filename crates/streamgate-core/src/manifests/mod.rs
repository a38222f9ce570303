//! Manifest token propagation: HLS playlists and DASH MPDs are rewritten so that every
//! follow-up request a stock player makes (variant playlists, segments, keys, init
//! segments, parts, preload hints, rendition reports, MPD refreshes) carries a credential.
//!
//! **Security rule: the credential is added ONLY to URIs that resolve to the gate's own
//! host; everything else stays byte-identical.** A URI is judged the way players resolve
//! it: after HLS variable substitution or XML decoding, by the WHATWG URL parser browsers
//! use (tabs and newlines dropped, C0 controls and spaces trimmed, `\` read as `/`). Where
//! players could read it differently (an unknown variable or entity where the host is
//! decided, `https:host` without slashes, userinfo, another port, an IDN or percent-encoded
//! host), it counts as foreign: a missing credential costs one failed request, a leaked one
//! the stream. [`Propagation::target`] is that one classifier, for both formats.
//!
//! Rules for the rewrite:
//! - the credential goes into the query before any `#fragment`, replacing a parameter of
//!   the same name; every other byte of the URI stays as written (variable references,
//!   character references, CDATA sections, surrounding spaces);
//! - nothing else changes: comments, blank lines, line endings, tag and element order.
//!
//! Not rewritten, on purpose (a URI there that leads to the gate is fetched without the
//! credential and refused: one failed request, never a leak):
//! - the JSON an HLS interstitial's `X-ASSET-LIST` returns. The `X-ASSET-LIST` URL itself
//!   gets the credential when it is on the gate, but the list is a response of its own,
//!   usually from an ad decision server on another host; it is not a manifest
//!   ([`manifest_kind`] does not recognise it), and its asset URIs resolve against the
//!   list's URL, which only the player knows once it has followed any redirect. An
//!   interstitial served by the gate belongs in `X-ASSET-URI`, which is rewritten.
//! - the PlayReady license URL (`LA_URL`) inside `mspr:pro`: base64 of a binary PlayReady
//!   Object whose length fields frame a UTF-16LE `WRMHEADER` XML document. Changing it
//!   means decoding, re-encoding and re-framing it, and the same object usually sits in
//!   the init segments' `pssh` boxes, which the gate passes through: the two would then
//!   disagree. License servers authorise license requests their own way; a license URL
//!   that must carry the credential is published as `dashif:Laurl` or `ms:laurl`, which
//!   are rewritten.
//!
//! Pure functions on text: the caller fetches and serves.

use std::collections::HashMap;

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

/// Recognises a manifest by Content-Type, then by the path's extension (both in any ASCII
/// case), without copying either.
pub fn manifest_kind(content_type: Option<&str>, path: &str) -> Option<ManifestKind> {
    const HLS_TYPES: [&str; 4] =
        ["application/vnd.apple.mpegurl", "application/x-mpegurl", "audio/mpegurl", "audio/x-mpegurl"];
    if let Some(mime) = content_type.map(|c| c.split(';').next().unwrap_or("").trim()) {
        if HLS_TYPES.iter().any(|t| mime.eq_ignore_ascii_case(t)) {
            return Some(ManifestKind::Hls);
        }
        if mime.eq_ignore_ascii_case("application/dash+xml") {
            return Some(ManifestKind::Dash);
        }
    }
    let path = path.split(['?', '#']).next().unwrap_or("");
    let ends_with = |extension: &str| {
        let tail = path.len().checked_sub(extension.len()).and_then(|start| path.as_bytes().get(start..));
        tail.is_some_and(|tail| tail.eq_ignore_ascii_case(extension.as_bytes()))
    };
    if ends_with(".m3u8") || ends_with(".m3u") {
        Some(ManifestKind::Hls)
    } else if ends_with(".mpd") {
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

/// Where a URI leads, for the leak rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The gate's own host: gets the credential.
    Ours,
    /// Another host or scheme, or not surely the gate: left alone.
    Foreign,
}

/// Where a URI leads before its base is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reach {
    /// A path, query or fragment: the base's host.
    Relative,
    /// Names the gate's host itself.
    Gate,
    /// Names another host or scheme, or cannot be decided.
    Elsewhere,
}

impl Reach {
    /// The target, given where relative references lead.
    pub(crate) fn from(self, base: Target) -> Target {
        match self {
            Reach::Relative => base,
            Reach::Gate => Target::Ours,
            Reach::Elsewhere => Target::Foreign,
        }
    }
}

/// HLS variables: a value, or `None` where the gate cannot know it.
pub(crate) type Variables = HashMap<String, Option<String>>;

/// How the text of a URI reads.
#[derive(Clone, Copy)]
pub(crate) enum Syntax<'a> {
    /// Every character as written.
    Plain,
    /// HLS: every character as written but `{$name}` references, replaced by their values.
    Hls(&'a Variables),
    /// An XML attribute value: character and entity references.
    XmlAttribute,
    /// XML element text: references and CDATA sections.
    XmlText,
}

/// A URI as written in a manifest.
#[derive(Clone, Copy)]
pub(crate) struct Written<'a> {
    /// The text as it stands in the manifest.
    pub(crate) raw: &'a str,
    /// How players read it.
    pub(crate) syntax: Syntax<'a>,
}

/// One character of a URI as players read it, and where it came from in the written text.
#[derive(Clone, Copy)]
struct Unit {
    /// `None`: unknown (an undefined variable, an unknown entity).
    ch: Option<char>,
    /// Where text can go right before it, if it starts what it was written as.
    before: Option<usize>,
    /// Where text can go right after it, if it ends what it was written as.
    after: Option<usize>,
    /// Whether text inserted next to it must be XML-escaped.
    xml: bool,
}

/// The characters of a [`Written`] URI, lazily: linear in its length, no copies.
struct Units<'a> {
    uri: Written<'a>,
    pos: usize,
    cdata: bool,
    /// A variable's value being read: the value, how far, and the reference's span.
    value: Option<(&'a str, usize, usize, usize)>,
}

impl<'a> Written<'a> {
    fn units(self) -> Units<'a> {
        Units { uri: self, pos: 0, cdata: false, value: None }
    }
}

/// `{$name}` at the start of `text`: the name, and the reference's length.
fn variable_reference(text: &str) -> Option<(&str, usize)> {
    let name_and_rest = text.strip_prefix("{$")?;
    let len = name_and_rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))?;
    (len > 0 && name_and_rest.get(len..)?.starts_with('}')).then(|| (name_and_rest.get(..len).unwrap_or(""), len + 3))
}

/// An XML reference (`&amp;`, `&#47;`, `&#x2F;` …) at the start of `text`: its character
/// (`None` for an entity only a DTD could define), and its length.
fn xml_reference(text: &str) -> Option<(Option<char>, usize)> {
    let body = text.strip_prefix('&')?;
    let semicolon = body.get(..body.len().min(12))?.find(';')?;
    let name = body.get(..semicolon)?;
    let ch = match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => match name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
            Some(hex) => u32::from_str_radix(hex, 16).ok().and_then(char::from_u32),
            None => name.strip_prefix('#').and_then(|d| d.parse().ok()).and_then(char::from_u32),
        },
    };
    Some((ch, semicolon + 2))
}

impl Iterator for Units<'_> {
    type Item = Unit;

    fn next(&mut self) -> Option<Unit> {
        loop {
            if let Some((value, read, start, end)) = self.value {
                let Some(ch) = value.get(read..).and_then(|v| v.chars().next()) else {
                    self.value = None;
                    continue;
                };
                let next = read + ch.len_utf8();
                self.value = Some((value, next, start, end));
                let (before, after) = ((read == 0).then_some(start), (next == value.len()).then_some(end));
                return Some(Unit { ch: Some(ch), before, after, xml: false });
            }
            let pos = self.pos;
            let rest = self.uri.raw.get(pos..)?;
            let ch = rest.chars().next()?;
            // (character or unknown, written length, insertion escaped)
            let (read, len, xml) = match self.uri.syntax {
                Syntax::Plain => (Some(ch), ch.len_utf8(), false),
                Syntax::Hls(variables) => match variable_reference(rest) {
                    Some((name, len)) => match variables.get(name) {
                        Some(Some(value)) => {
                            self.value = Some((value.as_str(), 0, pos, pos + len));
                            self.pos = pos + len;
                            continue;
                        }
                        _ => (None, len, false),
                    },
                    None => (Some(ch), ch.len_utf8(), false),
                },
                Syntax::XmlText if self.cdata => match rest.strip_prefix("]]>") {
                    Some(_) => {
                        self.cdata = false;
                        self.pos = pos + 3;
                        continue;
                    }
                    // Some players decode references inside CDATA too, others do not.
                    None => match xml_reference(rest) {
                        Some((_, len)) => (None, len, false),
                        None => (Some(ch), ch.len_utf8(), false),
                    },
                },
                Syntax::XmlText if rest.starts_with("<![CDATA[") => {
                    self.cdata = true;
                    self.pos = pos + 9;
                    continue;
                }
                Syntax::XmlText | Syntax::XmlAttribute => match xml_reference(rest) {
                    Some((decoded, len)) => (decoded, len, true),
                    None if ch == '&' => (None, 1, true),
                    None => (Some(ch), ch.len_utf8(), true),
                },
            };
            self.pos = pos + len;
            return Some(Unit { ch: read, before: Some(pos), after: Some(pos + len), xml });
        }
    }
}

/// The parts of an XML attribute value that lists URIs separated by whitespace, as spans
/// of `raw`; `None` unless every player splits it the same way: only at literal spaces,
/// tabs and line breaks (which XML reads as spaces), with no other whitespace (a no-break
/// space, a line separator, a BOM, written or as a reference: JavaScript's `\s` splits at
/// those) and no reference it cannot read.
pub(crate) fn xml_uri_list(raw: &str) -> Option<Vec<(usize, usize)>> {
    let mut parts = Vec::new();
    let mut part: Option<(usize, usize)> = None;
    for unit in (Written { raw, syntax: Syntax::XmlAttribute }).units() {
        let (ch, before, after) = (unit.ch?, unit.before?, unit.after?);
        if ch.is_whitespace() || ch == '\u{feff}' {
            let literal = raw.get(before..after).is_some_and(|t| t.len() == 1);
            if !(literal && matches!(ch, ' ' | '\t' | '\n' | '\r')) {
                return None;
            }
            parts.extend(part.take());
        } else {
            part = Some((part.map_or(before, |(start, _)| start), after));
        }
    }
    parts.extend(part);
    Some(parts)
}

/// How the credential goes into one URI: spans of its written text to drop (a stale
/// credential) and the text to insert.
struct Edit {
    drop: Vec<(usize, usize)>,
    at: usize,
    insert: String,
}

impl Edit {
    fn write(&self, raw: &str, out: &mut String) {
        let mut pos = 0;
        for &(from, to) in &self.drop {
            out.push_str(raw.get(pos..from).unwrap_or(""));
            pos = to;
        }
        out.push_str(raw.get(pos..self.at).unwrap_or(""));
        out.push_str(&self.insert);
        out.push_str(raw.get(self.at..).unwrap_or(""));
    }
}

/// The query of a URI being read, parameter by parameter, to drop stale credentials.
struct Query<'p> {
    param: &'p str,
    /// Where the current parameter starts, and the separator before it.
    start: Option<usize>,
    separator: Option<(Option<usize>, Option<usize>)>,
    name: String,
    /// Whether the current parameter's name is complete, known, and has anything at all.
    named: bool,
    known: bool,
    empty: bool,
    /// Nothing kept since the `?`.
    leading: bool,
    drop: Vec<(usize, usize)>,
}

impl<'p> Query<'p> {
    fn new(param: &'p str, start: Option<usize>) -> Self {
        Query {
            param,
            start,
            separator: None,
            name: String::new(),
            named: false,
            known: true,
            empty: true,
            leading: true,
            drop: Vec::new(),
        }
    }

    fn feed(&mut self, unit: Unit) {
        if unit.ch == Some('&') {
            self.close(Some((unit.before, unit.after)), unit.before);
            self.start = unit.after;
            self.separator = Some((unit.before, unit.after));
            (self.name, self.named, self.known, self.empty) = (String::new(), false, true, true);
            return;
        }
        self.empty = false;
        match unit.ch {
            _ if self.named => {}
            Some('=') => self.named = true,
            Some(c) if self.name.len() <= self.param.len() => self.name.push(c),
            Some(_) => {}
            None => self.known = false,
        }
    }

    /// Ends the current parameter at `end`, followed by the separator `next` if any.
    fn close(&mut self, next: Option<(Option<usize>, Option<usize>)>, end: Option<usize>) {
        if self.empty {
            return;
        }
        let stale = self.known && self.name == self.param;
        let span = match (stale, self.leading) {
            (false, _) => None,
            // The first kept parameter: drop it with the separator after it.
            (true, true) => self.start.zip(next.map_or(end, |(_, after)| after)),
            // Any other: with the separator before it.
            (true, false) => self.separator.and_then(|(before, _)| before).zip(end),
        };
        match span {
            Some(span) => self.drop.push(span),
            None => self.leading = false,
        }
    }
}

/// `text` with `&`, `<`, `>` and quotes as XML references.
pub(crate) fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

impl Propagation {
    /// Where `uri`, found in a manifest served by the gate, leads: [`Target::Ours`] only
    /// when every player resolves it to the gate's host (exactly `host`, with its port if
    /// any; ASCII case-insensitive).
    pub fn target(&self, uri: &str) -> Target {
        self.reach(Written { raw: uri, syntax: Syntax::Plain }).from(Target::Ours)
    }

    /// Where `uri` leads before its base is known, as the WHATWG URL parser reads it, and
    /// conservatively where players could read it otherwise.
    pub(crate) fn reach(&self, uri: Written<'_>) -> Reach {
        let mut chars = uri
            .units()
            .map(|u| u.ch)
            .filter(|c| !matches!(c, Some('\t' | '\n' | '\r')))
            .skip_while(|c| c.is_some_and(|c| c <= ' '));
        // A scheme is `[a-zA-Z0-9+.-]+:` to some players (WHATWG wants a letter first):
        // only `http:` and `https:` followed by two slashes can be ours.
        let (mut scheme, mut scheme_len, mut letter_first) = (String::new(), 0_usize, false);
        loop {
            match chars.next() {
                None => return Reach::Relative,
                Some(None) => return Reach::Elsewhere,
                Some(Some(c)) if c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.') => {
                    letter_first |= scheme_len == 0 && c.is_ascii_alphabetic();
                    scheme_len += 1;
                    if scheme_len <= 5 {
                        scheme.push(c.to_ascii_lowercase());
                    }
                }
                Some(Some(':')) if scheme_len > 0 => {
                    let web = letter_first && scheme_len <= 5 && (scheme == "http" || scheme == "https");
                    return if web { self.authority(chars, 0) } else { Reach::Elsewhere };
                }
                Some(Some(_)) if scheme_len > 0 => return Reach::Relative,
                Some(Some('/' | '\\')) => return self.authority(chars, 1),
                Some(Some(_)) => return Reach::Relative,
            }
        }
    }

    /// The host after a scheme or a leading slash (`slashes` already read): two or more
    /// slashes (`/` or `\`) start an authority; fewer make a path, or, after a scheme, a
    /// form players read differently.
    fn authority(&self, mut chars: impl Iterator<Item = Option<char>>, slashes: usize) -> Reach {
        let mut count = slashes;
        let mut next = chars.next();
        while let Some(Some('/' | '\\')) = next {
            count += 1;
            next = chars.next();
        }
        match (count, slashes) {
            (0 | 1, 1) => return if next == Some(None) { Reach::Elsewhere } else { Reach::Relative },
            (0 | 1, _) => return Reach::Elsewhere,
            _ => {}
        }
        let mut host = String::new();
        loop {
            match next {
                None | Some(Some('/' | '\\' | '?' | '#')) => break,
                Some(None | Some('@')) => return Reach::Elsewhere,
                Some(Some(c)) if host.len() <= self.host.len() => host.push(c),
                Some(Some(_)) => return Reach::Elsewhere,
            }
            next = chars.next();
        }
        if !host.is_empty() && host.eq_ignore_ascii_case(&self.host) {
            Reach::Gate
        } else {
            Reach::Elsewhere
        }
    }

    /// How to add the credential to `uri`: before the first `#`, after the last character
    /// that is not a trailing space, replacing parameters named `param`. `None` when there
    /// is nothing to add it to, or no safe place: inside a variable's value, or after a
    /// character some parsers take for a line break.
    fn edit(&self, uri: Written<'_>) -> Option<Edit> {
        let mut query: Option<Query> = None;
        let mut end = None;
        for unit in uri.units() {
            match unit.ch {
                Some('\t' | '\n' | '\r') => continue,
                Some('\u{85}' | '\u{2028}' | '\u{2029}') => return None,
                Some('#') => {
                    end = Some((unit.before, unit.xml));
                    break;
                }
                _ => {}
            }
            match query.as_mut() {
                Some(query) => query.feed(unit),
                None if unit.ch == Some('?') => query = Some(Query::new(&self.param, unit.after)),
                None => {}
            }
            if unit.ch.is_none_or(|c| c > ' ') {
                end = Some((unit.after, unit.xml));
            }
        }
        let (at, xml) = end?;
        let at = at?;
        let (drop, separator) = match query {
            None => (Vec::new(), "?"),
            Some(mut query) => {
                query.close(None, Some(at));
                (query.drop, if query.leading { "" } else { "&" })
            }
        };
        let insert = format!("{separator}{}={}", self.param, self.credential);
        Some(Edit { drop, at, insert: if xml { xml_escape(&insert) } else { insert } })
    }

    /// Writes `uri` with the credential if it leads to the gate (`base`: where relative
    /// references lead), else as written. Whether it added the credential.
    pub(crate) fn put(&self, uri: Written<'_>, base: Target, out: &mut String) -> bool {
        let edit = if self.reach(uri).from(base) == Target::Ours { self.edit(uri) } else { None };
        match &edit {
            Some(edit) => edit.write(uri.raw, out),
            None => out.push_str(uri.raw),
        }
        edit.is_some()
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
        assert_eq!(manifest_kind(Some(" Audio/X-MpegURL ;x"), "/x"), Some(ManifestKind::Hls));
        assert_eq!(manifest_kind(None, "/é.M3u#.ts"), Some(ManifestKind::Hls));
        assert_eq!(manifest_kind(None, "m3u8"), None);
        assert_eq!(manifest_kind(None, "/a.mpd.ts?b.mpd"), None);
    }

    /// The recognition as it was written first: lower-cased copies, then comparisons.
    fn manifest_kind_by_copies(content_type: Option<&str>, path: &str) -> Option<ManifestKind> {
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

    proptest::proptest! {
        #[test]
        fn recognition_without_copies_agrees_with_lower_cased_copies(
            content_type in proptest::option::of("(application|audio)/(x-)?(vnd.apple.)?(mpegurl|MpegURL|dash\\+xml)[ ;a-z=]{0,4}|[a/.é]{0,3}"),
            path in "[/aéİK.mMdDpP3uU8?#]{0,10}",
        ) {
            proptest::prop_assert_eq!(
                manifest_kind(content_type.as_deref(), &path),
                manifest_kind_by_copies(content_type.as_deref(), &path)
            );
        }
    }

    /// `uri` with the credential, or `None` when it is left as written.
    fn apply(p: &Propagation, uri: &str, syntax: Syntax<'_>) -> Option<String> {
        let mut out = String::new();
        p.put(Written { raw: uri, syntax }, Target::Ours, &mut out).then_some(out)
    }

    #[test]
    fn applies_only_to_our_host() {
        let p = p();
        let plain = |uri| apply(&p, uri, Syntax::Plain);
        assert_eq!(plain("seg.ts").as_deref(), Some("seg.ts?token=T"));
        assert_eq!(plain("../a/seg.ts?x=1#f").as_deref(), Some("../a/seg.ts?x=1&token=T#f"));
        assert_eq!(plain("/a/b.m3u8?token=old&_HLS_msn=3").as_deref(), Some("/a/b.m3u8?_HLS_msn=3&token=T"));
        assert_eq!(plain("https://GATE.example.com/a.ts").as_deref(), Some("https://GATE.example.com/a.ts?token=T"));
        assert_eq!(plain("//gate.example.com/a.ts").as_deref(), Some("//gate.example.com/a.ts?token=T"));
        for foreign in [
            "https://cdn.other.com/a.ts",
            "//other.com/a.ts",
            "https://gate.example.com.evil.com/a.ts",
            "https://user@gate.example.com/a.ts",
            "skd://key-id",
            "data:text/plain;base64,AAAA",
            "javascript:alert(1)",
            "ftp://gate.example.com/a",
            "",
            "   ",
        ] {
            assert_eq!(plain(foreign), None, "{foreign}");
        }
        assert_eq!(
            apply(&p, "a.m4s?x=1&amp;y=2", Syntax::XmlAttribute).as_deref(),
            Some("a.m4s?x=1&amp;y=2&amp;token=T")
        );
    }

    #[test]
    fn stale_credentials_are_replaced_and_every_other_byte_kept() {
        let p = p();
        for (uri, expected) in [
            ("a.ts?token=1", "a.ts?token=T"),
            ("a.ts?token=1&token=2", "a.ts?token=T"),
            ("a.ts?x=1&token=1&y=2", "a.ts?x=1&y=2&token=T"),
            ("a.ts?x=1&token=1", "a.ts?x=1&token=T"),
            ("a.ts?token", "a.ts?token=T"),
            ("a.ts?tokens=1", "a.ts?tokens=1&token=T"),
            ("a.ts?", "a.ts?token=T"),
            ("a.ts?&x", "a.ts?&x&token=T"),
            ("a.ts?x=1&", "a.ts?x=1&&token=T"),
            ("  a.ts  ", "  a.ts?token=T  "),
            ("a.ts #f", "a.ts ?token=T#f"),
            ("#f", "?token=T#f"),
            ("a.ts?x=a?b", "a.ts?x=a?b&token=T"),
        ] {
            assert_eq!(apply(&p, uri, Syntax::Plain).as_deref(), Some(expected), "{uri}");
        }
        // Inside XML the separator is a reference; inside CDATA it is not.
        assert_eq!(
            apply(&p, "a.m4s?token=1&amp;x=&#38;", Syntax::XmlAttribute).as_deref(),
            Some("a.m4s?x=&#38;&amp;token=T")
        );
        assert_eq!(
            apply(&p, "<![CDATA[a/?x=1&y=2]]>", Syntax::XmlText).as_deref(),
            Some("<![CDATA[a/?x=1&y=2&token=T]]>")
        );
    }

    #[test]
    fn a_line_break_to_some_parsers_stops_the_credential() {
        for uri in ["a\u{2028}//evil.example/x", "a\u{2029}b", "a\u{85}b"] {
            assert_eq!(apply(&p(), uri, Syntax::Plain), None, "{uri:?}");
        }
        // After the fragment it cannot carry the credential anywhere.
        assert_eq!(apply(&p(), "a#\u{2028}b", Syntax::Plain).as_deref(), Some("a?token=T#\u{2028}b"));
    }

    #[test]
    fn hostile_forms_are_classified_as_browsers_resolve_them() {
        let p = p();
        let ours = [
            "seg.ts",
            "../audio/en/index.m3u8",
            "/media0/seg.ts",
            "?x=1",
            "#f",
            "./seg:1.ts",
            "/ /evil.example/x",
            "\u{feff}//evil.example/x",
            "  seg.ts\t",
            "HTTPS://GATE.EXAMPLE.COM/x",
            "https://GATE.example.com",
            "http://gate.example.com/x",
            "//gate.example.com/x",
            "/\\gate.example.com/x",
            "https:\\\\gate.example.com\\x",
            "https://gate.example.com\\@evil.example/",
            "\t\n https://gate.example.com/x",
            "https://gate.exa\tmple.com/x",
        ];
        let foreign = [
            "/\\evil.example/x",
            "\\\\evil.example/x",
            "\\/evil.example",
            "https:\\\\evil.example/x",
            "https:/\\evil.example/x",
            "https:evil.example/x",
            "https:gate.example.com/x",
            "https:/gate.example.com/x",
            " //evil.example/x",
            "\u{0}//evil.example/x",
            "\u{1f}//evil.example/x",
            "/\t/evil.example/x",
            "/\n/evil.example/x",
            "/\r/evil.example/x",
            "h\tttps://evil.example/x",
            "https://user@gate.example.com/x",
            "https://user:pw@gate.example.com/x",
            "https://@gate.example.com/x",
            "https://gate.example.com@evil.example/x",
            "https://gate.example.com:443/x",
            "https://gate.example.com:/x",
            "https://gate.example.com./x",
            "https://gate.example.com.evil.example/x",
            "https://gäte.example.com/x",
            "https://xn--gte-qla.example.com/x",
            "https://gate%2Eexample.com/x",
            "https://evil.example#@gate.example.com",
            "https://evil.example\\@gate.example.com/",
            "https://gate.example.com /x",
            "https://[::1]/x",
            "///evil.example/x",
            "\\\\\\evil.example",
            "https:////evil.example",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:text/plain,x",
            "blob:https://gate.example.com/x",
            "skd://gate.example.com/k",
            "ftp://gate.example.com/x",
            "wss://gate.example.com/x",
            "file:///etc/passwd",
            "1http://evil.example",
            "+a:b",
            "seg:1.ts",
            "https://",
            "//",
        ];
        for uri in ours {
            assert_eq!(p.target(uri), Target::Ours, "{uri:?}");
        }
        for uri in foreign {
            assert_eq!(p.target(uri), Target::Foreign, "{uri:?}");
        }
        // Only an exact host[:port] match is ours.
        let with_port = Propagation { host: "gate.example.com:8443".into(), ..p.clone() };
        assert_eq!(with_port.target("https://gate.example.com:8443/x"), Target::Ours);
        assert_eq!(with_port.target("https://gate.example.com/x"), Target::Foreign);
        assert_eq!(p.target("https://gate.example.com:8443/x"), Target::Foreign);
        // Never a match on an empty host.
        let hostless = Propagation { host: String::new(), ..p };
        assert_eq!(hostless.target("https:///x"), Target::Foreign);
    }

    #[test]
    fn references_are_read_before_judging() {
        let p = p();
        let mut variables = Variables::new();
        variables.insert("cdn".into(), Some("https://cdn.example".into()));
        variables.insert("gate".into(), Some("https://gate.example.com".into()));
        variables.insert("slash".into(), Some("/".into()));
        variables.insert("q".into(), Some("?a=1".into()));
        variables.insert("imported".into(), None);
        let hls = |uri| apply(&p, uri, Syntax::Hls(&variables));
        assert_eq!(hls("{$cdn}/seg.ts"), None);
        assert_eq!(hls("{$gate}/seg.ts").as_deref(), Some("{$gate}/seg.ts?token=T"));
        assert_eq!(hls("/{$slash}evil.example/x"), None);
        assert_eq!(hls("{$imported}/seg.ts"), None);
        assert_eq!(hls("{$undefined}/seg.ts"), None);
        assert_eq!(hls("https://{$imported}/seg.ts"), None);
        assert_eq!(hls("seg{$imported}.ts"), None, "the unknown could end a scheme");
        assert_eq!(hls("video/{$imported}/seg.ts").as_deref(), Some("video/{$imported}/seg.ts?token=T"));
        assert_eq!(hls("seg.ts?sig={$imported}").as_deref(), Some("seg.ts?sig={$imported}&token=T"));
        assert_eq!(hls("seg.ts{$q}").as_deref(), Some("seg.ts{$q}&token=T"));
        assert_eq!(hls("{$cdn}"), None);
        assert_eq!(hls("{$notaref"), Some("{$notaref?token=T".into()));

        let xml = |uri| apply(&p, uri, Syntax::XmlAttribute);
        assert_eq!(xml("&#x2F;&#47;evil.example/x"), None);
        assert_eq!(xml("&#47;&#x2f;gate.example.com/x").as_deref(), Some("&#47;&#x2f;gate.example.com/x?token=T"));
        assert_eq!(xml("https:&#x2F;&#x2F;cdn.example/x"), None);
        assert_eq!(xml("&cdn;/x"), None, "an entity only a DTD defines");
        assert_eq!(xml("&#9;//evil.example/x"), None);
        assert_eq!(apply(&p, "<![CDATA[&#47;/evil.example/]]>", Syntax::XmlText), None);
        assert_eq!(apply(&p, "<![CDATA[/]]>/evil.example/", Syntax::XmlText), None);
    }
}
