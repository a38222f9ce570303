//! HLS playlists (RFC 8216 and its LL-HLS and content-steering additions).

use super::Propagation;

/// Tag attributes that hold URIs.
const URI_ATTRIBUTES: [&str; 2] = ["URI", "SERVER-URI"];

/// Rewrites a master or media playlist. Lines are kept with their own endings.
pub fn rewrite(playlist: &str, propagation: &Propagation) -> String {
    let mut out = String::with_capacity(playlist.len() + playlist.len() / 4);
    for line in playlist.split_inclusive('\n') {
        let (content, ending) = split_ending(line);
        if content.starts_with("#EXT") {
            rewrite_tag(content, propagation, &mut out);
        } else if content.trim().is_empty() || content.starts_with('#') {
            out.push_str(content);
        } else {
            // A URI line: a segment, or a variant playlist in a master playlist.
            let lead = content.len() - content.trim_start().len();
            let trimmed = content.trim();
            match propagation.apply(trimmed, "&") {
                Some(uri) => {
                    out.push_str(content.get(..lead).unwrap_or(""));
                    out.push_str(&uri);
                    out.push_str(content.get(lead + trimmed.len()..).unwrap_or(""));
                }
                None => out.push_str(content),
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

fn split_ending(line: &str) -> (&str, &str) {
    let body = line.trim_end_matches(['\n', '\r']);
    (body, line.get(body.len()..).unwrap_or(""))
}

/// Rewrites the quoted URI attributes of one tag line, copying everything else as is.
fn rewrite_tag(line: &str, propagation: &Propagation, out: &mut String) {
    let Some(colon) = line.find(':') else {
        out.push_str(line);
        return;
    };
    out.push_str(line.get(..=colon).unwrap_or(""));
    let mut rest = line.get(colon + 1..).unwrap_or("");
    // attribute-list: NAME=VALUE pairs separated by commas; quoted values may hold commas.
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else {
            out.push_str(rest);
            return;
        };
        let name = rest.get(..eq).unwrap_or("");
        out.push_str(name);
        out.push('=');
        rest = rest.get(eq + 1..).unwrap_or("");
        let value_len = if rest.starts_with('"') {
            rest.get(1..).and_then(|r| r.find('"')).map_or(rest.len(), |end| end + 2)
        } else {
            rest.find(',').unwrap_or(rest.len())
        };
        let value = rest.get(..value_len).unwrap_or(rest);
        let quoted_uri = value.len() >= 2 && value.starts_with('"') && value.ends_with('"');
        let rewritten = if quoted_uri && URI_ATTRIBUTES.contains(&name.trim()) {
            value.get(1..value.len() - 1).and_then(|uri| propagation.apply(uri, "&"))
        } else {
            None
        };
        match rewritten {
            Some(uri) => {
                out.push('"');
                out.push_str(&uri);
                out.push('"');
            }
            None => out.push_str(value),
        }
        rest = rest.get(value_len..).unwrap_or("");
        if let Some(after) = rest.strip_prefix(',') {
            out.push(',');
            rest = after;
        }
    }
}
