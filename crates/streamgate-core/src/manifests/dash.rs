//! DASH MPDs (ISO/IEC 23009-1), rewritten in two linear passes over the text: the first
//! finds every URL and what each `BaseURL` makes of its level, the second copies the text
//! with credentials added. No XML tree is built: namespaces, comments, CDATA sections,
//! references and formatting survive byte for byte.

use super::{xml_escape, xml_uri_list, Propagation, Reach, Syntax, Target, Written};

/// Elements whose `BaseURL` children are the base of every URL at and below them.
const LEVELS: [&str; 4] = ["MPD", "Period", "AdaptationSet", "Representation"];

/// Segment URLs and templates. Levels below the one that holds them inherit them, so they
/// are resolved against the BaseURLs of every such level too.
const SEGMENT_ATTRIBUTES: [(&str, &[&str]); 5] = [
    ("SegmentTemplate", &["media", "initialization", "index", "bitstreamSwitching"]),
    ("SegmentURL", &["media", "index"]),
    ("Initialization", &["sourceURL"]),
    ("RepresentationIndex", &["sourceURL"]),
    ("BitstreamSwitching", &["sourceURL"]),
];

/// `UTCTiming` schemes whose `value` lists URLs (separated by spaces) that players fetch
/// as written, not resolved against any BaseURL; the first edition's 2012 URNs too, which
/// dash.js still reads.
const HTTP_TIMING: [&str; 8] = [
    "urn:mpeg:dash:utc:http-xsdate:2014",
    "urn:mpeg:dash:utc:http-iso:2014",
    "urn:mpeg:dash:utc:http-ntp:2014",
    "urn:mpeg:dash:utc:http-head:2014",
    "urn:mpeg:dash:utc:http-xsdate:2012",
    "urn:mpeg:dash:utc:http-iso:2012",
    "urn:mpeg:dash:utc:http-ntp:2012",
    "urn:mpeg:dash:utc:http-head:2012",
];

/// MPD children that may come before `Location` (ISO/IEC 23009-1 element order).
const BEFORE_LOCATION: [&str; 3] = ["ProgramInformation", "BaseURL", "Location"];

/// Deeper than any MPD, and than XML parsers accept: such a document is left unchanged.
const MAX_DEPTH: usize = 256;

fn local_name(qualified: &str) -> &str {
    qualified.rsplit(':').next().unwrap_or(qualified)
}

/// What a relative URL resolves against.
#[derive(Clone, Copy)]
enum Base {
    /// The BaseURLs in scope at a level (`None`: the MPD's own URL, on the gate).
    Level(Option<usize>),
    /// Those of a level and of every level below it.
    Subtree(Option<usize>),
    /// The player's page (license and steering servers, `xlink:href` in dash.js): a
    /// relative URL there is never known to reach the gate.
    Page,
}

/// A level's BaseURL children, and what each makes of it.
struct Level {
    parent: Option<usize>,
    /// Whether it has any.
    based: bool,
    /// Whether any leads elsewhere (or cannot be read), or resolves against the parent.
    elsewhere: bool,
    relative: bool,
}

/// Something to write in the second pass: a URL, or the `Location` a live MPD gets.
enum Slot {
    Url { start: usize, end: usize, syntax: Syntax<'static>, base: Base },
    Location { at: usize, indent: (usize, usize) },
}

/// An open element.
struct Frame {
    /// Its qualified name, as a span of the document.
    name: (usize, usize),
    /// The nearest level at or above it, and whether that is itself.
    level: Option<usize>,
    is_level: bool,
    /// Whether it is, or is inside, a `ContentProtection`.
    protection: bool,
}

/// What the first pass found.
struct Scan {
    slots: Vec<Slot>,
    levels: Vec<Level>,
    /// A dynamic MPD without a `Location` of its own.
    needs_location: bool,
}

/// Rewrites an MPD. A relative URL gets the credential only if every BaseURL it may be
/// resolved against is on the gate: a `BaseURL` on another host makes everything below
/// it foreign (a player fetches those without a credential, which that host decides
/// about), and a segment template is foreign if any level that inherits it is. License
/// server, steering, `xlink:href` and HTTP `UTCTiming` URLs get it only when absolute on
/// the gate. A
/// document players would refuse or read differently (mismatched tags, a DTD that may
/// define entities, nesting deeper than XML parsers allow) is left unchanged.
pub fn rewrite(mpd: &str, propagation: &Propagation) -> String {
    rewrite_mpd(mpd, propagation, None)
}

/// Like [`rewrite`]; in addition, a dynamic (live) MPD without a `Location` gets one:
/// `manifest_url` (the MPD's own URL on the gate) with the credential. Players refresh a
/// live MPD from its `Location`, so refreshes carry the fresh credential of the last
/// response instead of the entry URL's token, which may expire during the event.
pub fn rewrite_with_refresh(mpd: &str, propagation: &Propagation, manifest_url: &str) -> String {
    rewrite_mpd(mpd, propagation, Some(manifest_url))
}

fn rewrite_mpd(mpd: &str, propagation: &Propagation, manifest_url: Option<&str>) -> String {
    let Some(scan) = scan(mpd, propagation) else {
        return mpd.to_owned();
    };
    let (foreign, tainted) = scopes(&scan.levels);
    let target = |base: Base| {
        let foreign = match base {
            Base::Level(level) => level.and_then(|l| foreign.get(l)).copied().unwrap_or(false),
            Base::Subtree(level) => level.and_then(|l| tainted.get(l)).copied().unwrap_or(false),
            Base::Page => true,
        };
        if foreign {
            Target::Foreign
        } else {
            Target::Ours
        }
    };
    let mut out = String::with_capacity(mpd.len() + mpd.len() / 4);
    let mut copied = 0;
    for slot in &scan.slots {
        match *slot {
            Slot::Url { start, end, syntax, base } => {
                out.push_str(mpd.get(copied..start).unwrap_or(""));
                propagation.put(Written { raw: mpd.get(start..end).unwrap_or(""), syntax }, target(base), &mut out);
                copied = end;
            }
            Slot::Location { at, indent } => {
                let Some(url) = manifest_url.filter(|_| scan.needs_location) else {
                    continue;
                };
                let escaped = xml_escape(url);
                let mut location = String::new();
                let written = Written { raw: &escaped, syntax: Syntax::XmlText };
                if propagation.put(written, target(Base::Level(Some(0))), &mut location) {
                    out.push_str(mpd.get(copied..at).unwrap_or(""));
                    out.push_str("<Location>");
                    out.push_str(&location);
                    out.push_str("</Location>");
                    out.push_str(mpd.get(indent.0..indent.1).unwrap_or(""));
                    copied = at;
                }
            }
        }
    }
    out.push_str(mpd.get(copied..).unwrap_or(""));
    out
}

/// For each level: whether relative URLs there lead off the gate, and whether they do
/// there or at any level below.
fn scopes(levels: &[Level]) -> (Vec<bool>, Vec<bool>) {
    let mut foreign: Vec<bool> = Vec::with_capacity(levels.len());
    for level in levels {
        let parent = level.parent.and_then(|p| foreign.get(p)).copied().unwrap_or(false);
        let own = if level.based { level.elsewhere || (level.relative && parent) } else { parent };
        foreign.push(own);
    }
    let mut tainted = foreign.clone();
    for (index, level) in levels.iter().enumerate().rev() {
        if tainted.get(index).copied().unwrap_or(false) {
            if let Some(parent) = level.parent.and_then(|p| tainted.get_mut(p)) {
                *parent = true;
            }
        }
    }
    (foreign, tainted)
}

/// The first pass; `None` for a document to leave unchanged.
fn scan(mpd: &str, propagation: &Propagation) -> Option<Scan> {
    let mut found = Scan { slots: Vec::new(), levels: Vec::new(), needs_location: false };
    let mut stack: Vec<Frame> = Vec::new();
    let (mut pos, mut markup_end, mut rooted) = (0, 0, false);
    let (mut has_location, mut location_slot) = (false, false);
    while let Some(lt) = mpd.get(pos..).and_then(|r| r.find('<')) {
        let at = pos + lt;
        let rest = mpd.get(at..).unwrap_or("");
        if rest.starts_with("<!DOCTYPE") {
            // An internal subset may define entities that expand into elements.
            let end = rest.find('>').map_or(rest.len(), |i| i + 1);
            if rest.get(..end).is_some_and(|d| d.contains('[')) {
                return None;
            }
            (pos, markup_end) = (at + end, at + end);
            continue;
        }
        if let Some((_, close)) = MARKUP.iter().find(|(open, _)| rest.starts_with(open)) {
            let end = rest.find(close).map_or(rest.len(), |i| i + close.len());
            (pos, markup_end) = (at + end, at + end);
            continue;
        }
        let tag = rest.get(..tag_end(rest)).unwrap_or(rest);
        let indent = (markup_end, at);
        (pos, markup_end) = (at + tag.len(), at + tag.len());
        if let Some(close) = tag.strip_prefix("</") {
            let frame = stack.pop()?;
            let name = close.trim_end_matches('>').trim_end();
            if mpd.get(frame.name.0..frame.name.1) != Some(name) {
                return None;
            }
            continue;
        }
        let name_end = tag.find(|c: char| c.is_whitespace() || c == '>' || c == '/').unwrap_or(tag.len()).max(1);
        let name = tag.get(1..name_end).unwrap_or("");
        let local = local_name(name);
        let parent = stack.last();
        let (parent_level, inside_protection) = (parent.and_then(|f| f.level), parent.is_some_and(|f| f.protection));
        if parent.is_none() {
            if rooted {
                return None;
            }
            rooted = true;
            found.needs_location = local == "MPD" && is_dynamic(tag);
        }
        if stack.len() >= MAX_DEPTH {
            return None;
        }
        if stack.len() == 1 {
            if local == "Location" {
                has_location = true;
            } else if !BEFORE_LOCATION.contains(&local) && !location_slot {
                location_slot = true;
                let indent =
                    if mpd.get(indent.0..indent.1).is_some_and(|t| t.trim().is_empty()) { indent } else { (at, at) };
                found.slots.push(Slot::Location { at, indent });
            }
        }
        let timing = local == "UTCTiming" && http_timing(tag, name_end, propagation);
        for (attribute, value) in xml_attributes(tag, name_end) {
            if timing && attribute == "value" {
                let parts = tag.get(value.clone()).and_then(xml_uri_list).unwrap_or_default();
                for (start, end) in parts {
                    let (start, end) = (at + value.start + start, at + value.start + end);
                    found.slots.push(Slot::Url { start, end, syntax: Syntax::XmlAttribute, base: Base::Page });
                }
                continue;
            }
            if let Some(base) = attribute_base(local, attribute, inside_protection, parent_level) {
                let (start, end) = (at + value.start, at + value.end);
                found.slots.push(Slot::Url { start, end, syntax: Syntax::XmlAttribute, base });
            }
        }
        let is_level = LEVELS.contains(&local);
        let level = if is_level {
            found.levels.push(Level { parent: parent_level, based: false, elsewhere: false, relative: false });
            Some(found.levels.len() - 1)
        } else {
            parent_level
        };
        if tag.ends_with("/>") {
            continue;
        }
        let parent_is_level = parent.is_some_and(|f| f.is_level);
        let text_base = match local {
            "BaseURL" if parent_is_level => {
                Some(Base::Level(parent_level.and_then(|l| found.levels.get(l)).and_then(|l| l.parent)))
            }
            "BaseURL" | "Location" | "PatchLocation" => Some(Base::Level(parent_level)),
            "ContentSteering" => Some(Base::Page),
            _ if inside_protection => Some(Base::Page),
            _ => None,
        };
        if let Some(base) = text_base {
            let (end, simple) = text_content(mpd, pos, name);
            if local == "BaseURL" && parent_is_level {
                let text = Written { raw: mpd.get(pos..end).unwrap_or(""), syntax: Syntax::XmlText };
                let reach = if simple { propagation.reach(text) } else { Reach::Elsewhere };
                if let Some(level) = parent_level.and_then(|l| found.levels.get_mut(l)) {
                    level.based = true;
                    level.elsewhere |= reach == Reach::Elsewhere;
                    level.relative |= reach == Reach::Relative;
                }
            }
            if simple {
                found.slots.push(Slot::Url { start: pos, end, syntax: Syntax::XmlText, base });
            }
            (pos, markup_end) = (end, end);
        }
        let protection = inside_protection || local == "ContentProtection";
        stack.push(Frame { name: (at + 1, at + name_end), level, is_level, protection });
    }
    found.needs_location &= !has_location;
    Some(found)
}

/// Markup that holds no elements, and how it ends.
const MARKUP: [(&str, &str); 4] = [("<!--", "-->"), ("<![CDATA[", "]]>"), ("<?", "?>"), ("<!", ">")];

/// The text of the element `name` that starts at `from`: where it ends, and whether it is
/// plain text (CDATA sections allowed) closed by the element's own end tag. Anything else
/// (comments, child elements, no end) is read differently by different players.
fn text_content(mpd: &str, from: usize, name: &str) -> (usize, bool) {
    let mut pos = from;
    loop {
        let Some(lt) = mpd.get(pos..).and_then(|r| r.find('<')).map(|i| pos + i) else {
            return (mpd.len(), false);
        };
        let rest = mpd.get(lt..).unwrap_or("");
        if rest.starts_with("<![CDATA[") {
            match rest.find("]]>") {
                Some(end) => pos = lt + end + 3,
                None => return (mpd.len(), false),
            }
            continue;
        }
        let closes =
            rest.strip_prefix("</").and_then(|r| r.strip_prefix(name)).is_some_and(|r| r.trim_start().starts_with('>'));
        return (lt, closes);
    }
}

/// The attributes of a start tag after its name: qualified name, and the span of the
/// value inside its quotes. Stops at the first malformed one.
fn xml_attributes(tag: &str, from: usize) -> impl Iterator<Item = (&str, std::ops::Range<usize>)> {
    let mut pos = from;
    std::iter::from_fn(move || {
        let rest = tag.get(pos..)?;
        let eq = rest.find('=')?;
        let name = rest.get(..eq)?.trim();
        let after = rest.get(eq + 1..)?;
        let lead = after.len() - after.trim_start().len();
        let quote = after.get(lead..)?.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let start = pos + eq + 1 + lead + 1;
        let len = tag.get(start..)?.find(quote)?;
        pos = start + len + 1;
        Some((name, start..start + len))
    })
}

/// Whether the `UTCTiming` start tag `tag` names an HTTP time source whose URLs may get
/// the credential. dash.js fetches each URL of its `value` in turn; Shaka and ExoPlayer
/// the whole value as one URL, so it must lead to the gate too: the first URL is
/// absolute on the gate.
fn http_timing(tag: &str, name_end: usize, propagation: &Propagation) -> bool {
    let value = |name: &str| xml_attributes(tag, name_end).find(|(a, _)| *a == name).and_then(|(_, v)| tag.get(v));
    value("schemeIdUri").is_some_and(|scheme| HTTP_TIMING.contains(&scheme))
        && value("value")
            .is_some_and(|raw| propagation.reach(Written { raw, syntax: Syntax::XmlAttribute }) == Reach::Gate)
}

/// What the URL in attribute `attribute` of element `element` resolves against, if it
/// holds one a player fetches.
fn attribute_base(element: &str, attribute: &str, inside_protection: bool, level: Option<usize>) -> Option<Base> {
    let segment = SEGMENT_ATTRIBUTES.iter().any(|(e, names)| *e == element && names.contains(&attribute));
    match attribute {
        _ if segment => Some(Base::Subtree(level)),
        // xlink:href on Period, AdaptationSet, EventStream, SegmentList …
        _ if local_name(attribute) == "href" && attribute.contains(':') && !attribute.starts_with("xmlns:") => {
            Some(Base::Page)
        }
        "proxyServerURL" if element == "ContentSteering" => Some(Base::Page),
        // ms:laurl (Widevine in Microsoft's form)
        "licenseUrl" if inside_protection => Some(Base::Page),
        // SEA: sea:CryptoPeriod / CryptoTimeline key URLs, resolved like segments.
        "keyUriTemplate" if inside_protection => Some(Base::Subtree(level)),
        _ => None,
    }
}

/// The length of a static (VOD) MPD, in whole seconds rounded up: its
/// `mediaPresentationDuration`. `None` for a dynamic MPD, or when the duration is missing
/// or not an ISO 8601 duration.
pub fn presentation_seconds(mpd: &str) -> Option<u64> {
    let tag = root_tag(mpd)?;
    let name = tag.get(1..)?.split(|c: char| c.is_whitespace() || c == '>' || c == '/').next()?;
    if local_name(name) != "MPD" || is_dynamic(tag) {
        return None;
    }
    let value = tag.split("mediaPresentationDuration=").nth(1)?;
    let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    iso_duration_seconds(value.get(1..)?.split(quote).next()?)
}

/// The document's root start tag, past the XML declaration, comments and a doctype.
fn root_tag(xml: &str) -> Option<&str> {
    let mut rest = xml;
    loop {
        rest = rest.get(rest.find('<')?..)?;
        let skip = [("<!--", "-->"), ("<?", "?>"), ("<!", ">")].iter().find(|(open, _)| rest.starts_with(open));
        match skip {
            Some((_, close)) => rest = rest.get(rest.find(close)? + close.len()..)?,
            None => return rest.get(..tag_end(rest)),
        }
    }
}

/// `PnDTnHnMnS` (the form MPDs use; years and months are not) to whole seconds, rounded up.
fn iso_duration_seconds(text: &str) -> Option<u64> {
    let rest = text.strip_prefix('P')?;
    let (days, time) = match rest.split_once('T') {
        Some((days, time)) => (days, time),
        None => (rest, ""),
    };
    let mut total = match days {
        "" => 0.0,
        d => d.strip_suffix('D')?.parse::<f64>().ok()? * 86_400.0,
    };
    let mut number = String::new();
    for c in time.chars() {
        match c {
            '0'..='9' | '.' => number.push(c),
            'H' | 'M' | 'S' => {
                let unit = match c {
                    'H' => 3_600.0,
                    'M' => 60.0,
                    _ => 1.0,
                };
                total += number.parse::<f64>().ok()? * unit;
                number.clear();
            }
            _ => return None,
        }
    }
    (number.is_empty() && total.is_finite()).then(|| total.ceil().min(1e12) as u64)
}

/// Whether an `<MPD …>` start tag says `type="dynamic"`.
fn is_dynamic(tag: &str) -> bool {
    ["type=\"dynamic\"", "type='dynamic'"].iter().any(|t| tag.split_whitespace().any(|attr| attr.starts_with(t)))
}

/// Where the tag starting at `<` ends, honouring quoted attribute values.
fn tag_end(tag: &str) -> usize {
    let mut quote: Option<char> = None;
    for (i, c) in tag.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return i + 1,
            _ => {}
        }
    }
    tag.len()
}
