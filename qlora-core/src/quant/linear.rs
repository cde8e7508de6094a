//! [`Nf4Linear`]: a frozen linear layer whose weight is stored in NF4.

use std::sync::Arc;

use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, Tensor};

use super::kernels::Residency;
use super::tensor::two_d;
use super::weight::Nf4Weight;
use super::{QuantConfig, QuantState};
use crate::dense::{add_bias, with_last_dim};
use crate::error::{Error, Result};

/// A frozen linear layer `y = x · dequant(W)ᵀ (+ b)` with `W` `[out, in]` in NF4.
///
/// The 4-bit weight is quantized once, at construction, and uploaded once to the device the
/// layer computes on, where it stays ([`Residency`]): on burn-ndarray host memory read by the
/// SIMD kernels, on burn-cuda device buffers read by the cubecl kernels, on other backends
/// device tensors dequantized with burn's ops. No forward or backward reads the weight or the
/// activations back to the host. The weight never has a gradient buffer and is not part of
/// the burn record (saving the module saves only the bias): persist it in bitsandbytes'
/// layout with [`Nf4Linear::to_quant_state`] and [`QuantState::to_tensors`]. The bias, if
/// any, is frozen as well.
///
/// # Shapes
/// - input `[..., in]` (any rank)
/// - output `[..., out]`
///
/// ```
/// use burn::tensor::{Distribution, Tensor};
/// use burn_ndarray::NdArray;
/// use qlora_core::{Nf4Linear, QuantConfig};
/// let dev = Default::default();
/// let w = Tensor::<NdArray, 2>::random([8, 64], Distribution::Normal(0.0, 1.0), &dev);
/// let layer = Nf4Linear::from_weight(w, None, QuantConfig::default()).unwrap();
/// let x = Tensor::<NdArray, 3>::ones([2, 3, 64], &dev);
/// assert_eq!(layer.forward(x).dims(), [2, 3, 8]);
/// assert_eq!((layer.in_features(), layer.out_features()), (64, 8));
/// ```
#[derive(Module, Debug)]
pub struct Nf4Linear<B: Backend> {
    /// Optional bias `[out]`, frozen.
    pub bias: Option<Param<Tensor<B, 1>>>,
    /// The 4-bit weight, on the layer's device.
    weight: Nf4Weight<B>,
}

impl<B: Backend> Nf4Linear<B> {
    /// Quantizes a dense weight `[out, in]` (once) onto its own device, with an optional bias
    /// `[out]`.
    pub fn from_weight(
        weight: Tensor<B, 2>,
        bias: Option<Tensor<B, 1>>,
        config: QuantConfig,
    ) -> Result<Self> {
        let dims = weight.dims();
        let device = weight.device();
        let values: Vec<f32> = weight
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .map_err(|e| Error::UnsupportedDtype {
                tensor: "weight".to_string(),
                got: format!("{e:?}"),
                expected: "a float tensor".to_string(),
            })?;
        let state = QuantState::quantize(&values, &dims, config)?;
        Self::from_quant_state(state, bias, &device)
    }

    /// Uploads a loaded (or freshly quantized) 2-D [`QuantState`] `[out, in]` to `device`.
    pub fn from_quant_state(
        state: QuantState,
        bias: Option<Tensor<B, 1>>,
        device: &B::Device,
    ) -> Result<Self> {
        let [out, _] = two_d(state.shape())?;
        if let Some(b) = &bias {
            if b.dims()[0] != out {
                return Err(Error::ShapeMismatch {
                    tensor: "bias".to_string(),
                    expected: format!("[{out}]"),
                    got: format!("{:?}", b.dims()),
                });
            }
        }
        Ok(Nf4Linear {
            bias: bias.map(|b| Param::from_tensor(b).set_require_grad(false)),
            weight: Nf4Weight::upload(state, device)?,
        })
    }

    /// Input features (`in`).
    pub fn in_features(&self) -> usize {
        self.weight.shape()[1]
    }

    /// Output features (`out`).
    pub fn out_features(&self) -> usize {
        self.weight.shape()[0]
    }

    /// The device the weight lives on (and the layer computes on).
    pub fn device(&self) -> B::Device {
        self.weight.kernels.device()
    }

    /// Where the 4-bit weight lives, and with it which kernels multiply by it.
    pub fn residency(&self) -> Residency {
        self.weight.residency()
    }

    /// The quantization state of the weight, on the host (read back from the device where it
    /// lives there).
    ///
    /// # Errors
    /// When the device's buffers cannot be read back.
    pub fn to_quant_state(&self) -> Result<Arc<QuantState>> {
        self.weight.to_quant_state()
    }

    /// The dequantized weight `[out, in]` on the layer's device (no gradient).
    pub fn dequantize(&self) -> Tensor<B, 2> {
        self.weight.kernels.dequantize()
    }

    /// `y = x · dequant(W)ᵀ (+ b)`, on the weight's device with the backend's kernels (see
    /// [`Residency`]); under autodiff one operation whose backward dequantizes `W` again
    /// instead of keeping it.
    ///
    /// # Shapes
    /// - `x`: `[..., in]`
    /// - output: `[..., out]`
    ///
    /// # Panics
    /// When the last dimension of `x` is not `in` (as burn's `Linear`).
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let dims = x.dims();
        let cols = dims[D - 1];
        assert_eq!(
            cols,
            self.in_features(),
            "Nf4Linear: input has {cols} features, the weight {}",
            self.in_features()
        );
        let rows: usize = dims[..D - 1].iter().product();
        let y = self.weight.kernels.matmul(x.reshape([rows, cols]));
        let y = y.reshape(with_last_dim(dims, self.out_features()));
        add_bias(y, self.bias.as_ref().map(|b| b.val()))
    }
}
