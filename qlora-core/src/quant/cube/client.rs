//! [`CubeNf4`]: a cubecl compute client with the NF4 tables uploaded, and [`DeviceNf4`], an
//! NF4 weight resident on its device.

use cubecl::prelude::*;
use cubecl::server::Handle;

use super::error::{CubeError, CubeResult};
use crate::quant::dtype::QuantFloat;
use crate::quant::nf4::{Blocksize, NF4_CODE, NF4_MIDPOINTS};
use crate::quant::{Absmax, DoubleQuant, FloatDtype, QuantState};

/// Element types the kernels read and write: `f32`, `bf16` and `f16`.
pub trait CubeFloat: Float + CubeElement + QuantFloat + bytemuck::Pod {}

impl<T: Float + CubeElement + QuantFloat + bytemuck::Pod> CubeFloat for T {}

/// The compute client of one device of runtime `R` (CUDA on NVIDIA GPUs; wgpu in the
/// tests), with the small constant tables the NF4 kernels read (the 16 NF4 values and their
/// 15 midpoints) uploaded once.
#[derive(Clone)]
pub struct CubeNf4<R: Runtime> {
    pub(crate) client: ComputeClient<R>,
    pub(crate) code: Handle,
    pub(crate) midpoints: Handle,
    /// A one-element buffer standing in for the operands a kernel variant does not read.
    pub(crate) dummy: Handle,
}

impl<R: Runtime> std::fmt::Debug for CubeNf4<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CubeNf4").finish_non_exhaustive()
    }
}

impl<R: Runtime> CubeNf4<R> {
    /// Uploads the NF4 tables through `client`.
    pub fn new(client: ComputeClient<R>) -> Self {
        let code = client.create_from_slice(f32::as_bytes(&NF4_CODE));
        let midpoints = client.create_from_slice(f32::as_bytes(&NF4_MIDPOINTS));
        let dummy = client.create_from_slice(u32::as_bytes(&[0u32]));
        CubeNf4 {
            client,
            code,
            midpoints,
            dummy,
        }
    }

    /// The width of the device's planes (warps): 32 on NVIDIA GPUs, 8 on Mesa's lavapipe.
    pub(crate) fn plane_size(&self) -> u32 {
        self.client.properties().hardware.plane_size_max.max(1)
    }

    /// The underlying cubecl client (for launching other kernels on the same stream).
    pub fn client(&self) -> &ComputeClient<R> {
        &self.client
    }

    /// Copies a quantized weight to the device (packed codes padded to whole 32-bit words;
    /// absmax as `f32`, or as 8-bit codes plus the nested state when double-quantized).
    pub fn upload(&self, state: &QuantState) -> CubeResult<DeviceNf4> {
        let numel = state.numel();
        let numel_u32 = u32::try_from(numel).map_err(|_| CubeError::Shape {
            tensor: "weight".to_string(),
            reason: format!("{numel} elements: the kernels index with 32 bits"),
        })?;
        let packed = self.client.create_from_slice(&pad_to_words(state.packed()));
        let words = numel.div_ceil(8);
        let absmax = match state.absmax() {
            Absmax::Plain(a) => {
                DeviceAbsmax::Plain(self.client.create_from_slice(f32::as_bytes(a)))
            }
            Absmax::Double(d) => DeviceAbsmax::Double {
                codes: self.client.create_from_slice(&pad_to_words(&d.codes)),
                nested_absmax: self
                    .client
                    .create_from_slice(f32::as_bytes(&d.nested_absmax)),
                nested_code: self.client.create_from_slice(f32::as_bytes(&d.nested_code)),
                offset: d.offset,
                nested_blocksize: u32::try_from(d.nested_blocksize).map_err(|_| {
                    CubeError::Shape {
                        tensor: "weight.nested_absmax".to_string(),
                        reason: format!("nested blocksize {} too large", d.nested_blocksize),
                    }
                })?,
            },
        };
        Ok(DeviceNf4 {
            packed,
            words,
            absmax,
            blocks: state.absmax().len(),
            numel: numel_u32,
            shape: state.shape().to_vec(),
            blocksize: state.blocksize(),
        })
    }

    /// Copies host values to a new device buffer.
    pub fn upload_values<T: bytemuck::Pod>(&self, values: &[T]) -> Handle {
        self.client.create_from_slice(bytemuck::cast_slice(values))
    }

    /// Waits until every kernel launched so far has finished (for timing).
    pub fn sync(&self) -> CubeResult<()> {
        cubecl::future::block_on(self.client.sync()).map_err(|e| CubeError::Read {
            what: "stream synchronisation".to_string(),
            reason: format!("{e:?}"),
        })
    }

    /// Bytes the client's memory pools hold on the device (reserved, not only in use).
    pub fn reserved_bytes(&self) -> CubeResult<u64> {
        self.client
            .memory_usage()
            .map(|u| u.bytes_reserved)
            .map_err(|e| CubeError::Read {
                what: "memory usage".to_string(),
                reason: format!("{e:?}"),
            })
    }

    /// Reads `len` elements of `T` back from `handle`.
    pub fn read<T: bytemuck::Pod>(
        &self,
        handle: Handle,
        len: usize,
        what: &str,
    ) -> CubeResult<Vec<T>> {
        let bytes = self.client.read_one(handle).map_err(|e| CubeError::Read {
            what: what.to_string(),
            reason: format!("{e:?}"),
        })?;
        let need = len * std::mem::size_of::<T>();
        if bytes.len() < need {
            return Err(CubeError::Read {
                what: what.to_string(),
                reason: format!("{} bytes, expected {need}", bytes.len()),
            });
        }
        Ok(bytemuck::pod_collect_to_vec(&bytes[..need]))
    }

    /// Reads a device weight back into a host [`QuantState`] whose original dtype was
    /// `dtype` (for saving from the device copy).
    pub fn download(&self, w: &DeviceNf4, dtype: FloatDtype) -> CubeResult<QuantState> {
        let packed: Vec<u8> = self.read(w.packed.clone(), w.numel().div_ceil(2), "packed codes")?;
        let absmax = match &w.absmax {
            DeviceAbsmax::Plain(a) => Absmax::Plain(self.read(a.clone(), w.blocks, "absmax")?),
            DeviceAbsmax::Double {
                codes,
                nested_absmax,
                nested_code,
                offset,
                nested_blocksize,
            } => {
                let nbs = *nested_blocksize as usize;
                Absmax::Double(DoubleQuant {
                    codes: self.read(codes.clone(), w.blocks, "absmax codes")?,
                    nested_absmax: self.read(
                        nested_absmax.clone(),
                        w.blocks.div_ceil(nbs),
                        "nested absmax",
                    )?,
                    offset: *offset,
                    nested_blocksize: nbs,
                    nested_code: self.read(nested_code.clone(), 256, "nested quant map")?,
                })
            }
        };
        let shape = w.shape.clone();
        Ok(QuantState::from_parts(
            "weight",
            packed,
            absmax,
            shape,
            dtype,
            w.blocksize,
        )?)
    }
}

/// The absmax of a [`DeviceNf4`].
#[derive(Clone, Debug)]
pub(crate) enum DeviceAbsmax {
    /// One `f32` per block.
    Plain(Handle),
    /// Double quantization: 8-bit codes (4 per word), nested absmax, nested code, offset.
    Double {
        codes: Handle,
        nested_absmax: Handle,
        nested_code: Handle,
        offset: f32,
        nested_blocksize: u32,
    },
}

/// An NF4 weight resident on a device (made by [`CubeNf4::upload`]).
#[derive(Clone, Debug)]
pub struct DeviceNf4 {
    pub(crate) packed: Handle,
    /// Number of 32-bit words of `packed` holding codes (`ceil(numel / 8)`).
    pub(crate) words: usize,
    pub(crate) absmax: DeviceAbsmax,
    pub(crate) blocks: usize,
    pub(crate) numel: u32,
    pub(crate) shape: Vec<usize>,
    pub(crate) blocksize: Blocksize,
}

impl DeviceNf4 {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.numel as usize
    }

    /// The original shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Whether absmax is double-quantized.
    pub fn is_double_quant(&self) -> bool {
        matches!(self.absmax, DeviceAbsmax::Double { .. })
    }

    /// Bytes the weight occupies on the device (codes, absmax and nested state).
    pub fn device_bytes(&self) -> usize {
        let absmax = match &self.absmax {
            DeviceAbsmax::Plain(_) => 4 * self.blocks,
            DeviceAbsmax::Double {
                nested_blocksize, ..
            } => {
                self.blocks.div_ceil(4) * 4
                    + 4 * self.blocks.div_ceil(*nested_blocksize as usize)
                    + 1024
            }
        };
        self.words * 4 + absmax
    }
}

/// `bytes` padded with zeros to a whole number of little-endian 32-bit words.
pub(crate) fn pad_to_words(bytes: &[u8]) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v.resize(bytes.len().div_ceil(4) * 4, 0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_to_whole_words() {
        assert_eq!(pad_to_words(&[1, 2, 3, 4, 5]), vec![1, 2, 3, 4, 5, 0, 0, 0]);
        assert_eq!(pad_to_words(&[1, 2, 3, 4]), vec![1, 2, 3, 4]);
        assert!(pad_to_words(&[]).is_empty());
    }
}
