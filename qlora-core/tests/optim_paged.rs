//! Paged AdamW: bit-identical to AdamW under any device budget, and never more resident state
//! than the budget.

use burn::tensor::{Tensor, TensorData};
use burn_ndarray::NdArray;
use proptest::prelude::*;
use qlora_core::{
    optim::AdamW, optim::PagedAdamW, optim::ADAMW_STATE_BYTES_PER_ELEMENT, AdamWConfig,
};

type B = NdArray<f32>;

fn tensor(v: Vec<f32>) -> Tensor<B, 1> {
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), &Default::default())
}

fn values(t: Tensor<B, 1>) -> Vec<u32> {
    t.into_data()
        .to_vec::<f32>()
        .unwrap()
        .iter()
        .map(|x| x.to_bits())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn paged_equals_unpaged_for_any_budget(
        sizes in prop::collection::vec(1usize..200, 1..6),
        budget in 0u64..4000,
        steps in 1u64..5,
        seed in any::<u32>(),
        wd in prop_oneof![Just(0.0f64), Just(0.01), Just(0.1)],
    ) {
        let cfg = AdamWConfig { weight_decay: wd, ..Default::default() };
        let mut plain = AdamW::<B>::new(cfg);
        let mut paged = PagedAdamW::<B>::new(cfg, budget);
        let mut params: Vec<(Vec<f32>, Vec<f32>)> = sizes
            .iter()
            .enumerate()
            .map(|(k, &n)| {
                let v: Vec<f32> = (0..n).map(|i| ((i + k * 31) as f32 * 0.7 + seed as f32).sin()).collect();
                (v.clone(), v)
            })
            .collect();
        let total: u64 = sizes.iter().map(|&n| n as u64 * ADAMW_STATE_BYTES_PER_ELEMENT).sum();
        for step in 0..steps {
            for (k, (a, b)) in params.iter_mut().enumerate() {
                let g: Vec<f32> = (0..a.len())
                    .map(|i| (((i as u64 + 1) * (step + 3) + k as u64) as f32 * 0.13 + seed as f32).cos() * 10f32.powi(step as i32 - 2))
                    .collect();
                let name = format!("p{k}");
                let lr = 1e-2 / (step + 1) as f64;
                let x = plain.step(&name, tensor(a.clone()), tensor(g.clone()), lr);
                let y = paged.step(&name, tensor(b.clone()), tensor(g), lr);
                let (xb, yb) = (values(x.clone()), values(y.clone()));
                prop_assert_eq!(&xb, &yb, "param {} step {}", k, step);
                *a = x.into_data().to_vec().unwrap();
                *b = y.into_data().to_vec().unwrap();
                prop_assert!(paged.resident_bytes() <= budget);
            }
        }
        // Every byte of state is either resident or paged, and paging happened exactly when
        // the state did not fit.
        prop_assert_eq!(paged.resident_bytes() + paged.paged_bytes(), total);
        prop_assert_eq!(paged.paged_bytes() == 0, total <= budget);
        // The exported state (the checkpoint) is AdamW's, bit for bit.
        let (pt, ps) = plain.export();
        let (qt, qs) = paged.export();
        prop_assert_eq!(ps, qs);
        prop_assert_eq!(pt, qt);
    }
}

#[test]
fn paged_state_is_uploaded_for_each_update_and_placed_first_come() {
    let cfg = AdamWConfig::default();
    // Room for 100 elements of state.
    let mut opt = PagedAdamW::<B>::new(cfg, 100 * ADAMW_STATE_BYTES_PER_ELEMENT);
    for step in 0..3 {
        for (name, n) in [("a", 60), ("b", 50), ("c", 40)] {
            let p = tensor(vec![0.5; n]);
            let g = tensor(vec![0.1 * (step + 1) as f32; n]);
            let _ = opt.step(name, p, g, 1e-3);
        }
    }
    // a (60) fits; b (50) would make 110 and is paged; c (40) fits beside a.
    let resident: Vec<bool> = ["a", "b", "c"]
        .iter()
        .map(|n| opt.state(n).unwrap().is_resident())
        .collect();
    assert_eq!(resident, [true, false, true]);
    assert_eq!(opt.resident_bytes(), 100 * ADAMW_STATE_BYTES_PER_ELEMENT);
    assert_eq!(opt.paged_bytes(), 50 * ADAMW_STATE_BYTES_PER_ELEMENT);
    // b's state was paged in for each of its 2 later updates (the first starts from zeros on
    // the host too, and is uploaded as well).
    assert_eq!(opt.page_ins(), 3);
}
