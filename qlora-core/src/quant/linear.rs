//! [`Nf4Linear`]: a frozen linear layer whose weight is stored in NF4.

use std::sync::Arc;

use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, Tensor, TensorData};

use crate::error::Result;
use crate::lora::{add_bias, with_last_dim};
use crate::quant::autodiff::frozen_nf4_matmul;
use crate::quant::gemv::{nf4_matmul, nf4_matmul_supported};
use crate::quant::tensor::{dequantize_checked, two_d};
use crate::quant_state::{QuantConfig, QuantState};

/// A frozen linear layer `y = x · dequant(W)ᵀ (+ b)` with `W` `[out, in]` in NF4.
///
/// The 4-bit weight is quantized once, at construction, and kept host-side in its
/// [`QuantState`] (the single owner of the quantization state; it is not part of the burn
/// record, so saving the module saves only the bias: persist the weight with
/// [`QuantState::to_tensors`]). Each forward dequantizes to the input's device. The weight
/// never has a gradient buffer; the bias, if any, is frozen as well.
///
/// # Shapes
/// - input `[..., in]` (rank 2 or 3, any rank works)
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
    #[module(skip)]
    weight: Arc<QuantState>,
}

impl<B: Backend> Nf4Linear<B> {
    /// Quantizes a dense weight `[out, in]` (once) and keeps an optional bias `[out]`.
    pub fn from_weight(
        weight: Tensor<B, 2>,
        bias: Option<Tensor<B, 1>>,
        config: QuantConfig,
    ) -> Result<Self> {
        let dims = weight.dims();
        let values: Vec<f32> = weight
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .map_err(|e| crate::error::Error::UnsupportedDtype {
                tensor: "weight".to_string(),
                got: format!("{e:?}"),
                expected: "a float tensor".to_string(),
            })?;
        let state = QuantState::quantize(&values, &dims, config)?;
        Self::from_quant_state(state, bias)
    }

    /// Wraps a loaded (or freshly quantized) 2-D [`QuantState`] `[out, in]`.
    pub fn from_quant_state(state: QuantState, bias: Option<Tensor<B, 1>>) -> Result<Self> {
        let [out, _] = two_d(state.shape())?;
        if let Some(b) = &bias {
            if b.dims()[0] != out {
                return Err(crate::error::Error::ShapeMismatch {
                    tensor: "bias".to_string(),
                    expected: format!("[{out}]"),
                    got: format!("{:?}", b.dims()),
                });
            }
        }
        Ok(Nf4Linear {
            bias: bias.map(|b| Param::from_tensor(b).set_require_grad(false)),
            weight: Arc::new(state),
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

    /// The quantization state of the weight.
    pub fn quant_state(&self) -> &QuantState {
        &self.weight
    }

    /// The dequantized weight `[out, in]` on `device` (no gradient).
    pub fn dequantize(&self, device: &B::Device) -> Tensor<B, 2> {
        dequantize_checked(&self.weight, device)
    }

    /// `y = x · dequant(W)ᵀ (+ b)`.
    ///
    /// # Shapes
    /// - `x`: `[..., in]`
    /// - output: `[..., out]`
    ///
    /// An input of at most [`HOST_GEMV_MAX_ROWS`] rows outside autodiff (decoding) is
    /// multiplied on the host straight from the 4-bit weight ([`nf4_matmul`]), without
    /// materializing the dense weight; anything else dequantizes the weight to the input's
    /// device and multiplies there. The two agree up to the order of f32 additions.
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        if let Some(y) = self.forward_host(&x) {
            return y;
        }
        let x = match self.forward_autodiff(x) {
            Ok(y) => return y,
            Err(x) => x,
        };
        let w = self.dequantize(&x.device());
        crate::lora::frozen_linear(x, w, self.bias.as_ref().map(|b| b.val()))
    }

    /// The autodiff path of [`Nf4Linear::forward`]: one operation whose backward dequantizes
    /// the weight again instead of keeping the dense copy from the forward pass
    /// (`quant::autodiff`); `Err(x)` where it does not apply.
    fn forward_autodiff<const D: usize>(
        &self,
        x: Tensor<B, D>,
    ) -> std::result::Result<Tensor<B, D>, Tensor<B, D>> {
        let device = x.device();
        if !B::ad_enabled(&device) || D == 0 {
            return Err(x);
        }
        let dims = x.dims();
        let cols = dims[D - 1];
        if cols != self.in_features() {
            return Err(x);
        }
        let rows: usize = dims[..D - 1].iter().product();
        // On a backend the operation is not registered for, x comes back untouched
        // (reshaping a contiguous tensor is free).
        let y = frozen_nf4_matmul(x.reshape([rows, cols]), &self.weight)
            .map_err(|x2| x2.reshape(dims))?;
        let y = y.reshape(with_last_dim(dims, self.out_features()));
        Ok(add_bias(y, self.bias.as_ref().map(|b| b.val())))
    }

    /// The host GEMV path of [`Nf4Linear::forward`], when it applies.
    fn forward_host<const D: usize>(&self, x: &Tensor<B, D>) -> Option<Tensor<B, D>> {
        let device = x.device();
        let dims = x.dims();
        let cols = *dims.last()?;
        let rows: usize = dims[..D - 1].iter().product();
        if B::ad_enabled(&device)
            || rows == 0
            || rows > HOST_GEMV_MAX_ROWS
            || cols != self.in_features()
            || !nf4_matmul_supported(&self.weight)
        {
            return None;
        }
        let xs = x
            .clone()
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .ok()?;
        let absmax = self.weight.absmax().to_f32();
        let y = nf4_matmul(&self.weight, &absmax, &xs, rows).ok()?;
        let out_dims = with_last_dim(dims, self.out_features());
        let y = Tensor::<B, D>::from_data(TensorData::new(y, out_dims), &device);
        Some(add_bias(y, self.bias.as_ref().map(|b| b.val())))
    }
}

/// The most input rows (tokens times batch) [`Nf4Linear::forward`] multiplies on the host
/// from the 4-bit weight; longer inputs (prefill, training) dequantize and use the backend's
/// matmul.
pub const HOST_GEMV_MAX_ROWS: usize = 16;
