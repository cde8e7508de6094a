//! [`Nf4Weight`]: a frozen 4-bit weight as a burn module field, resident on its device.
//!
//! It holds the backend's [`Nf4Kernels`] for the weight, has no parameters and no record (the
//! weight is frozen and saved in bitsandbytes' layout through
//! [`Nf4Linear::to_quant_state`](super::Nf4Linear::to_quant_state), not through burn's
//! records), and follows its layer into and out of autodiff without copying the weight.

use std::fmt;
use std::sync::Arc;

use burn::module::{
    AutodiffModule, Content, Devices, EmptyRecord, Module, ModuleDisplay, ModuleDisplayDefault,
    ModuleMapper, ModuleVisitor,
};
use burn::tensor::backend::{AutodiffBackend, Backend};

use super::kernels::{cast, kernels_for, wrap_autodiff, Residency, SharedKernels};
use super::QuantState;
use crate::error::Result;

/// A frozen NF4 weight `[out, in]` on the device its backend computes on.
#[derive(Clone)]
pub struct Nf4Weight<B: Backend> {
    pub(crate) kernels: SharedKernels<B>,
}

impl<B: Backend> Nf4Weight<B> {
    /// Uploads `state` (2-D) to `device`, once.
    pub(crate) fn upload(state: QuantState, device: &B::Device) -> Result<Self> {
        Ok(Nf4Weight {
            kernels: kernels_for::<B>(state, device)?,
        })
    }

    /// Where the weight lives.
    pub fn residency(&self) -> Residency {
        self.kernels.residency()
    }

    /// `[out, in]`.
    pub fn shape(&self) -> [usize; 2] {
        self.kernels.shape()
    }

    /// The quantization state on the host (read back from the device where it lives there).
    ///
    /// # Errors
    /// When the device's buffers cannot be read back.
    pub fn to_quant_state(&self) -> Result<Arc<QuantState>> {
        self.kernels.to_quant_state()
    }

    /// The same weight for backend `B2` on `device`: shared where `B2` runs the same kernels
    /// (leaving or entering autodiff), else read back and uploaded again.
    fn rebuild<B2: Backend>(&self, device: &B2::Device) -> Nf4Weight<B2> {
        match self.to_quant_state() {
            Ok(state) => match kernels_for::<B2>(QuantState::clone(&state), device) {
                Ok(kernels) => Nf4Weight { kernels },
                Err(e) => panic!("re-uploading a 4-bit weight failed: {e}"),
            },
            Err(e) => panic!("reading a 4-bit weight back from its device failed: {e}"),
        }
    }
}

impl<B: Backend> fmt::Debug for Nf4Weight<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Nf4Weight")
            .field("shape", &self.shape())
            .field("residency", &self.residency())
            .finish()
    }
}

impl<B: Backend> Module<B> for Nf4Weight<B> {
    type Record = EmptyRecord;

    fn collect_devices(&self, mut devices: Devices<B>) -> Devices<B> {
        let device = self.kernels.device();
        if !devices.contains(&device) {
            devices.push(device);
        }
        devices
    }

    fn fork(self, device: &B::Device) -> Self {
        self.to_device(device)
    }

    /// Moves the weight to `device` (reads it back and uploads it there; free when it is
    /// already on `device`).
    ///
    /// # Panics
    /// When the weight cannot be read back from its current device, as burn's own tensor
    /// transfers panic.
    fn to_device(self, device: &B::Device) -> Self {
        if self.kernels.device() == *device {
            return self;
        }
        self.rebuild::<B>(device)
    }

    fn visit<V: ModuleVisitor<B>>(&self, _visitor: &mut V) {}

    fn map<M: ModuleMapper<B>>(self, _mapper: &mut M) -> Self {
        self
    }

    fn load_record(self, _record: Self::Record) -> Self {
        self
    }

    fn into_record(self) -> Self::Record {
        EmptyRecord::new()
    }
}

impl<B: AutodiffBackend> AutodiffModule<B> for Nf4Weight<B> {
    type InnerModule = Nf4Weight<B::InnerBackend>;

    /// The same weight on the inner backend: shared, not copied, for the backends with kernels
    /// of their own.
    fn valid(&self) -> Self::InnerModule {
        let shared = self
            .kernels
            .inner_kernels()
            .and_then(|k| k.downcast::<SharedKernels<B::InnerBackend>>().ok());
        match shared {
            Some(kernels) => Nf4Weight { kernels: *kernels },
            None => self.rebuild::<B::InnerBackend>(&self.kernels.device()),
        }
    }

    fn from_inner(module: Self::InnerModule) -> Self {
        let device = module.kernels.device();
        let wrapped = wrap_autodiff::<B::InnerBackend, B>(Arc::clone(&module.kernels))
            .or_else(|| cast::<B::InnerBackend, B>(Arc::clone(&module.kernels)));
        match wrapped {
            Some(kernels) => Nf4Weight { kernels },
            None => module.rebuild::<B>(&device),
        }
    }
}

impl<B: Backend> ModuleDisplayDefault for Nf4Weight<B> {
    fn content(&self, content: Content) -> Option<Content> {
        content.add_formatted(&format!("{self:?}")).optional()
    }
}

impl<B: Backend> ModuleDisplay for Nf4Weight<B> {}
