//! The burn-level API: dequantize into a tensor, and the frozen 4-bit linear layer.

use burn::tensor::{Distribution, Tensor, TensorData, Tolerance};
use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;
use qlora_core::{quant::dequantize_tensor, Nf4Linear, QuantConfig, QuantState};

type B = NdArray;

#[test]
fn forward_equals_dense_matmul_with_dequantized_weight() {
    let dev = Default::default();
    let w = Tensor::<B, 2>::random([24, 96], Distribution::Normal(0.0, 0.5), &dev);
    let bias = Tensor::<B, 1>::random([24], Distribution::Normal(0.0, 1.0), &dev);
    let layer =
        Nf4Linear::from_weight(w.clone(), Some(bias.clone()), QuantConfig::default()).unwrap();
    let wq = layer.dequantize();
    assert_eq!(wq.dims(), [24, 96]);
    // dequantized weight equals the QuantState's own dequantization
    let host = layer.to_quant_state().unwrap().dequantize_f32();
    wq.to_data()
        .assert_eq(&TensorData::new(host, [24, 96]), true);

    let x2 = Tensor::<B, 2>::random([5, 96], Distribution::Normal(0.0, 1.0), &dev);
    let want2 = x2.clone().matmul(wq.clone().transpose()) + bias.clone().unsqueeze::<2>();
    layer
        .forward(x2)
        .to_data()
        .assert_approx_eq::<f32>(&want2.to_data(), Tolerance::default());

    let x3 = Tensor::<B, 3>::random([2, 5, 96], Distribution::Normal(0.0, 1.0), &dev);
    let want3 = x3.clone().matmul(wq.transpose().unsqueeze::<3>()) + bias.unsqueeze::<3>();
    let got3 = layer.forward(x3);
    assert_eq!(got3.dims(), [2, 5, 24]);
    got3.to_data()
        .assert_approx_eq::<f32>(&want3.to_data(), Tolerance::default());
}

#[test]
fn loaded_state_gives_the_same_layer() {
    let dev = Default::default();
    let w = Tensor::<B, 2>::random([16, 64], Distribution::Normal(0.0, 1.0), &dev);
    let a = Nf4Linear::<B>::from_weight(w, None, QuantConfig::default()).unwrap();
    let bytes = safetensors::serialize(
        a.to_quant_state().unwrap().to_tensors("q_proj.weight"),
        None,
    )
    .unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let state = QuantState::from_safetensors(&st, "q_proj.weight").unwrap();
    let b = Nf4Linear::<B>::from_quant_state(state, None, &dev).unwrap();
    assert_eq!((b.in_features(), b.out_features()), (64, 16));
    a.dequantize()
        .to_data()
        .assert_eq(&b.dequantize().to_data(), true);
    let t = dequantize_tensor::<B>(&b.to_quant_state().unwrap(), &dev).unwrap();
    t.to_data().assert_eq(&a.dequantize().to_data(), true);
}

#[test]
fn gradients_flow_to_the_input_only() {
    type A = Autodiff<NdArray>;
    let dev = Default::default();
    let w = Tensor::<A, 2>::random([8, 32], Distribution::Normal(0.0, 1.0), &dev);
    let b = Tensor::<A, 1>::zeros([8], &dev);
    let layer = Nf4Linear::from_weight(w, Some(b), QuantConfig::default()).unwrap();
    let bias = layer.bias.as_ref().unwrap();
    assert!(!bias.is_require_grad());
    let x = Tensor::<A, 2>::ones([3, 32], &dev).require_grad();
    let grads = layer.forward(x.clone()).sum().backward();
    let gx = x.grad(&grads).unwrap();
    // d(sum(x W^T))/dx = column sums of W, the same for every row
    let wsum = layer.dequantize().inner().sum_dim(0);
    gx.slice([0..1, 0..32])
        .to_data()
        .assert_approx_eq::<f32>(&wsum.to_data(), Tolerance::default());
    assert!(bias.val().grad(&grads).is_none());
}

/// The autodiff operation (backward re-dequantizes) against burn's generic autograd of the
/// same product with the dense dequantized weight: outputs and input gradients agree.
fn autodiff_op_equals_dense_autograd<A: burn::tensor::backend::AutodiffBackend>() {
    let dev = Default::default();
    let w = Tensor::<A, 2>::random([24, 96], Distribution::Normal(0.0, 0.5), &dev);
    let bias = Tensor::<A, 1>::random([24], Distribution::Normal(0.0, 1.0), &dev);
    let layer = Nf4Linear::from_weight(w, Some(bias.clone()), QuantConfig::default()).unwrap();
    let wq = layer.dequantize();
    let x0 = Tensor::<A, 3>::random([2, 5, 96], Distribution::Normal(0.0, 1.0), &dev);
    let r = Tensor::<A, 3>::random([2, 5, 24], Distribution::Normal(0.0, 1.0), &dev);

    let x = x0.clone().require_grad();
    let y = layer.forward(x.clone());
    let grads = (y.clone() * r.clone()).sum().backward();
    let gx = x.grad(&grads).unwrap();

    let xd = x0.require_grad();
    let yd = xd.clone().matmul(wq.transpose().unsqueeze::<3>()) + bias.unsqueeze::<3>();
    let grads_d = (yd.clone() * r).sum().backward();
    let gxd = xd.grad(&grads_d).unwrap();

    let tol = Tolerance::absolute(1e-5).set_relative(1e-6);
    y.to_data().assert_approx_eq::<f32>(&yd.to_data(), tol);
    gx.to_data().assert_approx_eq::<f32>(&gxd.to_data(), tol);
    assert!(layer.bias.as_ref().unwrap().val().grad(&grads).is_none());
}

#[test]
fn autodiff_op_gradients_equal_dense_autograd() {
    use burn_autodiff::checkpoint::strategy::BalancedCheckpointing;
    autodiff_op_equals_dense_autograd::<Autodiff<NdArray>>();
    autodiff_op_equals_dense_autograd::<Autodiff<NdArray, BalancedCheckpointing>>();
}

#[test]
fn autodiff_op_chains_with_layers_before_and_after() {
    // x -> NF4 -> tanh -> NF4 -> sum: the gradient reaches x through two custom nodes, and
    // equals the dense autograd of the same composition.
    type A = Autodiff<NdArray>;
    let dev = Default::default();
    let l1 = Nf4Linear::<A>::from_weight(
        Tensor::random([48, 64], Distribution::Normal(0.0, 0.3), &dev),
        None,
        QuantConfig::default(),
    )
    .unwrap();
    let l2 = Nf4Linear::<A>::from_weight(
        Tensor::random([16, 48], Distribution::Normal(0.0, 0.3), &dev),
        None,
        QuantConfig {
            double_quant: false,
            ..QuantConfig::default()
        },
    )
    .unwrap();
    let x0 = Tensor::<A, 2>::random([7, 64], Distribution::Normal(0.0, 1.0), &dev);
    let x = x0.clone().require_grad();
    let grads = l2.forward(l1.forward(x.clone()).tanh()).sum().backward();
    let xd = x0.require_grad();
    let (w1, w2) = (l1.dequantize(), l2.dequantize());
    let grads_d = xd
        .clone()
        .matmul(w1.transpose())
        .tanh()
        .matmul(w2.transpose())
        .sum()
        .backward();
    x.grad(&grads).unwrap().to_data().assert_approx_eq::<f32>(
        &xd.grad(&grads_d).unwrap().to_data(),
        Tolerance::absolute(1e-5).set_relative(1e-6),
    );
}

#[test]
fn a_non_2d_state_or_wrong_bias_is_an_error() {
    let dev = Default::default();
    let q = QuantState::quantize(&[1.0f32; 64], &[64], QuantConfig::default()).unwrap();
    assert!(Nf4Linear::<B>::from_quant_state(q.clone(), None, &dev).is_err());
    assert!(dequantize_tensor::<B>(&q, &Default::default()).is_err());
    let q2 = QuantState::quantize(&[1.0f32; 128], &[2, 64], QuantConfig::default()).unwrap();
    let bias = Tensor::<B, 1>::zeros([3], &Default::default());
    assert!(Nf4Linear::<B>::from_quant_state(q2, Some(bias), &dev).is_err());
}
