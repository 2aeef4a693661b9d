//! The fused kernels against the step-by-step path: values, gradients and final state, for
//! Leaky, Synaptic and Lapicque, every reset mode, every surrogate, static and per-step
//! input, from rest and from a given state.

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
    last_mem: Vec<f32>,
    grads: Vec<Vec<f32>>,
}

/// A neuron whose state is made of `[B, N]` tensors, for building and reading states.
trait Planes: Neuron {
    fn state_from(&self, rows: Vec<Tensor<2>>) -> Self::State;
    fn state_rows(&self, s: &Self::State) -> Vec<Tensor<2>>;
}

impl Planes for Leaky {
    fn state_from(&self, mut rows: Vec<Tensor<2>>) -> LeakyState {
        LeakyState { mem: rows.remove(0) }
    }
    fn state_rows(&self, s: &LeakyState) -> Vec<Tensor<2>> {
        vec![s.mem.clone()]
    }
}

impl Planes for Lapicque {
    fn state_from(&self, mut rows: Vec<Tensor<2>>) -> LeakyState {
        LeakyState { mem: rows.remove(0) }
    }
    fn state_rows(&self, s: &LeakyState) -> Vec<Tensor<2>> {
        vec![s.mem.clone()]
    }
}

impl Planes for Synaptic {
    fn state_from(&self, mut rows: Vec<Tensor<2>>) -> SynapticState {
        let syn = rows.remove(0);
        SynapticState {
            syn,
            mem: rows.remove(0),
        }
    }
    fn state_rows(&self, s: &SynapticState) -> Vec<Tensor<2>> {
        vec![s.syn.clone(), s.mem.clone()]
    }
}

/// Runs `n` both ways on the same input (and initial state, when `init` gives how many state
/// rows); the loss reads spikes, membranes and the final state with fixed random weights, so
/// every upstream gradient is non-trivial.
fn both<M: Planes>(
    n: &M,
    params: impl Fn(&M) -> Vec<Tensor<1>>,
    static_input: bool,
    init: Option<usize>,
) -> (Outcome, Outcome) {
    let dev = grad_device();
    let rows = if static_input { 1 } else { T };
    let x_vals = values(rows * B * N, 21, -0.4, 1.6);
    let ws = t3(&values(T * B * N, 22, -1.0, 1.0), [T, B, N], &dev);
    let wm = t3(&values(T * B * N, 23, -1.0, 1.0), [T, B, N], &dev);
    let wf = t2(&values(B * N, 24, -1.0, 1.0), B, N, &dev);
    let run = |fused: bool| {
        let x = t3(&x_vals, [rows, B, N], &dev).require_grad();
        let init_rows: Vec<Tensor<2>> = (0..init.unwrap_or(0))
            .map(|k| t2(&values(B * N, 60 + k as u64, -0.5, 1.5), B, N, &dev).require_grad())
            .collect();
        let state = init.map(|_| n.state_from(init_rows.clone()));
        let (spikes, mems, last) = if fused {
            let call = FusedCall {
                input: x.clone(),
                static_input,
                steps: T,
                state,
                mems: true,
                final_state: true,
            };
            let f = n.fused(call).expect("Flex has a fused kernel").unwrap();
            (f.spikes, f.mems.unwrap(), f.state.unwrap())
        } else {
            let input = if static_input {
                x.clone().repeat_dim(0, T)
            } else {
                x.clone()
            };
            let seq = step_sequence(n, input, state, None).unwrap();
            (seq.spikes, seq.mems, seq.state)
        };
        let last_rows = n.state_rows(&last);
        let mut loss = (spikes.clone() * ws.clone()).sum() + (mems.clone() * wm.clone()).sum();
        for r in &last_rows {
            loss = loss + (r.clone() * wf.clone()).sum();
        }
        let g = loss.backward();
        let mut grads = vec![v(x.grad(&g).unwrap())];
        grads.extend(params(n).into_iter().map(|p| v(p.grad(&g).unwrap())));
        grads.extend(init_rows.iter().map(|r| v(r.grad(&g).unwrap())));
        Outcome {
            spikes: v(spikes),
            mems: v(mems),
            last_mem: last_rows.into_iter().flat_map(v).collect(),
            grads,
        }
    };
    (run(false), run(true))
}

fn agree(what: &str, composed: Outcome, fused: Outcome) {
    assert_eq!(fused.spikes, composed.spikes, "{what}: spikes");
    assert_eq!(fused.mems, composed.mems, "{what}: membranes (bit for bit)");
    assert_eq!(fused.last_mem, composed.last_mem, "{what}: final state (bit for bit)");
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
                for init in [None, Some(1)] {
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
                        init,
                    );
                    let what = format!("Leaky {reset:?} {} static={static_input} init={init:?}", s.name());
                    agree(&what, c, f);
                }
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
                for init in [None, Some(2)] {
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
                        init,
                    );
                    let what = format!("Synaptic {reset:?} {} static={static_input} init={init:?}", s.name());
                    agree(&what, c, f);
                }
            }
        }
    }
}

#[test]
fn lapicque_runs_on_the_synaptic_kernel_exactly() {
    let dev = grad_device();
    for reset in [Reset::Subtract, Reset::Zero, Reset::None] {
        for init in [None, Some(1)] {
            let n = LapicqueConfig::from_rc(2.0, 1.5)
                .with_time_step(0.7)
                .with_threshold(0.8)
                .with_reset(reset)
                .init(&dev)
                .unwrap();
            // Lapicque's parameters are fixed: the input and initial-state gradients remain.
            let (c, f) = both(&n, |_| vec![], false, init);
            agree(&format!("Lapicque {reset:?} init={init:?}"), c, f);
        }
    }
}

#[test]
fn truncated_bptt_runs_fused_and_equals_the_step_path() {
    let dev = grad_device();
    let n = LeakyConfig::new(values(N, 5, 0.6, 0.95))
        .with_learn_beta(true)
        .init(&dev)
        .unwrap();
    let steps = 7;
    let x_vals = values(steps * B * N, 31, -0.2, 1.4);
    let w = t3(&values(steps * B * N, 32, -1.0, 1.0), [steps, B, N], &dev);
    let run = |fused: bool| {
        let x = t3(&x_vals, [steps, B, N], &dev).require_grad();
        let seq = if fused {
            run_sequence(&n, x.clone(), None, Some(3)).unwrap()
        } else {
            step_sequence(&n, x.clone(), None, Some(3)).unwrap()
        };
        let loss = (seq.spikes.clone() * w.clone()).sum() + (seq.mems.clone() * w.clone()).sum();
        let g = loss.backward();
        (
            v(seq.spikes),
            v(seq.mems),
            v(seq.state.mem),
            v(x.grad(&g).unwrap()),
            v(n.beta.val().grad(&g).unwrap()),
        )
    };
    let (c, f) = (run(false), run(true));
    assert_eq!((&f.0, &f.1, &f.2), (&c.0, &c.1, &c.2), "values and final state");
    assert_close(&f.3, &c.3, 2e-5, "∂/∂x with windows of 3");
    assert_close(&f.4, &c.4, 2e-5, "∂/∂β with windows of 3");
    // The window boundary cuts the gradient: the first window's input does not see the
    // last window's loss.
    let x = t3(&x_vals, [steps, B, N], &dev).require_grad();
    let seq = run_sequence(&n, x.clone(), None, Some(3)).unwrap();
    let tail = seq.mems.narrow(0, 6, 1).sum().backward();
    let gx = v(x.grad(&tail).unwrap());
    assert!(gx[..6 * B * N].iter().all(|&g| g == 0.0), "no gradient across windows");
    assert!(gx[6 * B * N..].iter().any(|&g| g != 0.0));
}

#[test]
fn per_channel_parameters_broadcast_over_height_and_width() {
    let dev = grad_device();
    let (c, hw) = (3, 4);
    let betas = vec![0.5, 0.8, 0.95];
    let thetas = vec![0.7, 1.0, 1.3];
    let per_channel = LeakyConfig::new(Value::per_channel(betas.clone()))
        .with_threshold(Value::per_channel(thetas.clone()))
        .with_learn_beta(true)
        .init(&dev)
        .unwrap();
    let spread = |v: &[f32]| -> Vec<f32> { v.iter().flat_map(|&x| vec![x; hw]).collect() };
    let per_neuron = LeakyConfig::new(spread(&betas))
        .with_threshold(spread(&thetas))
        .init(&dev)
        .unwrap();
    let x_vals = values(T * B * c * hw, 33, -0.2, 1.5);
    let x = t3(&x_vals, [T, B, c * hw], &dev);
    let a = run_sequence(&per_channel, x.clone(), None, None).unwrap();
    let b = step_sequence(&per_neuron, x.clone(), None, None).unwrap();
    assert_eq!(v(a.spikes.clone()), v(b.spikes));
    assert_eq!(v(a.mems), v(b.mems));
    let g = a.spikes.sum().backward();
    assert_eq!(per_channel.beta.val().grad(&g).unwrap().dims(), [3], "one β gradient per channel");
    // A per-channel value must divide the layer into whole channels.
    let x5 = t3(&values(T * B * 5, 34, 0.0, 1.0), [T, B, 5], &dev);
    assert!(run_sequence(&per_channel, x5, None, None).is_err());
}

#[test]
fn fused_path_checks_shapes_and_stays_off_layers_without_a_kernel() {
    let dev = cpu();
    let n = LeakyConfig::new(0.9).init(&dev).unwrap();
    let bad = n
        .fused(FusedCall::constant(Tensor::zeros([3, 2, 4], &dev), 5))
        .unwrap();
    assert!(bad.is_err(), "a static input must have one step");
    let wrong_state = FusedCall::new(Tensor::zeros([2, 2, 4], &dev)).with_state(Some(LeakyState {
        mem: Tensor::zeros([3, 4], &dev),
    }));
    assert!(n.fused(wrong_state).unwrap().is_err(), "state rows must match the batch");
    let per = LeakyConfig::new(vec![0.9, 0.8]).init(&dev).unwrap();
    assert!(per
        .fused(FusedCall::new(Tensor::zeros([2, 2, 3], &dev)))
        .unwrap()
        .is_err());
    let al = AlphaConfig::new(0.9, 0.8).init(&dev).unwrap();
    assert!(al.fused(FusedCall::new(Tensor::zeros([2, 2, 3], &dev))).is_none());
}

/// The layer+Linear op against the step path followed by a dense product: currents, final
/// state and gradients for input, parameters, weights and initial state.
fn linear_both<M: Planes + std::fmt::Debug>(
    n: &M,
    params: impl Fn(&M) -> Vec<Tensor<1>>,
    static_input: bool,
    init: Option<usize>,
) {
    let dev = grad_device();
    let out = 4;
    let rows = if static_input { 1 } else { T };
    let x_vals = values(rows * B * N, 41, -0.4, 1.6);
    let w_vals = values(N * out, 42, -1.0, 1.0);
    let wg = t3(&values(T * B * out, 43, -1.0, 1.0), [T, B, out], &dev);
    let wf = t2(&values(B * N, 44, -1.0, 1.0), B, N, &dev);
    let run = |fused: bool| {
        let x = t3(&x_vals, [rows, B, N], &dev).require_grad();
        let w = t2(&w_vals, N, out, &dev).require_grad();
        let init_rows: Vec<Tensor<2>> = (0..init.unwrap_or(0))
            .map(|k| t2(&values(B * N, 70 + k as u64, -0.5, 1.5), B, N, &dev).require_grad())
            .collect();
        let state = init.map(|_| n.state_from(init_rows.clone()));
        let (current, last) = if fused {
            let call = FusedCall {
                input: x.clone(),
                static_input,
                steps: T,
                state,
                mems: false,
                final_state: true,
            };
            let (c, s) = n
                .fused_linear(call, w.clone())
                .expect("Flex has a fused kernel")
                .unwrap();
            (c, s.unwrap())
        } else {
            let input = if static_input {
                x.clone().repeat_dim(0, T)
            } else {
                x.clone()
            };
            let seq = step_sequence(n, input, state, None).unwrap();
            let c = seq.spikes.reshape([T * B, N]).matmul(w.clone()).reshape([T, B, out]);
            (c, seq.state)
        };
        let last_rows = n.state_rows(&last);
        let mut loss = (current.clone() * wg.clone()).sum();
        for r in &last_rows {
            loss = loss + (r.clone() * wf.clone()).sum();
        }
        let g = loss.backward();
        let mut grads = vec![v(x.grad(&g).unwrap()), v(w.grad(&g).unwrap())];
        grads.extend(params(n).into_iter().map(|p| v(p.grad(&g).unwrap())));
        grads.extend(init_rows.iter().map(|r| v(r.grad(&g).unwrap())));
        let last: Vec<f32> = last_rows.into_iter().flat_map(v).collect();
        (v(current), last, grads)
    };
    let ((c_out, c_last, c_grads), (f_out, f_last, f_grads)) = (run(false), run(true));
    assert_close(&f_out, &c_out, 1e-5, "currents");
    assert_eq!(f_last, c_last, "final state (bit for bit)");
    for (i, (f, c)) in f_grads.iter().zip(&c_grads).enumerate() {
        let what = format!("gradient {i} of {} static={static_input} init={init:?}", describe(n));
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
                for init in [None, Some(1)] {
                    linear_both(
                        &leaky,
                        |n| vec![n.beta.val(), n.core.threshold.val()],
                        static_input,
                        init,
                    );
                }
                let syn = SynapticConfig::new(values(N, 3, 0.3, 0.9), values(N, 4, 0.5, 0.95))
                    .with_learn(true, true, true)
                    .with_surrogate(s.clone())
                    .with_reset(reset)
                    .init(&dev)
                    .unwrap();
                for init in [None, Some(2)] {
                    linear_both(
                        &syn,
                        |n| vec![n.alpha.val(), n.beta.val(), n.core.threshold.val()],
                        static_input,
                        init,
                    );
                }
            }
        }
    }
}

impl Planes for RLeaky {
    fn state_from(&self, mut rows: Vec<Tensor<2>>) -> RLeakyState {
        let spk = rows.remove(0);
        RLeakyState {
            spk,
            mem: rows.remove(0),
        }
    }
    fn state_rows(&self, s: &RLeakyState) -> Vec<Tensor<2>> {
        vec![s.spk.clone(), s.mem.clone()]
    }
}

impl Planes for RSynaptic {
    fn state_from(&self, mut rows: Vec<Tensor<2>>) -> RSynapticState {
        let spk = rows.remove(0);
        let syn = rows.remove(0);
        RSynapticState {
            spk,
            syn,
            mem: rows.remove(0),
        }
    }
    fn state_rows(&self, s: &RSynapticState) -> Vec<Tensor<2>> {
        vec![s.spk.clone(), s.syn.clone(), s.mem.clone()]
    }
}

/// Like [`agree`], for the recurrent kernels: an all-to-all product sums in another order
/// than the composed GEMM, so membranes agree to float rounding (and spikes exactly).
/// `zero_ok` names a gradient that may be exactly zero: with a zero reset, the spike fed back
/// at step `t` is the one that clears the membrane at `t`, so a one-to-one `V` from rest
/// never reaches the loss (as in snntorch).
fn agree_close(what: &str, composed: Outcome, fused: Outcome, zero_ok: Option<usize>) {
    assert_eq!(fused.spikes, composed.spikes, "{what}: spikes");
    assert_close(&fused.mems, &composed.mems, 1e-5, &format!("{what}: membranes"));
    assert_close(&fused.last_mem, &composed.last_mem, 1e-5, &format!("{what}: final state"));
    assert!(composed.spikes.contains(&1.0) && composed.spikes.contains(&0.0), "{what}: some fire");
    for (i, (f, c)) in fused.grads.iter().zip(&composed.grads).enumerate() {
        assert_close(f, c, 1e-4, &format!("{what}: gradient {i}"));
        if zero_ok != Some(i) {
            assert!(c.iter().any(|g| *g != 0.0), "{what}: gradient {i} is not trivially zero");
        }
    }
}

#[test]
fn recurrent_neurons_fused_equal_composed() {
    let dev = grad_device();
    // Spike states must be 0/1 in a real run: start them from the layer's own firing.
    for reset in [Reset::Subtract, Reset::Zero, Reset::None] {
        for all_to_all in [true, false] {
            for static_input in [false, true] {
                let kind = if all_to_all {
                    RecurrentKind::AllToAll { features: N }
                } else {
                    RecurrentKind::OneToOne(values(N, 9, -0.5, 0.5).into())
                };
                let mut rng = spyne::rng::Rng::new(4);
                let rl = RLeakyConfig::new(values(N, 5, 0.5, 0.9), kind.clone())
                    .with_threshold(values(N, 6, 0.7, 1.1))
                    .with_learn(true, true, true)
                    .with_reset(reset)
                    .init(&mut rng, &dev)
                    .unwrap();
                let rl_params = |n: &RLeaky| {
                    let mut p = vec![n.beta.val(), n.core.threshold.val()];
                    match (&n.recurrent.linear, &n.recurrent.v) {
                        (Some(l), _) => p.push(l.bias.as_ref().unwrap().val()),
                        (None, Some(v)) => p.push(v.val()),
                        _ => {}
                    }
                    p
                };
                for init in [None, Some(2)] {
                    let (c, f) = both(&rl, rl_params, static_input, init);
                    let what = format!("RLeaky {reset:?} all_to_all={all_to_all} static={static_input} init={init:?}");
                    let v_silent = reset == Reset::Zero && !all_to_all && init.is_none();
                    agree_close(&what, c, f, v_silent.then_some(3));
                }
                let mut rs = RSynapticConfig::new(values(N, 7, 0.3, 0.8), values(N, 8, 0.5, 0.9), kind)
                    .with_threshold(1.0)
                    .with_reset(reset);
                rs.learn = [true, true, true, true];
                let rs = rs.init(&mut rng, &dev).unwrap();
                for init in [None, Some(3)] {
                    let (c, f) = both(
                        &rs,
                        |n| vec![n.alpha.val(), n.beta.val(), n.core.threshold.val()],
                        static_input,
                        init,
                    );
                    let what = format!("RSynaptic {reset:?} all_to_all={all_to_all} static={static_input} init={init:?}");
                    agree_close(&what, c, f, None);
                }
            }
        }
    }
}

#[test]
fn recurrent_weight_gradient_matches_the_step_path() {
    let dev = grad_device();
    let mut rng = spyne::rng::Rng::new(11);
    let n = RLeakyConfig::new(0.8, RecurrentKind::AllToAll { features: N })
        .init(&mut rng, &dev)
        .unwrap();
    let x_vals = values(T * B * N, 12, -0.3, 1.5);
    let w = t3(&values(T * B * N, 13, -1.0, 1.0), [T, B, N], &dev);
    let grad = |fused: bool| {
        let x = t3(&x_vals, [T, B, N], &dev);
        let seq = if fused {
            run_sequence(&n, x, None, None).unwrap()
        } else {
            step_sequence(&n, x, None, None).unwrap()
        };
        let g = ((seq.spikes * w.clone()).sum() + (seq.mems * w.clone()).sum()).backward();
        v(n.recurrent.linear.as_ref().unwrap().weight.val().grad(&g).unwrap())
    };
    let (c, f) = (grad(false), grad(true));
    assert!(c.iter().any(|g| *g != 0.0));
    assert_close(&f, &c, 1e-4, "∂L/∂W of the feedback layer");
}
