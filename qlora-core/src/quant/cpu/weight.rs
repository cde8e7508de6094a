//! [`HostWeight`]: a frozen 4-bit weight on burn-ndarray, kept on the host as its
//! [`QuantState`] and multiplied by the CPU kernels.

use std::sync::Arc;

use burn::tensor::{FloatDType, Tensor, TensorData};
use burn_ndarray::NdArray;

use super::gemv::{nf4_matmul, nf4_matmul_supported};
use crate::dense::{frozen_linear, HOST_GEMV_MAX_ROWS};
use crate::error::Result;
use crate::quant::kernels::{Nf4Kernels, Residency};
use crate::quant::tensor::{dequantize_checked, two_d_or_empty};
use crate::quant::QuantState;

/// The 4-bit weight of a burn-ndarray layer: the host memory is the device.
#[derive(Debug)]
pub(crate) struct HostWeight {
    state: Arc<QuantState>,
}

impl HostWeight {
    /// Keeps `state` (a 2-D weight, checked by the layer).
    pub(crate) fn new(state: Arc<QuantState>) -> Self {
        HostWeight { state }
    }

    /// The 4-bit GEMV of a short input (decoding), when it applies.
    fn gemv(&self, x: &Tensor<NdArray, 2>) -> Option<Tensor<NdArray, 2>> {
        let [rows, cols] = x.dims();
        if rows == 0 || rows > HOST_GEMV_MAX_ROWS || !nf4_matmul_supported(&self.state) {
            return None;
        }
        let xs = x.to_data().convert::<f32>().into_vec::<f32>().ok()?;
        let absmax = self.state.absmax().to_f32();
        let y = nf4_matmul(&self.state, &absmax, &xs, rows).ok()?;
        let out = self.shape()[0];
        debug_assert_eq!(cols, self.shape()[1]);
        Some(Tensor::from_data(
            TensorData::new(y, [rows, out]),
            &x.device(),
        ))
    }
}

impl Nf4Kernels<NdArray> for HostWeight {
    /// Inputs of at most [`HOST_GEMV_MAX_ROWS`] rows are multiplied straight from the 4-bit
    /// weight ([`nf4_matmul`]), without materializing the dense weight; longer ones dequantize
    /// (SIMD) and multiply. The two agree up to the order of f32 additions.
    ///
    /// The product is in `x`'s dtype (the weight is cast to it; the GEMV computes in f32).
    fn matmul(&self, x: Tensor<NdArray, 2>) -> Tensor<NdArray, 2> {
        let dtype = FloatDType::from(x.dtype());
        match self.gemv(&x) {
            Some(y) => y.cast(dtype),
            None => frozen_linear(x, self.dequantize().cast(dtype), None),
        }
    }

    fn dequantize(&self) -> Tensor<NdArray, 2> {
        dequantize_checked(&self.state, &Default::default())
    }

    fn to_quant_state(&self) -> Result<Arc<QuantState>> {
        Ok(Arc::clone(&self.state))
    }

    fn residency(&self) -> Residency {
        Residency::Host
    }

    fn device(&self) -> burn_ndarray::NdArrayDevice {
        Default::default()
    }

    fn shape(&self) -> [usize; 2] {
        two_d_or_empty(self.state.shape())
    }
}
