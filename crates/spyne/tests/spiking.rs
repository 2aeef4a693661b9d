//! Spike-driven layers: the index of active inputs, the Linear layer over spikes, and
//! spikes → Linear → neuron (→ Linear) as one op, each against the dense and step-by-step
//! path it replaces.

mod common;

use std::sync::Arc;

use burn::tensor::Tensor;
use common::fused::{surrogates, Planes};
use common::*;
use spyne::kernel::{self, SpikeIndex, SpikeInput};
use spyne::neuron::*;
use spyne::surrogate::Surrogate;

/// `n` binary values, about `density` of them ones.
fn spikes(n: usize, seed: u64, density: f32) -> Vec<f32> {
    values(n, seed, 0.0, 1.0)
        .into_iter()
        .map(|u| f32::from(u < density))
        .collect()
}

/// Values on a grid of 1/64: sums of a few dozen of them are exact in f32 in any order, so
/// the spike path and a dense product give the same currents bit for bit.
fn grid(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    values(n, seed, lo, hi)
        .into_iter()
        .map(|x| (x * 64.0).round() / 64.0)
        .collect()
}

#[test]
fn the_index_lists_every_one_in_order() {
    // 3 rows of 37: the vector loop and the scalar tail both run.
    let mut x = vec![0.0f32; 3 * 37];
    for k in [0, 5, 16, 31, 36, 37 + 15, 37 + 16, 2 * 37 + 36] {
        x[k] = 1.0;
    }
    x[40] = -0.0; // a negative zero is a zero
    let index = SpikeIndex::build(&x, 37, 0.5).unwrap();
    assert_eq!((index.rows(), index.cols(), index.len()), (3, 37, 8));
    assert_eq!(index.row(0), &[0, 5, 16, 31, 36]);
    assert_eq!(index.row(1), &[15, 16]);
    assert_eq!(index.row(2), &[36]);
    assert!((index.density() - 8.0 / 111.0).abs() < 1e-7);
}

#[test]
fn the_index_refuses_values_that_are_not_spikes_or_too_many() {
    let mut x = spikes(40 * 50, 1, 0.1);
    assert!(SpikeIndex::build(&x, 50, 0.2).is_some());
    // Twice the limit locally, or over it in all: refused.
    assert!(SpikeIndex::build(&x, 50, 0.02).is_none());
    for bad in [0.5, 2.0, -1.0, f32::NAN, f32::INFINITY] {
        let keep = x[777];
        x[777] = bad;
        assert!(
            SpikeIndex::build(&x, 50, 0.5).is_none(),
            "{bad} is not a spike"
        );
        x[777] = keep;
    }
    assert!(SpikeIndex::build(&[], 5, 0.5).is_none());
    assert!(
        SpikeIndex::build(&x[..7], 5, 0.5).is_none(),
        "not whole rows"
    );
    // Off the CPU backend's tensors it reads the same values.
    let t = t2(&x, 40, 50, &cpu());
    assert_eq!(
        *SpikeIndex::of(&t, 0.2).unwrap(),
        SpikeIndex::build(&x, 50, 0.2).unwrap()
    );
}

/// The spike Linear layer against the dense product: the forward exactly as a sum in input
/// order (and close to burn's product), gradients of weight, bias and input to rounding.
#[test]
fn spike_linear_equals_the_dense_layer() {
    let dev = grad_device();
    // 70 outputs: a full 64-column block of the weight gradient and a tail.
    let (rows, k, n) = (37, 45, 70);
    let x_vals = spikes(rows * k, 3, 0.08);
    let w_vals = values(k * n, 4, -1.0, 1.0);
    let b_vals = values(n, 5, -0.5, 0.5);
    let g_vals = values(rows * n, 6, -1.0, 1.0);
    let index = Arc::new(SpikeIndex::build(&x_vals, k, 0.5).unwrap());
    let run = |sparse: bool| {
        let x = t2(&x_vals, rows, k, &dev).require_grad();
        let w = t2(&w_vals, k, n, &dev).require_grad();
        let b = Tensor::<1>::from_floats(b_vals.as_slice(), &dev).require_grad();
        let y = if sparse {
            kernel::spike_linear(x.clone(), index.clone(), w.clone(), Some(b.clone()))
        } else {
            x.clone().matmul(w.clone()) + b.clone().reshape([1, n])
        };
        let g = (y.clone() * t2(&g_vals, rows, n, &dev)).sum().backward();
        let grads = [x.grad(&g).map(v), w.grad(&g).map(v), b.grad(&g).map(v)];
        (v(y), grads.map(Option::unwrap))
    };
    let ((dense, dg), (sparse, sg)) = (run(false), run(true));
    let ordered: Vec<f32> = (0..rows * n)
        .map(|i| {
            let (r, j) = (i / n, i % n);
            let s = (0..k).fold(0.0f32, |s, kk| s + x_vals[r * k + kk] * w_vals[kk * n + j]);
            s + b_vals[j]
        })
        .collect();
    assert_eq!(
        sparse, ordered,
        "forward: the dense sum in input order, bit for bit"
    );
    assert_close(&sparse, &dense, 1e-5, "forward vs burn's product");
    for (what, (s, d)) in ["input", "weight", "bias"].iter().zip(sg.iter().zip(&dg)) {
        assert_close(s, d, 1e-5, what);
        assert!(d.iter().any(|g| *g != 0.0), "{what} gradient is not zero");
    }
}

const T: usize = 13;
const B: usize = 5;
const K: usize = 45;
// A full 64-neuron backward block of four 16-lane blocks, and a tail of 6 single lanes.
const N: usize = 70;
const M: usize = 4;

struct Chain {
    /// Spikes and membranes, or the next layer's currents.
    out: Vec<Vec<f32>>,
    last: Vec<f32>,
    grads: Vec<Vec<f32>>,
}

/// Spikes → Linear → neuron `n` (→ Linear to `M` when `linear`) through the fused op (in
/// chunks of `chunk` steps) or through burn's product and the step path, from rest or from
/// a given state (`init` rows); the loss reads every output and the final state.
fn chain<M2: Planes>(
    n: &M2,
    params: &impl Fn(&M2) -> Vec<Tensor<1>>,
    (linear, init, chunk): (bool, Option<usize>, Option<usize>),
) -> Chain {
    let dev = grad_device();
    let x_vals = spikes(T * B * K, 11, 0.15);
    let out_w = if linear { M } else { N };
    let weights = |s: u64, len: usize| t2(&values(len, s, -1.0, 1.0), 1, len, &dev).reshape([len]);
    let x = t3(&x_vals, [T, B, K], &dev).require_grad();
    let w_in = t2(&grid(K * N, 12, -0.4, 0.6), K, N, &dev).require_grad();
    let b_in = Tensor::<1>::from_floats(grid(N, 13, -0.2, 0.3).as_slice(), &dev).require_grad();
    let w_out = t2(&values(N * M, 14, -1.0, 1.0), N, M, &dev).require_grad();
    let init_rows: Vec<Tensor<2>> = (0..init.unwrap_or(0))
        .map(|k| t2(&values(B * N, 60 + k as u64, -0.5, 1.5), B, N, &dev).require_grad())
        .collect();
    let state = init.map(|_| n.state_from(init_rows.clone()));
    let (outs, last) = match chunk {
        Some(chunk) => {
            let index = SpikeIndex::of(&x, 0.5).expect("binary and sparse");
            let input = SpikeInput {
                index,
                weight: w_in.clone(),
                bias: Some(b_in.clone()),
                chunk,
            };
            let call = FusedCall {
                input: x.clone(),
                static_input: false,
                steps: T,
                state,
                mems: true,
                final_state: true,
            };
            if linear {
                let (c, s) = n
                    .fused_spiking_linear(call, input, w_out.clone())
                    .unwrap()
                    .unwrap();
                (vec![c], s.unwrap())
            } else {
                let f = n.fused_spiking(call, input).unwrap().unwrap();
                (vec![f.spikes, f.mems.unwrap()], f.state.unwrap())
            }
        }
        None => {
            let cur =
                x.clone().reshape([T * B, K]).matmul(w_in.clone()) + b_in.clone().reshape([1, N]);
            let seq = step_sequence(n, cur.reshape([T, B, N]), state, None).unwrap();
            if linear {
                let c = seq.spikes.reshape([T * B, N]).matmul(w_out.clone());
                (vec![c.reshape([T, B, M])], seq.state)
            } else {
                (vec![seq.spikes, seq.mems], seq.state)
            }
        }
    };
    let last_rows = n.state_rows(&last);
    let mut loss = Tensor::<1>::zeros([1], &dev).sum();
    for (i, o) in outs.iter().enumerate() {
        let w = weights(30 + i as u64, T * B * out_w).reshape([T, B, out_w]);
        loss = loss + (o.clone() * w).sum();
    }
    for (i, r) in last_rows.iter().enumerate() {
        loss = loss + (r.clone() * weights(40 + i as u64, B * N).reshape([B, N])).sum();
    }
    let g = loss.backward();
    let mut grads = vec![
        v(x.grad(&g).unwrap()),
        v(w_in.grad(&g).unwrap()),
        v(b_in.grad(&g).unwrap()),
    ];
    if linear {
        grads.push(v(w_out.grad(&g).unwrap()));
    }
    grads.extend(params(n).into_iter().map(|p| v(p.grad(&g).unwrap())));
    grads.extend(init_rows.iter().map(|r| v(r.grad(&g).unwrap())));
    Chain {
        out: outs.into_iter().map(v).collect(),
        last: last_rows.into_iter().flat_map(v).collect(),
        grads,
    }
}

/// The fused op in chunks of 4 steps (four chunks, the last of one step) and in one chunk,
/// against the step path: spikes, membranes and final state bit for bit, currents and every
/// gradient to float rounding.
fn check<M2: Planes>(n: &M2, params: impl Fn(&M2) -> Vec<Tensor<1>>, what: &str) {
    for linear in [false, true] {
        for init in [None, Some(n.state_rows(&n.init_state(1, 1, &cpu())).len())] {
            let reference = chain(n, &params, (linear, init, None));
            let fires = reference.out[0].contains(&1.0);
            assert!(linear || fires, "{what}: some neurons fire");
            for chunk in [4, 0] {
                let what = format!("{what} linear={linear} init={init:?} chunk={chunk}");
                let fused = chain(n, &params, (linear, init, Some(chunk)));
                if linear {
                    assert_close(&fused.out[0], &reference.out[0], 1e-5, &what);
                } else {
                    assert_eq!(fused.out, reference.out, "{what}: spikes and membranes");
                }
                assert_eq!(fused.last, reference.last, "{what}: final state");
                for (i, (f, c)) in fused.grads.iter().zip(&reference.grads).enumerate() {
                    assert_close(f, c, 2e-5, &format!("{what}: gradient {i}"));
                    assert!(c.iter().any(|g| *g != 0.0), "{what}: gradient {i} is zero");
                }
            }
        }
    }
}

#[test]
fn spikes_into_leaky_fused_equal_the_step_path() {
    let dev = grad_device();
    for reset in [Reset::Subtract, Reset::Zero, Reset::None] {
        for s in surrogates() {
            let leaky = LeakyConfig::new(values(N, 1, 0.5, 0.95))
                .with_threshold(values(N, 2, 0.6, 1.2))
                .with_learn_beta(true)
                .with_learn_threshold(true)
                .with_surrogate(s.clone())
                .with_reset(reset)
                .init(&dev)
                .unwrap();
            let what = format!("leaky {reset:?} {s:?}");
            check(
                &leaky,
                |n| vec![n.beta.val(), n.core.threshold.val()],
                &what,
            );
        }
    }
}

#[test]
fn spikes_into_synaptic_and_lapicque_fused_equal_the_step_path() {
    let dev = grad_device();
    for reset in [Reset::Subtract, Reset::Zero, Reset::ZeroThenIntegrate] {
        let syn = SynapticConfig::new(values(N, 3, 0.3, 0.9), values(N, 4, 0.5, 0.95))
            .with_learn(true, true, true)
            .with_surrogate(Surrogate::fast_sigmoid())
            .with_reset(reset)
            .init(&dev)
            .unwrap();
        check(
            &syn,
            |n| vec![n.alpha.val(), n.beta.val(), n.core.threshold.val()],
            &format!("synaptic {reset:?}"),
        );
    }
    // Lapicque runs on the Synaptic kernel with a gain on its input; its parameters are fixed.
    let lapicque = LapicqueConfig::from_rc(2.0, 1.5)
        .with_time_step(0.7)
        .with_threshold(0.8)
        .init(&dev)
        .unwrap();
    check(&lapicque, |_| vec![], "lapicque");
}
