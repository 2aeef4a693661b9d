//! Each surrogate: exact Heaviside forward, and a gradient equal to its formula.

mod common;

use std::f32::consts::PI;

use burn::tensor::Tensor;
use common::*;
use spyne::neuron::{LeakyConfig, Neuron};
use spyne::surrogate::Surrogate;

const POINTS: [f32; 7] = [-1.5, -0.3, -0.01, 0.0, 0.02, 0.4, 1.1];

/// (spikes, gradient of Σ spikes) at POINTS, through autodiff.
fn through_autodiff(s: &Surrogate) -> (Vec<f32>, Vec<f32>) {
    let dev = grad_device();
    let x = Tensor::<1>::from_floats(POINTS, &dev).require_grad();
    let spikes = s.spike(x.clone());
    let grads = spikes.clone().sum().backward();
    (v(spikes), v(x.grad(&grads).unwrap()))
}

fn check(s: Surrogate, formula: impl Fn(f32) -> f32) {
    let (spikes, grad) = through_autodiff(&s);
    let heaviside: Vec<f32> = POINTS
        .iter()
        .map(|&x| if x > 0.0 { 1.0 } else { 0.0 })
        .collect();
    assert_eq!(
        spikes, heaviside,
        "{s:?}: forward must be the exact Heaviside"
    );
    let want: Vec<f32> = POINTS.iter().map(|&x| formula(x)).collect();
    assert_close(&grad, &want, 1e-5, &format!("{s:?} gradient"));
    let scalar: Vec<f32> = POINTS.iter().map(|&x| s.derivative(x)).collect();
    assert_close(&scalar, &want, 1e-5, &format!("{s:?} scalar derivative"));
}

#[test]
fn atan_default_alpha_2() {
    check(Surrogate::default(), |x| 1.0 / (1.0 + (PI * x).powi(2)));
    check(Surrogate::ATan { alpha: 5.0 }, |x| {
        2.5 / (1.0 + (PI / 2.0 * 5.0 * x).powi(2))
    });
}

#[test]
fn fast_sigmoid_slope_25() {
    check(Surrogate::fast_sigmoid(), |x| {
        1.0 / (25.0 * x.abs() + 1.0).powi(2)
    });
}

#[test]
fn sigmoid_slope_25() {
    check(Surrogate::sigmoid(), |x| {
        let e = (-25.0 * x).exp();
        25.0 * e / (e + 1.0).powi(2)
    });
}

#[test]
fn straight_through_is_one() {
    check(Surrogate::StraightThrough, |_| 1.0);
}

#[test]
fn triangular_is_a_real_triangle() {
    check(Surrogate::triangular(), |x| (1.0 - x.abs()).max(0.0));
    check(Surrogate::Triangular { width: 0.5 }, |x| {
        (1.0 - x.abs() / 0.5).max(0.0) * 2.0
    });
}

#[test]
fn spike_rate_escape() {
    check(Surrogate::spike_rate_escape(), |x| {
        25.0 * (-(x - 1.0).abs()).exp()
    });
}

#[test]
fn spike_operator_passes_gradient_only_where_it_fired() {
    check(
        Surrogate::SpikeOperator,
        |x| if x > 0.0 { 1.0 } else { 0.0 },
    );
}

#[test]
fn custom_closure() {
    check(Surrogate::custom("gauss", |x| (-x * x).exp()), |x| {
        (-x * x).exp()
    });
}

#[test]
fn surrogate_reaches_the_input_through_a_neuron() {
    // One step of Leaky from rest: U = I, S = H(I − θ), so ∂S/∂I = σ'(I − θ).
    let dev = grad_device();
    for s in [
        Surrogate::default(),
        Surrogate::fast_sigmoid(),
        Surrogate::triangular(),
    ] {
        let n = LeakyConfig::new(0.9)
            .with_surrogate(s.clone())
            .init(&dev)
            .unwrap();
        let i = Tensor::<2>::from_floats([[0.7, 1.0, 1.3]], &dev).require_grad();
        let (spk, _) = n.step(i.clone(), n.init_state(1, 3, &dev)).unwrap();
        let g = spk.sum().backward();
        let want: Vec<f32> = [-0.3f32, 0.0, 0.3]
            .iter()
            .map(|&x| s.derivative(x))
            .collect();
        assert_close(&v(i.grad(&g).unwrap()), &want, 1e-5, "∂S/∂I");
    }
}

#[test]
fn names_round_trip_and_unknown_names_fail() {
    for name in [
        "atan",
        "fast-sigmoid",
        "sigmoid",
        "straight-through",
        "triangular",
        "spike-operator",
        "spike-rate-escape",
    ] {
        assert_eq!(Surrogate::from_name(name).unwrap().name(), name);
    }
    assert!(Surrogate::from_name("tanh").is_err());
}
