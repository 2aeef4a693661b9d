//! spyne's convolution kernel against burn's convolution (and max pool): values and
//! gradients, on spikes and on dense input, for every path, stride, padding and the fused
//! pool.

mod common;

use burn::tensor::module::{conv2d, max_pool2d};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{Tensor, TensorData};
use common::*;
use spyne::kernel::{self, ConvPath, ConvSpec};

struct Case {
    n: usize,
    c: usize,
    hw: [usize; 2],
    o: usize,
    k: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    bias: bool,
    pool: Option<[usize; 2]>,
}

fn t4(values: Vec<f32>, dims: [usize; 4]) -> Tensor<4> {
    Tensor::from_data(TensorData::new(values, dims), &grad_device())
}

/// Inputs: binary with `density` ones, or dense values when `density` is `None`.
fn input(n: usize, density: Option<f32>, seed: u64) -> Vec<f32> {
    let raw = values(n, seed, 0.0, 1.0);
    match density {
        Some(d) => raw
            .into_iter()
            .map(|r| if r < d { 1.0 } else { 0.0 })
            .collect(),
        None => raw.into_iter().map(|r| 2.0 * r - 0.7).collect(),
    }
}

/// (output, ∂x, ∂w, ∂b) through spyne's kernel (`Some(path)`) or burn's ops (`None`).
fn run(case: &Case, density: Option<f32>, path: Option<ConvPath>) -> [Vec<f32>; 4] {
    let [h, w] = case.hw;
    let x = t4(
        input(case.n * case.c * h * w, density, 1),
        [case.n, case.c, h, w],
    )
    .require_grad();
    let wt = t4(
        values(case.o * case.c * case.k[0] * case.k[1], 2, -0.3, 0.3),
        [case.o, case.c, case.k[0], case.k[1]],
    )
    .require_grad();
    let b = Tensor::<1>::from_data(
        TensorData::new(values(case.o, 3, -0.2, 0.2), [case.o]),
        &grad_device(),
    )
    .require_grad();
    let bias = case.bias.then(|| b.clone());
    let y = match path {
        Some(p) => {
            let spec = ConvSpec {
                n: case.n,
                c: case.c,
                h,
                w,
                o: case.o,
                kh: case.k[0],
                kw: case.k[1],
                stride: case.stride,
                padding: case.padding,
                bias: case.bias,
                forward: p,
                backward: p,
                pool: case.pool,
            };
            kernel::conv2d(x.clone(), wt.clone(), bias, spec)
        }
        None => {
            let options = ConvOptions::new(case.stride, case.padding, [1, 1], 1);
            let y = conv2d(x.clone(), wt.clone(), bias, options);
            match case.pool {
                Some(p) => max_pool2d(y, MaxPoolOptions::new(p).with_stride(p)),
                None => y,
            }
        }
    };
    let weights = t4(values(y.dims().iter().product(), 4, -1.0, 1.0), y.dims());
    let g = (y.clone() * weights).sum().backward();
    let grad_b = if case.bias {
        v(b.grad(&g).unwrap())
    } else {
        vec![]
    };
    [
        v(y),
        v(x.grad(&g).unwrap()),
        v(wt.grad(&g).unwrap()),
        grad_b,
    ]
}

fn check(case: &Case, density: Option<f32>) {
    let want = run(case, density, None);
    for path in [ConvPath::Auto, ConvPath::Dense, ConvPath::Sparse] {
        let got = run(case, density, Some(path));
        let what = format!(
            "{path:?} density={density:?} stride={:?} padding={:?} pool={:?}",
            case.stride, case.padding, case.pool
        );
        for (i, name) in ["output", "∂x", "∂w", "∂b"].iter().enumerate() {
            assert_close(&got[i], &want[i], 2e-5, &format!("{what}: {name}"));
        }
        assert!(
            want[2].iter().any(|&g| g != 0.0),
            "{what}: a real weight gradient"
        );
    }
}

#[test]
fn kernel_equals_burns_convolution() {
    for (stride, padding) in [([1, 1], [0, 0]), ([2, 1], [1, 2]), ([2, 2], [1, 1])] {
        for bias in [true, false] {
            let case = Case {
                n: 37,
                c: 3,
                hw: [9, 11],
                o: 5,
                k: [3, 4],
                stride,
                padding,
                bias,
                pool: None,
            };
            for density in [Some(0.1), Some(0.5), None] {
                check(&case, density);
            }
        }
    }
}

#[test]
fn conv_with_a_fused_max_pool_equals_conv_then_pool() {
    // Conv planes of 8×8 and 6×12 (a 3-row pool leaves rows over on the first).
    let geometries = [
        ([12, 12], [5, 5], [1, 1], [0, 0]),
        ([11, 12], [3, 5], [2, 1], [1, 2]),
    ];
    for (hw, k, stride, padding) in geometries {
        for pool in [[2, 2], [3, 2], [2, 4]] {
            let case = Case {
                n: 41,
                c: 4,
                hw,
                o: 6,
                k,
                stride,
                padding,
                bias: true,
                pool: Some(pool),
            };
            for density in [Some(0.05), Some(0.6), None] {
                check(&case, density);
            }
        }
    }
}

#[test]
fn spike_passes_over_bit_masks_equal_burns_convolution() {
    // Stride 1 and whole vectors of output channels take the bit-mask passes: one and
    // several register blocks (16, 80), window columns of one and two words (C·KH = 9, 70),
    // a padded row of exactly 64 bits with more than 64 output positions, and the pool
    // (square and not).
    let cases = [
        (3, [9, 11], 16, [3, 4], [0, 0], None),
        (3, [9, 11], 16, [3, 4], [1, 2], Some([2, 2])),
        (3, [9, 11], 32, [3, 4], [1, 2], Some([3, 2])),
        (14, [12, 12], 80, [5, 5], [1, 1], Some([2, 2])),
        (2, [6, 60], 32, [3, 5], [0, 2], None),
    ];
    for (c, hw, o, k, padding, pool) in cases {
        for bias in [true, false] {
            let case = Case {
                n: 6,
                c,
                hw,
                o,
                k,
                stride: [1, 1],
                padding,
                bias,
                pool,
            };
            for density in [Some(0.05), Some(0.25)] {
                check(&case, density);
            }
        }
    }
}

#[test]
fn a_nan_input_reaches_the_output() {
    let case = Case {
        n: 2,
        c: 1,
        hw: [4, 4],
        o: 2,
        k: [2, 2],
        stride: [1, 1],
        padding: [0, 0],
        bias: false,
        pool: Some([2, 2]),
    };
    let mut x = input(2 * 16, Some(0.3), 9);
    x[5] = f32::NAN;
    let spec = ConvSpec {
        n: 2,
        c: 1,
        h: 4,
        w: 4,
        o: 2,
        kh: 2,
        kw: 2,
        stride: [1, 1],
        padding: [0, 0],
        bias: false,
        forward: ConvPath::Auto,
        backward: ConvPath::Auto,
        pool: case.pool,
    };
    let y = kernel::conv2d(
        t4(x, [2, 1, 4, 4]),
        t4(values(8, 2, -1.0, 1.0), [2, 1, 2, 2]),
        None,
        spec,
    );
    assert!(v(y).iter().any(|v| v.is_nan()), "NaN is not silence");
}
