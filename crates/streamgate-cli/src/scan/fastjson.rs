//! A fast path for the common shape of a `UsageEvent` line: one flat JSON object whose
//! values are unescaped strings, integers or `null`. It accepts only what serde_json would
//! accept with the same meaning, and answers `None` for anything else (escapes, floats,
//! nesting, duplicate or mistyped fields, control characters), which then goes to
//! serde_json. Why: serde_json parsed ~400 MB/s per core here, and was the whole cost of a
//! scan; this runs several times faster on the gate's own export format.

use streamgate_core::detection::EventView;

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }
    fn eat(&mut self, byte: u8) -> Option<()> {
        self.skip_ws();
        (self.peek()? == byte).then(|| self.at += 1)
    }
    /// A string without escapes or control characters, after its opening quote.
    fn string(&mut self) -> Option<&'a str> {
        let rest = self.bytes.get(self.at..)?;
        let end = memchr::memchr2(b'"', b'\\', rest)?;
        let body = rest.get(..end)?;
        if rest.get(end) != Some(&b'"') || body.iter().fold(false, |seen, &b| seen | (b < 0x20)) {
            return None;
        }
        self.at += end + 1;
        std::str::from_utf8(body).ok()
    }
    /// An integer in JSON's grammar (no leading zeros, no fraction or exponent).
    fn integer(&mut self) -> Option<i128> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let digits = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        let text = self.bytes.get(digits..self.at)?;
        if text.is_empty() || text.len() > 20 || (text.len() > 1 && text.first() == Some(&b'0')) {
            return None;
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        std::str::from_utf8(self.bytes.get(start..self.at)?).ok()?.parse().ok()
    }
}

enum Value<'a> {
    Text(&'a str),
    Number(i128),
    Null,
}

/// The line as an event, or `None` to let serde_json decide.
pub fn event<'a>(line: &'a [u8]) -> Option<EventView<'a>> {
    let mut c = Cursor { bytes: line, at: 0 };
    c.eat(b'{')?;
    let mut e = EventView::default();
    let (mut seen, mut has_at, mut has_sid) = (0u32, false, false);
    c.skip_ws();
    if c.peek() == Some(b'}') {
        return None;
    }
    loop {
        c.eat(b'"')?;
        let key = c.string()?;
        c.eat(b':')?;
        c.skip_ws();
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
        let text = |v: &Value<'a>| match v {
            Value::Text(t) => Some(Some(*t)),
            Value::Null => Some(None),
            Value::Number(_) => None,
        };
        let number = |v: &Value<'a>| match v {
            Value::Number(n) => Some(Some(*n)),
            Value::Null => Some(None),
            Value::Text(_) => None,
        };
        let index = match key {
            "at" => {
                // Required and not an Option: null is a type error.
                e.at = i64::try_from(number(&value)??).ok()?;
                has_at = true;
                0
            }
            "token" => {
                // serde's `default` on a String still refuses null.
                e.token = text(&value)??;
                1
            }
            "sid" => {
                e.sid = text(&value)??;
                has_sid = true;
                2
            }
            "ip" => {
                e.ip = text(&value)?;
                3
            }
            "country" => {
                e.country = text(&value)?;
                4
            }
            "asn" => {
                e.asn = number(&value)?.map(u32::try_from).transpose().ok()?;
                5
            }
            "as_organization" => {
                e.as_organization = text(&value)?;
                6
            }
            "referer" => {
                e.referer = text(&value)?;
                7
            }
            "user_agent" => {
                e.user_agent = text(&value)?;
                8
            }
            "stream" => {
                e.stream = text(&value)?;
                9
            }
            "bytes" => {
                e.bytes = number(&value)?.map(u64::try_from).transpose().ok()?;
                10
            }
            "sub" => {
                e.sub = text(&value)?;
                11
            }
            "max_sessions" => {
                e.max_sessions = number(&value)?.map(u32::try_from).transpose().ok()?;
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
        c.skip_ws();
        match c.peek()? {
            b',' => c.at += 1,
            b'}' => {
                c.at += 1;
                break;
            }
            _ => return None,
        }
    }
    c.skip_ws();
    (c.at == line.len() && has_at && has_sid).then_some(e)
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
            r#"{"at":1}"#,
            r#"{"at":1,"sid":"s"} x"#,
            r#"{"at":1,"sid":"s","extra":{"a":1}}"#,
            "{\"at\":1,\"sid\":\"a\tb\"}",
            r#"{"at":1,"sid":"s",}"#,
            r#"{}"#,
        ];
        for line in lines {
            let slow = json_line(line.as_bytes());
            match event(line.as_bytes()) {
                Some(fast) => assert_eq!(Some(fast), slow.as_ref().map(|e| e.view()), "{line}"),
                None => println!("fallback: {line} -> serde {}", slow.is_some()),
            }
        }
        assert!(event(lines[0].as_bytes()).is_some());
        assert!(event(lines[1].as_bytes()).is_some());
    }
}
