//! Spike-driven layers inside models: which path a network takes on spike input, and that
//! it trains to what the step-by-step path gives (also in truncated-BPTT windows and from a
//! spike index the input carries).

mod common;

use std::sync::Arc;

use burn::module::Module;
use burn::tensor::Tensor;
use common::*;
use spyne::kernel::SpikeIndex;
use spyne::loss::LossKind;
use spyne::model::{presets, ModelSpec, Network, NeuronKind, NeuronSpec, SpikingModel};
use spyne::rng::{Rng, TorchRng};
use spyne::run::{PathStats, Run};
use spyne::seq::Seq;
use spyne::train::forward::forward;
use spyne::train::{TrainConfig, Trainer};
use spyne::Error;

const T: usize = 12;
const B: usize = 3;
const K: usize = 40;

/// Bernoulli spikes `[T, B, K]` at `density`.
fn spike_values(density: f32, seed: u64) -> Vec<f32> {
    values(T * B * K, seed, 0.0, 1.0)
        .into_iter()
        .map(|u| f32::from(u < density))
        .collect()
}

/// A 40-24-5 Leaky network on the autodiff CPU device; its weights are scaled up so that the
/// hidden layer fires.
fn network(spec: &ModelSpec) -> Network {
    let net = spec.init(&mut TorchRng::new(3), &grad_device()).unwrap();
    net.map(&mut Scale(4.0))
}

/// Multiplies every 2-D parameter (the weights) by the factor.
struct Scale(f32);

impl burn::module::ModuleMapper for Scale {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<D>>,
    ) -> burn::module::Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let tensor = if D == 2 {
            // A new leaf: the product itself would not hold a gradient.
            let learn = tensor.is_require_grad();
            tensor.mul_scalar(self.0).detach().set_require_grad(learn)
        } else {
            tensor
        };
        burn::module::Param::from_mapped_value(id, tensor, mapper)
    }
}

fn mlp() -> ModelSpec {
    presets::mlp(K, &[24], 5, &NeuronSpec::leaky(0.85))
}

/// The output spikes and membranes and every parameter gradient of one pass.
fn pass(net: &Network, x: Seq, run: &mut Run) -> (Vec<f32>, Vec<f32>, Vec<Vec<f32>>) {
    let out = net.forward(x, run).unwrap();
    let mems = out.mems.unwrap();
    let loss = (out.spikes.clone() * 0.7).sum() + (mems.clone() * 0.3).sum();
    let grads = loss.backward();
    let mut g = Vec::new();
    for layer in [0, 2] {
        if let spyne::model::Layer::Linear(l) = &net.layers[layer] {
            g.push(v(l.weight.val().grad(&grads).unwrap()));
            g.push(v(l.bias.as_ref().unwrap().val().grad(&grads).unwrap()));
        }
    }
    (v(out.spikes), v(mems), g)
}

fn seq(x: &[f32]) -> Seq {
    Seq::new(t3(x, [T, B, K], &grad_device()))
}

#[test]
fn spikes_into_a_network_run_the_spike_path_and_equal_the_step_path() {
    let net = network(&mlp());
    let x = spike_values(0.1, 5);
    let mut fused = Run::new();
    let (fs, fm, fg) = pass(&net, seq(&x), &mut fused);
    let stats = fused.stats();
    assert_eq!(
        (stats.fused, stats.composed, stats.sparse),
        (2, 0, 1),
        "the first Linear layer fuses into the hidden neurons, from the active inputs"
    );
    let mut composed = Run::new().composed();
    let (cs, cm, cg) = pass(&net, seq(&x), &mut composed);
    assert_eq!(composed.stats().sparse, 0);
    assert!(cs.contains(&1.0), "the output layer fires");
    assert_eq!(fs, cs, "output spikes");
    assert_close(&fm, &cm, 1e-5, "output membranes");
    for (i, (f, c)) in fg.iter().zip(&cg).enumerate() {
        assert_close(f, c, 1e-4, &format!("gradient {i}"));
        assert!(c.iter().any(|g| *g != 0.0), "gradient {i} is not zero");
    }

    // The same input with its index given: the same numbers.
    let index = Arc::new(SpikeIndex::build(&x, K, 1.0).unwrap());
    let given = seq(&x).with_spike_index(index).unwrap();
    let (gs, gm, gg) = pass(&net, given, &mut Run::new());
    assert_eq!((gs, gm), (fs, fm));
    assert_eq!(gg, fg);
}

#[test]
fn dense_or_non_binary_input_keeps_the_dense_product() {
    let net = network(&mlp());
    let path = |x: Vec<f32>| {
        let mut run = Run::new();
        net.forward(seq(&x), &mut run).unwrap();
        run.stats()
    };
    let dense = PathStats {
        fused: 2,
        composed: 0,
        sparse: 0,
    };
    assert_eq!(
        path(spike_values(0.5, 6)),
        dense,
        "spikes above the crossover"
    );
    assert_eq!(
        path(values(T * B * K, 7, 0.0, 1.0)),
        dense,
        "currents, not spikes"
    );
    // A constant (static) input is hoisted, never indexed.
    let mut run = Run::new();
    let img = t2(&spike_values(0.1, 8)[..B * K], B, K, &grad_device());
    net.forward(Seq::constant(img, T), &mut run).unwrap();
    assert_eq!(run.stats(), dense);
}

#[test]
fn a_linear_layer_before_a_neuron_without_a_spike_kernel_runs_from_the_spikes_alone() {
    // Alpha has no spike-input kernel: the Linear layer before it runs on its own, from the
    // active inputs.
    let spec = ModelSpec::new([K])
        .linear(24)
        .neuron(NeuronSpec {
            alpha: Some(0.8.into()),
            beta: Some(0.7.into()),
            ..NeuronSpec::new(NeuronKind::Alpha)
        })
        .linear(5)
        .neuron(NeuronSpec::leaky(0.85));
    let net = network(&spec);
    let x = spike_values(0.1, 9);
    let mut run = Run::new();
    let out = net.forward(seq(&x), &mut run).unwrap();
    // Both Linear layers take spikes: the data's, and the Alpha layer's.
    assert_eq!(run.stats().sparse, 2);
    let mut composed = Run::new().composed();
    let slow = net.forward(seq(&x), &mut composed).unwrap();
    assert_eq!(v(out.spikes), v(slow.spikes));
    assert_close(
        &v(out.mems.unwrap()),
        &v(slow.mems.unwrap()),
        1e-5,
        "membranes",
    );
}

#[test]
fn truncated_windows_slice_the_spike_index() {
    let net = network(&mlp());
    let x = spike_values(0.1, 10);
    let index = Arc::new(SpikeIndex::build(&x, K, 1.0).unwrap());
    let config = TrainConfig {
        steps: T,
        tbptt: 5,
        loss: LossKind::CeMembrane,
        ..TrainConfig::default()
    };
    let rng = Rng::new(1);
    let windows = |x: Seq, composed: bool| {
        let (out, stats) = forward(&net, x, &config, Some(&rng), composed).unwrap();
        (v(out.spikes), v(out.mems.unwrap()), stats)
    };
    let (fs, fm, stats) = windows(seq(&x).with_spike_index(index).unwrap(), false);
    assert_eq!(
        stats.sparse, 3,
        "one spike-driven layer in each of 3 windows"
    );
    let (cs, cm, _) = windows(seq(&x), true);
    assert_eq!(fs, cs);
    assert_close(&fm, &cm, 1e-5, "membranes over the windows");
}

#[test]
fn a_spike_index_must_describe_its_sequence() {
    let x = spike_values(0.1, 11);
    let index = Arc::new(SpikeIndex::build(&x[..(T - 1) * B * K], K, 1.0).unwrap());
    let err = seq(&x).with_spike_index(index).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    // The index of a window is the window's rows.
    let full = SpikeIndex::build(&x, K, 1.0).unwrap();
    let part = SpikeIndex::build(&x[2 * B * K..7 * B * K], K, 1.0).unwrap();
    assert_eq!(full.rows_range(2 * B..7 * B), part);
}

#[test]
fn train_seq_checks_its_labels_and_skips_membranes_a_loss_does_not_read() {
    let spec = mlp();
    let config = TrainConfig {
        steps: T,
        batch_size: B,
        loss: LossKind::CeCount,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::from_spec(config, &spec, &cpu()).unwrap();
    let x = Seq::new(t3(
        &spike_values(0.1, 12),
        [T, B, K],
        &trainer.device().unwrap(),
    ));
    let err = trainer
        .train_seq(x.clone(), &[0, 1], &mut Rng::new(0))
        .unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    let (loss, _) = trainer
        .train_seq(x.clone(), &[0, 1, 2], &mut Rng::new(0))
        .unwrap();
    assert!(loss.is_finite());
    assert_eq!(trainer.last_path().sparse, 1);
    // A loss that reads membranes is refused without them.
    let out = spyne::run::Output {
        spikes: Tensor::zeros([T, B, 5], &cpu()),
        mems: None,
    };
    let err = LossKind::CeMembrane
        .compute(out.spikes, out.mems, &[0, 1, 2])
        .unwrap_err();
    assert!(err.to_string().contains("membranes"), "{err}");
}
