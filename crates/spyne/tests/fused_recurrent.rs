//! The recurrent kernels (RLeaky, RSynaptic) against the step path.

mod common;

use burn::tensor::Tensor;
use common::fused::*;
use common::*;
use spyne::neuron::*;

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
    assert_close(
        &fused.mems,
        &composed.mems,
        1e-5,
        &format!("{what}: membranes"),
    );
    assert_close(
        &fused.last_mem,
        &composed.last_mem,
        1e-5,
        &format!("{what}: final state"),
    );
    assert!(
        composed.spikes.contains(&1.0) && composed.spikes.contains(&0.0),
        "{what}: some fire"
    );
    for (i, (f, c)) in fused.grads.iter().zip(&composed.grads).enumerate() {
        assert_close(f, c, 1e-4, &format!("{what}: gradient {i}"));
        if zero_ok != Some(i) {
            assert!(
                c.iter().any(|g| *g != 0.0),
                "{what}: gradient {i} is not trivially zero"
            );
        }
    }
}

#[test]
fn recurrent_neurons_fused_equal_composed() {
    let dev = grad_device();
    // Spike states must be 0/1 in a real run: start them from the layer's own firing.
    for reset in [
        Reset::Subtract,
        Reset::Zero,
        Reset::None,
        Reset::ZeroThenIntegrate,
    ] {
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
                let mut rs =
                    RSynapticConfig::new(values(N, 7, 0.3, 0.8), values(N, 8, 0.5, 0.9), kind)
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
        v(n.recurrent
            .linear
            .as_ref()
            .unwrap()
            .weight
            .val()
            .grad(&g)
            .unwrap())
    };
    let (c, f) = (grad(false), grad(true));
    assert!(c.iter().any(|g| *g != 0.0));
    assert_close(&f, &c, 1e-4, "∂L/∂W of the feedback layer");
}
