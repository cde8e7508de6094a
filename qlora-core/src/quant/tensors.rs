//! [`TensorWeight`]: the portable device path. A frozen 4-bit weight kept as burn tensors on
//! any backend's device (packed codes and 8-bit absmax codes as `u8`, scales as `f32`) and
//! dequantized there with burn's own operations; nothing is read back to the host.
//!
//! It serves every backend without 4-bit kernels of its own, and it is the device-side
//! definition the backend kernels are tested against: on burn-ndarray its result is
//! bit-identical with the CPU kernels (the same `f32` products `NF4_CODE[c] · absmax`, and
//! `nested_code[q] · nested_absmax + offset` for a double-quantized absmax). On a GPU, where
//! burn may fuse the multiply and add of that last step into one instruction, the absmax can
//! differ in the last bit.

use std::sync::Arc;

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Element, FloatDType, Int, IntDType, Tensor, TensorData};

use super::kernels::{Nf4Kernels, Residency};
use super::nf4::{Blocksize, NF4_CODE};
use super::{Absmax, DoubleQuant, FloatDtype, QuantState};
use crate::dense::frozen_linear;
use crate::error::{Error, Result};
use crate::quant::tensor::two_d;

/// A double-quantized absmax on the device.
#[derive(Debug, Clone)]
struct NestedAbsmax<B: Backend> {
    /// One 8-bit code per NF4 block.
    codes: Tensor<B, 1, Int>,
    /// One `f32` scale per nested block.
    nested_absmax: Tensor<B, 1>,
    /// The 256-entry nested code, `f32`.
    nested_code: Tensor<B, 1>,
    offset: f32,
    nested_blocksize: usize,
}

/// The per-block scales on the device.
#[derive(Debug, Clone)]
enum DeviceAbsmax<B: Backend> {
    Plain(Tensor<B, 1>),
    Double(NestedAbsmax<B>),
}

/// A frozen 4-bit weight `[out, in]` as burn tensors on a device.
#[derive(Debug)]
pub(crate) struct TensorWeight<B: Backend> {
    /// Packed codes, `ceil(numel / 2)` bytes, first element in the high nibble.
    packed: Tensor<B, 1, Int>,
    absmax: DeviceAbsmax<B>,
    /// The 16 NF4 values, `f32`.
    code: Tensor<B, 1>,
    /// The dtype the weight had before quantization (kept for saving).
    dtype: FloatDtype,
    blocksize: Blocksize,
    shape: [usize; 2],
    device: B::Device,
}

impl<B: Backend> TensorWeight<B> {
    /// Uploads `state` (a 2-D weight) to `device`, once.
    pub(crate) fn upload(state: &QuantState, device: &B::Device) -> Result<Self> {
        let shape = two_d(state.shape())?;
        let absmax = match state.absmax() {
            Absmax::Plain(a) => DeviceAbsmax::Plain(floats(a, device)),
            Absmax::Double(d) => DeviceAbsmax::Double(NestedAbsmax {
                codes: bytes(&d.codes, device),
                nested_absmax: floats(&d.nested_absmax, device),
                nested_code: floats(&d.nested_code, device),
                offset: d.offset,
                nested_blocksize: d.nested_blocksize,
            }),
        };
        Ok(TensorWeight {
            packed: bytes(state.packed(), device),
            absmax,
            code: floats(&NF4_CODE, device),
            dtype: state.dtype(),
            blocksize: state.blocksize(),
            shape,
            device: device.clone(),
        })
    }

    /// The `f32` absmax of every block, `[blocks]`.
    fn block_scales(&self) -> Tensor<B, 1> {
        match &self.absmax {
            DeviceAbsmax::Plain(a) => a.clone(),
            DeviceAbsmax::Double(d) => {
                let blocks = d.codes.dims()[0];
                let values = d.nested_code.clone().select(0, widen(d.codes.clone()));
                let scales = per_block(values, d.nested_absmax.clone(), d.nested_blocksize);
                scales.slice(0..blocks).add_scalar(d.offset)
            }
        }
    }

    /// The dense weight as `f32` values, `[numel]`.
    fn dequantize_f32(&self) -> Tensor<B, 1> {
        let numel = self.shape[0] * self.shape[1];
        let packed = widen(self.packed.clone());
        let high = packed.clone().div_scalar(16);
        let low = packed.remainder_scalar(16);
        // Interleave: the first element of each byte is its high nibble.
        let codes = Tensor::stack::<2>(vec![high, low], 1).flatten::<1>(0, 1);
        let values = self.code.clone().select(0, codes);
        let dense = per_block(values, self.block_scales(), self.blocksize.get());
        dense.slice(0..numel)
    }
}

impl<B: Backend> Nf4Kernels<B> for TensorWeight<B> {
    fn matmul(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let w = self
            .dequantize_f32()
            .reshape(self.shape)
            .cast(FloatDType::from(x.dtype()));
        frozen_linear(x, w, None)
    }

    fn dequantize(&self) -> Tensor<B, 2> {
        let float = FloatDType::from(<B::FloatElem as Element>::dtype());
        self.dequantize_f32().reshape(self.shape).cast(float)
    }

    fn to_quant_state(&self) -> Result<Arc<QuantState>> {
        let absmax = match &self.absmax {
            DeviceAbsmax::Plain(a) => Absmax::Plain(read_floats(a, "absmax")?),
            DeviceAbsmax::Double(d) => Absmax::Double(DoubleQuant {
                codes: read_bytes(&d.codes, "absmax")?,
                nested_absmax: read_floats(&d.nested_absmax, "nested_absmax")?,
                offset: d.offset,
                nested_blocksize: d.nested_blocksize,
                nested_code: read_floats(&d.nested_code, "nested_quant_map")?,
            }),
        };
        QuantState::from_parts(
            "weight",
            read_bytes(&self.packed, "weight")?,
            absmax,
            self.shape.to_vec(),
            self.dtype,
            self.blocksize,
        )
        .map(Arc::new)
    }

    fn residency(&self) -> Residency {
        Residency::Tensors
    }

    fn device(&self) -> B::Device {
        self.device.clone()
    }

    fn shape(&self) -> [usize; 2] {
        self.shape
    }
}

/// `values` (`[n]`, `n <= scales · blocksize`) times the scale of their block, padded with
/// zeros to whole blocks: `[scales · blocksize]`.
fn per_block<B: Backend>(
    values: Tensor<B, 1>,
    scales: Tensor<B, 1>,
    blocksize: usize,
) -> Tensor<B, 1> {
    let blocks = scales.dims()[0];
    let n = values.dims()[0];
    let padded = blocks * blocksize;
    let values = if n < padded {
        let zeros = Tensor::zeros([padded - n], (&values.device(), values.dtype()));
        Tensor::cat(vec![values, zeros], 0)
    } else {
        values.slice(0..padded)
    };
    let scaled = values.reshape([blocks, blocksize]) * scales.unsqueeze_dim::<2>(1);
    scaled.flatten::<1>(0, 1)
}

/// `u8` codes as the backend's default integer type, for arithmetic and indexing.
fn widen<B: Backend>(codes: Tensor<B, 1, Int>) -> Tensor<B, 1, Int> {
    codes.cast(IntDType::from(<B::IntElem as Element>::dtype()))
}

/// `values` as a `u8` tensor on `device`.
fn bytes<B: Backend>(values: &[u8], device: &B::Device) -> Tensor<B, 1, Int> {
    Tensor::from_data(
        TensorData::new(values.to_vec(), [values.len()]),
        (device, DType::U8),
    )
}

/// `values` as an `f32` tensor on `device`, whatever the backend's default float type.
fn floats<B: Backend>(values: &[f32], device: &B::Device) -> Tensor<B, 1> {
    Tensor::from_data(
        TensorData::new(values.to_vec(), [values.len()]),
        (device, DType::F32),
    )
}

fn read_bytes<B: Backend>(t: &Tensor<B, 1, Int>, what: &str) -> Result<Vec<u8>> {
    t.to_data()
        .convert::<u8>()
        .into_vec::<u8>()
        .map_err(|e| read_error(what, e))
}

fn read_floats<B: Backend>(t: &Tensor<B, 1>, what: &str) -> Result<Vec<f32>> {
    t.to_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| read_error(what, e))
}

fn read_error(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::UnsupportedDtype {
        tensor: what.to_string(),
        got: format!("{e:?}"),
        expected: "the dtype it was uploaded with".to_string(),
    }
}
