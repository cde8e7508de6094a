//! Bit-exactness against bitsandbytes 0.50.2 (CPU) on fixtures written by
//! `tools/fixtures/bnb/generate.py`.

use std::path::PathBuf;

use qlora_core::{
    quant::double_quant::torch_mean_f32, quant::double_quant::DYNAMIC_MAP_SIGNED_BITS,
    quant::FloatDtype, Blocksize, QuantConfig, QuantState,
};
use safetensors::SafeTensors;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tools/fixtures/bnb")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Byte equality where two NaNs of the given element size count as equal.
fn same_bits(a: &[u8], b: &[u8], dtype: FloatDtype) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let is_nan = |c: &[u8]| match dtype {
        FloatDtype::F32 => f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_nan(),
        FloatDtype::F16 => half::f16::from_le_bytes([c[0], c[1]]).is_nan(),
        FloatDtype::BF16 => half::bf16::from_le_bytes([c[0], c[1]]).is_nan(),
    };
    a.chunks(dtype.size())
        .zip(b.chunks(dtype.size()))
        .all(|(x, y)| x == y || (is_nan(x) && is_nan(y)))
}

fn check_file(file: &str, expected_dtype: FloatDtype) {
    let bytes = fixture(file);
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut cases: Vec<String> = st
        .names()
        .into_iter()
        .filter_map(|k| k.strip_suffix(".input").map(str::to_string))
        .collect();
    cases.sort();
    assert!(cases.len() >= 30, "{file}: only {} cases", cases.len());
    for case in &cases {
        let w = format!("{case}.w");
        let input = st.tensor(&format!("{case}.input")).unwrap();
        let dtype = FloatDtype::from_safetensors(input.dtype(), case).unwrap();
        assert_eq!(dtype, expected_dtype);
        let loaded = QuantState::from_safetensors(&st, &w)
            .unwrap_or_else(|e| panic!("{file}/{case}: load failed: {e}"));
        let config = QuantConfig {
            blocksize: loaded.blocksize(),
            double_quant: loaded.is_double_quant(),
        };
        let ours =
            QuantState::quantize_bytes(input.data(), dtype, input.shape(), config, case).unwrap();
        let reference = match dtype {
            FloatDtype::F32 => {
                let v: Vec<f32> = input
                    .data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                QuantState::quantize_reference(&v, input.shape(), config).unwrap()
            }
            FloatDtype::F16 => {
                let v: Vec<half::f16> = input
                    .data()
                    .chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes([b[0], b[1]]))
                    .collect();
                QuantState::quantize_reference(&v, input.shape(), config).unwrap()
            }
            FloatDtype::BF16 => {
                let v: Vec<half::bf16> = input
                    .data()
                    .chunks_exact(2)
                    .map(|b| half::bf16::from_le_bytes([b[0], b[1]]))
                    .collect();
                QuantState::quantize_reference(&v, input.shape(), config).unwrap()
            }
        };
        // Every tensor of the bitsandbytes layout, byte for byte (packed codes, absmax,
        // quant maps, nested absmax, and the quant_state JSON).
        let tensors = ours.to_tensors(&w);
        let expected_keys: usize = st
            .names()
            .iter()
            .filter(|k| k.starts_with(&format!("{w}.")))
            .count()
            + 1;
        assert_eq!(tensors.len(), expected_keys, "{file}/{case}: tensor count");
        for (state, label) in [
            (&ours, "fast"),
            (&reference, "reference"),
            (&loaded, "loaded"),
        ] {
            for (key, t) in state.to_tensors(&w) {
                let e = st
                    .tensor(&key)
                    .unwrap_or_else(|_| panic!("{file}: missing {key}"));
                assert_eq!(t.dtype, e.dtype(), "{file}/{key} ({label}): dtype");
                assert_eq!(t.shape, e.shape(), "{file}/{key} ({label}): shape");
                assert!(
                    same_bits(&t.data, e.data(), FloatDtype::F32) || t.data == e.data(),
                    "{file}/{key} ({label}): bytes differ"
                );
            }
        }
        let absmax: Vec<u8> = ours
            .absmax_f32()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let want = st.tensor(&format!("{case}.absmax_f32")).unwrap();
        assert!(
            same_bits(&absmax, want.data(), FloatDtype::F32),
            "{file}/{case}: absmax_f32"
        );

        let deq = st.tensor(&format!("{case}.dequant")).unwrap();
        for (state, label) in [(&ours, "fast"), (&loaded, "loaded")] {
            assert!(
                same_bits(&state.dequantize_bytes(), deq.data(), dtype),
                "{file}/{case} ({label}): dequantized values differ"
            );
        }
        let deq32_key = if dtype == FloatDtype::F32 {
            format!("{case}.dequant")
        } else {
            format!("{case}.dequant_f32")
        };
        let deq32 = st.tensor(&deq32_key).unwrap();
        let ours32: Vec<u8> = ours
            .dequantize_f32()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let ref32: Vec<u8> = ours
            .dequantize_reference()
            .unwrap()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert!(
            same_bits(&ours32, deq32.data(), FloatDtype::F32),
            "{file}/{case}: f32 dequant"
        );
        assert!(
            same_bits(&ref32, deq32.data(), FloatDtype::F32),
            "{file}/{case}: reference dequant"
        );
    }
}

#[test]
fn f32_inputs_match_bitsandbytes() {
    check_file("nf4_f32.safetensors", FloatDtype::F32);
}

#[test]
fn f16_inputs_match_bitsandbytes() {
    check_file("nf4_f16.safetensors", FloatDtype::F16);
}

#[test]
fn bf16_inputs_match_bitsandbytes() {
    check_file("nf4_bf16.safetensors", FloatDtype::BF16);
}

#[test]
fn fixtures_cover_every_blocksize_and_double_quant() {
    let bytes = fixture("nf4_bf16.safetensors");
    let st = SafeTensors::deserialize(&bytes).unwrap();
    for bs in [32, 64, 128, 256, 512, 1024, 2048, 4096] {
        for suffix in ["", "_dq"] {
            let q = QuantState::from_safetensors(&st, &format!("rand_bs{bs}{suffix}.w")).unwrap();
            assert_eq!(q.blocksize(), Blocksize::new(bs).unwrap());
            assert_eq!(q.is_double_quant(), suffix == "_dq");
        }
    }
}

#[test]
fn torch_mean_matches_torch() {
    let bytes = fixture("mean.safetensors");
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut checked = 0;
    for name in st.names() {
        let Some(n) = name.strip_prefix('v') else {
            continue;
        };
        let v: Vec<f32> = st
            .tensor(name)
            .unwrap()
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let m = st.tensor(&format!("m{n}")).unwrap();
        let want = f32::from_le_bytes(m.data()[..4].try_into().unwrap());
        assert_eq!(
            torch_mean_f32(&v).to_bits(),
            want.to_bits(),
            "mean of {n} values"
        );
        checked += 1;
    }
    assert!(checked >= 30);
}

#[test]
fn dynamic_map_is_bitsandbytes() {
    let text = String::from_utf8(fixture("dynamic_map.txt")).unwrap();
    let bits: Vec<u32> = text
        .split_whitespace()
        .map(|s| u32::from_str_radix(s.trim_start_matches("0x"), 16).unwrap())
        .collect();
    assert_eq!(bits, DYNAMIC_MAP_SIGNED_BITS.to_vec());
}
