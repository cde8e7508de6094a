//! NF4 weights as burn tensors.

use burn::tensor::{backend::Backend, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::quant::QuantState;

/// Dequantizes a 2-D NF4 weight into a burn tensor of its original shape on `device`
/// (values `NF4_CODE[code] * absmax` in `f32`, converted to the backend's float type).
///
/// ```
/// use burn_ndarray::NdArray;
/// use qlora_core::{quant::dequantize_tensor, QuantConfig, QuantState};
/// let w: Vec<f32> = (0..128).map(|i| i as f32 / 128.0).collect();
/// let q = QuantState::quantize(&w, &[2, 64], QuantConfig::default()).unwrap();
/// let t = dequantize_tensor::<NdArray>(&q, &Default::default()).unwrap();
/// assert_eq!(t.dims(), [2, 64]);
/// ```
pub fn dequantize_tensor<B: Backend>(
    state: &QuantState,
    device: &B::Device,
) -> Result<Tensor<B, 2>> {
    let [rows, cols] = two_d(state.shape())?;
    let values = state.dequantize_f32();
    Ok(Tensor::from_data(
        TensorData::new(values, [rows, cols]),
        device,
    ))
}

/// [`dequantize_tensor`] of a weight whose 2-D shape was checked when its layer was built
/// ([`Nf4Linear`](super::Nf4Linear)); empty if that check was ever bypassed.
pub(crate) fn dequantize_checked<B: Backend>(
    state: &QuantState,
    device: &B::Device,
) -> Tensor<B, 2> {
    match dequantize_tensor(state, device) {
        Ok(t) => t,
        Err(_) => Tensor::zeros(two_d_or_empty(state.shape()), device),
    }
}

/// The shape as `[rows, cols]`, or an error naming the expected rank.
pub(crate) fn two_d(shape: &[usize]) -> Result<[usize; 2]> {
    match shape {
        [r, c] => Ok([*r, *c]),
        other => Err(Error::ShapeMismatch {
            tensor: "weight".to_string(),
            expected: "a 2-D shape [out, in]".to_string(),
            got: format!("{other:?}"),
        }),
    }
}

/// The shape as `[rows, cols]` of a weight checked 2-D when its layer was built; `[0, 0]` if
/// that check was ever bypassed.
pub(crate) fn two_d_or_empty(shape: &[usize]) -> [usize; 2] {
    two_d(shape).unwrap_or([0, 0])
}
