//! What the `quant_state` fuzz target (`fuzz/fuzz_targets/quant_state.rs`) checks on each
//! input; `tests/fuzz_regressions.rs` replays the committed corpus through the same code.

use qlora_core::{parse_safetensors, quantized_weight_names, QuantState};

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
        assert_eq!(
            fast.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            reference.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!(q.dequantize_bytes().len(), q.numel() * q.dtype().size());
        assert!(q.quant_state_json().starts_with("{\"quant_type\": \"nf4\""));
    }
    loaded
}
