//! Configuration from JSON: `GateConfig::from_json` + `build` and `request_context` on any
//! text (input: `config JSON\nrequest context JSON`); a gate that builds decides on the
//! context without a credential, and every refusal maps to a reason code.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamgate_core::config::{jwt_keys, request_context, GateConfig};
use streamgate_fuzz::{assert_denial_is_mapped, fields};

fuzz_target!(|data: &[u8]| {
    let [config, context] = <[String; 2]>::try_from(fields(data, 2)).unwrap_or_default();
    let ctx = request_context(&context);
    let _ = request_context(&config);
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(&config) {
        let _ = jwt_keys(&value);
    }
    let Ok(parsed) = GateConfig::from_json(&config) else { return };
    let Ok(gate) = parsed.build() else { return };
    assert!(!gate.accepted().is_empty(), "a built gate accepts some scheme");
    let Ok(ctx) = ctx else { return };
    let _ = gate.public(&ctx);
    match gate.verify(None, &ctx) {
        Ok(_) => panic!("a request without a credential verified"),
        Err(denial) => assert_denial_is_mapped(&denial),
    }
});
