//! Helpers shared by the integration tests of the example binaries.
#![allow(dead_code)] // each test crate uses its own subset

use std::path::{Path, PathBuf};

use safetensors::SafeTensors;

/// The repository's committed fixtures, `tools/fixtures`.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/fixtures")
}

/// (shape, raw little-endian bytes) of tensor `key` in a safetensors file.
pub fn tensor(path: &Path, key: &str) -> (Vec<usize>, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let view = file.tensor(key).unwrap();
    (view.shape().to_vec(), view.data().to_vec())
}

/// Little-endian i64 values.
pub fn i64s(b: &[u8]) -> Vec<i64> {
    b.chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Little-endian f32 values.
pub fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}
