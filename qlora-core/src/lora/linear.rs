//! [`LoraLinear`]: a frozen linear layer (dense) plus a trainable low-rank update.
//!
//! `y = base(x) + scaling · B(A(dropout(x)))` with `A: [r, in]` (Kaiming-uniform, as peft's
//! `nn.init.kaiming_uniform_(a=sqrt(5))`) and `B: [out, r]` (zeros). The base weight is kept in
//! Hugging Face layout `[out, in]` and never requires a gradient, so the optimizer and the
//! autodiff graph only ever see `A` and `B`.

use burn::module::{Module, Param, ParamId};
use burn::nn::Dropout;
use burn::tensor::backend::Backend;
use burn::tensor::module::linear;
use burn::tensor::{Tensor, TensorData};
use rand::Rng;

use super::config::LoraConfig;
use super::error::LoraError;
use crate::dense::frozen_linear;
use crate::quant::Nf4Linear;
use crate::quant::QuantConfig;

/// A frozen dense linear map `y = x·Wᵀ + b`, weight in HF layout `[out, in]`.
///
/// Neither the weight nor the bias ever requires a gradient.
#[derive(Module, Debug)]
pub struct DenseBase<B: Backend> {
    /// Weight `[out, in]`.
    pub weight: Param<Tensor<B, 2>>,
    /// Optional bias `[out]`.
    pub bias: Option<Param<Tensor<B, 1>>>,
}

impl<B: Backend> DenseBase<B> {
    /// Wraps `weight` `[out, in]` and `bias` `[out]` as frozen parameters (detached, no
    /// gradient).
    ///
    /// # Panics
    ///
    /// If the bias length differs from the number of rows of the weight.
    pub fn new(weight: Tensor<B, 2>, bias: Option<Tensor<B, 1>>) -> Self {
        let [out, _] = weight.dims();
        if let Some(b) = &bias {
            assert_eq!(b.dims()[0], out, "bias length must equal out_features");
        }
        Self {
            weight: frozen(weight),
            bias: bias.map(frozen),
        }
    }

    /// Applies `x·Wᵀ + b`.
    ///
    /// # Shapes
    ///
    /// - x: `[..., in]`
    /// - output: `[..., out]`
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        frozen_linear(x, self.weight.val(), self.bias.as_ref().map(|b| b.val()))
    }
}

/// Makes a parameter that is detached and never requires a gradient.
fn frozen<B: Backend, const D: usize>(t: Tensor<B, D>) -> Param<Tensor<B, D>> {
    Param::initialized(ParamId::new(), t.detach().set_require_grad(false))
}

/// The frozen part of a [`LoraLinear`].
#[derive(Module, Debug)]
pub enum FrozenBase<B: Backend> {
    /// Full-precision weight.
    Dense(DenseBase<B>),
    /// NF4 4-bit weight (bitsandbytes layout), dequantized on the fly in each forward; the
    /// dequantized tensor is a detached temporary, so it never gets a gradient buffer.
    Nf4(Nf4Linear<B>),
}

impl<B: Backend> FrozenBase<B> {
    /// Applies the frozen map.
    ///
    /// # Shapes
    ///
    /// - x: `[..., in]`
    /// - output: `[..., out]`
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        match self {
            FrozenBase::Dense(d) => d.forward(x),
            FrozenBase::Nf4(q) => q.forward(x),
        }
    }

    /// `[out, in]`.
    pub fn dims(&self) -> [usize; 2] {
        match self {
            FrozenBase::Dense(d) => d.weight.dims(),
            FrozenBase::Nf4(q) => [q.out_features(), q.in_features()],
        }
    }

    /// The weight in full precision `[out, in]` (dequantized for a quantized base), detached.
    pub fn weight(&self) -> Tensor<B, 2> {
        match self {
            FrozenBase::Dense(d) => d.weight.val().detach(),
            FrozenBase::Nf4(q) => q.dequantize().detach(),
        }
    }

    /// The bias, if any.
    pub fn bias(&self) -> Option<Tensor<B, 1>> {
        match self {
            FrozenBase::Dense(d) => d.bias.as_ref().map(|b| b.val().detach()),
            FrozenBase::Nf4(q) => q.bias.as_ref().map(|b| b.val().detach()),
        }
    }

    /// The device of the base (an NF4 base without bias lives on the host and reports the
    /// default device).
    pub fn device(&self) -> B::Device {
        match self {
            FrozenBase::Dense(d) => d.weight.device(),
            FrozenBase::Nf4(q) => q.device(),
        }
    }
}

/// The trainable low-rank pair of a [`LoraLinear`].
#[derive(Module, Debug)]
pub struct LoraAdapter<B: Backend> {
    /// `A`: `[r, in]`.
    pub lora_a: Param<Tensor<B, 2>>,
    /// `B`: `[out, r]`.
    pub lora_b: Param<Tensor<B, 2>>,
    /// The factor applied to `B·A·x`.
    pub scaling: f64,
    /// Dropout on the input of `A` (active only on an autodiff backend).
    pub dropout: Dropout,
}

impl<B: Backend> LoraAdapter<B> {
    /// Rank `r`.
    pub fn rank(&self) -> usize {
        self.lora_a.dims()[0]
    }

    /// `scaling · B(A(dropout(x)))`, computed in `x`'s dtype: when the model computes in a
    /// lower precision than the adapter is stored in (bf16 activations, f32 `A`/`B`), `A` and
    /// `B` are cast for the product and their gradients flow back to the f32 master weights,
    /// as under PyTorch's autocast.
    ///
    /// # Shapes
    ///
    /// - x: `[..., in]`
    /// - output: `[..., out]`
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let dtype = x.dtype();
        let x = self.dropout.forward(x);
        let h = linear(x, self.lora_a.val().cast(dtype).transpose(), None);
        linear(h, self.lora_b.val().cast(dtype).transpose(), None).mul_scalar(self.scaling)
    }

    /// `scaling · B·A`, `[out, in]`, detached.
    pub fn delta_weight(&self) -> Tensor<B, 2> {
        self.lora_b
            .val()
            .detach()
            .matmul(self.lora_a.val().detach())
            .mul_scalar(self.scaling)
    }
}

/// A linear layer with a frozen base and an optional LoRA adapter.
///
/// Every projection of a model is built as a `LoraLinear` (with [`LoraLinear::dense`]); the
/// ones LoRA targets then get an adapter with [`LoraLinear::with_lora`] (fresh: A Kaiming,
/// B zeros) or [`LoraLinear::with_lora_weights`] (loaded). Without adapter it is a plain
/// frozen linear layer.
///
/// ```
/// use burn::tensor::{Tensor, TensorData};
/// use burn_ndarray::NdArray;
/// use qlora_core::{LoraConfig, LoraLinear};
/// use rand::SeedableRng;
///
/// type B = NdArray<f32>;
/// let dev = Default::default();
/// let w = Tensor::<B, 2>::from_data(TensorData::new(vec![1.0f32, 0.0, 0.0, 2.0, 1.0, 1.0], [3, 2]), &dev);
/// let layer = LoraLinear::dense(w, None);
/// assert_eq!((layer.in_features(), layer.out_features()), (2, 3));
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// let layer = layer.with_lora(&LoraConfig::new(2, 4.0), &mut rng).unwrap();
/// // B starts at zero: the adapted layer equals the base.
/// let x = Tensor::<B, 2>::from_data(TensorData::new(vec![1.0f32, 2.0], [1, 2]), &dev);
/// let y: Vec<f32> = layer.forward(x).into_data().to_vec().unwrap();
/// assert_eq!(y, vec![1.0, 4.0, 3.0]);
/// ```
#[derive(Module, Debug)]
pub struct LoraLinear<B: Backend> {
    /// The frozen weight (and bias).
    pub base: FrozenBase<B>,
    /// The trainable update, if this layer is adapted.
    pub lora: Option<LoraAdapter<B>>,
    /// Whether the adapter has been merged into a dense base (then forward skips it).
    pub merged: bool,
}

impl<B: Backend> LoraLinear<B> {
    /// A frozen dense layer without adapter: `weight` `[out, in]` (HF layout), `bias` `[out]`.
    ///
    /// The tensors are detached and marked as not requiring a gradient.
    ///
    /// # Panics
    ///
    /// If the bias length differs from `out`.
    pub fn dense(weight: Tensor<B, 2>, bias: Option<Tensor<B, 1>>) -> Self {
        Self::from_base(FrozenBase::Dense(DenseBase::new(weight, bias)))
    }

    /// A frozen NF4 layer without adapter: `weight` `[out, in]` is quantized once (as
    /// bitsandbytes' `quantize_4bit`), `bias` `[out]` kept frozen.
    pub fn nf4(
        weight: Tensor<B, 2>,
        bias: Option<Tensor<B, 1>>,
        config: QuantConfig,
    ) -> Result<Self, crate::Error> {
        Ok(Self::from_base(FrozenBase::Nf4(Nf4Linear::from_weight(
            weight, bias, config,
        )?)))
    }

    /// A layer over any frozen base, without adapter.
    pub fn from_base(base: FrozenBase<B>) -> Self {
        Self {
            base,
            lora: None,
            merged: false,
        }
    }

    /// Input features.
    pub fn in_features(&self) -> usize {
        self.base.dims()[1]
    }

    /// Output features.
    pub fn out_features(&self) -> usize {
        self.base.dims()[0]
    }

    /// The adapter, if any.
    pub fn adapter(&self) -> Option<&LoraAdapter<B>> {
        self.lora.as_ref()
    }

    /// Whether the adapter is merged into the base.
    pub fn is_merged(&self) -> bool {
        self.merged
    }

    /// Adds a fresh adapter as peft initialises it: `A` `[r, in]` from
    /// `U(-1/sqrt(in), 1/sqrt(in))` (Kaiming-uniform with `a = sqrt(5)`), `B` `[out, r]` zeros.
    /// Replaces any existing adapter.
    pub fn with_lora<R: Rng + ?Sized>(
        self,
        config: &LoraConfig,
        rng: &mut R,
    ) -> Result<Self, LoraError> {
        config.validate()?;
        let (r, fan_in, out) = (config.r, self.in_features(), self.out_features());
        let bound = kaiming_uniform_bound(fan_in);
        let a: Vec<f32> = (0..r * fan_in)
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        let device = self.device();
        let a = Tensor::from_data(TensorData::new(a, [r, fan_in]), &device);
        let b = Tensor::zeros([out, r], &device);
        self.with_lora_weights(a, b, config.scaling(), config.dropout)
    }

    /// Adds an adapter from given weights `A` `[r, in]` and `B` `[out, r]` (e.g. loaded from
    /// a PEFT file), which become trainable parameters.
    pub fn with_lora_weights(
        mut self,
        a: Tensor<B, 2>,
        b: Tensor<B, 2>,
        scaling: f64,
        dropout: f64,
    ) -> Result<Self, LoraError> {
        if self.merged {
            return Err(LoraError::InvalidConfig {
                field: "merged",
                reason: "cannot replace the adapter of a merged layer; unmerge first".into(),
            });
        }
        let [r, a_in] = a.dims();
        if r == 0 || a_in != self.in_features() {
            return Err(LoraError::ShapeMismatch {
                name: "lora_A".into(),
                expected: vec![r.max(1), self.in_features()],
                got: vec![r, a_in],
            });
        }
        let b_dims = b.dims();
        if b_dims != [self.out_features(), r] {
            return Err(LoraError::ShapeMismatch {
                name: "lora_B".into(),
                expected: vec![self.out_features(), r],
                got: b_dims.to_vec(),
            });
        }
        if !(0.0..1.0).contains(&dropout) {
            return Err(LoraError::InvalidConfig {
                field: "lora_dropout",
                reason: format!("must be in [0, 1), got {dropout}"),
            });
        }
        self.lora = Some(LoraAdapter {
            lora_a: Param::from_tensor(a.detach()),
            lora_b: Param::from_tensor(b.detach()),
            scaling,
            dropout: Dropout { prob: dropout },
        });
        Ok(self)
    }

    /// Removes the adapter (if merged, the merged weight stays).
    pub fn without_lora(mut self) -> Self {
        self.lora = None;
        self.merged = false;
        self
    }

    /// Applies the layer.
    ///
    /// # Shapes
    ///
    /// - x: `[..., in]`
    /// - output: `[..., out]`
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        match (&self.lora, self.merged) {
            (Some(lora), false) => self.base.forward(x.clone()) + lora.forward(x),
            _ => self.base.forward(x),
        }
    }

    /// `scaling · B·A` `[out, in]`, if there is an adapter.
    pub fn delta_weight(&self) -> Option<Tensor<B, 2>> {
        self.lora.as_ref().map(LoraAdapter::delta_weight)
    }

    /// The effective full-precision weight `W + scaling·B·A` `[out, in]` (for a quantized base,
    /// `W` is the dequantized weight), without changing the layer.
    pub fn merged_weight(&self) -> Tensor<B, 2> {
        let w = self.base.weight();
        match (self.delta_weight(), self.merged) {
            (Some(d), false) => w + d,
            _ => w,
        }
    }

    /// Folds the adapter into the base: the base becomes the dense `W + scaling·B·A` and
    /// forward skips the adapter. Rejects a result with NaN or infinity (peft's `safe_merge`).
    /// Merging twice is a no-op.
    pub fn merge(self) -> Result<Self, LoraError> {
        if self.merged {
            return Ok(self);
        }
        let delta = self.delta_weight().ok_or(LoraError::NoAdapter)?;
        let w = self.base.weight() + delta;
        check_finite(&w)?;
        let bias = self.base.bias();
        Ok(Self {
            base: FrozenBase::Dense(DenseBase::new(w, bias)),
            lora: self.lora,
            merged: true,
        })
    }

    /// Reverses [`LoraLinear::merge`]: subtracts `scaling·B·A` from the (dense) base.
    /// Unmerging an unmerged layer is a no-op.
    pub fn unmerge(self) -> Result<Self, LoraError> {
        if !self.merged {
            return Ok(self);
        }
        let delta = self.delta_weight().ok_or(LoraError::NoAdapter)?;
        let w = self.base.weight() - delta;
        let bias = self.base.bias();
        Ok(Self {
            base: FrozenBase::Dense(DenseBase::new(w, bias)),
            lora: self.lora,
            merged: false,
        })
    }

    fn device(&self) -> B::Device {
        self.base.device()
    }

    /// Makes the dense base weight (and bias) trainable (`true`: they require a gradient, so
    /// the trainer updates them, as full-parameter training needs) or frozen again (`false`,
    /// the LoRA default). The adapter, if any, stays trainable either way.
    ///
    /// Only meaningful on an autodiff backend (elsewhere nothing requires a gradient).
    ///
    /// # Errors
    ///
    /// [`LoraError::InvalidConfig`] (field `base`) when asked to train an NF4 base: 4-bit
    /// codes cannot take gradient updates; train in full precision, then quantize.
    ///
    /// ```
    /// use burn::tensor::{Tensor, TensorData};
    /// use burn_autodiff::Autodiff;
    /// use burn_ndarray::NdArray;
    /// use qlora_core::{LoraLinear, QuantConfig};
    ///
    /// type B = Autodiff<NdArray<f32>>;
    /// let dev = Default::default();
    /// let w = Tensor::<B, 2>::from_data(TensorData::new(vec![0.5f32; 64 * 2], [2, 64]), &dev);
    /// let layer = LoraLinear::dense(w.clone(), None).set_base_trainable(true).unwrap();
    /// assert_eq!(qlora_core::train::trainable_params(&layer).len(), 1);
    /// let frozen = layer.set_base_trainable(false).unwrap();
    /// assert!(qlora_core::train::trainable_params(&frozen).is_empty());
    /// let nf4 = LoraLinear::nf4(w, None, QuantConfig::default()).unwrap();
    /// assert!(nf4.set_base_trainable(true).is_err());
    /// ```
    pub fn set_base_trainable(mut self, trainable: bool) -> Result<Self, LoraError> {
        self.base = match self.base {
            FrozenBase::Dense(d) => FrozenBase::Dense(DenseBase {
                weight: d.weight.set_require_grad(trainable),
                bias: d.bias.map(|b| b.set_require_grad(trainable)),
            }),
            FrozenBase::Nf4(_) if trainable => {
                return Err(LoraError::InvalidConfig {
                    field: "base",
                    reason: "an NF4 (4-bit) base cannot be trained; train the dense weights, \
                             then quantize"
                        .into(),
                })
            }
            nf4 @ FrozenBase::Nf4(_) => nf4,
        };
        Ok(self)
    }

    /// Whether the base weight requires a gradient (see [`LoraLinear::set_base_trainable`]).
    pub fn is_base_trainable(&self) -> bool {
        match &self.base {
            FrozenBase::Dense(d) => d.weight.is_require_grad(),
            FrozenBase::Nf4(_) => false,
        }
    }
}

/// The bound of `kaiming_uniform_(a=sqrt(5))` for `fan_in` inputs: `gain·sqrt(3/fan_in)` with
/// `gain = sqrt(2/(1+a²)) = sqrt(1/3)`, i.e. `1/sqrt(fan_in)`.
pub(crate) fn kaiming_uniform_bound(fan_in: usize) -> f32 {
    let gain = (2.0f64 / (1.0 + 5.0)).sqrt();
    (gain * (3.0 / fan_in.max(1) as f64).sqrt()) as f32
}

fn check_finite<B: Backend>(w: &Tensor<B, 2>) -> Result<(), LoraError> {
    let finite = w
        .clone()
        .into_data()
        .iter::<f32>()
        .all(|v: f32| v.is_finite());
    if finite {
        Ok(())
    } else {
        Err(LoraError::NonFiniteMerge)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dense::{TestAutodiffBackend, TestBackend};
    use burn::tensor::Tolerance;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn tensor<B: Backend, const D: usize>(v: Vec<f32>, shape: [usize; D]) -> Tensor<B, D> {
        Tensor::from_data(TensorData::new(v, shape), &Default::default())
    }

    fn det(len: usize, k: f32) -> Vec<f32> {
        (0..len).map(|i| ((i as f32) * k).sin()).collect()
    }

    /// A lower-or-higher-precision model (here f64 activations and base, the closest dtype
    /// burn-ndarray has to bf16's role) trains f32 adapter weights: the product is taken in
    /// the input's dtype and the gradients reach A and B in f32, equal to the all-f32 ones.
    #[test]
    fn adapter_computes_in_the_input_dtype_and_trains_f32_weights() {
        use burn::tensor::FloatDType;
        type AB = TestAutodiffBackend;
        let (a, b) = (det(3 * 8, 0.37), det(6 * 3, 0.91));
        let run = |dtype: FloatDType| {
            let w = tensor::<AB, 2>(det(6 * 8, 0.13), [6, 8]).cast(dtype);
            let layer = LoraLinear::dense(w, None)
                .with_lora_weights(
                    tensor(a.clone(), [3, 8]),
                    tensor(b.clone(), [6, 3]),
                    2.0,
                    0.0,
                )
                .unwrap();
            let x = tensor::<AB, 2>(det(4 * 8, 0.53), [4, 8]).cast(dtype);
            let y = layer.forward(x);
            assert_eq!(FloatDType::from(y.dtype()), dtype);
            let grads = y.sum().backward();
            let adapter = layer.lora.as_ref().unwrap();
            let ga = adapter.lora_a.grad(&grads).unwrap();
            let gb = adapter.lora_b.grad(&grads).unwrap();
            assert_eq!(FloatDType::from(ga.dtype()), FloatDType::F32);
            (ga.into_data(), gb.into_data())
        };
        let (ga32, gb32) = run(FloatDType::F32);
        let (ga64, gb64) = run(FloatDType::F64);
        let tol = Tolerance::absolute(1e-5).set_relative(1e-5);
        ga64.assert_approx_eq::<f32>(&ga32, tol);
        gb64.assert_approx_eq::<f32>(&gb32, tol);
    }

    #[test]
    fn hand_computed_forward() {
        // W = [[1,2],[3,4],[5,6]] (out=3,in=2), b = [1,0,-1]; A = [[1,1]] (r=1), B = [[1],[0],[2]].
        let w = tensor::<TestBackend, 2>(vec![1., 2., 3., 4., 5., 6.], [3, 2]);
        let b = tensor::<TestBackend, 1>(vec![1., 0., -1.], [3]);
        let layer = LoraLinear::dense(w, Some(b))
            .with_lora_weights(
                tensor(vec![1., 1.], [1, 2]),
                tensor(vec![1., 0., 2.], [3, 1]),
                0.5,
                0.0,
            )
            .unwrap();
        let x = tensor::<TestBackend, 3>(vec![1., -1., 2., 0.5], [1, 2, 2]);
        let y: Vec<f32> = layer.forward(x).into_data().to_vec().unwrap();
        // x0=[1,-1]: base [-1+1, -1, -1-1] = [0,-1,-2]; A x = 0 -> same.
        // x1=[2,.5]: base [3+1, 8, 13-1] = [4,8,12]; A x = 2.5 -> +0.5*[2.5,0,5].
        assert_eq!(y, vec![0., -1., -2., 5.25, 8., 14.5]);
    }

    #[test]
    fn init_ranges_and_zero_b() {
        let w = tensor::<TestBackend, 2>(det(12 * 64, 0.1), [12, 64]);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let layer = LoraLinear::dense(w, None)
            .with_lora(&LoraConfig::new(4, 8.0), &mut rng)
            .unwrap();
        let lora = layer.adapter().unwrap();
        assert_eq!(lora.lora_a.dims(), [4, 64]);
        assert_eq!(lora.lora_b.dims(), [12, 4]);
        assert_eq!(lora.scaling, 2.0);
        let a: Vec<f32> = lora.lora_a.val().into_data().to_vec().unwrap();
        let bound = 1.0 / 8.0;
        assert!(a.iter().all(|v| v.abs() <= bound));
        // Spread over the range, not constant.
        let max = a.iter().cloned().fold(f32::MIN, f32::max);
        let min = a.iter().cloned().fold(f32::MAX, f32::min);
        assert!(max > 0.8 * bound && min < -0.8 * bound);
        let b: Vec<f32> = lora.lora_b.val().into_data().to_vec().unwrap();
        assert!(b.iter().all(|v| *v == 0.0));
        assert!((kaiming_uniform_bound(64) - 0.125).abs() < 1e-7);
    }

    #[test]
    fn seeded_init_is_reproducible() {
        let mk = |seed| {
            let w = tensor::<TestBackend, 2>(det(6 * 5, 0.3), [6, 5]);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let l = LoraLinear::dense(w, None)
                .with_lora(&LoraConfig::new(2, 2.0), &mut rng)
                .unwrap();
            l.adapter()
                .unwrap()
                .lora_a
                .val()
                .into_data()
                .to_vec::<f32>()
                .unwrap()
        };
        assert_eq!(mk(1), mk(1));
        assert_ne!(mk(1), mk(2));
    }

    #[test]
    fn merge_unmerge_round_trip() {
        let w = tensor::<TestBackend, 2>(det(5 * 7, 0.37), [5, 7]);
        let layer = LoraLinear::dense(w.clone(), Some(tensor(det(5, 1.1), [5])))
            .with_lora_weights(
                tensor(det(3 * 7, 0.71), [3, 7]),
                tensor(det(5 * 3, 0.53), [5, 3]),
                16.0 / 3.0,
                0.0,
            )
            .unwrap();
        let x = tensor::<TestBackend, 2>(det(4 * 7, 0.91), [4, 7]);
        let y = layer.forward(x.clone());
        let merged = layer.merge().unwrap();
        assert!(merged.is_merged());
        let ym = merged.forward(x.clone());
        ym.into_data()
            .assert_approx_eq::<f32>(&y.clone().into_data(), Tolerance::absolute(1e-5));
        let merged = merged.merge().unwrap(); // no-op
        let un = merged.unmerge().unwrap();
        assert!(!un.is_merged());
        un.base
            .weight()
            .into_data()
            .assert_approx_eq::<f32>(&w.into_data(), Tolerance::absolute(1e-5));
        un.forward(x)
            .into_data()
            .assert_approx_eq::<f32>(&y.into_data(), Tolerance::absolute(1e-5));
    }

    #[test]
    fn merge_without_adapter_and_non_finite_are_errors() {
        let w = tensor::<TestBackend, 2>(det(4, 0.2), [2, 2]);
        assert!(matches!(
            LoraLinear::dense(w.clone(), None).merge(),
            Err(LoraError::NoAdapter)
        ));
        let l = LoraLinear::dense(w, None)
            .with_lora_weights(
                tensor(vec![f32::INFINITY, 1.0], [1, 2]),
                tensor(vec![1.0, 1.0], [2, 1]),
                1.0,
                0.0,
            )
            .unwrap();
        assert!(matches!(l.merge(), Err(LoraError::NonFiniteMerge)));
    }

    #[test]
    fn shape_mismatch_is_an_error() {
        let w = tensor::<TestBackend, 2>(det(6, 0.2), [3, 2]);
        let e = LoraLinear::dense(w.clone(), None)
            .with_lora_weights(
                tensor(det(3, 1.0), [1, 3]),
                tensor(det(3, 1.0), [3, 1]),
                1.0,
                0.0,
            )
            .unwrap_err();
        assert!(e.to_string().contains("lora_A"), "{e}");
        let e = LoraLinear::dense(w, None)
            .with_lora_weights(
                tensor(det(2, 1.0), [1, 2]),
                tensor(det(4, 1.0), [2, 2]),
                1.0,
                0.0,
            )
            .unwrap_err();
        assert!(e.to_string().contains("lora_B"), "{e}");
    }

    #[test]
    fn gradients_reach_only_a_and_b() {
        type AB = TestAutodiffBackend;
        let w = tensor::<AB, 2>(det(4 * 3, 0.3), [4, 3]).require_grad();
        let bias = tensor::<AB, 1>(det(4, 0.9), [4]).require_grad();
        let layer = LoraLinear::dense(w, Some(bias))
            .with_lora_weights(
                tensor(det(2 * 3, 0.7), [2, 3]),
                tensor(det(4 * 2, 0.4), [4, 2]),
                2.0,
                0.0,
            )
            .unwrap();
        let x = tensor::<AB, 2>(det(5 * 3, 0.8), [5, 3]);
        let grads = layer.forward(x.clone()).sum().backward();
        let FrozenBase::Dense(d) = &layer.base else {
            panic!("dense base expected")
        };
        assert!(d.weight.grad(&grads).is_none());
        assert!(d.bias.as_ref().unwrap().grad(&grads).is_none());
        let lora = layer.adapter().unwrap();
        let ga = lora.lora_a.grad(&grads).expect("grad of A");
        let gb = lora.lora_b.grad(&grads).expect("grad of B");
        // Hand gradient of sum(s·B·A·xᵀ): dB = s·1·(A xᵀ)ᵀ summed; dA = s·Bᵀ·1·x.
        let inner = |t: Tensor<AB, 2>| t.inner();
        let xa = inner(x);
        let a = inner(lora.lora_a.val());
        let b = inner(lora.lora_b.val());
        let ones = Tensor::<TestBackend, 2>::ones([5, 4], &Default::default());
        let exp_gb = ones
            .clone()
            .transpose()
            .matmul(xa.clone().matmul(a.transpose()))
            * 2.0;
        let exp_ga = b.transpose().matmul(ones.transpose()).matmul(xa) * 2.0;
        gb.into_data()
            .assert_approx_eq::<f32>(&exp_gb.into_data(), Tolerance::absolute(1e-5));
        ga.into_data()
            .assert_approx_eq::<f32>(&exp_ga.into_data(), Tolerance::absolute(1e-5));
    }

    #[test]
    fn nf4_base_trains_only_a_and_b_and_merges_into_dequantized() {
        type AB = TestAutodiffBackend;
        let w = tensor::<AB, 2>(det(6 * 64, 0.37), [6, 64]);
        let layer = LoraLinear::nf4(w.clone(), None, QuantConfig::default())
            .unwrap()
            .with_lora_weights(
                tensor(det(2 * 64, 0.7), [2, 64]),
                tensor(det(6 * 2, 0.4), [6, 2]),
                2.0,
                0.0,
            )
            .unwrap();
        assert_eq!((layer.in_features(), layer.out_features()), (64, 6));
        // Only A and B are parameters that require grad; the 4-bit weight is no parameter.
        let trainable = crate::train::trainable_params(&layer);
        assert_eq!(trainable.len(), 2);
        let x = tensor::<AB, 2>(det(3 * 64, 0.8), [3, 64]);
        let y = layer.forward(x.clone());
        let grads = y.clone().sum().backward();
        assert!(layer.adapter().unwrap().lora_a.grad(&grads).is_some());
        // Quantization error is small but real: the dequantized weight is not W.
        let wq = layer.base.weight();
        let err = (wq.clone() - w.clone()).abs().max().into_scalar();
        assert!(err > 0.0 && err < 0.2, "{err}");
        // Merging goes into the dequantized weight and keeps the output.
        let merged = layer.merge().unwrap();
        assert!(matches!(merged.base, FrozenBase::Dense(_)));
        merged
            .forward(x)
            .into_data()
            .assert_approx_eq::<f32>(&y.into_data(), Tolerance::absolute(1e-4));
    }

    #[test]
    fn trainable_dense_base_gets_gradients_and_can_be_frozen_again() {
        type AB = TestAutodiffBackend;
        let w = tensor::<AB, 2>(det(4 * 3, 0.3), [4, 3]);
        let bias = tensor::<AB, 1>(det(4, 0.9), [4]);
        let layer = LoraLinear::dense(w, Some(bias))
            .with_lora_weights(
                tensor(det(2 * 3, 0.7), [2, 3]),
                tensor(det(4 * 2, 0.4), [4, 2]),
                2.0,
                0.0,
            )
            .unwrap()
            .set_base_trainable(true)
            .unwrap();
        assert!(layer.is_base_trainable());
        let x = tensor::<AB, 2>(det(5 * 3, 0.8), [5, 3]);
        let grads = layer.forward(x.clone()).sum().backward();
        let FrozenBase::Dense(d) = &layer.base else {
            panic!("dense base expected")
        };
        // d(sum(x Wᵀ + b))/dW = 1ᵀ x: every row equals the column sums of x.
        let gw = d.weight.grad(&grads).expect("grad of W");
        let col: Vec<f32> = x.inner().sum_dim(0).into_data().to_vec().unwrap();
        let expected: Vec<f32> = (0..4).flat_map(|_| col.clone()).collect();
        gw.into_data().assert_approx_eq::<f32>(
            &TensorData::new(expected, [4, 3]),
            Tolerance::absolute(1e-5),
        );
        let gb: Vec<f32> = d
            .bias
            .as_ref()
            .unwrap()
            .grad(&grads)
            .unwrap()
            .into_data()
            .to_vec()
            .unwrap();
        assert_eq!(gb, vec![5.0; 4]);
        assert!(layer.adapter().unwrap().lora_a.grad(&grads).is_some());
        let names: Vec<String> = crate::train::trainable_params(&layer).into_keys().collect();
        assert_eq!(names.len(), 4, "{names:?}");
        let frozen = layer.set_base_trainable(false).unwrap();
        assert!(!frozen.is_base_trainable());
        assert_eq!(crate::train::trainable_params(&frozen).len(), 2);
    }

    #[test]
    fn nf4_base_refuses_to_train() {
        let w = tensor::<TestAutodiffBackend, 2>(det(2 * 64, 0.37), [2, 64]);
        let layer = LoraLinear::nf4(w, None, QuantConfig::default()).unwrap();
        let e = layer.clone().set_base_trainable(true).unwrap_err();
        assert!(e.to_string().contains("NF4"), "{e}");
        assert!(!layer.set_base_trainable(false).unwrap().is_base_trainable());
    }

    #[test]
    fn params_counted_and_record_keeps_adapter() {
        let w = tensor::<TestBackend, 2>(det(4 * 3, 0.3), [4, 3]);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let layer = LoraLinear::dense(w, None)
            .with_lora(&LoraConfig::new(2, 4.0), &mut rng)
            .unwrap();
        assert_eq!(layer.num_params(), 12 + 6 + 8);
        let a = layer.adapter().unwrap().lora_a.val().into_data();
        let record = layer.clone().into_record();
        let fresh = LoraLinear::dense(tensor(det(12, 0.1), [4, 3]), None)
            .with_lora(&LoraConfig::new(2, 4.0), &mut rng)
            .unwrap()
            .load_record(record);
        assert_eq!(fresh.adapter().unwrap().lora_a.val().into_data(), a);
    }

    #[test]
    fn dropout_only_in_training() {
        // On the inner (non-autodiff) backend dropout is off even with p > 0.
        let w = tensor::<TestBackend, 2>(det(3 * 3, 0.3), [3, 3]);
        let layer = LoraLinear::dense(w, None)
            .with_lora_weights(
                tensor(det(6, 0.7), [2, 3]),
                tensor(det(6, 0.4), [3, 2]),
                1.0,
                0.5,
            )
            .unwrap();
        let x = tensor::<TestBackend, 2>(det(6, 0.8), [2, 3]);
        let y1 = layer.forward(x.clone()).into_data();
        let y2 = layer.forward(x).into_data();
        assert_eq!(y1, y2);
    }
}
