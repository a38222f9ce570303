//! DASH MPDs (ISO/IEC 23009-1), rewritten in one streaming pass over the text: every byte
//! is copied as is except the URI values changed, so namespaces, comments and formatting
//! survive. No XML tree is built.

use super::{is_absolute, Propagation, Target};

/// Elements whose attributes hold segment URLs or URL templates, and those attributes.
const URL_ATTRIBUTES: [(&str, &[&str]); 5] = [
    ("SegmentTemplate", &["media", "initialization", "index", "bitstreamSwitching"]),
    ("SegmentURL", &["media", "index"]),
    ("Initialization", &["sourceURL"]),
    ("RepresentationIndex", &["sourceURL"]),
    ("BitstreamSwitching", &["sourceURL"]),
];

/// Elements whose text is a URL: the MPD refresh locations get the credential; a
/// `BaseURL` on another host makes everything under its parent foreign.
const URL_TEXT: [&str; 3] = ["BaseURL", "Location", "PatchLocation"];

struct Frame {
    name: String,
    /// Relative URLs in this element resolve against another host.
    foreign: bool,
    /// Whether a BaseURL child has been seen (redundant BaseURLs only ever narrow).
    base_seen: bool,
}

fn local_name(qualified: &str) -> &str {
    qualified.rsplit(':').next().unwrap_or(qualified)
}

/// MPD children that may come before `Location` (ISO/IEC 23009-1 element order).
const BEFORE_LOCATION: [&str; 3] = ["ProgramInformation", "BaseURL", "Location"];

/// Rewrites an MPD. Relative URLs under a `BaseURL` that points to another host are left
/// alone, so the credential never reaches that host (a player then fetches them without
/// one, which the other host decides about).
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
    let mut out = String::with_capacity(mpd.len() + mpd.len() / 4);
    let mut stack: Vec<Frame> = Vec::new();
    // The Location to add, once the root turns out to be a dynamic MPD without one.
    let mut location: Option<String> = None;
    let mut rest = mpd;
    while let Some(lt) = rest.find('<') {
        let text = rest.get(..lt).unwrap_or("");
        rewrite_text(text, &mut stack, propagation, &mut out);
        rest = rest.get(lt..).unwrap_or("");
        for (open, close) in [("<!--", "-->"), ("<![CDATA[", "]]>"), ("<?", "?>"), ("<!", ">")] {
            if rest.starts_with(open) {
                let end = rest.find(close).map_or(rest.len(), |i| i + close.len());
                out.push_str(rest.get(..end).unwrap_or(rest));
                rest = rest.get(end..).unwrap_or("");
                break;
            }
        }
        if !rest.starts_with('<') {
            continue;
        }
        let end = tag_end(rest);
        let tag = rest.get(..end).unwrap_or(rest);
        rest = rest.get(end..).unwrap_or("");
        if tag.starts_with("</") {
            stack.pop();
            out.push_str(tag);
            continue;
        }
        let name_end = tag.find(|c: char| c.is_whitespace() || c == '>' || c == '/').unwrap_or(tag.len()).max(1);
        let name = tag.get(1..name_end).unwrap_or("");
        if stack.is_empty() && local_name(name) == "MPD" && is_dynamic(tag) {
            location = manifest_url.and_then(|url| propagation.apply(url, "&amp;"));
        }
        if stack.len() == 1 && BEFORE_LOCATION.contains(&local_name(name)) {
            if local_name(name) == "Location" {
                location = None;
            }
        } else if stack.len() == 1 {
            if let Some(url) = location.take() {
                // Indented like the element it precedes.
                let indent = if text.trim().is_empty() { text } else { "" };
                out.push_str(&format!("<Location>{url}</Location>{indent}"));
            }
        }
        let foreign = stack.last().is_some_and(|f| f.foreign);
        let attributes = URL_ATTRIBUTES.iter().find(|(element, _)| *element == local_name(name)).map(|(_, a)| *a);
        match attributes {
            Some(attributes) if !foreign => rewrite_attributes(tag, name_end, attributes, propagation, &mut out),
            _ => out.push_str(tag),
        }
        if !tag.ends_with("/>") {
            stack.push(Frame { name: local_name(name).to_owned(), foreign, base_seen: false });
        }
    }
    rewrite_text(rest, &mut stack, propagation, &mut out);
    out
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

fn rewrite_text(text: &str, stack: &mut [Frame], propagation: &Propagation, out: &mut String) {
    let element = stack.last().map(|f| f.name.as_str()).unwrap_or("");
    if !URL_TEXT.contains(&element) || text.trim().is_empty() {
        out.push_str(text);
        return;
    }
    let url = text.trim();
    let parent_index = stack.len().checked_sub(2);
    let inherited = parent_index.and_then(|i| stack.get(i)).is_some_and(|f| f.foreign);
    // A relative URL resolves within its scope; an absolute one decides for itself.
    let foreign = if is_absolute(url) { propagation.target(url) == Target::Foreign } else { inherited };
    if element == "BaseURL" {
        if let Some(parent) = parent_index.and_then(|i| stack.get_mut(i)) {
            // The first BaseURL sets the parent's scope; redundant ones can only make it foreign.
            parent.foreign = if parent.base_seen { parent.foreign || foreign } else { foreign };
            parent.base_seen = true;
        }
    }
    let rewritten = if foreign { None } else { propagation.apply(url, "&amp;") };
    match rewritten {
        Some(new) => {
            let lead = text.len() - text.trim_start().len();
            out.push_str(text.get(..lead).unwrap_or(""));
            out.push_str(&new);
            out.push_str(text.get(lead + url.len()..).unwrap_or(""));
        }
        None => out.push_str(text),
    }
}

fn rewrite_attributes(tag: &str, name_end: usize, wanted: &[&str], propagation: &Propagation, out: &mut String) {
    out.push_str(tag.get(..name_end).unwrap_or(""));
    let mut rest = tag.get(name_end..).unwrap_or("");
    while let Some(eq) = rest.find('=') {
        let before = rest.get(..eq).unwrap_or("");
        let attr = before.trim().rsplit(char::is_whitespace).next().unwrap_or("");
        let after = rest.get(eq + 1..).unwrap_or("");
        let lead = after.len() - after.trim_start().len();
        let quoted = after.get(lead..).unwrap_or("");
        let Some(quote) = quoted.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            break;
        };
        let Some(close) = quoted.get(1..).and_then(|q| q.find(quote)) else {
            break;
        };
        let value = quoted.get(1..=close).unwrap_or("");
        out.push_str(before);
        out.push('=');
        out.push_str(after.get(..lead).unwrap_or(""));
        out.push(quote);
        match propagation.apply(value, "&amp;").filter(|_| wanted.contains(&local_name(attr))) {
            Some(new) => out.push_str(&new),
            None => out.push_str(value),
        }
        out.push(quote);
        rest = quoted.get(close + 2..).unwrap_or("");
    }
    out.push_str(rest);
}
