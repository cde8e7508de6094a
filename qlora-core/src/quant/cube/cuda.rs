//! burn-cuda's frozen 4-bit weight: [`DeviceNf4`] buffers on the GPU, uploaded once and
//! multiplied by the cubecl kernels, with no host round trip in the forward or the backward.
//!
//! - A one-row input (batch-1 decode) goes through the fused GEMV: the weight is read once,
//!   4 bits per value, and never written out dense.
//! - Longer inputs (prefill, training) dequantize the weight into a device buffer that lives
//!   only for its matmul.
//!
//! Both serve `CubeBackend<CudaRuntime, F>` and burn-cuda's default `Cuda<F>` (the same under
//! burn's operation fusion), for `F` = `f32`, `bf16` and `f16`; the kernels compute in the dtype
//! of the input (`f32` accumulation in the GEMV).

use std::sync::Arc;

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Shape, Tensor, TensorMetadata, TensorPrimitive};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{CubeBackend, FloatElement};
use burn_fusion::stream::OperationStreams;
use burn_fusion::{Fusion, FusionBackend, FusionTensor, NoOp};
use burn_ir::{BackendIr, InitOperationIr, OperationIr};
use cubecl::cuda::{CudaDevice, CudaRuntime};
use half::{bf16, f16};

use super::client::{CubeFloat, CubeNf4, DeviceNf4};
use super::error::{CubeError, CubeResult};
use crate::dense::frozen_linear;
use crate::error::{Error, Result};
use crate::quant::kernels::{for_backend, Nf4Kernels, Residency, SharedKernels};
use crate::quant::QuantState;
use crate::same_type::as_ref;

/// burn's CUDA backend without fusion, for element type `F`.
type Cube<F> = CubeBackend<CudaRuntime, F, i32, u8>;

/// How many CUDA devices the driver reports; 0 when the driver library cannot be loaded or
/// initialised (a machine without an NVIDIA GPU). Never panics, and prints nothing.
///
/// ```
/// // On a machine without a GPU this is 0; on the GPU machine at least 1.
/// let n = qlora_core::quant::cube::cuda_device_count();
/// assert!(n < 1024);
/// ```
pub fn cuda_device_count() -> usize {
    // cudarc panics when libcuda cannot be dlopen-ed; turn that into "no device", without the
    // default hook printing the panic message.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let probe = std::panic::catch_unwind(|| {
        cudarc::driver::result::init()?;
        cudarc::driver::result::device::get_count()
    });
    std::panic::set_hook(hook);
    match probe {
        Ok(Ok(n)) => usize::try_from(n).unwrap_or(0),
        Ok(Err(e)) => {
            log::info!("CUDA driver present but unusable: {e}");
            0
        }
        Err(_) => {
            log::info!("CUDA driver library (libcuda) not found");
            0
        }
    }
}

/// The NF4 client of CUDA device `index`, or [`CubeError::NoDevice`] (checked first, so that
/// a machine without a driver gets this error instead of a panic inside the runtime).
pub fn cuda_client(index: usize) -> CubeResult<CubeNf4<CudaRuntime>> {
    let count = cuda_device_count();
    if index >= count {
        return Err(CubeError::NoDevice { index, count });
    }
    use cubecl::prelude::Runtime;
    Ok(CubeNf4::new(CudaRuntime::client(&CudaDevice::new(index))))
}

/// The CUDA kernels for backend `B` when it is burn-cuda (`Cuda<F>` or `CubeBackend<Cuda, F>`
/// for `F` in f32, bf16, f16, plain or under autodiff); `None` for any other backend.
pub(crate) fn kernels_for<B: Backend>(
    state: &Arc<QuantState>,
    device: &B::Device,
) -> Result<Option<SharedKernels<B>>> {
    macro_rules! try_backends {
        ($($f:ty),*) => {$(
            if let Some(k) = for_backend::<Fusion<Cube<$f>>, B>(|| upload::<B, _>(state, device))? {
                return Ok(Some(k));
            }
            if let Some(k) = for_backend::<Cube<$f>, B>(|| upload::<B, _>(state, device))? {
                return Ok(Some(k));
            }
        )*};
    }
    try_backends!(f32, bf16, f16);
    Ok(None)
}

/// Uploads `state` to the CUDA device that `device` (a `B::Device` known to be a
/// `CudaDevice`) names.
fn upload<B: Backend, IB: Backend>(
    state: &QuantState,
    device: &B::Device,
) -> Result<SharedKernels<IB>>
where
    CudaWeight: Nf4Kernels<IB>,
{
    let cuda = as_ref::<B::Device, CudaDevice>(device).ok_or_else(|| Error::InvalidQuantState {
        tensor: "weight".to_string(),
        reason: "a CUDA backend whose device is not a CudaDevice".to_string(),
    })?;
    let nf4 = cuda_client(cuda.index).map_err(cube_error)?;
    let w = nf4.upload(state).map_err(cube_error)?;
    let shape = crate::quant::tensor::two_d(state.shape())?;
    Ok(Arc::new(CudaWeight {
        nf4,
        w,
        device: cuda.clone(),
        shape,
        dtype: state.dtype(),
    }))
}

fn cube_error(e: CubeError) -> Error {
    Error::InvalidQuantState {
        tensor: "weight".to_string(),
        reason: e.to_string(),
    }
}

/// A frozen 4-bit weight in CUDA device buffers.
#[derive(Debug)]
pub(crate) struct CudaWeight {
    nf4: CubeNf4<CudaRuntime>,
    w: DeviceNf4,
    device: CudaDevice,
    shape: [usize; 2],
    dtype: crate::quant::FloatDtype,
}

impl CudaWeight {
    /// The dense weight `[out, in]` in `dtype` (f32, bf16 or f16; f32 for any other), in a
    /// fresh device buffer.
    fn dequantize_cube(&self, dtype: DType) -> CubeTensor<CudaRuntime> {
        let (handle, dtype) = match dtype {
            DType::BF16 => (self.nf4.dequantize::<bf16>(&self.w), DType::BF16),
            DType::F16 => (self.nf4.dequantize::<f16>(&self.w), DType::F16),
            _ => (self.nf4.dequantize::<f32>(&self.w), DType::F32),
        };
        self.tensor(handle, self.shape, dtype)
    }

    /// `x · Wᵀ` for `x` `[rows, in]` in `B`'s primitives (`B` = `Cube<F>`).
    fn matmul_cube<F: FloatElement>(&self, x: CubeTensor<CudaRuntime>) -> CubeTensor<CudaRuntime> {
        let dtype = x.dtype;
        let rows = x.shape()[0];
        if rows == 1 && self.shape[1] % 8 == 0 {
            if let Ok(y) = self.gemv(x.clone(), dtype) {
                return y;
            }
        }
        let w = self.dequantize_cube(dtype);
        let x = Tensor::<Cube<F>, 2>::from_primitive(TensorPrimitive::Float(x));
        let w = Tensor::<Cube<F>, 2>::from_primitive(TensorPrimitive::Float(w)).cast(dtype);
        frozen_linear(x, w, None).into_primitive().tensor()
    }

    /// The fused GEMV of a one-row `x`, in `x`'s dtype (f32, bf16 or f16).
    fn gemv(
        &self,
        x: CubeTensor<CudaRuntime>,
        dtype: DType,
    ) -> CubeResult<CubeTensor<CudaRuntime>> {
        let x = into_contiguous(x);
        let y = match dtype {
            DType::F32 => self.nf4.gemv::<f32>(&self.w, &x.handle)?,
            DType::BF16 => self.nf4.gemv::<bf16>(&self.w, &x.handle)?,
            DType::F16 => self.nf4.gemv::<f16>(&self.w, &x.handle)?,
            other => {
                return Err(CubeError::Shape {
                    tensor: "x".to_string(),
                    reason: format!("no 4-bit GEMV for {other:?}"),
                })
            }
        };
        Ok(self.tensor(y, [1, self.shape[0]], dtype))
    }

    fn tensor(
        &self,
        handle: cubecl::server::Handle,
        shape: [usize; 2],
        dtype: DType,
    ) -> CubeTensor<CudaRuntime> {
        CubeTensor::new_contiguous(
            self.nf4.client().clone(),
            self.device.clone(),
            Shape::from(shape),
            handle,
            dtype,
        )
    }

    fn read_back(&self) -> Result<Arc<QuantState>> {
        self.nf4
            .download(&self.w, self.dtype)
            .map(Arc::new)
            .map_err(cube_error)
    }
}

impl<F: FloatElement + CubeFloat> Nf4Kernels<Cube<F>> for CudaWeight {
    fn matmul(&self, x: Tensor<Cube<F>, 2>) -> Tensor<Cube<F>, 2> {
        let y = self.matmul_cube::<F>(x.into_primitive().tensor());
        Tensor::from_primitive(TensorPrimitive::Float(y))
    }

    fn dequantize(&self) -> Tensor<Cube<F>, 2> {
        let w = self.dequantize_cube(<F as burn::tensor::Element>::dtype());
        Tensor::from_primitive(TensorPrimitive::Float(w))
    }

    fn to_quant_state(&self) -> Result<Arc<QuantState>> {
        self.read_back()
    }

    fn residency(&self) -> Residency {
        Residency::Cuda
    }

    fn device(&self) -> CudaDevice {
        self.device.clone()
    }

    fn shape(&self) -> [usize; 2] {
        self.shape
    }
}

impl<F: FloatElement + CubeFloat> Nf4Kernels<Fusion<Cube<F>>> for CudaWeight {
    /// Runs on the unfused backend: the pending fused operations that produce `x` are
    /// executed first (no host synchronisation), and the result joins the fusion stream as a
    /// new tensor.
    fn matmul(&self, x: Tensor<Fusion<Cube<F>>, 2>) -> Tensor<Fusion<Cube<F>>, 2> {
        let x: FusionTensor<_> = x.into_primitive().tensor();
        let client = x.client.clone();
        let inner = client.resolve_tensor_float::<Cube<F>>(x);
        let y = self.matmul_cube::<F>(inner);
        Tensor::from_primitive(TensorPrimitive::Float(to_fusion::<F>(y, &client)))
    }

    fn dequantize(&self) -> Tensor<Fusion<Cube<F>>, 2> {
        let w = self.dequantize_cube(<F as burn::tensor::Element>::dtype());
        let client = burn_fusion::get_client::<Cube<F>>(&self.device);
        Tensor::from_primitive(TensorPrimitive::Float(to_fusion::<F>(w, &client)))
    }

    fn to_quant_state(&self) -> Result<Arc<QuantState>> {
        self.read_back()
    }

    fn residency(&self) -> Residency {
        Residency::Cuda
    }

    fn device(&self) -> CudaDevice {
        self.device.clone()
    }

    fn shape(&self) -> [usize; 2] {
        self.shape
    }
}

/// A tensor of the unfused backend as a new tensor of the fusion stream (as burn-fusion's own
/// `float_from_data` registers one).
fn to_fusion<F: FloatElement>(
    tensor: CubeTensor<CudaRuntime>,
    client: &burn_fusion::client::GlobalFusionClient<<Cube<F> as FusionBackend>::FusionRuntime>,
) -> FusionTensor<<Cube<F> as FusionBackend>::FusionRuntime> {
    let shape = tensor.shape();
    let dtype = tensor.dtype;
    let handle = <Cube<F> as BackendIr>::float_tensor_handle(tensor);
    let desc = InitOperationIr::create(shape, dtype, || client.register_tensor_handle(handle));
    let mut out = client.register(
        OperationStreams::default(),
        OperationIr::Init(desc),
        NoOp::<Cube<F>>::new(),
    );
    match out.pop() {
        Some(t) => t,
        None => unreachable!("an Init operation has exactly one output"),
    }
}
