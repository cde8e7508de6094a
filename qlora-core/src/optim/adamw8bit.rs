//! AdamW with 8-bit blockwise state, as `bitsandbytes.optim.AdamW8bit` (bitsandbytes 0.50.2,
//! `optim_bits=8`, block-wise) computes it on CPU.
//!
//! Each moment of a parameter with at least `min_8bit_size` elements (4096 by default) is
//! stored as one u8 code per element plus one f32 absmax per block of 256 elements:
//! `m` with bitsandbytes' signed dynamic map, `v` with its unsigned dynamic map. A step
//! (bitsandbytes' CPU `optimizer_update_8bit_blockwise`, `backends/cpu/ops.py`), in f32:
//!
//! ```text
//! m ← code₁[q₁]·absmax₁          v ← code₂[q₂]·absmax₂          (dequantize)
//! m ← m·β1 + (1−β1)·g             v ← v·β2 + (1−β2)·g·g
//! denom ← sqrt(v) / sqrt(1 − β2^t) + eps
//! p ← p·(1 − lr·wd)               (only when wd > 0)
//! p ← p + (−lr / (1 − β1^t))·m / denom
//! (q₁, absmax₁) ← quantize(m)     (q₂, absmax₂) ← quantize(v)   (per block of 256)
//! ```
//!
//! where `quantize` is bitsandbytes' native CPU blockwise quantization (absmax per block, the
//! nearest code through its 65,536-bin lookup table; shared with double quantization in
//! [`quantize_blockwise_dynamic`](crate::quant::double_quant::quantize_blockwise_dynamic)). Smaller parameters keep
//! f32 moments and take bitsandbytes' CPU `optimizer_update_32bit` step, which differs from
//! torch's AdamW in where `eps` goes: `p ← p·(1 − lr·wd) + (−lr·c2/c1)·m / (sqrt(v) + eps·c2)`
//! with `c1 = 1 − β1^t`, `c2 = sqrt(1 − β2^t)`.
//!
//! bitsandbytes' CUDA kernel differs slightly from its CPU kernel (weight decay after the
//! update, a sign fix after quantizing `m`); we follow the CPU kernel, the one our fixture runs.
//!
//! The state lives in host memory: parameters and gradients are downloaded for the step and the
//! new parameter uploaded (LoRA matrices are small; the moments take about a quarter of the
//! 32-bit state's memory, see [`AdamW8bit::state_bytes`]).

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::OnceLock;

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;

use super::kind::MIN_8BIT_SIZE;
use super::AdamWConfig;
use crate::quant::double_quant::dynamic_map_signed;
use crate::quant::double_quant::{build_lut, quantize_block_lut, quantize_blockwise_lut};

/// Block size of bitsandbytes' block-wise 8-bit optimizer state.
pub const BLOCKSIZE_8BIT: usize = 256;

/// bitsandbytes' `create_dynamic_map(signed=False)` (the `udynamic` map of `v`): 256 sorted
/// values in `[0, 1]` as `f32` bit patterns, taken from bitsandbytes 0.50.2 by
/// `tools/fixtures/adamw8bit/gen.py` (the fixture's `qmap2`; checked in the tests).
pub const DYNAMIC_MAP_UNSIGNED_BITS: [u32; 256] = [
    0x00000000, 0x34ae7baa, 0x35500998, 0x360e9b38, 0x3692ccf6, 0x36de4c51, 0x3714e5d5, 0x3783126e,
    0x37e171a0, 0x381fe868, 0x384f1800, 0x387e479a, 0x3896bb99, 0x38ae5364, 0x38c5eb31, 0x3906594b,
    0x394154ca, 0x397c5049, 0x399ba5e4, 0x39b923a2, 0x39d6a163, 0x39f41f22, 0x3a08ce71, 0x3a178d50,
    0x3a264c30, 0x3a350b10, 0x3a43c9ef, 0x3a5288d0, 0x3a6147af, 0x3a70068e, 0x3a7ec56e, 0x3a958106,
    0x3aba5e35, 0x3adf3b64, 0x3b020c4a, 0x3b147ae1, 0x3b26e978, 0x3b395810, 0x3b4bc6a7, 0x3b5e3540,
    0x3b70a3d7, 0x3b818937, 0x3b8ac082, 0x3b93f7cf, 0x3b9d2f1a, 0x3ba66666, 0x3baf9db2, 0x3bb8d4fd,
    0x3bc20c4a, 0x3bcb4395, 0x3bd47ae1, 0x3bddb22e, 0x3be6e978, 0x3bf020c5, 0x3bf9580f, 0x3c0147ae,
    0x3c05e354, 0x3c0a7ef9, 0x3c0f1aa0, 0x3c13b645, 0x3c1851eb, 0x3c1ced92, 0x3c218937, 0x3c2f5c2a,
    0x3c466667, 0x3c5d70a3, 0x3c747ae2, 0x3c85c28f, 0x3c9147af, 0x3c9ccccd, 0x3ca851eb, 0x3cb3d70b,
    0x3cbf5c29, 0x3ccae147, 0x3cd66667, 0x3ce1eb87, 0x3ced70a3, 0x3cf8f5c3, 0x3d023d70, 0x3d080000,
    0x3d0dc28f, 0x3d13851f, 0x3d1947af, 0x3d1f0a3d, 0x3d24cccd, 0x3d2a8f5c, 0x3d3051eb, 0x3d36147b,
    0x3d3bd70a, 0x3d41999a, 0x3d475c28, 0x3d4d1eb8, 0x3d52e147, 0x3d58a3d7, 0x3d5e6667, 0x3d6428f7,
    0x3d69eb87, 0x3d6fae15, 0x3d7570a3, 0x3d7b3333, 0x3d807ae2, 0x3d835c2a, 0x3d863d71, 0x3d891eb8,
    0x3d8c0000, 0x3d8ee148, 0x3d91c290, 0x3d94a3d7, 0x3d97851f, 0x3d9a6667, 0x3d9d47af, 0x3da028f6,
    0x3da30a3e, 0x3da5eb85, 0x3da8cccd, 0x3dabae15, 0x3dae8f5c, 0x3db170a4, 0x3db451eb, 0x3db73333,
    0x3dba147b, 0x3dbcf5c3, 0x3dbfd70b, 0x3dc2b852, 0x3dc5999a, 0x3dc87ae2, 0x3dcb5c29, 0x3dd40000,
    0x3de26666, 0x3df0cccd, 0x3dff3333, 0x3e06cccc, 0x3e0e0000, 0x3e153334, 0x3e1c6666, 0x3e23999a,
    0x3e2acccc, 0x3e320000, 0x3e393334, 0x3e406666, 0x3e47999a, 0x3e4ecccc, 0x3e560000, 0x3e5d3334,
    0x3e646666, 0x3e6b999a, 0x3e72cccc, 0x3e7a0000, 0x3e809999, 0x3e843333, 0x3e87cccd, 0x3e8b6666,
    0x3e8f0000, 0x3e92999a, 0x3e963333, 0x3e99cccc, 0x3e9d6666, 0x3ea10000, 0x3ea4999a, 0x3ea83333,
    0x3eabcccc, 0x3eaf6666, 0x3eb30000, 0x3eb6999a, 0x3eba3333, 0x3ebdcccc, 0x3ec16666, 0x3ec50000,
    0x3ec8999a, 0x3ecc3333, 0x3ecfcccc, 0x3ed36666, 0x3ed70000, 0x3eda999a, 0x3ede3333, 0x3ee1cccc,
    0x3ee56666, 0x3ee90000, 0x3eec999a, 0x3ef03333, 0x3ef3cccc, 0x3ef76666, 0x3efb0000, 0x3efe9999,
    0x3f01199a, 0x3f02e666, 0x3f04b333, 0x3f068000, 0x3f084ccc, 0x3f0a199a, 0x3f0be666, 0x3f0db334,
    0x3f0f8000, 0x3f114ccd, 0x3f13199a, 0x3f14e666, 0x3f16b334, 0x3f188000, 0x3f1a4ccd, 0x3f1c199a,
    0x3f1de666, 0x3f1fb334, 0x3f218000, 0x3f234ccd, 0x3f25199a, 0x3f26e666, 0x3f28b334, 0x3f2a8000,
    0x3f2c4ccd, 0x3f2e199a, 0x3f2fe666, 0x3f31b334, 0x3f338000, 0x3f354ccd, 0x3f37199a, 0x3f38e666,
    0x3f3ab334, 0x3f3c8000, 0x3f3e4ccd, 0x3f40199a, 0x3f41e666, 0x3f43b334, 0x3f458000, 0x3f474ccc,
    0x3f49199a, 0x3f4ae666, 0x3f4cb334, 0x3f4e8000, 0x3f504ccc, 0x3f52199a, 0x3f53e666, 0x3f55b334,
    0x3f578000, 0x3f594ccc, 0x3f5b199a, 0x3f5ce666, 0x3f5eb334, 0x3f608000, 0x3f624ccc, 0x3f64199a,
    0x3f65e666, 0x3f67b334, 0x3f698000, 0x3f6b4ccc, 0x3f6d199a, 0x3f6ee666, 0x3f70b334, 0x3f728000,
    0x3f744ccc, 0x3f76199a, 0x3f77e666, 0x3f79b334, 0x3f7b8000, 0x3f7d4ccc, 0x3f7f199a, 0x3f800000,
];

/// [`DYNAMIC_MAP_UNSIGNED_BITS`] as `f32` values.
///
/// ```
/// let m = qlora_core::optim::dynamic_map_unsigned();
/// assert_eq!((m[0], m[255]), (0.0, 1.0));
/// assert!(m.windows(2).all(|w| w[0] < w[1]));
/// ```
pub fn dynamic_map_unsigned() -> [f32; 256] {
    DYNAMIC_MAP_UNSIGNED_BITS.map(f32::from_bits)
}

/// The two codes and their lookup tables.
struct Maps {
    signed: [f32; 256],
    unsigned: [f32; 256],
    signed_lut: Vec<u8>,
    unsigned_lut: Vec<u8>,
}

fn maps() -> &'static Maps {
    static MAPS: OnceLock<Maps> = OnceLock::new();
    MAPS.get_or_init(|| {
        let (signed, unsigned) = (dynamic_map_signed(), dynamic_map_unsigned());
        Maps {
            signed_lut: build_lut(&signed),
            unsigned_lut: build_lut(&unsigned),
            signed,
            unsigned,
        }
    })
}

/// One moment quantized block-wise to 8 bits.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantized8bit {
    /// One code per element.
    pub codes: Vec<u8>,
    /// One absmax per block of [`BLOCKSIZE_8BIT`].
    pub absmax: Vec<f32>,
}

impl Quantized8bit {
    /// All-zero state of `n` elements (codes 0, absmax 0), as bitsandbytes initializes it.
    pub fn zeros(n: usize) -> Self {
        Self {
            codes: vec![0; n],
            absmax: vec![0.0; n.div_ceil(BLOCKSIZE_8BIT)],
        }
    }

    /// Bytes held (codes and absmax).
    pub fn bytes(&self) -> u64 {
        self.codes.len() as u64 + 4 * self.absmax.len() as u64
    }
}

/// The moments of one parameter of an [`AdamW8bit`].
#[derive(Debug, Clone, PartialEq)]
pub enum Moments8bit {
    /// 8-bit block-wise `m` (signed map) and `v` (unsigned map).
    Blockwise {
        /// First moment.
        exp_avg: Quantized8bit,
        /// Second moment.
        exp_avg_sq: Quantized8bit,
    },
    /// f32 moments of a parameter smaller than `min_8bit_size`.
    Full {
        /// First moment.
        exp_avg: Vec<f32>,
        /// Second moment.
        exp_avg_sq: Vec<f32>,
    },
}

/// The state of one parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct AdamW8bitState {
    /// Steps taken on this parameter.
    pub step: u64,
    /// The moments.
    pub moments: Moments8bit,
}

impl AdamW8bitState {
    /// Bytes of the moments.
    pub fn bytes(&self) -> u64 {
        match &self.moments {
            Moments8bit::Blockwise {
                exp_avg,
                exp_avg_sq,
            } => exp_avg.bytes() + exp_avg_sq.bytes(),
            Moments8bit::Full { exp_avg, .. } => 8 * exp_avg.len() as u64,
        }
    }
}

/// The f32 scalars of one 8-bit step, rounded from f64 as torch's CPU kernels do.
#[derive(Debug, Clone, Copy)]
struct Scalars8bit {
    beta1: f32,
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    /// `sqrt(1 − β2^t)` (8-bit path: divides `sqrt(v)`).
    c2: f32,
    eps: f32,
    /// `1 − lr·wd`, applied when `wd > 0`.
    decay: Option<f32>,
    /// `−lr / (1 − β1^t)` (8-bit path).
    neg_step: f32,
    /// `eps · sqrt(1 − β2^t)` (32-bit path).
    eps_c2: f32,
    /// `−lr · sqrt(1 − β2^t) / (1 − β1^t)` (32-bit path).
    step_size: f32,
}

impl Scalars8bit {
    fn new(c: &AdamWConfig, lr: f64, step: u64) -> Self {
        let t = step as f64;
        let c1 = 1.0 - c.beta1.powf(t);
        let c2 = (1.0 - c.beta2.powf(t)).sqrt();
        Self {
            beta1: c.beta1 as f32,
            one_minus_beta1: (1.0 - c.beta1) as f32,
            beta2: c.beta2 as f32,
            one_minus_beta2: (1.0 - c.beta2) as f32,
            c2: c2 as f32,
            eps: c.eps as f32,
            decay: (c.weight_decay > 0.0).then_some((1.0 - lr * c.weight_decay) as f32),
            neg_step: (-lr / c1) as f32,
            eps_c2: (c.eps * c2) as f32,
            step_size: (-lr * c2 / c1) as f32,
        }
    }

    /// The moment updates shared by both paths: `m.mul_(β1).add_(g, alpha=1−β1)` (torch's
    /// vectorized add is a fused multiply-add) and `v.mul_(β2).addcmul_(g, g, value=1−β2)`.
    #[inline(always)]
    fn moments(&self, m: f32, v: f32, g: f32) -> (f32, f32) {
        let m = g.mul_add(self.one_minus_beta1, m * self.beta1);
        let v = v * self.beta2 + self.one_minus_beta2 * g * g;
        (m, v)
    }

    /// One element of the 8-bit path: returns `(p, m, v)`.
    #[inline(always)]
    fn element_8bit(&self, p: f32, g: f32, m: f32, v: f32) -> (f32, f32, f32) {
        let (m, v) = self.moments(m, v, g);
        let denom = v.sqrt() / self.c2 + self.eps;
        let p = self.decay.map_or(p, |d| p * d);
        // addcdiv: p + value·m / denom
        (p + self.neg_step * m / denom, m, v)
    }

    /// One element of bitsandbytes' 32-bit CPU path: returns `(p, m, v)`.
    #[inline]
    fn element_32bit(&self, p: f32, g: f32, m: f32, v: f32) -> (f32, f32, f32) {
        let (m, v) = self.moments(m, v, g);
        let p = self.decay.map_or(p, |d| p * d);
        let update = m / (v.sqrt() + self.eps_c2);
        (update.mul_add(self.step_size, p), m, v)
    }
}

/// `code[q] · absmax[block]` for every element.
fn dequantize(q: &Quantized8bit, code: &[f32; 256]) -> Vec<f32> {
    q.codes
        .iter()
        .enumerate()
        .map(|(i, &c)| code[usize::from(c)] * q.absmax[i / BLOCKSIZE_8BIT])
        .collect()
}

/// The plain reference of one 8-bit step on host slices: dequantize both moments whole,
/// update element by element, re-quantize whole. `step` is the 1-based step after this
/// update. [`AdamW8bit`] runs the same arithmetic fused per block on all cores.
///
/// # Panics
///
/// If the lengths of `param`, `grad` and the states disagree.
pub fn adamw8bit_step_reference(
    param: &mut [f32],
    grad: &[f32],
    exp_avg: &mut Quantized8bit,
    exp_avg_sq: &mut Quantized8bit,
    step: u64,
    lr: f64,
    config: &AdamWConfig,
) {
    let n = param.len();
    assert!(
        grad.len() == n && exp_avg.codes.len() == n && exp_avg_sq.codes.len() == n,
        "AdamW8bit: lengths differ"
    );
    let maps = maps();
    let s = Scalars8bit::new(config, lr, step);
    let mut m = dequantize(exp_avg, &maps.signed);
    let mut v = dequantize(exp_avg_sq, &maps.unsigned);
    for i in 0..n {
        (param[i], m[i], v[i]) = s.element_8bit(param[i], grad[i], m[i], v[i]);
    }
    let (codes, absmax) = quantize_blockwise_lut(&m, BLOCKSIZE_8BIT, &maps.signed_lut);
    *exp_avg = Quantized8bit { codes, absmax };
    let (codes, absmax) = quantize_blockwise_lut(&v, BLOCKSIZE_8BIT, &maps.unsigned_lut);
    *exp_avg_sq = Quantized8bit { codes, absmax };
}

/// Blocks of [`BLOCKSIZE_8BIT`] per rayon task (16 K elements): enough work per task that the
/// scheduling cost vanishes, small enough to balance a LoRA matrix over every core.
const BLOCKS_PER_TASK: usize = 64;

/// The fast 8-bit step: runs of [`BLOCKS_PER_TASK`] blocks in parallel, each block dequantized,
/// updated and re-quantized in place ([`update_block`]), with the AVX2+FMA instantiation where
/// the CPU has it. Same results as [`adamw8bit_step_reference`], bit for bit.
fn step_8bit_fast(
    s: &Scalars8bit,
    param: &mut [f32],
    grad: &[f32],
    m: &mut Quantized8bit,
    v: &mut Quantized8bit,
) {
    let kernel = block_kernel();
    step_8bit_with(kernel, s, param, grad, m, v);
}

/// [`step_8bit_fast`] with a chosen block kernel (the tests run each one).
fn step_8bit_with(
    kernel: BlockKernel,
    s: &Scalars8bit,
    param: &mut [f32],
    grad: &[f32],
    m: &mut Quantized8bit,
    v: &mut Quantized8bit,
) {
    let maps = maps();
    let run = BLOCKSIZE_8BIT * BLOCKS_PER_TASK;
    param
        .par_chunks_mut(run)
        .zip(grad.par_chunks(run))
        .zip(m.codes.par_chunks_mut(run))
        .zip(v.codes.par_chunks_mut(run))
        .zip(
            m.absmax
                .par_chunks_mut(BLOCKS_PER_TASK)
                .zip(v.absmax.par_chunks_mut(BLOCKS_PER_TASK)),
        )
        .for_each(|((((p, g), qm), qv), (am, av))| {
            let blocks = p
                .chunks_mut(BLOCKSIZE_8BIT)
                .zip(g.chunks(BLOCKSIZE_8BIT))
                .zip(qm.chunks_mut(BLOCKSIZE_8BIT))
                .zip(qv.chunks_mut(BLOCKSIZE_8BIT))
                .zip(am.iter_mut().zip(av.iter_mut()));
            for ((((p, g), qm), qv), (am, av)) in blocks {
                kernel(
                    s,
                    maps,
                    Block {
                        p,
                        g,
                        qm,
                        qv,
                        am,
                        av,
                    },
                );
            }
        });
}

/// One block of the 8-bit step: parameters, gradients, the codes of `m` and `v` (all of the
/// block's length, at most [`BLOCKSIZE_8BIT`]) and the two absmax.
struct Block<'a> {
    p: &'a mut [f32],
    g: &'a [f32],
    qm: &'a mut [u8],
    qv: &'a mut [u8],
    am: &'a mut f32,
    av: &'a mut f32,
}

/// A block kernel: [`update_block`] compiled for some CPU features.
type BlockKernel = fn(&Scalars8bit, &Maps, Block<'_>);

/// The portable instantiation of [`update_block`].
fn update_block_portable(s: &Scalars8bit, maps: &Maps, b: Block<'_>) {
    update_block(s, maps, b);
}

/// The best block kernel this CPU runs: with AVX2 and FMA the update loop is vectorized and
/// `mul_add` is one instruction instead of a call into libm's `fmaf` (same results: Rust
/// evaluates `f32` arithmetic exactly as IEEE 754 says with or without vectors, and `mul_add`
/// is a correctly rounded fused multiply-add either way).
fn block_kernel() -> BlockKernel {
    #[cfg(target_arch = "x86_64")]
    if x86::detected() {
        return x86::update_block_avx2;
    }
    update_block_portable
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{update_block, Block, Maps, Scalars8bit};

    /// Whether the CPU has AVX2 and FMA (cached by std).
    pub(super) fn detected() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }

    #[target_feature(enable = "avx2,fma")]
    fn update_block_avx2_inner(s: &Scalars8bit, maps: &Maps, b: Block<'_>) {
        update_block(s, maps, b);
    }

    /// [`update_block`] compiled with AVX2 and FMA. Only handed out by
    /// [`block_kernel`](super::block_kernel) after [`detected`] (or by the tests, which check
    /// [`detected`] first).
    pub(super) fn update_block_avx2(s: &Scalars8bit, maps: &Maps, b: Block<'_>) {
        assert!(
            detected(),
            "AdamW8bit: AVX2+FMA kernel on a CPU without them"
        );
        // SAFETY: the CPU has AVX2 and FMA (checked above; `detected` is cached, so the
        // check costs a load).
        unsafe { update_block_avx2_inner(s, maps, b) }
    }
}

/// One block, fused: dequantize `m` and `v` (a table lookup times the absmax), the AdamW
/// update of every element (the same [`Scalars8bit::element_8bit`] as the reference) and the
/// re-quantization through the lookup tables. Each phase is a separate loop over the block so
/// that the arithmetic one vectorizes. Inlined into each kernel instantiation.
#[inline(always)]
fn update_block(s: &Scalars8bit, maps: &Maps, b: Block<'_>) {
    let len = b.p.len();
    let mut m = [0.0f32; BLOCKSIZE_8BIT];
    let mut v = [0.0f32; BLOCKSIZE_8BIT];
    let (m, v) = (&mut m[..len], &mut v[..len]);
    let (am, av) = (*b.am, *b.av);
    for ((m, v), (&qm, &qv)) in m
        .iter_mut()
        .zip(v.iter_mut())
        .zip(b.qm.iter().zip(b.qv.iter()))
    {
        *m = maps.signed[usize::from(qm)] * am;
        *v = maps.unsigned[usize::from(qv)] * av;
    }
    for ((p, &g), (m, v)) in b.p.iter_mut().zip(b.g).zip(m.iter_mut().zip(v.iter_mut())) {
        (*p, *m, *v) = s.element_8bit(*p, g, *m, *v);
    }
    *b.am = quantize_block_lut(m, &maps.signed_lut, b.qm);
    *b.av = quantize_block_lut(v, &maps.unsigned_lut, b.qv);
}

/// AdamW with 8-bit block-wise state over named parameters (see the [module docs](self)).
///
/// ```
/// use burn::tensor::{Tensor, TensorData};
/// use burn_ndarray::NdArray;
/// use qlora_core::{optim::AdamW8bit, AdamWConfig};
/// let dev = Default::default();
/// let mut opt = AdamW8bit::<NdArray>::new(AdamWConfig::default(), 4096);
/// let n = 8192;
/// let p = Tensor::<NdArray, 1>::from_data(TensorData::new(vec![0.5f32; n], [n]), &dev);
/// let g = Tensor::<NdArray, 1>::from_data(TensorData::new(vec![0.1f32; n], [n]), &dev);
/// let p = opt.step("w", p, g, 1e-3);
/// // The first step moves each weight by about lr (less the weight decay).
/// let v: Vec<f32> = p.into_data().to_vec().unwrap();
/// assert!((v[0] - (0.5 - 1e-3)).abs() < 1e-4);
/// // 2 bytes per element plus 2 absmax per block, instead of 8 bytes per element.
/// assert_eq!(opt.state_bytes(), 2 * 8192 + 8 * 32);
/// ```
#[derive(Debug, Clone)]
pub struct AdamW8bit<B: Backend> {
    config: AdamWConfig,
    min_8bit_size: u64,
    states: BTreeMap<String, AdamW8bitState>,
    _backend: PhantomData<B>,
}

impl<B: Backend> AdamW8bit<B> {
    /// An optimizer with no state yet; parameters with fewer than `min_8bit_size` elements
    /// keep f32 state (bitsandbytes' default: [`MIN_8BIT_SIZE`]).
    pub fn new(config: AdamWConfig, min_8bit_size: u64) -> Self {
        Self {
            config,
            min_8bit_size,
            states: BTreeMap::new(),
            _backend: PhantomData,
        }
    }

    /// With bitsandbytes' default `min_8bit_size`.
    pub fn with_default_min_size(config: AdamWConfig) -> Self {
        Self::new(config, MIN_8BIT_SIZE)
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AdamWConfig {
        &self.config
    }

    /// The state of parameter `name`, if it has any.
    pub fn state(&self, name: &str) -> Option<&AdamW8bitState> {
        self.states.get(name)
    }

    /// All states, by parameter name.
    pub fn states(&self) -> &BTreeMap<String, AdamW8bitState> {
        &self.states
    }

    /// Replaces the state of `name` (e.g. when resuming).
    pub fn set_state(&mut self, name: impl Into<String>, state: AdamW8bitState) {
        self.states.insert(name.into(), state);
    }

    /// Bytes of optimizer state held (codes, absmax and any f32 moments).
    pub fn state_bytes(&self) -> u64 {
        self.states.values().map(AdamW8bitState::bytes).sum()
    }

    /// One step on host slices: `param` is updated in place.
    ///
    /// # Panics
    ///
    /// If `grad`'s length differs from `param`'s, or from the existing state's.
    pub fn step_host(&mut self, name: &str, param: &mut [f32], grad: &[f32], lr: f64) {
        let n = param.len();
        assert_eq!(
            n,
            grad.len(),
            "AdamW8bit: gradient length differs from `{name}`"
        );
        let min = self.min_8bit_size;
        let state = self
            .states
            .entry(name.to_string())
            .or_insert_with(|| AdamW8bitState {
                step: 0,
                moments: if (n as u64) < min {
                    Moments8bit::Full {
                        exp_avg: vec![0.0; n],
                        exp_avg_sq: vec![0.0; n],
                    }
                } else {
                    Moments8bit::Blockwise {
                        exp_avg: Quantized8bit::zeros(n),
                        exp_avg_sq: Quantized8bit::zeros(n),
                    }
                },
            });
        state.step += 1;
        let s = Scalars8bit::new(&self.config, lr, state.step);
        match &mut state.moments {
            Moments8bit::Blockwise {
                exp_avg,
                exp_avg_sq,
            } => {
                assert_eq!(
                    exp_avg.codes.len(),
                    n,
                    "AdamW8bit: state of `{name}` has another size"
                );
                step_8bit_fast(&s, param, grad, exp_avg, exp_avg_sq);
            }
            Moments8bit::Full {
                exp_avg,
                exp_avg_sq,
            } => {
                assert_eq!(
                    exp_avg.len(),
                    n,
                    "AdamW8bit: state of `{name}` has another size"
                );
                for i in 0..n {
                    (param[i], exp_avg[i], exp_avg_sq[i]) =
                        s.element_32bit(param[i], grad[i], exp_avg[i], exp_avg_sq[i]);
                }
            }
        }
    }

    /// One step on parameter `name` with gradient `grad` at learning rate `lr`; returns the
    /// updated parameter (same shape, on the parameter's device).
    ///
    /// # Panics
    ///
    /// If `grad`'s shape differs from `param`'s, or from the state's size.
    pub fn step<const D: usize>(
        &mut self,
        name: &str,
        param: Tensor<B, D>,
        grad: Tensor<B, D>,
        lr: f64,
    ) -> Tensor<B, D> {
        let shape = param.shape();
        assert_eq!(
            shape,
            grad.shape(),
            "AdamW8bit: gradient shape differs from `{name}`"
        );
        let device = param.device();
        let host = |t: Tensor<B, D>| -> Vec<f32> {
            // `mul_scalar(1.0)` is an exact copy (x·1 = x for every non-NaN float) into a
            // fresh buffer, which `into_data` then moves out. Without it, a tensor that is
            // also held elsewhere (the model's parameter, the caller's gradient) is read by
            // burn-ndarray element by element through a dynamic-rank iterator, ~40 ns per
            // element: 90% of the step's time. (A NaN stays a NaN; its payload may be quieted.)
            t.mul_scalar(1.0)
                .into_data()
                .convert::<f32>()
                .into_vec::<f32>()
                .unwrap_or_default()
        };
        let mut p = host(param);
        let g = host(grad);
        self.step_host(name, &mut p, &g, lr);
        Tensor::from_data(TensorData::new(p, shape.clone()), &device)
    }

    /// The state as host tensors plus step counts: for 8-bit state `"{name}.state1"`,
    /// `"{name}.state2"` (u8 codes of `m` and `v`) and `"{name}.absmax1"`, `"{name}.absmax2"`
    /// (f32), bitsandbytes' state names; for f32 state `"{name}.exp_avg"`,
    /// `"{name}.exp_avg_sq"` as [`AdamW::export`](crate::optim::AdamW::export).
    pub fn export(&self) -> (BTreeMap<String, TensorData>, BTreeMap<String, u64>) {
        let mut tensors = BTreeMap::new();
        let mut steps = BTreeMap::new();
        for (name, st) in &self.states {
            match &st.moments {
                Moments8bit::Blockwise {
                    exp_avg,
                    exp_avg_sq,
                } => {
                    for (i, q) in [(1, exp_avg), (2, exp_avg_sq)] {
                        let (n, b) = (q.codes.len(), q.absmax.len());
                        tensors.insert(
                            format!("{name}.state{i}"),
                            TensorData::new(q.codes.clone(), [n]),
                        );
                        tensors.insert(
                            format!("{name}.absmax{i}"),
                            TensorData::new(q.absmax.clone(), [b]),
                        );
                    }
                }
                Moments8bit::Full {
                    exp_avg,
                    exp_avg_sq,
                } => {
                    let n = exp_avg.len();
                    tensors.insert(
                        format!("{name}.exp_avg"),
                        TensorData::new(exp_avg.clone(), [n]),
                    );
                    tensors.insert(
                        format!("{name}.exp_avg_sq"),
                        TensorData::new(exp_avg_sq.clone(), [n]),
                    );
                }
            }
            steps.insert(name.clone(), st.step);
        }
        (tensors, steps)
    }

    /// Restores the state of `name` (`numel` elements, `step` steps) from tensors in the
    /// layout of [`AdamW8bit::export`]: 8-bit or f32, whichever this optimizer would keep for
    /// a parameter of that size. Errors name the missing or mismatched tensor.
    pub fn import_state(
        &mut self,
        name: &str,
        step: u64,
        numel: usize,
        tensors: &BTreeMap<String, TensorData>,
    ) -> Result<(), String> {
        let get = |what: &str, dtype: DType, len: usize| -> Result<&TensorData, String> {
            let key = format!("{name}.{what}");
            let d = tensors
                .get(&key)
                .ok_or_else(|| format!("optimizer state `{key}` missing"))?;
            if d.dtype != dtype || d.num_elements() != len {
                return Err(format!(
                    "optimizer state `{key}` is {:?} with {} elements, expected {dtype:?} with {len}",
                    d.dtype,
                    d.num_elements()
                ));
            }
            Ok(d)
        };
        let f32s = |d: &TensorData| d.to_vec::<f32>().map_err(|e| format!("`{name}`: {e:?}"));
        let moments = if (numel as u64) < self.min_8bit_size {
            Moments8bit::Full {
                exp_avg: f32s(get("exp_avg", DType::F32, numel)?)?,
                exp_avg_sq: f32s(get("exp_avg_sq", DType::F32, numel)?)?,
            }
        } else {
            let blocks = numel.div_ceil(BLOCKSIZE_8BIT);
            let q = |i: u32| -> Result<Quantized8bit, String> {
                let codes = get(&format!("state{i}"), DType::U8, numel)?
                    .to_vec::<u8>()
                    .map_err(|e| format!("`{name}`: {e:?}"))?;
                let absmax = f32s(get(&format!("absmax{i}"), DType::F32, blocks)?)?;
                Ok(Quantized8bit { codes, absmax })
            };
            Moments8bit::Blockwise {
                exp_avg: q(1)?,
                exp_avg_sq: q(2)?,
            }
        };
        self.states
            .insert(name.to_string(), AdamW8bitState { step, moments });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dense::TestBackend;
    use safetensors::SafeTensors;

    fn bytes_of(st: &SafeTensors, key: &str) -> Vec<u8> {
        st.tensor(key).unwrap().data().to_vec()
    }

    fn f32s(st: &SafeTensors, key: &str) -> Vec<f32> {
        bytes_of(st, key)
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }

    #[test]
    fn maps_match_bitsandbytes() {
        let bytes = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tools/fixtures/adamw8bit/adamw8bit.safetensors"
        ))
        .unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(f32s(&st, "qmap1"), dynamic_map_signed().to_vec());
        assert_eq!(f32s(&st, "qmap2"), dynamic_map_unsigned().to_vec());
    }

    /// The kernels this CPU can run, by name.
    fn kernels() -> Vec<(&'static str, BlockKernel)> {
        let mut k: Vec<(&'static str, BlockKernel)> = vec![("portable", update_block_portable)];
        #[cfg(target_arch = "x86_64")]
        if x86::detected() {
            k.push(("avx2", x86::update_block_avx2));
        }
        k
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Runs `grads.len()` steps from `p0` through the reference and through each kernel and
    /// asserts identical bits of the parameters, codes and absmax after every step.
    fn assert_kernels_match_reference(p0: &[f32], grads: &[Vec<f32>], lr: f64, cfg: &AdamWConfig) {
        let n = p0.len();
        let mut p = p0.to_vec();
        let (mut m, mut v) = (Quantized8bit::zeros(n), Quantized8bit::zeros(n));
        let mut fast: Vec<_> = kernels()
            .into_iter()
            .map(|(name, k)| (name, k, p0.to_vec(), m.clone(), v.clone()))
            .collect();
        for (t, g) in grads.iter().enumerate() {
            let step = t as u64 + 1;
            adamw8bit_step_reference(&mut p, g, &mut m, &mut v, step, lr, cfg);
            let s = Scalars8bit::new(cfg, lr, step);
            for (name, k, fp, fm, fv) in &mut fast {
                step_8bit_with(*k, &s, fp, g, fm, fv);
                assert_eq!(bits(fp), bits(&p), "{name}: params after step {step}");
                assert_eq!(fm.codes, m.codes, "{name}: m codes after step {step}");
                assert_eq!(fv.codes, v.codes, "{name}: v codes after step {step}");
                assert_eq!(bits(&fm.absmax), bits(&m.absmax), "{name}: m absmax");
                assert_eq!(bits(&fv.absmax), bits(&v.absmax), "{name}: v absmax");
            }
        }
    }

    /// Finite values spread over many binades, with exact zeros, negative zeros and
    /// subnormals mixed in.
    fn values(rng: &mut impl rand::Rng, n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|_| match rng.random_range(0..20u32) {
                0 => 0.0,
                1 => -0.0,
                2 => f32::from_bits(rng.random_range(1..0x0080_0000u32)) * scale.signum(),
                _ => {
                    let e = rng.random_range(-20i32..=0);
                    let x: f32 = rng.random_range(-1.0f32..1.0);
                    x * 2f32.powi(e) * scale
                }
            })
            .collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Every fast kernel equals the plain reference bit for bit: any length (partial last
        /// block included), gradients from tiny to large with zero blocks, with and without
        /// weight decay, over several steps.
        #[test]
        fn fast_kernels_equal_reference_bitwise(
            n in 1usize..1400,
            seed: u64,
            steps in 1usize..5,
            grad_exp in -40i32..12,
            lr_exp in -6i32..0,
            wd in proptest::prop_oneof![proptest::prelude::Just(0.0), 0.0f64..0.3],
            beta1 in 0.0f64..0.99,
            zero_block: bool,
        ) {
            use rand::SeedableRng;
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let cfg = AdamWConfig { beta1, weight_decay: wd, ..AdamWConfig::default() };
            let p0 = values(&mut rng, n, 1.0);
            let grads: Vec<Vec<f32>> = (0..steps)
                .map(|_| {
                    let mut g = values(&mut rng, n, 2f32.powi(grad_exp));
                    if zero_block && n > BLOCKSIZE_8BIT {
                        g[..BLOCKSIZE_8BIT].fill(0.0);
                    }
                    g
                })
                .collect();
            assert_kernels_match_reference(&p0, &grads, 10f64.powi(lr_exp), &cfg);
        }
    }

    /// Several rayon tasks (runs of [`BLOCKS_PER_TASK`] blocks) and a partial last block,
    /// through the public `step_host` too.
    #[test]
    fn fast_path_equals_reference_bitwise() {
        let n = 2 * BLOCKSIZE_8BIT * BLOCKS_PER_TASK + 3 * BLOCKSIZE_8BIT + 77;
        let cfg = AdamWConfig::default();
        let p0: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
        let grads: Vec<Vec<f32>> = (1..=4u64)
            .map(|step| {
                let mut g: Vec<f32> = (0..n)
                    .map(|i| ((i as u64 * step) as f32 * 0.11).cos() * 10f32.powi(step as i32 - 3))
                    .collect();
                g[BLOCKSIZE_8BIT..2 * BLOCKSIZE_8BIT].fill(0.0);
                g
            })
            .collect();
        assert_kernels_match_reference(&p0, &grads, 1e-3, &cfg);

        let (mut p, mut m, mut v) = (p0.clone(), Quantized8bit::zeros(n), Quantized8bit::zeros(n));
        let mut opt = AdamW8bit::<TestBackend>::new(cfg, 0);
        let mut q = p0;
        for (t, g) in grads.iter().enumerate() {
            adamw8bit_step_reference(&mut p, g, &mut m, &mut v, t as u64 + 1, 1e-3, &cfg);
            opt.step_host("x", &mut q, g, 1e-3);
        }
        assert_eq!(bits(&q), bits(&p));
        let want = Moments8bit::Blockwise {
            exp_avg: m,
            exp_avg_sq: v,
        };
        assert_eq!(opt.state("x").unwrap().moments, want);
    }

    /// The tensor entry point (which copies shared tensors to the host) gives the host
    /// step's result, and leaves the caller's tensors untouched.
    #[test]
    fn tensor_step_equals_host_step() {
        let dev = Default::default();
        let n = 3 * BLOCKSIZE_8BIT + 5;
        let p0: Vec<f32> = (0..n).map(|i| (i as f32 * 0.21).cos()).collect();
        let g: Vec<f32> = (0..n).map(|i| (i as f32 * 0.13).sin() * 1e-2).collect();
        let cfg = AdamWConfig::default();
        let mut host = p0.clone();
        let mut a = AdamW8bit::<TestBackend>::new(cfg, 0);
        a.step_host("w", &mut host, &g, 1e-3);
        let pt = Tensor::<TestBackend, 2>::from_data(TensorData::new(p0.clone(), [1, n]), &dev);
        let gt = Tensor::<TestBackend, 2>::from_data(TensorData::new(g, [1, n]), &dev);
        let mut b = AdamW8bit::<TestBackend>::new(cfg, 0);
        // Shared tensors: the caller keeps `pt` and `gt`.
        let out = b.step("w", pt.clone(), gt.clone(), 1e-3);
        assert_eq!(out.dims(), [1, n]);
        let out: Vec<f32> = out.into_data().to_vec().unwrap();
        assert_eq!(bits(&out), bits(&host));
        let kept: Vec<f32> = pt.into_data().to_vec().unwrap();
        assert_eq!(bits(&kept), bits(&p0));
        assert_eq!(a.state("w"), b.state("w"));
    }
}
