//! What the `quant_state` fuzz target (`fuzz/fuzz_targets/quant_state.rs`) checks on each
//! input; `tests/fuzz_regressions.rs` replays the committed corpus through the same code.

use qlora_core::{quant::parse_safetensors, quant::quantized_weight_names, QuantState};

/// safetensors bytes -> every bitsandbytes NF4 weight in them -> `QuantState`; a state that
/// loads dequantizes, and the fast kernel equals the reference bit for bit. Returns how many
/// weights loaded.
pub fn quant_state(data: &[u8]) -> usize {
    let Ok(st) = parse_safetensors(data, "fuzz.safetensors") else {
        return 0;
    };
    let mut loaded = 0;
    for name in quantized_weight_names(&st) {
        assert!(QuantState::is_quantized(&st, &name));
        let Ok(q) = QuantState::from_safetensors(&st, &name) else {
            continue;
        };
        loaded += 1;
        let fast = q.dequantize_f32();
        let reference = q
            .dequantize_reference()
            .expect("a state that loaded dequantizes");
        assert_eq!(fast.len(), q.numel());
        assert_eq!(reference.len(), q.numel());
        // Bit for bit, except that a NaN (from a NaN or infinite absmax in the file) may
        // carry another payload or sign.
        for (i, (f, r)) in fast.iter().zip(&reference).enumerate() {
            assert!(
                f.to_bits() == r.to_bits() || (f.is_nan() && r.is_nan()),
                "{name}[{i}]: fast {f:e} ({:#010x}) != reference {r:e} ({:#010x})",
                f.to_bits(),
                r.to_bits()
            );
        }
        assert_eq!(q.dequantize_bytes().len(), q.numel() * q.dtype().size());
        assert!(q.quant_state_json().starts_with("{\"quant_type\": \"nf4\""));
    }
    loaded
}
