//! What `ed25519_dalek`'s `verify_strict` refuses besides a failed signature equation,
//! checked before a platform verifier runs: OpenSSL (Node's `node:crypto`) checks the
//! equation and that `S` is canonical, but not whether `R` or the key has small order.
//! With these checks first, both paths give the same verdict on every signature.

use ed25519_dalek::VerifyingKey;

/// The order L of the Ed25519 base point, little-endian.
const ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// The canonical encodings of the eight points of small order (the tests check them).
const SMALL_ORDER: [[u8; 32]; 8] = {
    let mut points = [[0u8; 32]; 8];
    // (0, 1), the identity.
    points[0][0] = 1;
    // (0, -1): y = p - 1.
    points[1] = [0xff; 32];
    points[1][0] = 0xec;
    points[1][31] = 0x7f;
    // (sqrt(-1), 0), either sign of x.
    points[3][31] = 0x80;
    // The four of order 8: two values of y, each with either sign of x.
    points[4] = [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf,
        0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05,
    ];
    points[5] = points[4];
    points[5][31] |= 0x80;
    points[6] = [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20,
        0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a,
    ];
    points[7] = points[6];
    points[7][31] |= 0x80;
    points
};

/// Whether `signature` (`R || S`) under `key` passes what `verify_strict` checks besides
/// the equation: 64 bytes, `S` below the order, neither `R` nor the key of small order.
pub(super) fn strict(key: &VerifyingKey, signature: &[u8]) -> bool {
    match (signature.len(), signature.split_at_checked(32)) {
        (64, Some((r, s))) => !key.is_weak() && !SMALL_ORDER.iter().any(|p| p == r) && below(s, &ORDER),
        _ => false,
    }
}

/// Whether the little-endian number `n` is below `bound`.
fn below(n: &[u8], bound: &[u8; 32]) -> bool {
    match n.iter().rev().zip(bound.iter().rev()).find(|(a, b)| a != b) {
        Some((a, b)) => a < b,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    /// Eight distinct canonical encodings, each of a point of small order: exactly the
    /// eight such points.
    #[test]
    fn the_small_order_list_is_every_small_order_point() {
        for (i, point) in SMALL_ORDER.iter().enumerate() {
            let key = VerifyingKey::from_bytes(point).unwrap();
            assert!(key.is_weak(), "point {i} is not of small order");
            assert!(SMALL_ORDER.iter().filter(|p| *p == point).count() == 1, "point {i} repeats");
            // Canonical: y (the low 255 bits) below p = 2^255 - 19.
            let (mut y, mut p) = (*point, [0xff; 32]);
            y[31] &= 0x7f;
            (p[0], p[31]) = (0xed, 0x7f);
            assert!(below(&y, &p), "point {i} is not canonical");
        }
    }

    #[test]
    fn agrees_with_verify_strict() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let public = key.verifying_key();
        let good = key.sign(b"m").to_bytes();
        assert!(strict(&public, &good));
        assert!(public.verify_strict(b"m", &ed25519_dalek::Signature::from_bytes(&good)).is_ok());
        // S + L: the same equation, refused by both.
        let mut malleated = good;
        let mut carry = 0u16;
        for (s, l) in malleated[32..].iter_mut().zip(ORDER) {
            let sum = u16::from(*s) + u16::from(l) + carry;
            *s = (sum & 0xff) as u8;
            carry = sum >> 8;
        }
        assert!(!strict(&public, &malleated));
        assert!(ed25519_dalek::Signature::from_slice(&malleated)
            .map_or(true, |sig| public.verify_strict(b"m", &sig).is_err()));
        // A small-order R, and a small-order key.
        let mut small_r = good;
        small_r[..32].copy_from_slice(&SMALL_ORDER[4]);
        assert!(!strict(&public, &small_r));
        assert!(!strict(&VerifyingKey::from_bytes(&SMALL_ORDER[0]).unwrap(), &good));
        assert!(!strict(&public, &good[..63]));
    }
}
