//! What the `llama_config` and `peft_config` fuzz targets (`fuzz/fuzz_targets/`) check on
//! each input; `tests/fuzz_regressions.rs` replays the committed corpus through the same code.

use llama_model::{rope_inv_freq, AdapterConfig, HfLlamaConfig};

/// `config.json` bytes -> `HfLlamaConfig` -> resolved `LlamaConfig` -> RoPE frequencies.
/// Returns whether the config resolved.
pub fn llama_config(data: &[u8]) -> bool {
    let Ok(hf) = serde_json::from_slice::<HfLlamaConfig>(data) else {
        return false;
    };
    let Ok(cfg) = hf.resolve() else {
        return false;
    };
    assert!(cfg.head_dim > 0 && cfg.head_dim % 2 == 0);
    assert!(cfg.num_attention_heads % cfg.num_key_value_heads == 0);
    assert!(cfg.kv_groups() >= 1);
    // Keep the allocation small: the frequencies are head_dim / 2 floats.
    if cfg.head_dim <= 1 << 16 {
        assert_eq!(rope_inv_freq(&cfg).len(), cfg.head_dim / 2);
    }
    let _ = cfg.to_hf("float32");
    true
}

/// PEFT `adapter_config.json` bytes -> `AdapterConfig` -> validation, targets, scaling, and
/// a JSON round trip. Returns whether the config validated.
pub fn peft_config(data: &[u8]) -> bool {
    let Ok(c) = serde_json::from_slice::<AdapterConfig>(data) else {
        return false;
    };
    let valid = c.validate().is_ok();
    let targets = c.targets();
    let _ = c.scaling();
    if valid {
        assert!(targets.is_ok());
        assert!(c.r > 0);
    }
    let text = serde_json::to_string(&c).expect("serializable");
    let back: AdapterConfig = serde_json::from_str(&text).expect("round trip");
    assert_eq!(back.r, c.r);
    assert_eq!(back.target_modules, c.target_modules);
    valid
}
