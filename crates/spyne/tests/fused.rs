//! The fused kernels against the step-by-step path: values, gradients and final state, for
//! Leaky, Synaptic and Lapicque, every reset mode, every surrogate, static and per-step
//! input, from rest and from a given state.

mod common;

use burn::tensor::Tensor;
use common::fused::*;
use common::*;
use spyne::neuron::*;

#[test]
fn leaky_fused_equals_composed() {
    let dev = grad_device();
    for reset in [
        Reset::Subtract,
        Reset::Zero,
        Reset::None,
        Reset::ZeroThenIntegrate,
    ] {
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
                    let what = format!(
                        "Leaky {reset:?} {} static={static_input} init={init:?}",
                        s.name()
                    );
                    agree(&what, c, f);
                }
            }
        }
    }
}

#[test]
fn synaptic_fused_equals_composed() {
    let dev = grad_device();
    for reset in [
        Reset::Subtract,
        Reset::Zero,
        Reset::None,
        Reset::ZeroThenIntegrate,
    ] {
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
                    let what = format!(
                        "Synaptic {reset:?} {} static={static_input} init={init:?}",
                        s.name()
                    );
                    agree(&what, c, f);
                }
            }
        }
    }
}

#[test]
fn lapicque_runs_on_the_synaptic_kernel_exactly() {
    let dev = grad_device();
    for reset in [
        Reset::Subtract,
        Reset::Zero,
        Reset::None,
        Reset::ZeroThenIntegrate,
    ] {
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
    assert_eq!(
        (&f.0, &f.1, &f.2),
        (&c.0, &c.1, &c.2),
        "values and final state"
    );
    assert_close(&f.3, &c.3, 2e-5, "∂/∂x with windows of 3");
    assert_close(&f.4, &c.4, 2e-5, "∂/∂β with windows of 3");
    // The window boundary cuts the gradient: the first window's input does not see the
    // last window's loss.
    let x = t3(&x_vals, [steps, B, N], &dev).require_grad();
    let seq = run_sequence(&n, x.clone(), None, Some(3)).unwrap();
    let tail = seq.mems.narrow(0, 6, 1).sum().backward();
    let gx = v(x.grad(&tail).unwrap());
    assert!(
        gx[..6 * B * N].iter().all(|&g| g == 0.0),
        "no gradient across windows"
    );
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
    assert_eq!(
        per_channel.beta.val().grad(&g).unwrap().dims(),
        [3],
        "one β gradient per channel"
    );
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
    assert!(
        n.fused(wrong_state).unwrap().is_err(),
        "state rows must match the batch"
    );
    let per = LeakyConfig::new(vec![0.9, 0.8]).init(&dev).unwrap();
    assert!(per
        .fused(FusedCall::new(Tensor::zeros([2, 2, 3], &dev)))
        .unwrap()
        .is_err());
    let al = AlphaConfig::new(0.9, 0.8).init(&dev).unwrap();
    assert!(al
        .fused(FusedCall::new(Tensor::zeros([2, 2, 3], &dev)))
        .is_none());
}
