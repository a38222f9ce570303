//! Byte-level helpers shared by the schemes: base64 flavours, hex, HMAC and constant-time
//! equality.

use std::borrow::Cow;

use base64::{DecodeSliceError, Engine};
use engines::{STANDARD, URL_SAFE_NO_PAD};
use subtle::ConstantTimeEq;

/// The base64 engines: on x86_64 and aarch64 the SIMD ones, which pick AVX2 or NEON when
/// the CPU has them, once, and decode exactly as the scalar engines do (same alphabet,
/// padding rules and canonical trailing bits; `tests::simd_and_scalar_engines_agree`).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod engines {
    use std::sync::LazyLock;

    use base64::engine::{general_purpose, Simd};

    /// Base64url without padding.
    pub(super) static URL_SAFE_NO_PAD: LazyLock<Simd> = LazyLock::new(|| Simd::url_safe(general_purpose::NO_PAD));
    /// Standard base64 with padding.
    pub(super) static STANDARD: LazyLock<Simd> = LazyLock::new(|| Simd::standard(general_purpose::PAD));
}

/// The base64 engines: the scalar ones (wasm, and CPUs without SIMD engines).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod engines {
    pub(super) use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
}

/// Constant-time equality of two byte strings (length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// HMAC of `message` under `key` with the hash `M` names (`Hmac<Sha256>`, ...).
pub fn hmac_tag<M: hmac::Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so construction cannot fail; an empty tag never
    // matches a real one.
    match <M as hmac::digest::KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// Standard base64 with padding (WMSAuth).
pub fn b64_std(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard base64 with padding.
pub fn b64_std_decode(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}

/// Base64url without padding (JWT, nginx secure_link).
pub fn b64_url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding; padding or other alphabets are rejected.
pub fn b64_url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// Decodes base64url without padding, as [`b64_url_decode`] does, into `buf` when the
/// decoded bytes fit there, else into a new vector: short parts (a JWS header, a
/// signature) cost no allocation.
pub(crate) fn b64_url_decode_small<'b>(text: &str, buf: &'b mut [u8]) -> Option<Cow<'b, [u8]>> {
    match URL_SAFE_NO_PAD.decode_slice(text, buf) {
        Ok(len) => buf.get(..len).map(Cow::Borrowed),
        Err(DecodeSliceError::OutputSliceTooSmall) => b64_url_decode(text).map(Cow::Owned),
        Err(DecodeSliceError::DecodeError(_)) => None,
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digit = |n: u8| char::from(DIGITS.get(usize::from(n & 0x0f)).copied().unwrap_or(b'0'));
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(digit(b >> 4));
        out.push(digit(*b));
    }
    out
}

/// Decodes hex of either case; `None` on odd length or a non-hex digit.
pub fn hex_decode(text: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if bytes.len() % 2 != 0 {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Some((nibble(*hi)? << 4) | nibble(*lo)?),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose;
    use proptest::prelude::*;

    /// Text that is mostly base64 of both alphabets, with padding and a few other bytes,
    /// long enough for the SIMD engines' blocks.
    fn base64ish() -> impl Strategy<Value = String> {
        proptest::string::string_regex(
            "[A-Za-z0-9+/_=-]{0,300}|[A-Za-z0-9_-]{0,120}[ .=%\\x00\\n\u{e9}][A-Za-z0-9_-]{0,120}",
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    proptest! {
        /// The engines in use accept, refuse and decode exactly as the scalar engines do.
        #[test]
        fn simd_and_scalar_engines_agree(text in base64ish(), bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(URL_SAFE_NO_PAD.decode(&text), general_purpose::URL_SAFE_NO_PAD.decode(&text));
            prop_assert_eq!(STANDARD.decode(&text), general_purpose::STANDARD.decode(&text));
            prop_assert_eq!(URL_SAFE_NO_PAD.encode(&bytes), general_purpose::URL_SAFE_NO_PAD.encode(&bytes));
            prop_assert_eq!(STANDARD.encode(&bytes), general_purpose::STANDARD.encode(&bytes));
            // Every last symbol of a valid encoding: only the canonical one decodes.
            let encoded = general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
            for last in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".chars() {
                let mut tampered = encoded.clone();
                if tampered.pop().is_some() {
                    tampered.push(last);
                    prop_assert_eq!(b64_url_decode(&tampered), general_purpose::URL_SAFE_NO_PAD.decode(&tampered).ok());
                }
            }
        }
    }

    #[test]
    fn base64url_refuses_non_canonical_trailing_bits_and_padding() {
        assert_eq!(b64_url_decode("AA"), Some(vec![0]));
        assert_eq!(b64_url_decode("AB"), None, "trailing bits must be zero");
        assert_eq!(b64_url_decode("AA=="), None, "no padding in base64url");
        assert_eq!(b64_url_decode("+/8"), None, "standard alphabet in base64url");
        let long = "A".repeat(254) + "B";
        assert_eq!(b64_url_decode(&long), None, "after a SIMD-sized run too");
        assert_eq!(b64_std_decode("AA=="), Some(vec![0]));
        assert_eq!(b64_std_decode("AA"), None, "standard base64 is padded");
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
        let every_byte: Vec<u8> = (0..=255).collect();
        let by_format: String = every_byte.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex(&every_byte), by_format);
        assert_eq!(hex_decode("00ABff"), Some(vec![0x00, 0xab, 0xff]));
        assert_eq!(hex_decode("abc"), None);
        assert_eq!(hex_decode("zz"), None);
    }

    #[test]
    fn ct_eq_compares_content_and_length() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
    }

    #[test]
    fn url_base64_rejects_padding() {
        assert_eq!(b64_url_decode("YQ"), Some(b"a".to_vec()));
        assert_eq!(b64_url_decode("YQ=="), None);
    }

    #[test]
    fn small_decoding_agrees_with_decoding_whatever_the_buffer() {
        let long = b64_url(&[7u8; 100]);
        for text in ["YQ", "YQ==", "YR", "Y", "", "a+b", "_-_-", long.as_str()] {
            for size in [0, 1, 4, 64, 256] {
                let mut buf = vec![0u8; size];
                let small = b64_url_decode_small(text, &mut buf).map(Cow::into_owned);
                assert_eq!(small, b64_url_decode(text), "{text:?} into {size} bytes");
            }
        }
    }
}
