//! Each neuron against hand-computed sequences, for every reset mode.

mod common;

use common::*;
use spyne::neuron::*;
use spyne::rng::Rng;

/// Runs a one-neuron layer step by step on `inputs`; returns (spikes, membranes).
fn drive<N: Neuron>(n: &N, inputs: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let dev = cpu();
    let mut state = n.init_state(1, 1, &dev);
    let (mut s, mut m) = (Vec::new(), Vec::new());
    for &x in inputs {
        let (spk, next) = n.step(t2(&[x], 1, 1, &dev), state).unwrap();
        s.push(v(spk)[0]);
        m.push(v(next.mem())[0]);
        state = next;
    }
    (s, m)
}

fn check<N: Neuron>(n: &N, inputs: &[f32], spikes: &[f32], mems: &[f32]) {
    let (s, m) = drive(n, inputs);
    assert_eq!(s, spikes, "spikes");
    assert_close(&m, mems, 1e-6, "membrane");
}

#[test]
fn leaky_subtract_constant_input() {
    // U = 0.5, 0.95, 1.355 (fires), 0.9·1.355 + 0.5 − 1 = 0.7195, 1.14755 (fires), 0.532795.
    check(
        &leaky(0.9, Reset::Subtract),
        &[0.5; 6],
        &[0., 0., 1., 0., 1., 0.],
        &[0.5, 0.95, 1.355, 0.7195, 1.14755, 0.532795],
    );
}

#[test]
fn leaky_zero_reset_clears_the_carried_membrane() {
    check(
        &leaky(0.9, Reset::Zero),
        &[0.5; 6],
        &[0., 0., 1., 0., 0., 1.],
        &[0.5, 0.95, 1.355, 0.5, 0.95, 1.355],
    );
}

#[test]
fn leaky_without_reset_keeps_integrating() {
    check(
        &leaky(0.9, Reset::None),
        &[0.5; 6],
        &[0., 0., 1., 1., 1., 1.],
        &[0.5, 0.95, 1.355, 1.7195, 2.04755, 2.342795],
    );
}

#[test]
fn leaky_step_input_fires_at_once_and_resets_next_step() {
    check(
        &leaky(0.8, Reset::Subtract),
        &[0.0, 0.0, 1.2, 1.2, 0.0, 0.0],
        &[0., 0., 1., 1., 0., 0.],
        &[0.0, 0.0, 1.2, 1.16, -0.072, -0.0576],
    );
}

#[test]
fn leaky_exactly_at_threshold_is_silent() {
    check(
        &leaky(0.0, Reset::Subtract),
        &[1.0, 1.0],
        &[0., 0.],
        &[1.0, 1.0],
    );
}

#[test]
fn leaky_per_neuron_beta_and_threshold() {
    let dev = cpu();
    let n = LeakyConfig::new(vec![0.9, 0.5])
        .with_threshold(vec![1.0, 0.6])
        .init(&dev)
        .unwrap();
    let mut state = n.init_state(1, 2, &dev);
    let mut spikes = Vec::new();
    for _ in 0..3 {
        let (s, next) = n.step(t2(&[0.5, 0.5], 1, 2, &dev), state).unwrap();
        spikes.extend(v(s));
        state = next;
    }
    // Neuron 0 as above; neuron 1: U = 0.5, 0.75 (fires, θ = 0.6), 0.375 + 0.5 − 0.6 = 0.275.
    assert_eq!(spikes, vec![0., 0., 0., 1., 1., 0.]);
    assert_close(&v(state.mem), &[1.355, 0.275], 1e-6, "membranes");
}

#[test]
fn synaptic_every_reset() {
    let n = |r| {
        SynapticConfig::new(0.5, 0.8)
            .with_reset(r)
            .init(&cpu())
            .unwrap()
    };
    let x = [0.3; 6];
    check(
        &n(Reset::Subtract),
        &x,
        &[0., 0., 1., 0., 0., 1.],
        &[0.3, 0.69, 1.077, 0.4241, 0.92053, 1.327049],
    );
    check(
        &n(Reset::Zero),
        &x,
        &[0., 0., 1., 0., 0., 1.],
        &[0.3, 0.69, 1.077, 0.0, 0.58125, 1.055625],
    );
    // Zero-then-integrate: the step after a spike integrates its current from U = 0.
    check(
        &n(Reset::ZeroThenIntegrate),
        &x,
        &[0., 0., 1., 0., 1., 0.],
        &[0.3, 0.69, 1.077, 0.5625, 1.03125, 0.590625],
    );
    check(
        &n(Reset::None),
        &x,
        &[0., 0., 1., 1., 1., 1.],
        &[0.3, 0.69, 1.077, 1.4241, 1.72053, 1.967049],
    );
}

#[test]
fn synaptic_current_is_not_reset() {
    let n = SynapticConfig::new(0.5, 0.8)
        .with_reset(Reset::Zero)
        .init(&cpu())
        .unwrap();
    let dev = cpu();
    let mut s = n.init_state(1, 1, &dev);
    for _ in 0..4 {
        s = n.step(t2(&[0.3], 1, 1, &dev), s).unwrap().1;
    }
    assert_close(&v(s.syn), &[0.5625], 1e-6, "current");
}

#[test]
fn lapicque_from_beta_every_reset() {
    // R = 1, C = 1/ln(1/0.9): decay 1 − ln(1/0.9) = 0.894639, gain ln(1/0.9) = 0.105361.
    let n = |r| {
        LapicqueConfig::from_beta(0.9)
            .with_reset(r)
            .init(&cpu())
            .unwrap()
    };
    let x = [4.0; 6];
    check(
        &n(Reset::Subtract),
        &x,
        &[0., 0., 1., 0., 0., 1.],
        &[0.421442, 0.798481, 1.135794, 0.437569, 0.812908, 1.148702],
    );
    check(
        &n(Reset::Zero),
        &x,
        &[0., 0., 1., 0., 0., 0.],
        &[0.421442, 0.798481, 1.135794, 0.0, 0.421442, 0.798481],
    );
    check(
        &n(Reset::ZeroThenIntegrate),
        &x,
        &[0., 0., 1., 0., 0., 1.],
        &[0.421442, 0.798481, 1.135794, 0.421442, 0.798481, 1.135794],
    );
}

#[test]
fn lapicque_from_rc() {
    // R = 2, C = 5, Δt = 1: decay 0.9, gain 0.2.
    let n = LapicqueConfig::from_rc(2.0, 5.0).init(&cpu()).unwrap();
    check(&n, &[3.0, 3.0], &[0., 1.], &[0.6, 1.14]);
}

fn one_to_one(v: f32) -> RecurrentKind {
    RecurrentKind::OneToOne(Value::Scalar(v))
}

#[test]
fn rleaky_feeds_spikes_back() {
    let n = |r| {
        RLeakyConfig::new(0.9, one_to_one(0.5))
            .with_reset(r)
            .init(&mut Rng::new(0), &cpu())
            .unwrap()
    };
    let x = [0.5; 6];
    check(
        &n(Reset::Subtract),
        &x,
        &[0., 0., 1., 1., 1., 0.],
        &[0.5, 0.95, 1.355, 1.2195, 1.09755, 0.987795],
    );
    check(
        &n(Reset::Zero),
        &x,
        &[0., 0., 1., 0., 0., 0.],
        &[0.5, 0.95, 1.355, 0.0, 0.5, 0.95],
    );
    // U = 0 after the spike, then the input and the fed-back spike: 0.5 + 0.5, not above θ.
    check(
        &n(Reset::ZeroThenIntegrate),
        &x,
        &[0., 0., 1., 0., 1., 0.],
        &[0.5, 0.95, 1.355, 1.0, 1.4, 1.0],
    );
}

#[test]
fn rsynaptic_feeds_spikes_into_the_current() {
    let n = RSynapticConfig::new(0.5, 0.8, one_to_one(0.5))
        .init(&mut Rng::new(0), &cpu())
        .unwrap();
    check(
        &n,
        &[0.3; 6],
        &[0., 0., 1., 0., 1., 1.],
        &[0.3, 0.69, 1.077, 0.9241, 1.57053, 1.472049],
    );
}

#[test]
fn rleaky_all_to_all_uses_a_linear_layer() {
    let dev = cpu();
    let n = RLeakyConfig::new(0.9, RecurrentKind::AllToAll { features: 3 })
        .init(&mut Rng::new(1), &dev)
        .unwrap();
    let lin = n.recurrent.linear.as_ref().unwrap();
    let mut state = n.init_state(2, 3, &dev);
    let x = t2(&[2.0, 0.0, 2.0, 0.0, 2.0, 0.0], 2, 3, &dev);
    let (s1, st) = n.step(x.clone(), state).unwrap();
    state = st;
    let (_, st2) = n.step(x.clone(), state.clone()).unwrap();
    // U[2] = β·U[1] + x + W·S[1] + b − r·θ, with r = S[1].
    let want = state.mem.clone() * 0.9 + x + lin.forward(s1.clone()) - s1;
    assert_close(&v(st2.mem), &v(want), 1e-6, "membrane");
}

#[test]
fn alpha_every_reset() {
    // τ = ln 0.9 / (ln 0.8 − ln 0.9) + 1 = 1.894530.
    let n = |r| {
        AlphaConfig::new(0.9, 0.8)
            .with_threshold(0.5)
            .with_reset(r)
            .init(&cpu())
            .unwrap()
    };
    let x = [1.0; 5];
    check(
        &n(Reset::Subtract),
        &x,
        &[0., 0., 1., 0., 1.],
        &[0.0, 0.189453, 0.511523, -1.517364, 5.011223],
    );
    check(
        &n(Reset::Zero),
        &x,
        &[0., 0., 1., 0., 0.],
        &[0.0, 0.189453, 0.511523, 0.0, 0.0],
    );
    check(
        &n(Reset::None),
        &x,
        &[0., 0., 1., 1., 1.],
        &[0.0, 0.189453, 0.511523, 0.922636, 1.389638],
    );
}

/// Multi-step and single-step calls give identical results (bit for bit).
fn multi_equals_single<N: Neuron + std::fmt::Debug>(n: &N) {
    let dev = cpu();
    let (t, b, f) = (7, 3, 4);
    let x = t3(&values(t * b * f, 5, -0.5, 3.0), [t, b, f], &dev);
    let seq = run_sequence(n, x.clone(), None, None).unwrap();
    let mut state = n.init_state(b, f, &dev);
    let (mut s, mut m) = (Vec::new(), Vec::new());
    for step in 0..t {
        let (spk, next) = n
            .step(x.clone().narrow(0, step, 1).reshape([b, f]), state)
            .unwrap();
        s.extend(v(spk));
        m.extend(v(next.mem()));
        state = next;
    }
    assert_eq!(v(seq.spikes.clone()), s, "{n:?}");
    assert_eq!(v(seq.mems), m, "{n:?}");
    assert!(
        v(seq.spikes).contains(&1.0),
        "the test input should make neurons fire"
    );
}

#[test]
fn multi_step_equals_single_step_for_every_neuron() {
    let dev = cpu();
    for r in [
        Reset::Subtract,
        Reset::Zero,
        Reset::None,
        Reset::ZeroThenIntegrate,
    ] {
        multi_equals_single(&LeakyConfig::new(0.8).with_reset(r).init(&dev).unwrap());
        multi_equals_single(
            &SynapticConfig::new(0.6, 0.8)
                .with_reset(r)
                .init(&dev)
                .unwrap(),
        );
        multi_equals_single(
            &LapicqueConfig::from_beta(0.8)
                .with_reset(r)
                .init(&dev)
                .unwrap(),
        );
        let alpha = AlphaConfig::new(0.9, 0.7).with_threshold(0.3).with_reset(r);
        if r == Reset::ZeroThenIntegrate {
            assert!(
                alpha.init(&dev).is_err(),
                "Alpha has no zero-then-integrate"
            );
        } else {
            multi_equals_single(&alpha.init(&dev).unwrap());
        }
        let kind = RecurrentKind::AllToAll { features: 4 };
        multi_equals_single(
            &RLeakyConfig::new(0.8, kind.clone())
                .with_reset(r)
                .init(&mut Rng::new(2), &dev)
                .unwrap(),
        );
        multi_equals_single(
            &RSynapticConfig::new(0.6, 0.8, kind)
                .with_reset(r)
                .init(&mut Rng::new(3), &dev)
                .unwrap(),
        );
    }
}

#[test]
fn sequence_continues_from_a_returned_state() {
    let dev = cpu();
    let n = leaky(0.9, Reset::Subtract);
    let x = t3(&[0.5; 6], [6, 1, 1], &dev);
    let whole = run_sequence(&n, x.clone(), None, None).unwrap();
    let first = run_sequence(&n, x.clone().narrow(0, 0, 3), None, None).unwrap();
    let rest = run_sequence(&n, x.narrow(0, 3, 3), Some(first.state), None).unwrap();
    assert_eq!(v(whole.mems.narrow(0, 3, 3)), v(rest.mems));
}
