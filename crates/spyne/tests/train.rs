//! The training loop on a synthetic data set: learning, determinism, resume, errors.

mod common;

use burn::tensor::Device;
use common::*;
use spyne::data::{Batch, Mnist};
use spyne::loss::LossKind;
use spyne::model::params::export;
use spyne::model::{presets, ModelSpec, Network, NeuronKind, NeuronSpec};
use spyne::neuron::Value;
use spyne::rng::Rng;
use spyne::setting::Setting;
use spyne::spikegen::Encoding;
use spyne::train::{load_network, CheckpointDir, TrainConfig, Trainer};
use spyne::Error;

/// The synthetic set's network: 16 inputs (4×4 images), 12 hidden Leaky neurons, 3 classes.
fn mlp() -> ModelSpec {
    presets::mlp(16, &[12], 3, &NeuronSpec::leaky(0.95))
}

fn trainer(config: TrainConfig) -> Trainer<Network> {
    Trainer::from_spec(config, &mlp(), &Device::flex()).unwrap()
}

fn config() -> TrainConfig {
    TrainConfig {
        batch_size: 10,
        steps: 6,
        lr: 5e-3,
        epochs: 2,
        seed: 3,
        ..TrainConfig::default()
    }
}

fn data(tag: &str) -> (TempDir, Mnist) {
    let dir = TempDir::new(tag);
    write_synthetic_mnist(dir.path(), 120, 60);
    let m = Mnist::load(dir.path()).unwrap();
    (dir, m)
}

fn weights(t: &Trainer<Network>) -> Vec<Vec<f32>> {
    export(&t.model).into_values().map(|p| p.values).collect()
}

#[test]
fn training_lowers_the_loss_and_learns() {
    let (_d, m) = data("learn");
    let mut t = trainer(TrainConfig {
        epochs: 3,
        ..config()
    });
    let before = t.evaluate(&m.test, 30).unwrap();
    let mut losses = Vec::new();
    for _ in 0..3 {
        t.train_epoch(&m.train, |r| losses.push(r.loss), 0, None)
            .unwrap();
    }
    let after = t.evaluate(&m.test, 30).unwrap();
    let first: f32 = losses[..4].iter().sum::<f32>() / 4.0;
    let last: f32 = losses[losses.len() - 4..].iter().sum::<f32>() / 4.0;
    assert!(last < first * 0.8, "loss fell from {first} to {last}");
    assert!(after > 0.8 && after > before, "accuracy {before} → {after}");
}

#[test]
fn same_seed_gives_bit_identical_weights() {
    let (_d, m) = data("det");
    let run = |seed: u64| {
        let mut t = trainer(TrainConfig {
            seed,
            max_iters: 4,
            ..config()
        });
        t.train_epoch(&m.train, |_| {}, 0, None).unwrap();
        weights(&t)
    };
    let a = run(3);
    assert_eq!(a, run(3));
    assert_ne!(a, run(4));
}

#[test]
fn resumed_run_reaches_the_same_weights_as_an_uninterrupted_one() {
    let (_d, m) = data("resume");
    let cfg = TrainConfig {
        max_iters: 5,
        ..config()
    };
    let mut whole = trainer(cfg.clone());
    for _ in 0..2 {
        whole.train_epoch(&m.train, |_| {}, 0, None).unwrap();
    }

    // First run: epoch 1 checkpointed, then epoch 2 with checkpoints every 2 iterations
    // (after 2 and 4 of 5); dropping it after that loses iteration 5, as a kill would.
    let dir = TempDir::new("ckpt");
    let ckpt = CheckpointDir::new(dir.path(), None);
    let mut first = trainer(cfg.clone());
    first.train_epoch(&m.train, |_| {}, 0, None).unwrap();
    ckpt.save(&first).unwrap();
    first.train_epoch(&m.train, |_| {}, 2, Some(&ckpt)).unwrap();
    drop(first);

    let (mut resumed, _) = Trainer::resume(dir.path(), &Device::flex()).unwrap();
    assert_eq!((resumed.progress.epoch, resumed.progress.iteration), (1, 4));
    while resumed.progress.epoch < 2 {
        resumed.train_epoch(&m.train, |_| {}, 0, None).unwrap();
    }
    assert_eq!(weights(&resumed), weights(&whole));
}

#[test]
fn checkpoints_reload_for_evaluation() {
    let (_d, m) = data("eval");
    let mut t = trainer(TrainConfig {
        max_iters: 6,
        ..config()
    });
    t.train_epoch(&m.train, |_| {}, 0, None).unwrap();
    let dir = TempDir::new("evalckpt");
    CheckpointDir::new(dir.path(), None).save(&t).unwrap();
    let (cfg, model) = load_network(dir.path(), &Device::flex()).unwrap();
    assert_eq!(cfg, t.config);
    assert_eq!(
        model.spec, t.model.spec,
        "the checkpoint keeps the description"
    );
    let direct = t.evaluate(&m.test, 25).unwrap();
    let reloaded = spyne::train::evaluate(&model, &cfg, &m.test, 25).unwrap();
    assert_eq!(direct, reloaded);
    let files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(files.iter().all(|f| !f.ends_with(".tmp")), "{files:?}");
    assert_eq!(
        files.len(),
        4,
        "model record, model.safetensors, optimizer, state: {files:?}"
    );
}

#[test]
fn invalid_settings_are_rejected_before_any_work() {
    let bad = [
        TrainConfig {
            batch_size: 0,
            ..config()
        },
        TrainConfig {
            lr: -1.0,
            ..config()
        },
        TrainConfig {
            threads: 100_000,
            ..config()
        },
        TrainConfig {
            betas: (1.0, 0.9),
            ..config()
        },
    ];
    for c in bad {
        assert!(
            matches!(
                Trainer::from_spec(c.clone(), &mlp(), &Device::flex()),
                Err(Error::InvalidValue { .. })
            ),
            "{c:?}"
        );
    }
    let mut beta = NeuronSpec::leaky(1.5);
    beta.name = None;
    let bad_beta = presets::mlp(16, &[12], 3, &beta);
    assert!(Trainer::from_spec(config(), &bad_beta, &Device::flex()).is_err());
    for name in ["nope", "fast-sigmoid:slope=-1", "atan:bogus=1"] {
        assert!(
            spyne::surrogate::Surrogate::from_name(name).is_err(),
            "{name}"
        );
    }
    assert!(Encoding::parse("nope").is_err());
    assert!(LossKind::parse("mse-count:correct_rate=x").is_err());
}

#[test]
fn a_nan_loss_is_an_error_not_silent() {
    let mut t = trainer(config());
    let batch = Batch::samples(vec![f32::NAN; 2 * 16], vec![0, 1], vec![16]);
    let err = t.train_step(&batch, &mut Rng::new(0)).unwrap_err();
    assert!(matches!(err, Error::NonFinite(_)), "{err}");
}

#[test]
fn every_loss_and_encoding_trains_a_step() {
    let (_d, m) = data("kinds");
    for loss in [
        "ce-membrane",
        "ce-rate",
        "ce-count",
        "ce-max-membrane",
        "mse-count",
        "mse-membrane",
        "ce-temporal",
        "mse-temporal",
    ] {
        for encoding in ["direct", "rate", "latency", "delta"] {
            let c = TrainConfig {
                loss: LossKind::parse(loss).unwrap(),
                encoding: Encoding::parse(encoding).unwrap(),
                max_iters: 1,
                ..config()
            };
            let mut t = trainer(c);
            let mut l = f32::NAN;
            t.train_epoch(&m.train, |r| l = r.loss, 0, None).unwrap();
            assert!(l.is_finite(), "{loss}/{encoding}");
        }
    }
    // Every neuron model trains, with truncated BPTT too.
    for kind in [
        NeuronKind::Leaky,
        NeuronKind::Synaptic,
        NeuronKind::Lapicque,
        NeuronKind::Alpha,
        NeuronKind::RLeaky,
        NeuronKind::RSynaptic,
    ] {
        let mut n = NeuronSpec::new(kind);
        n.beta = Some(Value::Scalar(0.8));
        if matches!(
            kind,
            NeuronKind::Synaptic | NeuronKind::Alpha | NeuronKind::RSynaptic
        ) {
            n.alpha = Some(Value::Scalar(0.9));
        }
        let spec = presets::mlp(16, &[12], 3, &n);
        let c = TrainConfig {
            tbptt: 2,
            max_iters: 2,
            ..config()
        };
        let mut l = f32::NAN;
        Trainer::from_spec(c, &spec, &Device::flex())
            .unwrap()
            .train_epoch(&m.train, |r| l = r.loss, 0, None)
            .unwrap();
        assert!(l.is_finite(), "{kind:?}");
    }
}

#[test]
fn the_seed_means_what_torch_manual_seed_means() {
    // The reference job with seed 0 starts from PyTorch's `torch.manual_seed(0)` network and
    // shuffles like `torch.randperm(60000, generator=torch.Generator().manual_seed(0))` once
    // per epoch (values printed by PyTorch 2.15; see tests/data.rs).
    let spec = presets::mlp(784, &[1000], 10, &NeuronSpec::leaky(0.95));
    let t = Trainer::from_spec(TrainConfig::default(), &spec, &Device::flex()).unwrap();
    let w = export(&t.model);
    assert_eq!(w["fc1.weight"].values[0].to_bits(), 0xb98c3000);
    assert_eq!(w["fc2.bias"].values[9].to_bits(), 0xbcc1bf9a);
    let first = t.epoch_order(0, 60000);
    assert_eq!(first.batch_indices(0)[..3], [36044, 10678, 57327]);
    assert_eq!(first.num_batches(), 468);
    assert_eq!(
        t.epoch_order(1, 60000).batch_indices(0)[..3],
        [27953, 38120, 7367]
    );
}
