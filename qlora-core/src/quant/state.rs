//! [`QuantState`]: the single owner of a 4-bit weight's quantization state, and its
//! (de)serialization in the bitsandbytes / transformers safetensors layout.
//!
//! # API at a glance (for integrators)
//!
//! ```text
//! QuantConfig { blocksize: Blocksize, double_quant: bool }          // default 64, true
//! QuantState::quantize<T: QuantFloat>(&[T], shape: &[usize], QuantConfig) -> Result<QuantState>
//! QuantState::quantize_reference<T>(..)  // element-by-element reference, same bytes
//! QuantState::quantize_bytes(&[u8] (LE), FloatDtype, shape, QuantConfig, name) -> Result<_>
//! QuantState::from_safetensors(&SafeTensors, name) -> Result<QuantState>
//! QuantState::from_views(name, |key| -> Option<TensorView>) -> Result<QuantState>
//! QuantState::is_quantized(&SafeTensors, name) -> bool
//! state.to_tensors(name) -> Vec<(String, OwnedTensor)>   // W, W.absmax, W.quant_map, ...
//! state.dequantize<T>() -> Vec<T>;  dequantize_f32();  dequantize_bytes() (LE, own dtype)
//! state.absmax_f32() -> Vec<f32>;  packed(); shape(); dtype(); blocksize(); numel()
//! quantized_weight_names(&SafeTensors) -> Vec<String>
//!
//! // burn level (crate::quant::linear / crate::quant::tensor):
//! dequantize_tensor::<B>(&QuantState, &device) -> Result<Tensor<B, 2>>
//! Nf4Linear::<B>::from_weight(Tensor<B, 2> [out, in], Option<Tensor<B, 1>>, QuantConfig) -> Result<_>
//! Nf4Linear::<B>::from_quant_state(QuantState, Option<Tensor<B, 1>>) -> Result<_>
//! linear.forward(x: Tensor<B, D>) -> Tensor<B, D>   // D = 2 or 3: y = x · W^T (+ b)
//! linear.dequantize(&device) -> Tensor<B, 2>;  in_features(); out_features(); quant_state()
//! ```
//!
//! The layout, for a weight named `W` (in transformers checkpoints e.g.
//! `model.layers.0.self_attn.q_proj.weight`):
//!
//! | key | dtype | shape |
//! | --- | --- | --- |
//! | `W` | U8 | `[ceil(numel/2), 1]` packed codes |
//! | `W.absmax` | F32 (U8 with double quant) | `[blocks]` |
//! | `W.quant_map` | F32 | `[16]` |
//! | `W.nested_absmax` | F32 | `[ceil(blocks/256)]` (double quant only) |
//! | `W.nested_quant_map` | F32 | `[256]` (double quant only) |
//! | `W.quant_state.bitsandbytes__nf4` | U8 | UTF-8 JSON bytes |
//!
//! The JSON is what bitsandbytes' `QuantState.as_dict(packed=True)` writes with Python's
//! `json.dumps`, byte for byte: `{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16",
//! "shape": [4096, 4096], "nested_blocksize": 256, "nested_dtype": "float32",
//! "nested_offset": 0.0123}`.

use std::borrow::Cow;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors, View};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::quant::cpu::fast::{dequantize_nf4_into, quantize_nf4};
use crate::quant::double_quant::DoubleQuant;
use crate::quant::dtype::{FloatDtype, QuantFloat};
use crate::quant::nf4::{
    check_nf4_lengths, dequantize_nf4_reference, quantize_nf4_reference, Blocksize, Nf4Blocks,
    NF4_CODE,
};

/// Suffix of the packed-JSON tensor for NF4.
pub const QUANT_STATE_SUFFIX: &str = ".quant_state.bitsandbytes__nf4";

/// How to quantize: blocksize and whether to double-quantize absmax (QLoRA's
/// `bnb_4bit_use_double_quant`, on by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantConfig {
    /// NF4 blocksize.
    pub blocksize: Blocksize,
    /// Double quantization of absmax.
    pub double_quant: bool,
}

impl Default for QuantConfig {
    fn default() -> Self {
        QuantConfig {
            blocksize: Blocksize::default(),
            double_quant: true,
        }
    }
}

/// The per-block scales: plain `f32`, or double-quantized.
#[derive(Clone, Debug, PartialEq)]
pub enum Absmax {
    /// One `f32` per block.
    Plain(Vec<f32>),
    /// 8-bit codes plus nested state.
    Double(DoubleQuant),
}

impl Absmax {
    /// Number of blocks.
    pub fn len(&self) -> usize {
        match self {
            Absmax::Plain(a) => a.len(),
            Absmax::Double(d) => d.codes.len(),
        }
    }

    /// Whether there are no blocks.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `f32` absmax bitsandbytes dequantizes with (reconstructed if double-quantized).
    pub fn to_f32(&self) -> Cow<'_, [f32]> {
        match self {
            Absmax::Plain(a) => Cow::Borrowed(a),
            Absmax::Double(d) => Cow::Owned(d.reconstruct()),
        }
    }
}

/// Everything needed to dequantize one NF4 tensor: packed codes, absmax, shape, dtype and
/// blocksize. Fields are private so that a `QuantState` is always consistent.
///
/// ```
/// use qlora_core::{QuantConfig, QuantState};
/// let w: Vec<f32> = (0..6 * 64).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
/// let q = QuantState::quantize(&w, &[6, 64], QuantConfig::default()).unwrap();
/// assert_eq!(q.packed().len(), 6 * 32);
/// let back: Vec<f32> = q.dequantize();
/// assert!(back.iter().zip(&w).all(|(a, b)| (a - b).abs() <= 6.0 * 0.31));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct QuantState {
    packed: Vec<u8>,
    absmax: Absmax,
    shape: Vec<usize>,
    dtype: FloatDtype,
    blocksize: Blocksize,
}

/// An owned tensor for writing safetensors files (implements [`safetensors::View`]).
#[derive(Clone, Debug, PartialEq)]
pub struct OwnedTensor {
    /// Element type.
    pub dtype: Dtype,
    /// Shape.
    pub shape: Vec<usize>,
    /// Little-endian bytes.
    pub data: Vec<u8>,
}

impl View for OwnedTensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

impl View for &OwnedTensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn numel_of(shape: &[usize], tensor: &str) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::ShapeMismatch {
            tensor: tensor.to_string(),
            expected: "a shape whose element count fits in usize".to_string(),
            got: format!("{shape:?}"),
        })
}

impl QuantState {
    fn build(
        blocks: Nf4Blocks,
        shape: &[usize],
        dtype: FloatDtype,
        config: QuantConfig,
    ) -> QuantState {
        let absmax = if config.double_quant {
            Absmax::Double(DoubleQuant::compress(&blocks.absmax))
        } else {
            Absmax::Plain(blocks.absmax)
        };
        QuantState {
            packed: blocks.packed,
            absmax,
            shape: shape.to_vec(),
            dtype,
            blocksize: config.blocksize,
        }
    }

    fn check_len(len: usize, shape: &[usize], tensor: &str) -> Result<()> {
        let numel = numel_of(shape, tensor)?;
        if numel != len {
            return Err(Error::ShapeMismatch {
                tensor: tensor.to_string(),
                expected: format!("{numel} elements for shape {shape:?}"),
                got: format!("{len} elements"),
            });
        }
        Ok(())
    }

    /// Quantizes `values` (row-major, of `shape`) with the fast multi-threaded kernel.
    pub fn quantize<T: QuantFloat>(
        values: &[T],
        shape: &[usize],
        config: QuantConfig,
    ) -> Result<Self> {
        Self::check_len(values.len(), shape, "input")?;
        let blocks = quantize_nf4(values, config.blocksize);
        Ok(Self::build(blocks, shape, T::DTYPE, config))
    }

    /// Quantizes with the element-by-element reference implementation (same result as
    /// [`QuantState::quantize`]; kept for testing and as documentation of the algorithm).
    pub fn quantize_reference<T: QuantFloat>(
        values: &[T],
        shape: &[usize],
        config: QuantConfig,
    ) -> Result<Self> {
        Self::check_len(values.len(), shape, "input")?;
        let blocks = quantize_nf4_reference(values, config.blocksize);
        Ok(Self::build(blocks, shape, T::DTYPE, config))
    }

    /// Quantizes a tensor given as little-endian bytes of `dtype` (as stored in safetensors,
    /// possibly unaligned); `name` names the tensor in errors.
    pub fn quantize_bytes(
        bytes: &[u8],
        dtype: FloatDtype,
        shape: &[usize],
        config: QuantConfig,
        name: &str,
    ) -> Result<Self> {
        let numel = numel_of(shape, name)?;
        if numel.checked_mul(dtype.size()) != Some(bytes.len()) {
            return Err(Error::ShapeMismatch {
                tensor: name.to_string(),
                expected: format!("{} bytes for {dtype:?} {shape:?}", numel * dtype.size()),
                got: format!("{} bytes", bytes.len()),
            });
        }
        fn go<T: QuantFloat>(bytes: &[u8], shape: &[usize], c: QuantConfig) -> Result<QuantState> {
            let v: Vec<T> = bytes
                .chunks_exact(std::mem::size_of::<T>())
                .map(T::from_le_slice)
                .collect();
            QuantState::quantize(&v, shape, c)
        }
        match dtype {
            FloatDtype::F32 => go::<f32>(bytes, shape, config),
            FloatDtype::F16 => go::<half::f16>(bytes, shape, config),
            FloatDtype::BF16 => go::<half::bf16>(bytes, shape, config),
        }
    }

    /// Assembles a state from parts, checking that they fit together; `name` names the
    /// tensor in errors.
    pub fn from_parts(
        name: &str,
        packed: Vec<u8>,
        absmax: Absmax,
        shape: Vec<usize>,
        dtype: FloatDtype,
        blocksize: Blocksize,
    ) -> Result<Self> {
        let numel = numel_of(&shape, name)?;
        check_nf4_lengths(name, packed.len(), absmax.len(), numel, blocksize)?;
        if let Absmax::Double(d) = &absmax {
            d.check(name)?;
        }
        Ok(QuantState {
            packed,
            absmax,
            shape,
            dtype,
            blocksize,
        })
    }

    /// Packed codes, `ceil(numel / 2)` bytes, first element in the high nibble.
    pub fn packed(&self) -> &[u8] {
        &self.packed
    }
    /// The per-block scales.
    pub fn absmax(&self) -> &Absmax {
        &self.absmax
    }
    /// The `f32` absmax used for dequantization (reconstructed with double quant).
    pub fn absmax_f32(&self) -> Vec<f32> {
        self.absmax.to_f32().into_owned()
    }
    /// Original shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// Original dtype (the dtype dequantization returns).
    pub fn dtype(&self) -> FloatDtype {
        self.dtype
    }
    /// Blocksize.
    pub fn blocksize(&self) -> Blocksize {
        self.blocksize
    }
    /// Whether absmax is double-quantized.
    pub fn is_double_quant(&self) -> bool {
        matches!(self.absmax, Absmax::Double(_))
    }
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Dequantizes to `T` with the fast kernel: `T::from_f32(NF4_CODE[code] * absmax)`.
    pub fn dequantize<T: QuantFloat>(&self) -> Vec<T> {
        let absmax = self.absmax.to_f32();
        let mut out = vec![T::from_f32(0.0); self.numel()];
        // Lengths were checked when the state was built.
        if let Err(e) = dequantize_nf4_into(&self.packed, &absmax, self.blocksize, &mut out) {
            log::error!("inconsistent QuantState: {e}");
        }
        out
    }

    /// Dequantizes into `out` (length [`QuantState::numel`]) without allocating; fails on a
    /// wrong length.
    pub fn dequantize_into<T: QuantFloat>(&self, out: &mut [T]) -> Result<()> {
        dequantize_nf4_into(&self.packed, &self.absmax.to_f32(), self.blocksize, out)
    }

    /// Dequantizes to `f32` (before rounding to the original dtype).
    pub fn dequantize_f32(&self) -> Vec<f32> {
        self.dequantize::<f32>()
    }

    /// Reference dequantization to `f32`, element by element.
    pub fn dequantize_reference(&self) -> Result<Vec<f32>> {
        dequantize_nf4_reference(
            &self.packed,
            &self.absmax.to_f32(),
            self.numel(),
            self.blocksize,
        )
    }

    /// Dequantizes to the original dtype, as little-endian bytes (for safetensors).
    pub fn dequantize_bytes(&self) -> Vec<u8> {
        match self.dtype {
            FloatDtype::F32 => f32_bytes(&self.dequantize::<f32>()),
            FloatDtype::F16 => self
                .dequantize::<half::f16>()
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
            FloatDtype::BF16 => self
                .dequantize::<half::bf16>()
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        }
    }

    /// The `W.quant_state.bitsandbytes__nf4` JSON, byte for byte as bitsandbytes writes it.
    ///
    /// ```
    /// use qlora_core::{Blocksize, QuantConfig, QuantState};
    /// let cfg = QuantConfig { blocksize: Blocksize::default(), double_quant: false };
    /// let q = QuantState::quantize(&[1.0f32, 2.0], &[1, 2], cfg).unwrap();
    /// assert_eq!(
    ///     q.quant_state_json(),
    ///     r#"{"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [1, 2]}"#
    /// );
    /// ```
    pub fn quant_state_json(&self) -> String {
        let shape: Vec<String> = self.shape.iter().map(|d| d.to_string()).collect();
        let mut s = format!(
            r#"{{"quant_type": "nf4", "blocksize": {}, "dtype": "{}", "shape": [{}]"#,
            self.blocksize.get(),
            self.dtype.torch_name(),
            shape.join(", ")
        );
        if let Absmax::Double(d) = &self.absmax {
            s.push_str(&format!(
                r#", "nested_blocksize": {}, "nested_dtype": "float32", "nested_offset": {}"#,
                d.nested_blocksize,
                python_float_repr(f64::from(d.offset))
            ));
        }
        s.push('}');
        s
    }

    /// The tensors of the bitsandbytes layout for a weight called `name`, in the order
    /// bitsandbytes' `Linear4bit` writes them.
    pub fn to_tensors(&self, name: &str) -> Vec<(String, OwnedTensor)> {
        let mut out = vec![(
            name.to_string(),
            OwnedTensor {
                dtype: Dtype::U8,
                shape: vec![self.packed.len(), 1],
                data: self.packed.clone(),
            },
        )];
        let f32_tensor = |v: &[f32]| OwnedTensor {
            dtype: Dtype::F32,
            shape: vec![v.len()],
            data: f32_bytes(v),
        };
        match &self.absmax {
            Absmax::Plain(a) => out.push((format!("{name}.absmax"), f32_tensor(a))),
            Absmax::Double(d) => out.push((
                format!("{name}.absmax"),
                OwnedTensor {
                    dtype: Dtype::U8,
                    shape: vec![d.codes.len()],
                    data: d.codes.clone(),
                },
            )),
        }
        out.push((format!("{name}.quant_map"), f32_tensor(&NF4_CODE)));
        if let Absmax::Double(d) = &self.absmax {
            out.push((
                format!("{name}.nested_absmax"),
                f32_tensor(&d.nested_absmax),
            ));
            out.push((
                format!("{name}.nested_quant_map"),
                f32_tensor(&d.nested_code),
            ));
        }
        let json = self.quant_state_json().into_bytes();
        out.push((
            format!("{name}{QUANT_STATE_SUFFIX}"),
            OwnedTensor {
                dtype: Dtype::U8,
                shape: vec![json.len()],
                data: json,
            },
        ));
        out
    }

    /// Whether `st` holds an NF4 weight called `name` (its packed JSON is present).
    pub fn is_quantized(st: &SafeTensors<'_>, name: &str) -> bool {
        st.tensor(&format!("{name}{QUANT_STATE_SUFFIX}")).is_ok()
    }

    /// Loads the NF4 weight called `name` from a safetensors file in the bitsandbytes layout.
    pub fn from_safetensors(st: &SafeTensors<'_>, name: &str) -> Result<Self> {
        Self::from_views(name, |key| st.tensor(key).ok())
    }

    /// Loads the NF4 weight called `name` from tensors found by `lookup` (e.g. across the
    /// shards of a checkpoint).
    pub fn from_views<'a>(
        name: &str,
        mut lookup: impl FnMut(&str) -> Option<TensorView<'a>>,
    ) -> Result<Self> {
        let mut get = |suffix: &str| {
            let key = format!("{name}{suffix}");
            lookup(&key).ok_or(Error::MissingTensor { tensor: key })
        };
        let qs_key = format!("{name}{QUANT_STATE_SUFFIX}");
        let qs_view = get(QUANT_STATE_SUFFIX)?;
        expect_dtype(&qs_view, &qs_key, &[Dtype::U8])?;
        let qs = QsJson::parse(qs_view.data(), &qs_key)?;

        let w = get("")?;
        expect_dtype(
            &w,
            name,
            &[Dtype::U8, Dtype::I8, Dtype::F16, Dtype::BF16, Dtype::F32],
        )?;
        let packed = w.data().to_vec();

        let absmax_key = format!("{name}.absmax");
        let absmax_view = get(".absmax")?;
        if let Ok(qm) = get(".quant_map") {
            let code = read_f32(&qm, &format!("{name}.quant_map"))?;
            if code.len() != 16 {
                return Err(Error::ShapeMismatch {
                    tensor: format!("{name}.quant_map"),
                    expected: "16 values".to_string(),
                    got: format!("{} values", code.len()),
                });
            }
            if code
                .iter()
                .zip(NF4_CODE)
                .any(|(a, b)| a.to_bits() != b.to_bits())
            {
                // bitsandbytes dequantizes with its built-in table and ignores this one.
                log::warn!("{name}.quant_map differs from the NF4 table; using the NF4 table");
            }
        }
        let absmax = match &qs.nested {
            None => Absmax::Plain(read_f32(&absmax_view, &absmax_key)?),
            Some(n) => {
                expect_dtype(&absmax_view, &absmax_key, &[Dtype::U8])?;
                let nested_absmax =
                    read_f32(&get(".nested_absmax")?, &format!("{name}.nested_absmax"))?;
                let nested_code = read_f32(
                    &get(".nested_quant_map")?,
                    &format!("{name}.nested_quant_map"),
                )?;
                Absmax::Double(DoubleQuant {
                    codes: absmax_view.data().to_vec(),
                    nested_absmax,
                    offset: n.offset,
                    nested_blocksize: n.blocksize,
                    nested_code,
                })
            }
        };
        QuantState::from_parts(name, packed, absmax, qs.shape, qs.dtype, qs.blocksize)
    }
}

/// The parsed `quant_state` JSON.
struct QsJson {
    blocksize: Blocksize,
    dtype: FloatDtype,
    shape: Vec<usize>,
    nested: Option<NestedJson>,
}

struct NestedJson {
    blocksize: usize,
    offset: f32,
}

impl QsJson {
    fn parse(bytes: &[u8], key: &str) -> Result<Self> {
        let bad = |reason: String| Error::InvalidQuantState {
            tensor: key.to_string(),
            reason,
        };
        let text = std::str::from_utf8(bytes).map_err(|e| bad(format!("not UTF-8: {e}")))?;
        let v: Value =
            serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| bad("not a JSON object".into()))?;
        let field = |k: &str| {
            obj.get(k)
                .ok_or_else(|| bad(format!("missing field `{k}`")))
        };
        let quant_type = field("quant_type")?
            .as_str()
            .ok_or_else(|| bad("`quant_type` is not a string".into()))?;
        if quant_type != "nf4" {
            return Err(bad(format!(
                "quant_type `{quant_type}` is not supported (only nf4)"
            )));
        }
        let blocksize = field("blocksize")?
            .as_u64()
            .ok_or_else(|| bad("`blocksize` is not a non-negative integer".into()))?;
        let blocksize = Blocksize::new(blocksize as usize)
            .map_err(|e| bad(format!("field `blocksize`: {e}")))?;
        let dtype = field("dtype")?
            .as_str()
            .ok_or_else(|| bad("`dtype` is not a string".into()))?;
        let dtype = FloatDtype::from_torch_name(dtype, key)?;
        let shape = field("shape")?
            .as_array()
            .ok_or_else(|| bad("`shape` is not a list".into()))?
            .iter()
            .map(|d| d.as_u64().map(|d| d as usize))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| bad("`shape` holds a non-integer".into()))?;
        let nested = if obj.contains_key("nested_offset") || obj.contains_key("nested_blocksize") {
            let blocksize = field("nested_blocksize")?
                .as_u64()
                .filter(|&b| b > 0)
                .ok_or_else(|| bad("`nested_blocksize` is not a positive integer".into()))?;
            let nd = field("nested_dtype")?.as_str().unwrap_or_default();
            if nd != "float32" {
                return Err(bad(format!("nested_dtype `{nd}` is not float32")));
            }
            let offset = field("nested_offset")?
                .as_f64()
                .ok_or_else(|| bad("`nested_offset` is not a number".into()))?;
            Some(NestedJson {
                blocksize: blocksize as usize,
                // torch.tensor(float(x)): round the double to f32.
                offset: offset as f32,
            })
        } else {
            None
        };
        Ok(QsJson {
            blocksize,
            dtype,
            shape,
            nested,
        })
    }
}

fn expect_dtype(view: &TensorView<'_>, tensor: &str, allowed: &[Dtype]) -> Result<()> {
    if allowed.contains(&view.dtype()) {
        Ok(())
    } else {
        Err(Error::UnsupportedDtype {
            tensor: tensor.to_string(),
            got: format!("{:?}", view.dtype()),
            expected: allowed
                .iter()
                .map(|d| format!("{d:?}"))
                .collect::<Vec<_>>()
                .join(" or "),
        })
    }
}

fn read_f32(view: &TensorView<'_>, tensor: &str) -> Result<Vec<f32>> {
    expect_dtype(view, tensor, &[Dtype::F32])?;
    Ok(view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Names of all NF4 weights in a safetensors file (keys with a
/// `.quant_state.bitsandbytes__nf4` companion), sorted.
pub fn quantized_weight_names(st: &SafeTensors<'_>) -> Vec<String> {
    let mut names: Vec<String> = st
        .names()
        .into_iter()
        .filter_map(|k| k.strip_suffix(QUANT_STATE_SUFFIX).map(str::to_string))
        .collect();
    names.sort();
    names
}

/// Formats a float as Python's `repr` (and so `json.dumps`) does: shortest round-trip
/// digits, scientific notation below 1e-4 and from 1e16 (`1e-05`, `1.5e+16`), `.0` on
/// integral values, `NaN` / `Infinity` / `-Infinity` for non-finite values.
///
/// ```
/// use qlora_core::quant::python_float_repr;
/// assert_eq!(python_float_repr(1.6796875), "1.6796875");
/// assert_eq!(python_float_repr(2.0), "2.0");
/// assert_eq!(python_float_repr(1e-5), "1e-05");
/// assert_eq!(python_float_repr(0.0001), "0.0001");
/// assert_eq!(python_float_repr(1.5e16), "1.5e+16");
/// assert_eq!(python_float_repr(-0.0), "-0.0");
/// ```
pub fn python_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if x.is_sign_negative() { "-" } else { "" };
    if x == 0.0 {
        return format!("{sign}0.0");
    }
    if (-4..16).contains(&exp) {
        let body = if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                format!("{}{}.0", digits, "0".repeat(int_len - digits.len()))
            } else {
                format!("{}.{}", &digits[..int_len], &digits[int_len..])
            }
        } else {
            format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
        };
        format!("{sign}{body}")
    } else {
        let rest = if digits.len() > 1 {
            format!(".{}", &digits[1..])
        } else {
            String::new()
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{}{rest}e{esign}{:02}", &digits[..1], exp.abs())
    }
}

/// Parses safetensors bytes, naming `context` (usually the file) in the error; a truncated or
/// corrupt file gives [`Error::Safetensors`].
///
/// A header whose offsets do not fit a tensor's dtype and shape names that tensor.
///
/// ```
/// assert!(qlora_core::quant::parse_safetensors(b"\x08\x00", "x.safetensors").is_err());
/// let header = br#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}}"#;
/// let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
/// bytes.extend(header);
/// bytes.extend([0u8; 8]);
/// let err = qlora_core::quant::parse_safetensors(&bytes, "x.safetensors").unwrap_err();
/// assert!(err.to_string().starts_with("x.safetensors: tensor `w`"), "{err}");
/// ```
pub fn parse_safetensors<'a>(bytes: &'a [u8], context: &str) -> Result<SafeTensors<'a>> {
    SafeTensors::deserialize(bytes).map_err(|source| Error::Safetensors {
        context: match inconsistent_tensor(bytes) {
            Some(name) => format!("{context}: tensor `{name}`"),
            None => context.to_string(),
        },
        source,
    })
}

/// The first tensor of a safetensors header whose offsets do not fit its dtype and shape
/// (the safetensors crate reports such a header without the name). Data missing at the end
/// is a truncated file, not a tensor's fault, and names none.
fn inconsistent_tensor(bytes: &[u8]) -> Option<String> {
    let n = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let header: serde_json::Map<String, Value> =
        serde_json::from_slice(bytes.get(8..n.checked_add(8)?)?).ok()?;
    let mut entries: Vec<_> = header
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .collect();
    entries.sort_by_key(|(k, _)| k.as_str());
    for (name, info) in entries {
        let size: u64 = match info.get("dtype").and_then(Value::as_str)? {
            "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" => 1,
            "I16" | "U16" | "F16" | "BF16" => 2,
            "I32" | "U32" | "F32" => 4,
            "I64" | "U64" | "F64" => 8,
            _ => continue,
        };
        let numel = info
            .get("shape")
            .and_then(Value::as_array)?
            .iter()
            .try_fold(1u64, |acc, d| d.as_u64().and_then(|d| acc.checked_mul(d)));
        let offsets = info.get("data_offsets").and_then(Value::as_array)?;
        let (start, end) = match offsets.as_slice() {
            [a, b] => (a.as_u64()?, b.as_u64()?),
            _ => return Some(name.clone()),
        };
        if numel.and_then(|n| n.checked_mul(size)) != end.checked_sub(start) {
            return Some(name.clone());
        }
    }
    None
}
