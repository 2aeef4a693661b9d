//! The reference networks: snntorch tutorial 5's MLP and tutorial 6's convolutional SNN.

use super::spec::{ModelSpec, NeuronSpec};
use crate::surrogate::Surrogate;

/// A fully connected SNN: `inputs → hidden… → outputs`, every Linear layer followed by a
/// neuron layer built from `neuron` (tutorial 5: `mlp(784, &[1000], 10, leaky(0.95))`).
/// Layers are named `fc1`, `lif1`, `fc2`, `lif2`, … as in the tutorial.
pub fn mlp(inputs: usize, hidden: &[usize], outputs: usize, neuron: &NeuronSpec) -> ModelSpec {
    let mut spec = ModelSpec::new([inputs]);
    for &width in hidden.iter().chain([&outputs]) {
        spec = spec.linear(width).neuron(neuron.clone());
    }
    spec
}

/// The shd-like job's network: Linear(700, 512) → Leaky(β = 0.9) → Linear(512, 20) →
/// Leaky(β = 0.9), for spike input with SHD's 700 channels and 20 classes.
pub fn shd_like() -> ModelSpec {
    mlp(700, &[512], 20, &NeuronSpec::leaky(0.9))
}

/// snntorch tutorial 6: Conv2d(1, 12, 5) → MaxPool2d(2) → Leaky → Conv2d(12, 64, 5) →
/// MaxPool2d(2) → Leaky → Flatten → Linear(1024, 10) → Leaky, every Leaky β = 0.5 with the
/// fast sigmoid surrogate (slope 25), on `[1, 28, 28]` images.
pub fn csnn() -> ModelSpec {
    let lif = NeuronSpec::leaky(0.5).with_surrogate(Surrogate::FastSigmoid { slope: 25.0 });
    ModelSpec::new([1, 28, 28])
        .conv2d(12, 5)
        .max_pool2d(2)
        .neuron(lif.clone())
        .conv2d(64, 5)
        .max_pool2d(2)
        .neuron(lif.clone())
        .flatten()
        .linear(10)
        .neuron(lif)
}
