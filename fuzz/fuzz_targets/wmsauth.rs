//! WMSAuth: `decode` and `verify` on any `wmsAuthSign` text (input: `sign\npath\nclient-ip`),
//! bound to the client IP and not. `!sign\nclient-ip\npath\n<decoded text>` reaches past the
//! signature: the decoded text's `hash_value=@` is replaced by the right hash before
//! encoding, so any field values the decoder accepts must verify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamgate_core::encoding::b64_std;
use streamgate_core::schemes::wmsauth;
use streamgate_core::schemes::Scheme;
use streamgate_core::ReasonCode;
use streamgate_fuzz::{assert_denial_is_mapped, facts, fields, md5, wmsauth_scheme, WMS_KEY};

fuzz_target!(|data: &[u8]| {
    if let Some(rest) = data.strip_prefix(b"!sign\n") {
        let [ip, path, text] = <[String; 3]>::try_from(fields(rest, 3)).unwrap_or_default();
        let facts = facts(&path, &ip);
        // The decoder does not look at the hash: decode with a placeholder to learn the fields.
        let Ok(decoded) = wmsauth::decode(&b64_std(text.replace("hash_value=@", "hash_value=AAAA").as_bytes())) else {
            return;
        };
        let relative = facts.path.strip_prefix('/').unwrap_or(&facts.path);
        let stream = match decoded.stream_len {
            None => Some(""),
            Some(len) => facts.path.get(..len).or_else(|| relative.get(..len)),
        };
        let (Some(stream), Some(client)) = (stream, facts.client_ip) else { return };
        let digest =
            md5([client.to_string().as_str(), WMS_KEY, &decoded.server_time, &decoded.valid_minutes_text, stream]
                .concat()
                .as_bytes());
        let sign = b64_std(text.replace("hash_value=@", &format!("hash_value={}", b64_std(&digest))).as_bytes());
        if let Err(denial) = wmsauth_scheme(true).verify(&sign, &facts) {
            assert_denial_is_mapped(&denial);
            assert_ne!(denial.reason(), ReasonCode::BadSignature, "{text:?} on {facts:?}: {denial:?}");
        }
        return;
    }
    let [sign, path, ip] = <[String; 3]>::try_from(fields(data, 3)).unwrap_or_default();
    let _ = wmsauth::parse_server_time(&sign);
    if let Ok(decoded) = wmsauth::decode(&sign) {
        // What decodes is what the inspector shows: the time it parsed is the text's.
        assert_eq!(wmsauth::parse_server_time(&decoded.server_time), Ok(decoded.server_time_unix));
    }
    let facts = facts(&path, &ip);
    for ip_bound in [true, false] {
        if let Err(denial) = wmsauth_scheme(ip_bound).verify(&sign, &facts) {
            assert_denial_is_mapped(&denial);
        }
    }
});
