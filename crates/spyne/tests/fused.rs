//! The fused kernels against the composed (step-by-step) path: values and gradients, for
//! Leaky and Synaptic, every reset mode, every surrogate, static and per-step input.

mod common;

use burn::tensor::Tensor;
use common::*;
use spyne::neuron::*;
use spyne::surrogate::Surrogate;

fn surrogates() -> Vec<Surrogate> {
    vec![
        Surrogate::atan(),
        Surrogate::fast_sigmoid(),
        Surrogate::sigmoid(),
        Surrogate::StraightThrough,
        Surrogate::triangular(),
        Surrogate::SpikeOperator,
        Surrogate::spike_rate_escape(),
        Surrogate::custom("gauss", |x| (-4.0 * x * x).exp()),
    ]
}

const T: usize = 6;
const B: usize = 5;
// Two full 16-lane blocks and a tail: both paths of the kernels run.
const N: usize = 37;

struct Outcome {
    spikes: Vec<f32>,
    mems: Vec<f32>,
    grads: Vec<Vec<f32>>,
}

/// Runs `n` both ways on the same input; the loss reads spikes and membranes with fixed
/// random weights, so every upstream gradient is non-trivial.
fn both<M: Neuron>(
    n: &M,
    params: impl Fn(&M) -> Vec<Tensor<1>>,
    static_input: bool,
) -> (Outcome, Outcome) {
    let dev = grad_device();
    let rows = if static_input { 1 } else { T };
    let x_vals = values(rows * B * N, 21, -0.4, 1.6);
    let ws = t3(&values(T * B * N, 22, -1.0, 1.0), [T, B, N], &dev);
    let wm = t3(&values(T * B * N, 23, -1.0, 1.0), [T, B, N], &dev);
    let run = |fused: bool| {
        let x = t3(&x_vals, [rows, B, N], &dev).require_grad();
        let (spikes, mems) = if fused {
            let (s, m) = n
                .fused(x.clone(), static_input, T, true)
                .expect("Flex has a fused kernel")
                .unwrap();
            (s, m.unwrap())
        } else {
            let input = if static_input {
                x.clone().repeat_dim(0, T)
            } else {
                x.clone()
            };
            let seq = run_sequence(n, input, None, None).unwrap();
            (seq.spikes, seq.mems)
        };
        let loss = (spikes.clone() * ws.clone()).sum() + (mems.clone() * wm.clone()).sum();
        let g = loss.backward();
        let mut grads = vec![v(x.grad(&g).unwrap())];
        grads.extend(params(n).into_iter().map(|p| v(p.grad(&g).unwrap())));
        Outcome {
            spikes: v(spikes),
            mems: v(mems),
            grads,
        }
    };
    (run(false), run(true))
}

fn agree(what: &str, composed: Outcome, fused: Outcome) {
    assert_eq!(fused.spikes, composed.spikes, "{what}: spikes");
    assert_eq!(fused.mems, composed.mems, "{what}: membranes (bit for bit)");
    assert!(
        composed.spikes.contains(&1.0) && composed.spikes.contains(&0.0),
        "{what}: some neurons fire"
    );
    for (i, (f, c)) in fused.grads.iter().zip(&composed.grads).enumerate() {
        assert_close(f, c, 2e-5, &format!("{what}: gradient {i}"));
        assert!(
            c.iter().any(|g| *g != 0.0),
            "{what}: gradient {i} is not trivially zero"
        );
    }
}

#[test]
fn leaky_fused_equals_composed() {
    let dev = grad_device();
    for reset in [Reset::Subtract, Reset::Zero, Reset::None] {
        for s in surrogates() {
            for static_input in [false, true] {
                let n = LeakyConfig::new(values(N, 1, 0.5, 0.95))
                    .with_threshold(values(N, 2, 0.6, 1.2))
                    .with_learn_beta(true)
                    .with_learn_threshold(true)
                    .with_surrogate(s.clone())
                    .with_reset(reset)
                    .init(&dev)
                    .unwrap();
                let (c, f) = both(
                    &n,
                    |n| vec![n.beta.val(), n.core.threshold.val()],
                    static_input,
                );
                agree(
                    &format!("Leaky {reset:?} {} static={static_input}", s.name()),
                    c,
                    f,
                );
            }
        }
    }
}

#[test]
fn synaptic_fused_equals_composed() {
    let dev = grad_device();
    for reset in [Reset::Subtract, Reset::Zero, Reset::None] {
        for s in surrogates() {
            for static_input in [false, true] {
                let n = SynapticConfig::new(values(N, 3, 0.3, 0.9), values(N, 4, 0.5, 0.95))
                    .with_threshold(1.0)
                    .with_learn(true, true, true)
                    .with_surrogate(s.clone())
                    .with_reset(reset)
                    .init(&dev)
                    .unwrap();
                let (c, f) = both(
                    &n,
                    |n| vec![n.alpha.val(), n.beta.val(), n.core.threshold.val()],
                    static_input,
                );
                agree(
                    &format!("Synaptic {reset:?} {} static={static_input}", s.name()),
                    c,
                    f,
                );
            }
        }
    }
}

#[test]
fn scalar_parameters_and_spikes_only_output() {
    let dev = grad_device();
    let n = LeakyConfig::new(0.9)
        .with_learn_beta(true)
        .init(&dev)
        .unwrap();
    let x = t3(&values(T * B * N, 30, 0.0, 1.5), [T, B, N], &dev).require_grad();
    let (s, m) = n.fused(x.clone(), false, T, false).unwrap().unwrap();
    assert!(m.is_none());
    let g = s.clone().sum().backward();
    let seq = run_sequence(&n, x.clone(), None, None).unwrap();
    assert_eq!(v(s), v(seq.spikes.clone()));
    let g2 = seq.spikes.sum().backward();
    assert_close(
        &v(x.grad(&g).unwrap()),
        &v(x.grad(&g2).unwrap()),
        1e-5,
        "∂/∂x",
    );
    assert_close(
        &v(n.beta.val().grad(&g).unwrap()),
        &v(n.beta.val().grad(&g2).unwrap()),
        1e-4,
        "∂/∂β (scalar)",
    );
}

#[test]
fn fused_path_checks_shapes_and_stays_off_other_layers() {
    let dev = cpu();
    let n = LeakyConfig::new(0.9).init(&dev).unwrap();
    let bad = n
        .fused(Tensor::zeros([3, 2, 4], &dev), true, 5, false)
        .unwrap();
    assert!(bad.is_err(), "a static input must have one step");
    let per = LeakyConfig::new(vec![0.9, 0.8]).init(&dev).unwrap();
    assert!(per
        .fused(Tensor::zeros([2, 2, 3], &dev), false, 2, false)
        .unwrap()
        .is_err());
    let al = AlphaConfig::new(0.9, 0.8).init(&dev).unwrap();
    assert!(al
        .fused(Tensor::zeros([2, 2, 3], &dev), false, 2, false)
        .is_none());
}

/// The layer+Linear op against the composed path followed by a dense product: currents and
/// gradients for input, parameters and weights.
fn linear_both<M: Neuron + std::fmt::Debug>(
    n: &M,
    params: impl Fn(&M) -> Vec<Tensor<1>>,
    static_input: bool,
) {
    let dev = grad_device();
    let out = 4;
    let rows = if static_input { 1 } else { T };
    let x_vals = values(rows * B * N, 41, -0.4, 1.6);
    let w_vals = values(N * out, 42, -1.0, 1.0);
    let wg = t3(&values(T * B * out, 43, -1.0, 1.0), [T, B, out], &dev);
    let run = |fused: bool| {
        let x = t3(&x_vals, [rows, B, N], &dev).require_grad();
        let w = t2(&w_vals, N, out, &dev).require_grad();
        let current = if fused {
            n.fused_linear(x.clone(), static_input, T, w.clone())
                .expect("Flex has a fused kernel")
                .unwrap()
        } else {
            let input = if static_input {
                x.clone().repeat_dim(0, T)
            } else {
                x.clone()
            };
            let spikes = run_sequence(n, input, None, None).unwrap().spikes;
            spikes
                .reshape([T * B, N])
                .matmul(w.clone())
                .reshape([T, B, out])
        };
        let g = (current.clone() * wg.clone()).sum().backward();
        let mut grads = vec![v(x.grad(&g).unwrap()), v(w.grad(&g).unwrap())];
        grads.extend(params(n).into_iter().map(|p| v(p.grad(&g).unwrap())));
        (v(current), grads)
    };
    let ((c_out, c_grads), (f_out, f_grads)) = (run(false), run(true));
    assert_close(&f_out, &c_out, 1e-5, "currents");
    for (i, (f, c)) in f_grads.iter().zip(&c_grads).enumerate() {
        let what = format!("gradient {i} of {} static={static_input}", describe(n));
        assert_close(f, c, 2e-5, &what);
        assert!(c.iter().any(|g| *g != 0.0), "{what} is not trivially zero");
    }
}

/// The neuron's type and reset mechanism, for failure messages.
fn describe<M: std::fmt::Debug>(n: &M) -> String {
    let d = format!("{n:?}");
    let kind: String = d.chars().take_while(|c| c.is_alphanumeric()).collect();
    let reset: String = d[d.find("reset").unwrap_or(0)..].chars().take(16).collect();
    format!("{kind} {reset}")
}

#[test]
fn layer_plus_linear_fused_equals_composed() {
    let dev = grad_device();
    for reset in [Reset::Subtract, Reset::Zero, Reset::None] {
        for s in [
            Surrogate::atan(),
            Surrogate::fast_sigmoid(),
            Surrogate::custom("gauss", |x| (-4.0 * x * x).exp()),
        ] {
            for static_input in [false, true] {
                let leaky = LeakyConfig::new(values(N, 1, 0.5, 0.95))
                    .with_threshold(values(N, 2, 0.6, 1.2))
                    .with_learn_beta(true)
                    .with_learn_threshold(true)
                    .with_surrogate(s.clone())
                    .with_reset(reset)
                    .init(&dev)
                    .unwrap();
                linear_both(
                    &leaky,
                    |n| vec![n.beta.val(), n.core.threshold.val()],
                    static_input,
                );
                let syn = SynapticConfig::new(values(N, 3, 0.3, 0.9), values(N, 4, 0.5, 0.95))
                    .with_learn(true, true, true)
                    .with_surrogate(s.clone())
                    .with_reset(reset)
                    .init(&dev)
                    .unwrap();
                linear_both(
                    &syn,
                    |n| vec![n.alpha.val(), n.beta.val(), n.core.threshold.val()],
                    static_input,
                );
            }
        }
    }
}
