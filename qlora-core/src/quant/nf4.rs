//! NF4: the 4-bit NormalFloat data type of QLoRA, blockwise, exactly as bitsandbytes 0.50.
//!
//! The reference implementation here follows bitsandbytes' CPU `quantize_4bit` (its default
//! PyTorch kernel, `bitsandbytes/backends/default/ops.py`) operation for operation:
//!
//! * the input is widened to `f32` and cut into blocks of `blocksize` elements (the last block
//!   may be shorter);
//! * `absmax` of a block is `max |x|` in `f32` (an all-zero full block stores `0`; the
//!   shorter last block stores `max(absmax, 1e-38)`, as bitsandbytes clamps it in place);
//! * a full block is scaled by `x * (1 / max(absmax, 1e-38))`, the shorter last block by
//!   `x / max(absmax, 1e-38)` (two different roundings, as in bitsandbytes);
//! * the code is `torch.bucketize(scaled, midpoints)`: the number of the 15 midpoints between
//!   neighbouring codes that are *not* `>= scaled`, so a value exactly on a midpoint goes to
//!   the lower code, zero goes to code 7, and NaN to code 15;
//! * codes are packed two per byte, the first element in the **high** nibble; an odd element
//!   count is padded with one `0.0` (code 7 in the last low nibble).
//!
//! Dequantization is `NF4_CODE[code] * absmax` in `f32`, then rounded to the output dtype.
//! The fast, multi-threaded versions live in [`crate::quant::cpu::fast`] and are tested against
//! these.

use crate::error::{Error, Result};
use crate::quant::dtype::QuantFloat;

/// The 16 NF4 code values, sorted.
///
/// These are bitsandbytes' `get_4bit_type("nf4")` values, which QLoRA derived from the
/// quantiles of a standard normal distribution (`create_normal_map(offset=0.9677083)`),
/// normalized to `[-1, 1]` with an exact zero at index 7.
pub const NF4_CODE: [f32; 16] = [
    -1.0,
    -0.696_192_8,
    -0.525_073_05,
    -0.394_917_5,
    -0.284_441_38,
    -0.184_773_43,
    -0.091_050_036,
    0.0,
    0.079_580_3,
    0.160_930_2,
    0.246_112_3,
    0.337_915_24,
    0.440_709_83,
    0.562_617,
    0.722_956_84,
    1.0,
];

/// The 15 bucket boundaries `(NF4_CODE[i] + NF4_CODE[i + 1]) / 2`, computed in `f32` as
/// bitsandbytes does.
pub const NF4_MIDPOINTS: [f32; 15] = {
    let mut m = [0.0f32; 15];
    let mut i = 0;
    while i < 15 {
        m[i] = (NF4_CODE[i] + NF4_CODE[i + 1]) / 2.0;
        i += 1;
    }
    m
};

/// bitsandbytes clamps absmax to at least this value (`1e-38` as `f32`, a subnormal) before
/// taking its reciprocal.
pub const ABSMAX_FLOOR: f32 = 1e-38;

/// The blocksizes bitsandbytes' `quantize_4bit` allows: powers of two from 32 to 4096.
pub const ALLOWED_BLOCKSIZES: [usize; 8] = [32, 64, 128, 256, 512, 1024, 2048, 4096];

/// A validated NF4 blocksize (a power of two from 32 to 4096; 64 by default).
///
/// ```
/// use qlora_core::Blocksize;
/// assert_eq!(Blocksize::default().get(), 64);
/// assert_eq!(Blocksize::new(128).unwrap().get(), 128);
/// assert!(Blocksize::new(48).is_err());
/// assert!(Blocksize::new(8192).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Blocksize(usize);

impl Blocksize {
    /// Validates `blocksize`.
    pub fn new(blocksize: usize) -> Result<Self> {
        if ALLOWED_BLOCKSIZES.contains(&blocksize) {
            Ok(Blocksize(blocksize))
        } else {
            Err(Error::InvalidBlocksize { blocksize })
        }
    }

    /// The blocksize as a number.
    pub fn get(self) -> usize {
        self.0
    }

    /// Number of blocks for `numel` elements (the last one may be partial).
    pub fn blocks(self, numel: usize) -> usize {
        numel.div_ceil(self.0)
    }
}

impl Default for Blocksize {
    fn default() -> Self {
        Blocksize(64)
    }
}

impl TryFrom<usize> for Blocksize {
    type Error = Error;
    fn try_from(value: usize) -> Result<Self> {
        Blocksize::new(value)
    }
}

/// The NF4 code of a value already scaled by its block's absmax: the number of midpoints `m`
/// with `!(m >= scaled)`, which is `torch.bucketize(scaled, midpoints)` (ties go to the lower
/// code; NaN gives 15). Branch-free, so loops over it vectorize.
///
/// ```
/// use qlora_core::{quant::nf4::nf4_code, quant::nf4::NF4_MIDPOINTS};
/// assert_eq!(nf4_code(0.0), 7);
/// assert_eq!(nf4_code(1.0), 15);
/// assert_eq!(nf4_code(-1.0), 0);
/// assert_eq!(nf4_code(NF4_MIDPOINTS[7]), 7); // a tie goes to the lower code
/// assert_eq!(nf4_code(f32::NAN), 15);
/// ```
#[inline(always)]
// `!(m >= x)` rather than `m < x` on purpose: it is true for NaN, as torch.bucketize is.
#[allow(clippy::neg_cmp_op_on_partial_ord)]
pub fn nf4_code(scaled: f32) -> u8 {
    let mut code = 0u8;
    for m in NF4_MIDPOINTS {
        code += u8::from(!(m >= scaled));
    }
    code
}

/// Packs 4-bit codes two per byte, the first in the high nibble; an odd count is padded with
/// code 7 (bitsandbytes pads the scaled values with `0.0`).
///
/// ```
/// use qlora_core::{quant::nf4::pack_nibbles, quant::nf4::unpack_nibbles};
/// let packed = pack_nibbles(&[1, 2, 3]);
/// assert_eq!(packed, vec![0x12, 0x37]);
/// assert_eq!(unpack_nibbles(&packed, 3), vec![1, 2, 3]);
/// ```
pub fn pack_nibbles(codes: &[u8]) -> Vec<u8> {
    codes
        .chunks(2)
        .map(|pair| {
            let hi = pair[0] & 0x0f;
            let lo = pair.get(1).map_or(7, |c| c & 0x0f);
            (hi << 4) | lo
        })
        .collect()
}

/// Unpacks the first `numel` 4-bit codes from bytes packed by [`pack_nibbles`]. Missing
/// trailing bytes read as code 0 (callers validate lengths first).
pub fn unpack_nibbles(packed: &[u8], numel: usize) -> Vec<u8> {
    (0..numel)
        .map(|i| {
            let byte = packed.get(i / 2).copied().unwrap_or(0);
            if i % 2 == 0 {
                byte >> 4
            } else {
                byte & 0x0f
            }
        })
        .collect()
}

/// Packed NF4 codes and per-block absmax: the output of blockwise quantization.
#[derive(Clone, Debug, PartialEq)]
pub struct Nf4Blocks {
    /// `ceil(numel / 2)` bytes, first element in the high nibble.
    pub packed: Vec<u8>,
    /// One `f32` absmax per block.
    pub absmax: Vec<f32>,
}

/// Reference blockwise NF4 quantization, element by element, exactly as bitsandbytes' CPU
/// `quantize_4bit` (see the module docs). Use [`crate::quant::cpu::fast::quantize_nf4`] for speed;
/// the two give identical bytes.
///
/// ```
/// use qlora_core::{quant::nf4::quantize_nf4_reference, Blocksize};
/// let q = quantize_nf4_reference(&[0.5f32, -1.0, 0.0], Blocksize::default());
/// assert_eq!(q.absmax, vec![1.0]);
/// assert_eq!(q.packed, vec![0xc0, 0x77]); // codes 12, 0, 7 and a padding 7
/// ```
pub fn quantize_nf4_reference<T: QuantFloat>(values: &[T], blocksize: Blocksize) -> Nf4Blocks {
    let bs = blocksize.get();
    let numel = values.len();
    let full_blocks = numel / bs;
    let mut codes = Vec::with_capacity(numel);
    let mut absmax = Vec::with_capacity(blocksize.blocks(numel));
    for (b, block) in values.chunks(bs).enumerate() {
        let xs: Vec<f32> = block.iter().map(|v| v.to_f32()).collect();
        // torch.max propagates NaN.
        let am = xs.iter().fold(0.0f32, |m, &x| {
            let a = x.abs();
            if a.is_nan() || m.is_nan() {
                f32::NAN
            } else {
                m.max(a)
            }
        });
        let floor = if am.is_nan() {
            am
        } else {
            am.max(ABSMAX_FLOOR)
        };
        if b < full_blocks {
            absmax.push(am);
            let inv = 1.0f32 / floor;
            codes.extend(xs.iter().map(|&x| nf4_code(x * inv)));
        } else {
            // bitsandbytes stores the *clamped* absmax of the partial last block.
            absmax.push(floor);
            codes.extend(xs.iter().map(|&x| nf4_code(x / floor)));
        }
    }
    Nf4Blocks {
        packed: pack_nibbles(&codes),
        absmax,
    }
}

/// Checks that `packed` and `absmax` fit `numel` elements at `blocksize`; `tensor` names the
/// tensor in the error.
pub fn check_nf4_lengths(
    tensor: &str,
    packed_len: usize,
    absmax_len: usize,
    numel: usize,
    blocksize: Blocksize,
) -> Result<()> {
    if packed_len != numel.div_ceil(2) {
        return Err(Error::ShapeMismatch {
            tensor: tensor.to_string(),
            expected: format!("{} packed bytes for {numel} elements", numel.div_ceil(2)),
            got: format!("{packed_len} bytes"),
        });
    }
    if absmax_len != blocksize.blocks(numel) {
        return Err(Error::ShapeMismatch {
            tensor: format!("{tensor}.absmax"),
            expected: format!(
                "{} blocks for {numel} elements at blocksize {}",
                blocksize.blocks(numel),
                blocksize.get()
            ),
            got: format!("{absmax_len} values"),
        });
    }
    Ok(())
}

/// Reference NF4 dequantization to `f32`: `NF4_CODE[code] * absmax[block]` per element.
/// Round the result with [`QuantFloat::from_f32`] to get bitsandbytes' output in another dtype.
///
/// ```
/// use qlora_core::{quant::nf4::dequantize_nf4_reference, Blocksize};
/// let x = dequantize_nf4_reference(&[0xd0, 0x77], &[2.0], 3, Blocksize::default()).unwrap();
/// assert_eq!(x, vec![0.562617 * 2.0, -2.0, 0.0]);
/// ```
pub fn dequantize_nf4_reference(
    packed: &[u8],
    absmax: &[f32],
    numel: usize,
    blocksize: Blocksize,
) -> Result<Vec<f32>> {
    check_nf4_lengths("nf4", packed.len(), absmax.len(), numel, blocksize)?;
    Ok(unpack_nibbles(packed, numel)
        .into_iter()
        .enumerate()
        .map(|(i, c)| NF4_CODE[usize::from(c)] * absmax[i / blocksize.get()])
        .collect())
}

/// Largest distance between two neighbouring NF4 codes (between -1.0 and -0.696).
pub const NF4_MAX_GAP: f32 = {
    let mut g = 0.0f32;
    let mut i = 0;
    while i < 15 {
        let d = NF4_CODE[i + 1] - NF4_CODE[i];
        if d > g {
            g = d;
        }
        i += 1;
    }
    g
};
