//! A fast path for the common shape of a `UsageEvent` line: one flat JSON object whose
//! values are unescaped strings, integers or `null`. It accepts only what serde_json would
//! accept with the same meaning, and answers `None` for anything else (escapes, control
//! characters, tabs, floats, `-0`, nesting, duplicate or mistyped fields), which then goes
//! to serde_json. Why: serde_json parsed ~400 MB/s per core here, and was most of the
//! cost of a scan; this runs several times faster on the gate's own export format.
//!
//! How: one vectorisable pass over the line rules out backslashes and control
//! characters, so every string ends at the next `"`, most often found in one 16-byte
//! load (else with `memchr`); a key shorter than 16 bytes is matched as one integer;
//! integers of up to 19 digits are read digit by digit, longer ones left to serde_json.

use streamgate_core::detection::EventView;

/// No backslash and no byte below 0x20 anywhere in the line: its strings have no escapes,
/// and the only whitespace is spaces. `fold` rather than `any`: no early exit, so the
/// compiler checks 16 bytes at a time.
fn plain(line: &[u8]) -> bool {
    !line.iter().fold(false, |seen, &b| seen | (b < 0x20) | (b == b'\\'))
}

/// A key's bytes (at most 16) as one little-endian integer, zero above its length.
const fn pack(key: &[u8]) -> u128 {
    let mut packed = 0u128;
    let mut i = 0;
    while i < key.len() && i < 16 {
        packed |= (key[i] as u128) << (8 * i);
        i += 1;
    }
    packed
}

const AT: u128 = pack(b"at");
const TOKEN: u128 = pack(b"token");
const SID: u128 = pack(b"sid");
const IP: u128 = pack(b"ip");
const COUNTRY: u128 = pack(b"country");
const ASN: u128 = pack(b"asn");
const AS_ORGANIZATION: u128 = pack(b"as_organization");
const REFERER: u128 = pack(b"referer");
const USER_AGENT: u128 = pack(b"user_agent");
const STREAM: u128 = pack(b"stream");
const BYTES: u128 = pack(b"bytes");
const SUB: u128 = pack(b"sub");
const MAX_SESSIONS: u128 = pack(b"max_sessions");

enum Value<'a> {
    Text(&'a str),
    Number(i128),
    Null,
}

impl<'a> Value<'a> {
    /// A required string: `null` is serde's type error, as a number is.
    fn text(&self) -> Option<&'a str> {
        match self {
            Value::Text(text) => Some(text),
            _ => None,
        }
    }
    fn optional_text(&self) -> Option<Option<&'a str>> {
        match self {
            Value::Text(text) => Some(Some(text)),
            Value::Null => Some(None),
            Value::Number(_) => None,
        }
    }
    fn optional_number<T: TryFrom<i128>>(&self) -> Option<Option<T>> {
        match self {
            Value::Number(n) => T::try_from(*n).ok().map(Some),
            Value::Null => Some(None),
            Value::Text(_) => None,
        }
    }
}

struct Cursor<'a> {
    line: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }
    /// Spaces only: `plain` ruled out every other whitespace byte.
    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.at += 1;
        }
    }
    fn eat(&mut self, byte: u8) -> Option<()> {
        self.skip_spaces();
        (self.peek()? == byte).then(|| self.at += 1)
    }
    /// The 16 bytes from `at`, as one little-endian integer, when the line has them.
    fn window(&self, at: usize) -> Option<u128> {
        let bytes: [u8; 16] = self.bytes.get(at..at + 16)?.try_into().ok()?;
        Some(u128::from_le_bytes(bytes))
    }
    /// The next `"` from `at`: in one 16-byte load when it is that near (most values and
    /// every known key), else with `memchr`.
    fn quote(&self, at: usize) -> Option<usize> {
        if let Some(len) = self.window(at).and_then(first_quote) {
            return Some(at + len);
        }
        Some(at + memchr::memchr(b'"', self.bytes.get(at..)?)?)
    }
    /// The rest of a string after its opening quote (no escapes in a plain line).
    fn string(&mut self) -> Option<&'a str> {
        let start = self.at;
        let end = self.quote(start)?;
        self.at = end + 1;
        self.line.get(start..end)
    }
    /// A key after its opening quote, packed; keys of 16 bytes or more are unknown
    /// (`u128::MAX`).
    fn key(&mut self) -> Option<u128> {
        let start = self.at;
        if let Some(word) = self.window(start) {
            if let Some(len) = first_quote(word) {
                self.at = start + len + 1;
                return Some(word & ((1u128 << (8 * len)) - 1));
            }
        }
        let end = self.quote(start)?;
        self.at = end + 1;
        let key = self.bytes.get(start..end)?;
        Some(if key.len() < 16 { pack(key) } else { u128::MAX })
    }
    /// An integer in JSON's grammar: no leading zeros, no fraction or exponent, not `-0`
    /// (serde_json reads `-0` as a float).
    fn integer(&mut self) -> Option<i128> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let start = self.at;
        let mut value: u64 = 0;
        while let Some(digit @ b'0'..=b'9') = self.peek() {
            value = value.wrapping_mul(10).wrapping_add(u64::from(digit - b'0'));
            self.at += 1;
        }
        // Up to 19 digits always fit in a u64; longer numbers go to serde_json.
        let digits = self.at - start;
        if !(1..=19).contains(&digits)
            || (digits > 1 && self.bytes.get(start) == Some(&b'0'))
            || (negative && value == 0)
        {
            return None;
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        Some(if negative { -i128::from(value) } else { i128::from(value) })
    }
}

/// Where the first `"` of a 16-byte word is.
fn first_quote(word: u128) -> Option<usize> {
    let quotes = zero_bytes(word ^ u128::from_le_bytes([b'"'; 16]));
    (quotes != 0).then(|| quotes.trailing_zeros() as usize / 8)
}

/// A word with the top bit set in the lowest byte of `word` that is zero (and maybe in
/// higher ones: only the lowest set bit is exact).
fn zero_bytes(word: u128) -> u128 {
    const ONES: u128 = u128::from_le_bytes([0x01; 16]);
    const HIGHS: u128 = u128::from_le_bytes([0x80; 16]);
    word.wrapping_sub(ONES) & !word & HIGHS
}

/// The line as an event, or `None` to let serde_json decide.
pub fn event(line: &str) -> Option<EventView<'_>> {
    let bytes = line.as_bytes();
    if !plain(bytes) {
        return None;
    }
    let mut c = Cursor { line, bytes, at: 0 };
    c.eat(b'{')?;
    let mut e = EventView::default();
    let (mut seen, mut has_at, mut has_sid) = (0u32, false, false);
    c.skip_spaces();
    if c.peek() == Some(b'}') {
        return None;
    }
    loop {
        c.eat(b'"')?;
        let key = c.key()?;
        c.eat(b':')?;
        c.skip_spaces();
        let value = match c.peek()? {
            b'"' => {
                c.at += 1;
                Value::Text(c.string()?)
            }
            b'n' => {
                (c.bytes.get(c.at..c.at + 4)? == b"null").then_some(())?;
                c.at += 4;
                Value::Null
            }
            b'-' | b'0'..=b'9' => Value::Number(c.integer()?),
            _ => return None,
        };
        let index = match key {
            AT => {
                // Required and not an Option: null is a type error.
                e.at = match value {
                    Value::Number(n) => i64::try_from(n).ok()?,
                    _ => return None,
                };
                has_at = true;
                0
            }
            TOKEN => {
                // serde's `default` on a String still refuses null.
                e.token = value.text()?;
                1
            }
            SID => {
                e.sid = value.text()?;
                has_sid = true;
                2
            }
            IP => {
                e.ip = value.optional_text()?;
                3
            }
            COUNTRY => {
                e.country = value.optional_text()?;
                4
            }
            ASN => {
                e.asn = value.optional_number()?;
                5
            }
            AS_ORGANIZATION => {
                e.as_organization = value.optional_text()?;
                6
            }
            REFERER => {
                e.referer = value.optional_text()?;
                7
            }
            USER_AGENT => {
                e.user_agent = value.optional_text()?;
                8
            }
            STREAM => {
                e.stream = value.optional_text()?;
                9
            }
            BYTES => {
                e.bytes = value.optional_number()?;
                10
            }
            SUB => {
                e.sub = value.optional_text()?;
                11
            }
            MAX_SESSIONS => {
                e.max_sessions = value.optional_number()?;
                12
            }
            _ => 31, // unknown fields are ignored, as serde does
        };
        if index != 31 {
            if seen & (1 << index) != 0 {
                return None; // duplicate field: serde's error
            }
            seen |= 1 << index;
        }
        c.skip_spaces();
        match c.peek()? {
            b',' => c.at += 1,
            b'}' => {
                c.at += 1;
                break;
            }
            _ => return None,
        }
    }
    c.skip_spaces();
    (c.at == bytes.len() && has_at && has_sid).then_some(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::parse::json_line;

    /// The fast path agrees with serde_json wherever it answers.
    #[test]
    fn agrees_with_serde() {
        let lines = [
            r#"{"at":1,"token":"t","sid":"s","ip":"1.2.3.4","asn":3320,"bytes":5,"max_sessions":2,"x":null}"#,
            r#" { "at" : -5 , "sid" : "s" , "country" : null } "#,
            r#"{"at":1,"sid":"s","referer":"a\"b"}"#,
            r#"{"at":1.5,"sid":"s"}"#,
            r#"{"at":"1","sid":"s"}"#,
            r#"{"at":1,"sid":"s","at":2}"#,
            r#"{"at":1,"sid":"s","asn":-1}"#,
            r#"{"at":1,"sid":"s","asn":4294967296}"#,
            r#"{"at":1,"sid":"s","token":null}"#,
            r#"{"at":01,"sid":"s"}"#,
            r#"{"at":-0,"sid":"s"}"#,
            r#"{"at":-9223372036854775808,"sid":"s"}"#,
            r#"{"at":-9223372036854775809,"sid":"s"}"#,
            r#"{"at":1,"sid":"s","bytes":18446744073709551615}"#,
            r#"{"at":1,"sid":"s","bytes":18446744073709551616}"#,
            r#"{"at":1}"#,
            r#"{"at":1,"sid":"s"} x"#,
            r#"{"at":1,"sid":"s","extra":{"a":1}}"#,
            r#"{"at":1,"sid":"s","a_key_longer_than_sixteen_bytes":1}"#,
            r#"{"at":1,"sid":"s","as_organizatio":"x","as_organization":"y"}"#,
            "{\"at\":1,\"sid\":\"a\tb\"}",
            "{\"at\":1,\t\"sid\":\"s\"}",
            r#"{"at":1,"sid":"s",}"#,
            r#"{"at":1,"sid":"é","ip":"∞"}"#,
            r#"{"at":1 ,"sid":"s","ip":nul}"#,
            r#"{}"#,
            r#"{"at":1,"sid":"s""#,
            r#"{"at":1,"sid":"s"#,
            r#"{"at":1,"sid":"s","as_organizationX":"x","user_agent":"u","referer":"r"}"#,
            r#"{"as_organization":"o","at":1,"sid":"s","ip":"i"}"#,
        ];
        for line in lines {
            let slow = json_line(line.as_bytes());
            match event(line) {
                Some(fast) => assert_eq!(Some(fast), slow.as_ref().map(|e| e.view()), "{line}"),
                None => println!("fallback: {line} -> serde {}", slow.is_some()),
            }
        }
        for accepted in [0, 1, 11, 19, 23, 28, 29] {
            assert!(event(lines[accepted]).is_some(), "{}", lines[accepted]);
        }
        for declined in [10, 12, 14, 20, 21] {
            assert!(event(lines[declined]).is_none(), "{}", lines[declined]);
        }
    }

    /// Every prefix and every one-byte change of a real line: the fast path never accepts
    /// what serde_json refuses, nor reads it differently.
    #[test]
    fn agrees_with_serde_on_mutations() {
        let line = r#"{"at":1767244408,"token":"viewer-0","sid":"sc1dfda7a-1","ip":"172.224.13.40","country":"GB","asn":36183,"as_organization":"Akamai Technologies, Inc.","referer":"https://www.example.com/watch/3","user_agent":"Mozilla/5.0","stream":"/live/sport/index.m3u8","bytes":11874860,"sub":"user-0","max_sessions":3}"#;
        let check = |text: &[u8]| {
            let Ok(text) = std::str::from_utf8(text) else { return };
            if let Some(fast) = event(text) {
                assert_eq!(Some(fast), json_line(text.as_bytes()).as_ref().map(|e| e.view()), "{text}");
            }
        };
        let bytes = line.as_bytes();
        for end in 0..=bytes.len() {
            check(&bytes[..end]);
        }
        for at in 0..bytes.len() {
            for replacement in [b'"', b'\\', b'{', b'}', b',', b':', b' ', b'0', b'-', b'n', b'x', b'.', b'\t'] {
                let mut changed = bytes.to_vec();
                changed[at] = replacement;
                check(&changed);
            }
        }
    }
}
