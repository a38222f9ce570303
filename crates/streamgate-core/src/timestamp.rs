//! Unix-second time values: the one place that decides what a sane timestamp is.

use crate::denial::Error;

/// 9999-12-31T23:59:59Z: anything later is not a date a token can mean.
pub const MAX_UNIX_SECONDS: i64 = 253_402_300_799;

/// Checks a timestamp given for signing: integer seconds, not negative, not milliseconds.
pub fn check_seconds(field: &'static str, value: i64) -> Result<i64, Error> {
    if value < 0 {
        return Err(Error::input(field, format!("{value} is negative; expected unix seconds")));
    }
    if value > MAX_UNIX_SECONDS {
        let why = if value / 1000 <= MAX_UNIX_SECONDS {
            format!("{value} looks like milliseconds; expected unix seconds ({})", value / 1000)
        } else {
            format!("{value} is past the year 9999; expected unix seconds")
        };
        return Err(Error::input(field, why));
    }
    Ok(value)
}

/// Parses a decimal integer seconds value found in a credential, with a precise reason.
pub fn parse_seconds(field: &'static str, text: &str) -> Result<i64, Error> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        let why = if text.contains('.') || text.contains('e') || text.contains('E') {
            format!("{text:?} is not whole seconds (fractions and exponents are not allowed)")
        } else {
            format!("{text:?} is not a whole number of seconds")
        };
        return Err(Error::input(field, why));
    }
    let value: i64 = text.parse().map_err(|_| Error::input(field, format!("{text:?} is out of range")))?;
    check_seconds(field, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_seconds_and_names_milliseconds() {
        assert_eq!(check_seconds("exp", 1_700_000_000), Ok(1_700_000_000));
        let ms = check_seconds("exp", 1_700_000_000_000).unwrap_err();
        assert!(ms.to_string().contains("milliseconds"), "{ms}");
        let neg = check_seconds("exp", -5).unwrap_err();
        assert!(neg.to_string().contains("negative"), "{neg}");
        let absurd = check_seconds("exp", i64::MAX).unwrap_err();
        assert!(absurd.to_string().contains("9999"), "{absurd}");
    }

    #[test]
    fn parse_rejects_fractions_with_reason() {
        assert_eq!(parse_seconds("exp", "1700000000"), Ok(1_700_000_000));
        let frac = parse_seconds("exp", "1700000000.5").unwrap_err();
        assert!(frac.to_string().contains("fractions"), "{frac}");
        assert!(parse_seconds("exp", "").is_err());
        assert!(parse_seconds("exp", "-1").is_err());
        assert!(parse_seconds("exp", "99999999999999999999999").is_err());
    }
}
