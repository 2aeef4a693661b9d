//! Bad neuron settings and mismatched shapes: typed errors, never panics.

mod common;

use burn::tensor::Tensor;
use common::*;
use spyne::neuron::*;
use spyne::Error;

#[test]
fn bad_construction_values_are_typed_errors() {
    let dev = cpu();
    let invalid = |r: Result<_, Error>, name: &str| match r {
        Err(Error::InvalidValue { name: n, .. }) => assert_eq!(n, name),
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("{name} should be rejected"),
    };
    invalid(LeakyConfig::new(1.5).init(&dev).map(|_| ()), "beta");
    invalid(LeakyConfig::new(-0.1).init(&dev).map(|_| ()), "beta");
    invalid(LeakyConfig::new(f32::NAN).init(&dev).map(|_| ()), "beta");
    invalid(
        LeakyConfig::new(vec![0.5, 2.0]).init(&dev).map(|_| ()),
        "beta",
    );
    invalid(
        LeakyConfig::new(0.9)
            .with_threshold(0.0)
            .init(&dev)
            .map(|_| ()),
        "threshold",
    );
    invalid(
        LeakyConfig::new(0.9)
            .with_threshold(-1.0)
            .init(&dev)
            .map(|_| ()),
        "threshold",
    );
    invalid(
        SynapticConfig::new(1.2, 0.5).init(&dev).map(|_| ()),
        "alpha",
    );
    invalid(AlphaConfig::new(0.5, 0.8).init(&dev).map(|_| ()), "alpha");
    invalid(
        LapicqueConfig::from_beta(1.0).init(&dev).map(|_| ()),
        "beta",
    );
    let bad_surrogate =
        LeakyConfig::new(0.9).with_surrogate(spyne::surrogate::Surrogate::ATan { alpha: -1.0 });
    invalid(bad_surrogate.init(&dev).map(|_| ()), "alpha");
}

#[test]
fn mismatched_shapes_are_typed_errors() {
    let dev = cpu();
    let n = leaky(0.9, Reset::Subtract);
    let state = n.init_state(2, 3, &dev);
    let err = n.step(Tensor::zeros([2, 4], &dev), state).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    let per_neuron = LeakyConfig::new(vec![0.9, 0.8]).init(&dev).unwrap();
    let state = per_neuron.init_state(1, 3, &dev);
    let err = per_neuron
        .step(Tensor::zeros([1, 3], &dev), state)
        .unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    let syn = SynapticConfig::new(0.5, 0.5).init(&dev).unwrap();
    let mut s = syn.init_state(1, 2, &dev);
    s.syn = Tensor::zeros([1, 3], &dev);
    assert!(matches!(
        syn.step(Tensor::zeros([1, 2], &dev), s).unwrap_err(),
        Error::Shape { .. }
    ));
    let seq = run_sequence(&n, Tensor::zeros([0, 1, 1], &dev), None, None);
    assert!(matches!(seq.unwrap_err(), Error::InvalidValue { .. }));
}
