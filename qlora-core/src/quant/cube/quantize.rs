//! Blockwise NF4 quantization on the GPU (quantize-on-load), with the CPU path's exact codes.
//!
//! One thread per block: absmax (NaN propagates, as `torch.max`), then every code as the
//! count of midpoints below the scaled value (ties go to the lower code, NaN to 15), packed
//! two per byte with the first element in the high nibble. Full blocks scale by the
//! reciprocal of the floored absmax, the partial last block divides, and it stores the floored
//! absmax: all as bitsandbytes' CPU kernel and [`crate::quant::nf4::quantize_nf4_reference`]. Division is
//! IEEE (cubecl compiles without fast math unless a kernel opts in), so the codes are the CPU's.
//! Double quantization of the (small) absmax vector is done on the host afterwards.

use cubecl::prelude::*;
use cubecl::server::Handle;

use super::client::{CubeFloat, CubeNf4};
use super::error::{CubeError, CubeResult};
use crate::quant::double_quant::DoubleQuant;
use crate::quant::nf4::{Blocksize, Nf4Blocks, ABSMAX_FLOOR};
use crate::quant::{Absmax, QuantConfig, QuantState};

/// Threads per cube.
const QUANTIZE_CUBE: u32 = 128;

/// The NF4 code of a scaled value: the number of midpoints below it; 15 for NaN.
#[cube]
fn nf4_code(scaled: f32, midpoints: &Array<f32>) -> u32 {
    let mut code = 0u32;
    if scaled.is_nan() {
        code = 15u32;
    } else {
        #[unroll]
        for i in 0..15usize {
            code += u32::cast_from(midpoints[i] < scaled);
        }
    }
    code
}

#[cube(launch_unchecked)]
fn nf4_quantize_kernel<F: Float>(
    input: &Array<F>,
    midpoints: &Array<f32>,
    packed: &mut Array<u32>,
    absmax_out: &mut Array<f32>,
    numel: u32,
    blocksize: u32,
    floor_min: f32,
) {
    let block = ABSOLUTE_POS;
    let bs = blocksize as usize;
    let n = numel as usize;
    let start = block * bs;
    if start >= n {
        terminate!();
    }
    let full = start + bs <= n;
    let mut end = n;
    if full {
        end = start + bs;
    }
    // torch.max: the first NaN wins and stays.
    let mut am = 0.0f32;
    let mut seen_nan = false;
    for i in start..end {
        let a = f32::cast_from(input[i]).abs();
        if !seen_nan {
            if a.is_nan() {
                seen_nan = true;
                am = a;
            } else if a > am {
                am = a;
            }
        }
    }
    let mut floor = am;
    if !seen_nan && am < floor_min {
        floor = floor_min;
    }
    let inv = 1.0f32 / floor;
    if full {
        absmax_out[block] = am;
    } else {
        absmax_out[block] = floor;
    }
    let words = bs / 8;
    for wi in 0..words {
        let mut word = 0u32;
        #[unroll]
        for j in 0..8u32 {
            let e = start + wi * 8 + (j as usize);
            // Past the end: the padding code 7 (bitsandbytes pads with 0.0).
            let mut c = 7u32;
            if e < n {
                let x = f32::cast_from(input[e]);
                let mut s = x * inv;
                if !full {
                    s = x / floor;
                }
                c = nf4_code(s, midpoints);
            }
            // Element j of the word: byte j / 2, high nibble for even j.
            let shift = (j / 2) * 8 + (1 - (j % 2)) * 4;
            word |= c << shift;
        }
        packed[block * words + wi] = word;
    }
}

impl<R: Runtime> CubeNf4<R> {
    /// Quantizes `numel` elements of `F` already on the device: returns the packed codes
    /// (`blocks * blocksize / 8` little-endian words; the first `ceil(numel / 2)` bytes are
    /// bitsandbytes' layout) and the `f32` absmax (one per block), both on the device.
    pub fn quantize_device<F: CubeFloat>(
        &self,
        input: &Handle,
        numel: usize,
        blocksize: Blocksize,
    ) -> CubeResult<(Handle, Handle)> {
        let numel_u32 = u32::try_from(numel).map_err(|_| CubeError::Shape {
            tensor: "input".to_string(),
            reason: format!("{numel} elements: the kernels index with 32 bits"),
        })?;
        let bs = blocksize.get();
        let blocks = blocksize.blocks(numel);
        let words = blocks * bs / 8;
        let packed = self.client.empty(words.max(1) * 4);
        let absmax = self.client.empty(blocks.max(1) * 4);
        if numel == 0 {
            return Ok((packed, absmax));
        }
        // SAFETY: array lengths are those of the buffers; a thread touches only its block's
        // inputs (bounded by `numel`) and its block's `bs / 8` words and one absmax.
        unsafe {
            nf4_quantize_kernel::launch_unchecked::<F, R>(
                &self.client,
                CubeCount::Static((blocks as u32).div_ceil(QUANTIZE_CUBE), 1, 1),
                CubeDim::new_1d(QUANTIZE_CUBE),
                ArrayArg::from_raw_parts(input.clone(), numel),
                ArrayArg::from_raw_parts(self.midpoints.clone(), 15),
                ArrayArg::from_raw_parts(packed.clone(), words),
                ArrayArg::from_raw_parts(absmax.clone(), blocks),
                numel_u32,
                bs as u32,
                ABSMAX_FLOOR,
            )
        };
        Ok((packed, absmax))
    }

    /// Quantizes `values` on the GPU into packed codes and `f32` absmax (identical to
    /// [`crate::quant::nf4::quantize_nf4_reference`]).
    pub fn quantize_blocks<F: CubeFloat>(
        &self,
        values: &[F],
        blocksize: Blocksize,
    ) -> CubeResult<Nf4Blocks> {
        let numel = values.len();
        if numel == 0 {
            return Ok(Nf4Blocks {
                packed: Vec::new(),
                absmax: Vec::new(),
            });
        }
        let input = self.upload_values(values);
        let (packed, absmax) = self.quantize_device::<F>(&input, numel, blocksize)?;
        let blocks = blocksize.blocks(numel);
        let mut packed: Vec<u8> =
            self.read(packed, blocks * blocksize.get() / 2, "packed codes")?;
        packed.truncate(numel.div_ceil(2));
        let absmax: Vec<f32> = self.read(absmax, blocks, "absmax")?;
        Ok(Nf4Blocks { packed, absmax })
    }

    /// [`QuantState::quantize`] with the blockwise pass on the GPU; double quantization (when
    /// `config.double_quant`) on the host. Same state as the CPU path.
    pub fn quantize<F: CubeFloat>(
        &self,
        values: &[F],
        shape: &[usize],
        config: QuantConfig,
    ) -> CubeResult<QuantState> {
        let numel: usize = shape.iter().product();
        if numel != values.len() {
            return Err(CubeError::Shape {
                tensor: "input".to_string(),
                reason: format!("{} values for shape {shape:?}", values.len()),
            });
        }
        let blocks = self.quantize_blocks(values, config.blocksize)?;
        let absmax = if config.double_quant {
            Absmax::Double(DoubleQuant::compress(&blocks.absmax))
        } else {
            Absmax::Plain(blocks.absmax)
        };
        Ok(QuantState::from_parts(
            "input",
            blocks.packed,
            absmax,
            shape.to_vec(),
            F::DTYPE,
            config.blocksize,
        )?)
    }
}

#[cfg(test)]
mod tests {

    use super::super::test_support::{client, values, Half};
    use crate::quant::nf4::{quantize_nf4_reference, NF4_MIDPOINTS};
    use crate::{Blocksize, QuantConfig, QuantState};

    /// Inputs with the edge cases: exact midpoints (scaled by a block absmax of 1), an
    /// all-zero block, NaN, infinities, subnormals, an odd count and a partial last block.
    fn edge_cases() -> Vec<f32> {
        let mut v = Vec::new();
        v.push(1.0);
        v.extend(NF4_MIDPOINTS);
        v.extend(NF4_MIDPOINTS.iter().map(|m| -m));
        v.resize(64, 0.25);
        v.extend([0.0f32; 64]);
        v.extend([f32::NAN, 0.5, -0.5]);
        v.resize(192, 0.1);
        v.extend([f32::INFINITY, -3.0, 1e-40, -1e-40]);
        v.resize(256, 0.0);
        v.extend([1e-39, -2e-39, 5e-40]);
        v.extend(values(1000, 7));
        v
    }

    #[test]
    #[cfg_attr(not(feature = "wgpu"), ignore = "needs a GPU, or --features wgpu")]
    fn quantize_matches_cpu_reference_bit_for_bit() {
        let gpu = client();
        let inputs = [edge_cases(), values(64 * 1000 + 33, 5), values(4096 * 3, 9)];
        for v in &inputs {
            for bs in [32, 64, 256, 4096] {
                let blocksize = Blocksize::new(bs).unwrap();
                let want = quantize_nf4_reference(v, blocksize);
                let got = gpu.quantize_blocks(v, blocksize).unwrap();
                assert_eq!(got.packed, want.packed, "codes, n={} bs={bs}", v.len());
                let bits = |a: &[f32]| a.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got.absmax), bits(&want.absmax), "absmax, bs={bs}");
                let v16: Vec<Half> = v.iter().map(|x| Half::from_f32(*x)).collect();
                let want = quantize_nf4_reference(&v16, blocksize);
                let got = gpu.quantize_blocks(&v16, blocksize).unwrap();
                assert_eq!(got.packed, want.packed, "Half codes, bs={bs}");
            }
        }
    }

    #[test]
    #[cfg_attr(not(feature = "wgpu"), ignore = "needs a GPU, or --features wgpu")]
    fn quantize_state_equals_cpu_state() {
        let gpu = client();
        let v = values(64 * 256 * 3 + 64, 2);
        for dq in [false, true] {
            let config = QuantConfig {
                blocksize: Blocksize::default(),
                double_quant: dq,
            };
            let shape = [v.len() / 64, 64];
            let cpu = QuantState::quantize(&v, &shape, config).unwrap();
            let gpu_state = gpu.quantize(&v, &shape, config).unwrap();
            assert_eq!(gpu_state, cpu, "dq={dq}");
        }
        assert!(gpu.quantize(&v, &[3, 5], QuantConfig::default()).is_err());
    }
}
