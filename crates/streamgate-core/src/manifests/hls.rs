//! HLS playlists (RFC 8216bis, with LL-HLS, content steering and interstitials).

use super::{Propagation, Syntax, Target, Variables, Written};

/// Tags whose attributes hold URIs a player fetches, and those attributes. Tag and
/// attribute names are case-sensitive.
const URI_ATTRIBUTES: [(&str, &[&str]); 12] = [
    ("EXT-X-MEDIA", &["URI"]),
    ("EXT-X-I-FRAME-STREAM-INF", &["URI"]),
    ("EXT-X-IMAGE-STREAM-INF", &["URI"]),
    ("EXT-X-KEY", &["URI"]),
    ("EXT-X-SESSION-KEY", &["URI"]),
    ("EXT-X-MAP", &["URI"]),
    ("EXT-X-PART", &["URI"]),
    ("EXT-X-PRELOAD-HINT", &["URI"]),
    ("EXT-X-RENDITION-REPORT", &["URI"]),
    ("EXT-X-SESSION-DATA", &["URI"]),
    ("EXT-X-CONTENT-STEERING", &["SERVER-URI"]),
    ("EXT-X-DATERANGE", &["X-ASSET-URI", "X-ASSET-LIST"]),
];

/// The LHLS tag whose value (not an attribute) is the URI of a segment still being made.
const PREFETCH: &str = "EXT-X-PREFETCH";

/// Rewrites a multivariant or media playlist: URI lines (segments, variant playlists),
/// the URI attributes of the tags that have them (quoted, or unquoted as hls.js accepts them)
/// and `EXT-X-PREFETCH` values. Lines end where players end them (LF, CRLF or a lone CR)
/// and keep their own endings; a leading BOM and tags indented with spaces or tabs are
/// read as players read them. `{$name}` references are judged with the values
/// the playlist's `EXT-X-DEFINE` tags gave before them; values the gate cannot see
/// (`IMPORT`, `QUERYPARAM`, a name defined twice) count as unknown.
pub fn rewrite(playlist: &str, propagation: &Propagation) -> String {
    let mut out = String::with_capacity(playlist.len() + playlist.len() / 4);
    let body = match playlist.strip_prefix('\u{feff}') {
        Some(body) => {
            out.push('\u{feff}');
            body
        }
        None => playlist,
    };
    let mut variables = Variables::new();
    for (line, ending) in lines(body) {
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        match line.get(indent..).and_then(|l| l.strip_prefix('#')) {
            Some(tag) => {
                let (name, list) = tag.split_once(':').unwrap_or((tag, ""));
                let list_start = line.len() - list.len();
                if name == "EXT-X-DEFINE" {
                    define(list, &mut variables);
                }
                match URI_ATTRIBUTES.iter().find(|(tag, _)| *tag == name) {
                    Some((_, names)) => rewrite_tag(line, list_start, names, &variables, propagation, &mut out),
                    // LHLS (the community low-latency HLS): the value is a segment's URI,
                    // read like a URI line.
                    None if name == PREFETCH && tag.len() > name.len() => {
                        out.push_str(line.get(..list_start).unwrap_or(""));
                        propagation.put(Written { raw: list, syntax: Syntax::Hls(&variables) }, Target::Ours, &mut out);
                    }
                    None => out.push_str(line),
                }
            }
            // A URI line, a blank line (left as is: nothing to add to).
            None => {
                propagation.put(Written { raw: line, syntax: Syntax::Hls(&variables) }, Target::Ours, &mut out);
            }
        }
        out.push_str(ending);
    }
    out
}

/// The length of a complete (VOD) media playlist, in whole seconds rounded up: the sum of
/// its `EXTINF` durations. `None` for a live or event playlist (no `EXT-X-ENDLIST`, not
/// `EXT-X-PLAYLIST-TYPE:VOD`) and for a master playlist.
pub fn presentation_seconds(playlist: &str) -> Option<u64> {
    let mut complete = false;
    let mut total = 0.0_f64;
    let mut segments = 0_usize;
    for line in playlist.lines().map(str::trim) {
        if line == "#EXT-X-ENDLIST" || line == "#EXT-X-PLAYLIST-TYPE:VOD" {
            complete = true;
        } else if let Some(info) = line.strip_prefix("#EXTINF:") {
            let duration = info.split(',').next().unwrap_or("").trim().parse::<f64>().ok();
            total += duration.filter(|d| d.is_finite() && *d > 0.0).unwrap_or(0.0);
            segments += 1;
        }
    }
    // Bounded before the cast: a hostile playlist cannot overflow anything.
    (complete && segments > 0).then(|| total.ceil().min(1e12) as u64)
}

/// The lines of `text` with their endings: LF, CRLF, or a lone CR (a line break to
/// hls.js and to Java's readers alike).
fn lines(text: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest.find(['\r', '\n']).unwrap_or(rest.len());
        let ending =
            if rest.get(end..).is_some_and(|r| r.starts_with("\r\n")) { 2 } else { usize::from(end < rest.len()) };
        let line = (rest.get(..end).unwrap_or(""), rest.get(end..end + ending).unwrap_or(""));
        rest = rest.get(end + ending..).unwrap_or("");
        Some(line)
    })
}

/// The attributes of an attribute-list: name, and the span of the value (quotes
/// included). Stops at the first one players could split differently: a quoted value
/// followed by anything but a comma.
fn attributes(list: &str) -> impl Iterator<Item = (&str, std::ops::Range<usize>)> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        let rest = list.get(pos..)?;
        let eq = rest.find('=')?;
        let name = rest.get(..eq)?.trim();
        let start = pos + eq + 1;
        let value = list.get(start..)?;
        let len = match value.strip_prefix('"') {
            Some(quoted) => {
                let len = quoted.find('"')? + 2;
                if !matches!(value.get(len..)?.chars().next(), None | Some(',')) {
                    return None;
                }
                len
            }
            None => value.find(',').unwrap_or(value.len()),
        };
        pos = start + len + 1;
        Some((name, start..start + len))
    })
}

/// Copies a tag line, adding the credential to its attributes named in `names`. Quoted
/// values as the specification writes them; unquoted ones (which hls.js reads, with a
/// warning) stay unquoted, so only where nothing in them or in the credential (a `,` or a
/// `"`) could move where the value ends.
fn rewrite_tag(
    line: &str,
    list_start: usize,
    names: &[&str],
    variables: &Variables,
    propagation: &Propagation,
    out: &mut String,
) {
    let list = line.get(list_start..).unwrap_or("");
    let mut copied = 0;
    for (name, value) in attributes(list) {
        if !names.contains(&name) {
            continue;
        }
        let text = list.get(value.start..value.end).unwrap_or("");
        let (start, end) = if text.starts_with('"') {
            (list_start + value.start + 1, list_start + value.end - 1)
        } else if text.contains('"') || !unquoted_safe(propagation) {
            continue;
        } else {
            (list_start + value.start, list_start + value.end)
        };
        if start > end {
            continue;
        }
        out.push_str(line.get(copied..start).unwrap_or(""));
        let uri = Written { raw: line.get(start..end).unwrap_or(""), syntax: Syntax::Hls(variables) };
        propagation.put(uri, Target::Ours, out);
        copied = end;
    }
    out.push_str(line.get(copied..).unwrap_or(""));
}

/// Whether the credential, added to an unquoted attribute value, leaves the attribute
/// list parsing as before: no `,` or `"` in the parameter's name or value.
fn unquoted_safe(propagation: &Propagation) -> bool {
    ![&propagation.param, &propagation.credential].iter().any(|s| s.contains([',', '"']))
}

/// Records an `EXT-X-DEFINE`: `NAME`/`VALUE` gives a value; `IMPORT` and `QUERYPARAM`
/// take theirs from elsewhere, unknown here. A name defined twice is unknown too (players
/// differ on which value wins), and so is a value that refers to other variables.
fn define(list: &str, variables: &mut Variables) {
    let (mut name, mut value, mut unknown) = (None, None, None);
    for (attribute, span) in attributes(list) {
        let text = list.get(span).unwrap_or("");
        let text = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text);
        match attribute {
            "NAME" => name = Some(text),
            "VALUE" => value = Some(text),
            "IMPORT" | "QUERYPARAM" => unknown = Some(text),
            _ => {}
        }
    }
    let (name, value) = match (unknown, name) {
        (Some(name), _) => (name, None),
        (None, Some(name)) => (name, Some(value.unwrap_or("")).filter(|v| !v.contains("{$")).map(str::to_owned)),
        (None, None) => return,
    };
    variables.entry(name.to_owned()).and_modify(|v| *v = None).or_insert(value);
}
