//! Model descriptions (TOML and the Rust builder), the summary table, networks built from
//! them, and a user's own model through the public API: on the fused path, like the rest.

mod common;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use common::*;
use spyne::layer::{
    conv_max_pool, torch_conv2d, torch_linear, Conv2d, Linear, MaxPool2d, SeqLayer,
};
use spyne::model::{presets, summary, ModelSpec, Network, NeuronSpec, SpikingModel};
use spyne::neuron::{Leaky, LeakyConfig};
use spyne::rng::TorchRng;
use spyne::run::{Output, Run};
use spyne::seq::Seq;
use spyne::train::{ModelFile, TrainConfig, Trainer};
use spyne::{Error, Result};

const CSNN_FILE: &str = r#"
input = [1, 28, 28]

[[layer]]
type = "conv2d"
channels = 12
kernel = 5

[[layer]]
type = "max_pool2d"
kernel = 2

[[layer]]
type = "leaky"
beta = 0.5
surrogate = { type = "fast-sigmoid", slope = 25 }

[[layer]]
type = "conv2d"
channels = 64
kernel = 5

[[layer]]
type = "max_pool2d"
kernel = 2

[[layer]]
type = "leaky"
beta = 0.5
surrogate = "fast_sigmoid"

[[layer]]
type = "flatten"

[[layer]]
type = "linear"
features = 10

[[layer]]
type = "leaky"
beta = 0.5
surrogate = { type = "fast-sigmoid" }
"#;

#[test]
fn a_model_file_reads_as_tutorial_6_and_round_trips() {
    let spec = ModelSpec::from_toml(CSNN_FILE).unwrap();
    assert_eq!(spec, presets::csnn(), "the file describes the preset");
    let text = spec.resolved().unwrap().to_toml();
    let again = ModelSpec::from_toml(&text).unwrap();
    assert_eq!(
        again,
        spec.resolved().unwrap(),
        "TOML → spec → TOML → spec\n{text}"
    );
    let net = spec.init(&mut TorchRng::new(0), &grad_device()).unwrap();
    let table = summary(&net);
    let shapes: Vec<Vec<usize>> = table.rows.iter().map(|r| r.shape.clone()).collect();
    assert_eq!(
        shapes,
        vec![
            vec![12, 24, 24],
            vec![12, 12, 12],
            vec![12, 12, 12],
            vec![64, 8, 8],
            vec![64, 4, 4],
            vec![64, 4, 4],
            vec![1024],
            vec![10],
            vec![10],
        ]
    );
    let names: Vec<&str> = table.rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["conv1", "pool1", "lif1", "conv2", "pool2", "lif2", "flatten1", "fc1", "lif3"]
    );
    let trainable: usize = table.rows.iter().map(|r| r.trainable).sum();
    assert_eq!(trainable, 12 * 25 + 12 + 64 * 12 * 25 + 64 + 1024 * 10 + 10);
    let printed = table.to_string();
    assert!(
        printed.contains("[T, B, 64, 4, 4]") && printed.contains("Trainable params: 29826"),
        "{printed}"
    );
}

#[test]
fn a_model_file_may_carry_its_training_settings() {
    let text = format!("{CSNN_FILE}\n[train]\nsteps = 50\nloss = \"ce-rate\"\nlr = 0.01\n");
    let file = ModelFile::from_toml(&text).unwrap();
    assert_eq!(file.train, Some(TrainConfig::csnn()));
    assert_eq!(file.model, presets::csnn());
}

/// The error of reading (and building) a description.
fn error_of(text: &str) -> String {
    match ModelSpec::from_toml(text).and_then(|s| s.init(&mut TorchRng::new(0), &cpu()).map(|_| ()))
    {
        Ok(()) => panic!("{text} was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_model_files_name_the_layer() {
    let head = "input = [1, 8, 8]\n";
    let tail = "\n[[layer]]\ntype = \"flatten\"\n[[layer]]\ntype = \"linear\"\nfeatures = 3\n[[layer]]\ntype = \"leaky\"\nbeta = 0.9\n";
    let cases = [
        (
            format!("{head}[[layer]]\ntype = \"conv3d\"\nchannels = 4\n{tail}"),
            vec!["layer 1", "unknown layer type 'conv3d'", "conv2d"],
        ),
        (
            format!("{head}[[layer]]\ntype = \"conv2d\"\nkernel = 3\n{tail}"),
            vec!["layer 1", "conv2d", "missing field `channels`"],
        ),
        (
            format!("{head}[[layer]]\ntype = \"conv2d\"\nchannels = 2\nkernel = 3\nstrid = 2\n{tail}"),
            vec!["layer 1", "unknown field `strid`"],
        ),
        (
            format!("{head}[[layer]]\ntype = \"leaky\"\nbeta = 0.9\nalpha = 0.5\n{tail}"),
            vec!["layer 1 'lif1' (leaky)", "no setting 'alpha'"],
        ),
        (
            format!("{head}[[layer]]\ntype = \"leaky\"\n{tail}"),
            vec!["layer 1 'lif1' (leaky)", "needs 'beta'"],
        ),
        (
            format!("{head}[[layer]]\ntype = \"linear\"\nfeatures = 4\n{tail}"),
            vec!["layer 1 'fc1' (linear)", "[1, 8, 8]", "flatten"],
        ),
        (
            format!("{head}[[layer]]\ntype = \"flatten\"\n[[layer]]\ntype = \"linear\"\nin_features = 60\nfeatures = 4\n{tail}"),
            vec!["layer 2 'fc1' (linear)", "in_features = 60", "[64]"],
        ),
        (
            format!("{head}[[layer]]\ntype = \"conv2d\"\nchannels = 2\nkernel = 9\n{tail}"),
            vec!["layer 1 'conv1' (conv2d)", "[9, 9]", "[1, 8, 8]"],
        ),
        (
            format!("{head}[[layer]]\ntype = \"conv2d\"\nin_channels = 3\nchannels = 2\nkernel = 3\n{tail}"),
            vec!["layer 1 'conv1' (conv2d)", "in_channels = 3", "[1, 8, 8]"],
        ),
        (
            format!("{head}[[layer]]\ntype = \"leaky\"\nbeta = {{ per_channel = [0.9, 0.8] }}\n{tail}"),
            vec!["layer 1 'lif1' (leaky)", "shape [1, 8, 8]"],
        ),
        (
            format!("{head}{tail}[[layer]]\ntype = \"flatten\"\n"),
            vec!["last layer must be a neuron layer"],
        ),
        (
            format!("{head}sparsity = 3\n{tail}"),
            vec!["unknown key `sparsity`"],
        ),
        (
            format!("{head}[[layer]]\ntype = \"linear\"\nname = \"a\"\nfeatures = 2\n[[layer]]\ntype = \"leaky\"\nname = \"a\"\nbeta = 0.5\n"),
            vec!["layer 2 'a'", "same name"],
        ),
    ];
    for (text, needles) in cases {
        let e = error_of(&text);
        for n in needles {
            assert!(e.contains(n), "expected {n:?} in: {e}");
        }
        assert!(!e.contains('\n'), "one line: {e}");
    }
}

#[test]
fn a_width_no_machine_holds_is_refused_before_allocating() {
    let spec = presets::mlp(784, &[100_000_000], 10, &NeuronSpec::leaky(0.9));
    let e = spec.init(&mut TorchRng::new(0), &cpu()).unwrap_err();
    assert!(matches!(e, Error::Model { index: 1, .. }), "{e}");
    assert!(e.to_string().contains("GB"), "{e}");
}

#[test]
fn a_network_runs_the_same_fused_and_composed() {
    let spec = ModelSpec::new([2, 10, 10])
        .conv2d(3, 3)
        .max_pool2d(2)
        .neuron(NeuronSpec::leaky(0.7))
        .flatten()
        .linear(5)
        .neuron(NeuronSpec::synaptic(0.6, 0.8))
        .linear(3)
        .neuron(NeuronSpec::leaky(0.9).with_threshold(0.5));
    let dev = grad_device();
    let net = spec.init(&mut TorchRng::new(7), &dev).unwrap();
    let x_vals = values(4 * 2 * 100, 8, 0.0, 2.0);
    let go = |run: Run| {
        let mut run = run;
        let x = Seq::constant(t2(&x_vals, 4, 200, &dev), 6)
            .with_shape(&[2, 10, 10])
            .unwrap();
        let out = net.forward(x, &mut run).unwrap();
        let loss = out.mems.clone().unwrap().sum() + out.spikes.clone().sum();
        let g = loss.backward();
        let grads: Vec<Vec<f32>> = spyne::model::params::export(&net)
            .keys()
            .filter_map(|name| grad_of(&net, name, &g))
            .collect();
        (v(out.spikes), v(out.mems.unwrap()), grads, run.stats())
    };
    let (fs, fm, fg, fstats) = go(Run::new());
    let (cs, cm, cg, cstats) = go(Run::new().composed());
    assert_eq!(
        (fstats.fused, fstats.composed),
        (3, 0),
        "every neuron layer fused"
    );
    assert_eq!((cstats.fused, cstats.composed), (0, 3));
    assert_eq!(fs, cs, "spikes");
    assert_close(&fm, &cm, 1e-5, "membranes");
    assert_eq!(fg.len(), cg.len());
    for (f, c) in fg.iter().zip(&cg) {
        assert_close(f, c, 1e-4, "gradients");
    }
}

/// The gradient of the Linear/Conv weight named `name` (`fc1.weight`, …), if it is one.
fn grad_of(net: &Network, name: &str, g: &burn::tensor::Gradients) -> Option<Vec<f32>> {
    let layer = name.split('.').next()?;
    let i = net.names().iter().position(|n| *n == layer)?;
    match (&net.layers[i], name.ends_with(".weight")) {
        (spyne::model::Layer::Linear(l), true) => Some(v(l.weight.val().grad(g)?)),
        (spyne::model::Layer::Conv2d(c), true) => Some(v(c.weight.val().grad(g)?)),
        _ => None,
    }
}

/// A residual spiking block no sequential list expresses: the block's spikes are added to
/// its input's before the classifier.
#[derive(Module, Debug)]
struct Residual {
    conv: Conv2d,
    pool: MaxPool2d,
    lif0: Leaky,
    conv2: Conv2d,
    lif1: Leaky,
    fc: Linear,
    out: Leaky,
}

impl SpikingModel for Residual {
    fn forward(&self, x: Seq, run: &mut Run) -> Result<Output> {
        let a = conv_max_pool(&self.conv, &self.pool, x, run)?;
        let a = self.lif0.forward_seq(a, run)?;
        let b = self.conv2.forward_seq(a.clone(), run)?;
        let b = self.lif1.forward_seq(b, run)?;
        let sum = a.plus(b)?;
        let flat = sum.with_shape(&[4 * 4 * 4])?;
        let current = self.fc.forward_seq(flat, run)?;
        run.output(&self.out, current)
    }
}

fn residual(device: &Device) -> Residual {
    let mut rng = TorchRng::new(1);
    let lif = |b: f32| LeakyConfig::new(b).init(device).unwrap();
    Residual {
        conv: torch_conv2d([1, 4], [3, 3], [1, 1], [1, 1], true, &mut rng, device).unwrap(),
        pool: spyne::layer::max_pool2d([2, 2], None).unwrap(),
        lif0: lif(0.8),
        conv2: torch_conv2d([4, 4], [3, 3], [1, 1], [1, 1], true, &mut rng, device).unwrap(),
        lif1: lif(0.8),
        fc: torch_linear(64, 3, true, &mut rng, device).unwrap(),
        out: lif(0.9),
    }
}

#[test]
fn a_users_own_model_takes_the_fused_path_and_trains() {
    let dev = grad_device();
    let model = residual(&dev);
    let x = Seq::constant(Tensor::ones([2, 64], &dev), 5)
        .with_shape(&[1, 8, 8])
        .unwrap();
    let mut run = Run::new();
    let out = model.forward(x.clone(), &mut run).unwrap();
    assert_eq!(out.spikes.dims(), [5, 2, 3]);
    assert_eq!(
        (run.stats().fused, run.stats().composed),
        (3, 0),
        "{:?}",
        run.stats()
    );
    let mut composed = Run::new().composed();
    let slow = model.forward(x, &mut composed).unwrap();
    assert_eq!(v(slow.spikes), v(out.spikes));
    assert_close(
        &v(slow.mems.unwrap()),
        &v(out.mems.unwrap()),
        1e-5,
        "membranes",
    );

    // The same trainer as every other model.
    let config = TrainConfig {
        batch_size: 4,
        steps: 5,
        lr: 1e-2,
        loss: spyne::loss::LossKind::CeRate,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(config, model).unwrap();
    let batch =
        spyne::data::Batch::samples(values(4 * 64, 5, 0.0, 1.0), vec![0, 1, 2, 1], vec![1, 8, 8]);
    let mut rng = spyne::rng::Rng::new(0);
    let (first, _) = trainer.train_step(&batch, &mut rng).unwrap();
    assert_eq!(trainer.last_path().name(), "fused");
    let mut last = first;
    for _ in 0..15 {
        last = trainer.train_step(&batch, &mut rng).unwrap().0;
    }
    assert!(last < first, "the loss fell: {first} → {last}");
}

#[test]
fn carried_states_continue_a_sequence_exactly() {
    // Two windows with the state carried equal one pass over the whole sequence (streaming
    // inference stays on the fused path).
    let dev = cpu();
    let spec = presets::mlp(6, &[8], 3, &NeuronSpec::synaptic(0.7, 0.9));
    let net = spec.init(&mut TorchRng::new(2), &dev).unwrap();
    let xs = values(10 * 3 * 6, 3, 0.0, 1.0);
    let x = Seq::new(t3(&xs, [10, 3, 6], &dev));
    let whole = net.forward(x.clone(), &mut Run::new()).unwrap();
    let mut first = Run::new().keep_states(true);
    let a = net.forward(x.window(0, 4), &mut first).unwrap();
    assert_eq!(first.stats().fused, 2);
    let mut second = Run::new()
        .keep_states(true)
        .with_states(first.into_states());
    let b = net.forward(x.window(4, 6), &mut second).unwrap();
    let joined = Tensor::cat(vec![a.mems.unwrap(), b.mems.unwrap()], 0);
    assert_eq!(v(joined), v(whole.mems.unwrap()));
}
