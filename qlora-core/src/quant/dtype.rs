//! Floating-point element types that NF4 quantization accepts and produces.

use half::{bf16, f16};

use crate::error::{Error, Result};

/// The dtype of a dense tensor before quantization (and after dequantization).
///
/// Names follow torch (`float32`, `float16`, `bfloat16`), as bitsandbytes writes them in its
/// `quant_state` JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FloatDtype {
    /// IEEE binary32.
    F32,
    /// IEEE binary16.
    F16,
    /// bfloat16.
    BF16,
}

impl FloatDtype {
    /// The torch name, as in bitsandbytes' `quant_state` JSON.
    ///
    /// ```
    /// use qlora_core::quant::FloatDtype;
    /// assert_eq!(FloatDtype::BF16.torch_name(), "bfloat16");
    /// ```
    pub fn torch_name(self) -> &'static str {
        match self {
            FloatDtype::F32 => "float32",
            FloatDtype::F16 => "float16",
            FloatDtype::BF16 => "bfloat16",
        }
    }

    /// Parses a torch dtype name (`float32`, `float16`, `bfloat16`); `tensor` names the tensor
    /// in the error.
    ///
    /// ```
    /// use qlora_core::quant::FloatDtype;
    /// assert_eq!(FloatDtype::from_torch_name("float16", "w").unwrap(), FloatDtype::F16);
    /// assert!(FloatDtype::from_torch_name("int8", "w").is_err());
    /// ```
    pub fn from_torch_name(name: &str, tensor: &str) -> Result<Self> {
        match name {
            "float32" => Ok(FloatDtype::F32),
            "float16" => Ok(FloatDtype::F16),
            "bfloat16" => Ok(FloatDtype::BF16),
            other => Err(Error::UnsupportedDtype {
                tensor: tensor.to_string(),
                got: other.to_string(),
                expected: "float32, float16 or bfloat16".to_string(),
            }),
        }
    }

    /// The matching safetensors dtype.
    pub fn safetensors(self) -> safetensors::Dtype {
        match self {
            FloatDtype::F32 => safetensors::Dtype::F32,
            FloatDtype::F16 => safetensors::Dtype::F16,
            FloatDtype::BF16 => safetensors::Dtype::BF16,
        }
    }

    /// The dtype of a safetensors tensor, if it is one of ours; `tensor` names it in the error.
    pub fn from_safetensors(dtype: safetensors::Dtype, tensor: &str) -> Result<Self> {
        match dtype {
            safetensors::Dtype::F32 => Ok(FloatDtype::F32),
            safetensors::Dtype::F16 => Ok(FloatDtype::F16),
            safetensors::Dtype::BF16 => Ok(FloatDtype::BF16),
            other => Err(Error::UnsupportedDtype {
                tensor: tensor.to_string(),
                got: format!("{other:?}"),
                expected: "F32, F16 or BF16".to_string(),
            }),
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            FloatDtype::F32 => 4,
            FloatDtype::F16 | FloatDtype::BF16 => 2,
        }
    }
}

/// An element type NF4 quantization reads and dequantization writes: `f32`, [`f16`], [`bf16`].
///
/// Conversions are exact widening to `f32` and round-to-nearest-even narrowing, as torch's
/// `.float()` and `.to(dtype)` do. The fast kernels read and write elements as the raw bytes
/// of [`QuantFloat::DTYPE`] (hence [`bytemuck::Pod`]), so an implementation must be that
/// dtype's IEEE bit layout.
pub trait QuantFloat: bytemuck::Pod + Send + Sync + 'static {
    /// The dtype tag of this type.
    const DTYPE: FloatDtype;
    /// Exact widening to `f32`.
    fn to_f32(self) -> f32;
    /// Round-to-nearest-even narrowing from `f32`.
    fn from_f32(value: f32) -> Self;
    /// Reads one little-endian element from the first `size_of::<Self>()` bytes
    /// (callers pass `chunks_exact` pieces).
    fn from_le_slice(bytes: &[u8]) -> Self;
    /// Widens a slice into `dst` (same length); SIMD where the type has it.
    fn to_f32_slice(src: &[Self], dst: &mut [f32]) {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = s.to_f32();
        }
    }
}

impl QuantFloat for f32 {
    const DTYPE: FloatDtype = FloatDtype::F32;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    fn from_f32(value: f32) -> Self {
        value
    }
    #[inline(always)]
    fn from_le_slice(bytes: &[u8]) -> Self {
        f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
    }
}

impl QuantFloat for f16 {
    const DTYPE: FloatDtype = FloatDtype::F16;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    #[inline(always)]
    fn from_f32(value: f32) -> Self {
        f16::from_f32(value)
    }
    #[inline(always)]
    fn from_le_slice(bytes: &[u8]) -> Self {
        f16::from_bits(u16::from_le_bytes([bytes[0], bytes[1]]))
    }
    fn to_f32_slice(src: &[Self], dst: &mut [f32]) {
        use half::slice::HalfFloatSliceExt;
        src.convert_to_f32_slice(dst);
    }
}

impl QuantFloat for bf16 {
    const DTYPE: FloatDtype = FloatDtype::BF16;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f32::from_bits((self.to_bits() as u32) << 16)
    }
    #[inline(always)]
    fn from_f32(value: f32) -> Self {
        bf16::from_f32(value)
    }
    #[inline(always)]
    fn from_le_slice(bytes: &[u8]) -> Self {
        bf16::from_bits(u16::from_le_bytes([bytes[0], bytes[1]]))
    }
}
