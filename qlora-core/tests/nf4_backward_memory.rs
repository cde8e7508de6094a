//! What the autodiff graph keeps between the forward and the backward pass of a frozen NF4
//! layer, measured with a counting allocator: the layer's backward re-dequantizes the weight,
//! so the graph holds no dense f32 copy of it (burn's generic matmul would keep one).
//!
//! One test in this file (its own process), so no other test's allocations are counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use burn::tensor::{Distribution, Tensor};
use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;
use qlora_core::{Nf4Linear, QuantConfig};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::SeqCst)
}

type A = Autodiff<NdArray>;

const OUT: usize = 1024;
const IN: usize = 2048;
const DENSE_BYTES: isize = (OUT * IN * 4) as isize; // 8 MiB of f32

#[test]
fn the_graph_keeps_no_dense_weight_between_forward_and_backward() {
    let dev = Default::default();
    let layer = Nf4Linear::<A>::from_weight(
        Tensor::random([OUT, IN], Distribution::Normal(0.0, 0.05), &dev),
        None,
        QuantConfig::default(),
    )
    .unwrap();
    let x0 = Tensor::<A, 2>::random([4, IN], Distribution::Normal(0.0, 1.0), &dev);

    // The layer: after the forward, only x, y and small graph bookkeeping are alive.
    let x = x0.clone().require_grad();
    let before = live();
    let loss = layer.forward(x.clone()).sum();
    let held = live() - before;
    assert!(
        held < DENSE_BYTES / 8,
        "the NF4 layer's graph holds {held} bytes after forward (dense weight: {DENSE_BYTES})"
    );
    let grads = loss.backward();
    assert_eq!(x.grad(&grads).unwrap().dims(), [4, IN]);
    drop(grads);

    // The same product through burn's generic matmul keeps the dense weight: the measurement
    // sees it (so the bound above is a real check).
    let x = x0.require_grad();
    let before = live();
    let loss = x.clone().matmul(layer.dequantize().transpose()).sum();
    let held_dense = live() - before;
    assert!(
        held_dense >= DENSE_BYTES,
        "generic matmul graph {held_dense} bytes, NF4 op {held}"
    );
    let grads = loss.backward();
    assert_eq!(x.grad(&grads).unwrap().dims(), [4, IN]);
}
