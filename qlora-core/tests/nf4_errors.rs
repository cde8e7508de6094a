//! Bad input gives typed errors naming the tensor, never a panic.

use qlora_core::{quant::OwnedTensor, Blocksize, Error, QuantConfig, QuantState};
use safetensors::SafeTensors;

fn state(dq: bool) -> QuantState {
    let w: Vec<f32> = (0..4 * 64).map(|i| (i as f32 * 0.1).sin()).collect();
    let cfg = QuantConfig {
        blocksize: Blocksize::default(),
        double_quant: dq,
    };
    QuantState::quantize(&w, &[4, 64], cfg).unwrap()
}

fn file(tensors: Vec<(String, OwnedTensor)>) -> Vec<u8> {
    safetensors::serialize(tensors, None).unwrap()
}

fn edited(dq: bool, key: &str, f: impl Fn(&mut OwnedTensor)) -> Vec<u8> {
    let mut t = state(dq).to_tensors("W");
    for (k, v) in t.iter_mut() {
        if k == key {
            f(v);
        }
    }
    file(t)
}

fn load(bytes: &[u8]) -> Result<QuantState, Error> {
    let st = SafeTensors::deserialize(bytes).unwrap();
    QuantState::from_safetensors(&st, "W")
}

#[test]
fn round_trip_through_safetensors() {
    for dq in [false, true] {
        let s = state(dq);
        assert_eq!(load(&file(s.to_tensors("W"))).unwrap(), s);
    }
}

#[test]
fn wrong_absmax_dtype() {
    let b = edited(false, "W.absmax", |t| {
        t.dtype = safetensors::Dtype::I32;
    });
    let e = load(&b).unwrap_err();
    assert!(
        matches!(&e, Error::UnsupportedDtype { tensor, .. } if tensor == "W.absmax"),
        "{e}"
    );
}

#[test]
fn wrong_weight_dtype() {
    let b = edited(false, "W", |t| {
        t.dtype = safetensors::Dtype::I64;
        t.shape = vec![t.data.len() / 8, 1];
    });
    let e = load(&b).unwrap_err();
    assert!(
        matches!(&e, Error::UnsupportedDtype { tensor, .. } if tensor == "W"),
        "{e}"
    );
}

#[test]
fn packed_length_does_not_match_shape() {
    let b = edited(true, "W", |t| {
        t.data.truncate(100);
        t.shape = vec![100, 1];
    });
    let e = load(&b).unwrap_err();
    assert!(
        matches!(&e, Error::ShapeMismatch { tensor, .. } if tensor == "W"),
        "{e}"
    );
}

#[test]
fn missing_absmax() {
    let mut t = state(false).to_tensors("W");
    t.retain(|(k, _)| k != "W.absmax");
    let e = load(&file(t)).unwrap_err();
    assert!(
        matches!(&e, Error::MissingTensor { tensor } if tensor == "W.absmax"),
        "{e}"
    );
}

#[test]
fn missing_nested_absmax() {
    let mut t = state(true).to_tensors("W");
    t.retain(|(k, _)| k != "W.nested_absmax");
    let e = load(&file(t)).unwrap_err();
    assert!(
        matches!(&e, Error::MissingTensor { tensor } if tensor == "W.nested_absmax"),
        "{e}"
    );
}

fn with_json(json: &str) -> Error {
    let j = json.as_bytes().to_vec();
    let b = edited(false, "W.quant_state.bitsandbytes__nf4", |t| {
        t.data = j.clone();
        t.shape = vec![j.len()];
    });
    load(&b).unwrap_err()
}

#[test]
fn corrupt_quant_state_json() {
    for json in [
        "{not json",
        "[1, 2]",
        r#"{"quant_type": "nf4", "dtype": "float32", "shape": [4, 64]}"#,
        r#"{"quant_type": "fp4", "blocksize": 64, "dtype": "float32", "shape": [4, 64]}"#,
        r#"{"quant_type": "nf4", "blocksize": 48, "dtype": "float32", "shape": [4, 64]}"#,
        r#"{"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [4, "x"]}"#,
        r#"{"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [4, 64], "nested_blocksize": 256}"#,
    ] {
        let e = with_json(json);
        assert!(
            matches!(&e, Error::InvalidQuantState { tensor, .. } if tensor == "W.quant_state.bitsandbytes__nf4"),
            "{json}: {e}"
        );
    }
    let e =
        with_json(r#"{"quant_type": "nf4", "blocksize": 64, "dtype": "int8", "shape": [4, 64]}"#);
    assert!(matches!(e, Error::UnsupportedDtype { .. }), "{e}");
    let e = with_json(
        r#"{"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [4, 65]}"#,
    );
    assert!(matches!(e, Error::ShapeMismatch { .. }), "{e}");
}

#[test]
fn blocksize_not_allowed() {
    for b in [0, 16, 48, 100, 8192] {
        assert!(
            matches!(Blocksize::new(b), Err(Error::InvalidBlocksize { blocksize }) if blocksize == b)
        );
    }
}

#[test]
fn values_do_not_match_shape() {
    let e = QuantState::quantize(&[1.0f32; 10], &[3, 4], QuantConfig::default()).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { .. }), "{e}");
    let e = QuantState::quantize_bytes(
        &[0u8; 7],
        qlora_core::quant::FloatDtype::F16,
        &[2, 2],
        QuantConfig::default(),
        "x",
    )
    .unwrap_err();
    assert!(
        matches!(&e, Error::ShapeMismatch { tensor, .. } if tensor == "x"),
        "{e}"
    );
}

#[test]
fn truncated_file() {
    let bytes = file(state(true).to_tensors("W"));
    for cut in [0, 5, 9, bytes.len() / 2, bytes.len() - 1] {
        let e =
            qlora_core::quant::parse_safetensors(&bytes[..cut], "model.safetensors").unwrap_err();
        assert!(
            matches!(&e, Error::Safetensors { context, .. } if context == "model.safetensors"),
            "{e}"
        );
    }
}
