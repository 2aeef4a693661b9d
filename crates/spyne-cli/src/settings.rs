//! The settings of `spyne train`, from flags or a `--config` TOML file (the same names with
//! underscores), and the model they describe: `mlp` (tutorial 5, the default), `csnn`
//! (tutorial 6) or a model file.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Deserialize;
use spyne::data::Dataset;
use spyne::loss::LossKind;
use spyne::model::{presets, LayerSpec, ModelSpec, NeuronKind, NeuronSpec};
use spyne::neuron::{Reset, Value};
use spyne::nir::Imported;
use spyne::setting::{named_opt, Setting};
use spyne::spikegen::Encoding;
use spyne::surrogate::Surrogate;
use spyne::train::{ModelFile, TrainConfig};

fn parse<T: Setting>(s: &str) -> Result<T, String> {
    T::parse(s).map_err(|e| e.to_string())
}

fn parse_reset(s: &str) -> Result<Reset, String> {
    Reset::from_name(s).map_err(|e| e.to_string())
}

fn parse_kind(s: &str) -> Result<NeuronKind, String> {
    NeuronKind::deserialize(serde_json::Value::String(s.to_ascii_lowercase())).map_err(|_| {
        format!(
            "unknown neuron '{s}' (expected leaky, synaptic, lapicque, alpha, rleaky or rsynaptic)"
        )
    })
}

/// Every setting a run can take; unset ones keep the model's defaults.
#[derive(Args, Deserialize, Default, Debug, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Passes over the training set [default: 1].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Samples per mini-batch [default: 128].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Time steps per sample [default: 25 (mlp), 50 (csnn)].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Adam learning rate [default: 5e-4 (mlp), 1e-2 (csnn)].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Input encoding: direct, rate, latency, latency-linear, delta, with parameters as
    /// `rate:gain=0.5` [default: direct].
    #[arg(long, value_parser = parse::<Encoding>)]
    #[serde(deserialize_with = "named_opt")]
    pub encoding: Option<Encoding>,
    /// Loss: ce-membrane, ce-rate, ce-count, ce-max-membrane, mse-count, mse-membrane,
    /// ce-temporal, mse-temporal, with parameters as `mse-count:correct_rate=0.9`
    /// [default: ce-membrane (mlp), ce-rate (csnn)].
    #[arg(long, value_parser = parse::<LossKind>)]
    #[serde(deserialize_with = "named_opt")]
    pub loss: Option<LossKind>,
    /// Seed of every random draw [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Worker threads, 0 for one per core [default: 0].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Truncated BPTT window in steps, 0 for full BPTT [default: 0].
    #[arg(long)]
    pub tbptt: Option<usize>,
    /// Stop each epoch after this many iterations (smoke runs) [default: whole epoch].
    #[arg(long)]
    pub max_iters: Option<usize>,
    /// Log a metrics row every N iterations [default: 1].
    #[arg(long)]
    pub log_every: Option<usize>,
    /// mlp: hidden layer widths, comma-separated [default: 1000].
    #[arg(long, value_delimiter = ',')]
    pub hidden: Option<Vec<usize>>,
    /// mlp: the neuron model: leaky, synaptic, lapicque, alpha, rleaky, rsynaptic
    /// [default: leaky].
    #[arg(long, value_parser = parse_kind)]
    pub neuron: Option<NeuronKind>,
    /// Every neuron layer's membrane decay β [default: 0.95 (mlp), 0.5 (csnn)].
    #[arg(long)]
    pub beta: Option<f32>,
    /// Every neuron layer's synaptic decay α (synaptic, alpha, rsynaptic) [default: 0.9].
    #[arg(long)]
    pub alpha: Option<f32>,
    /// Every neuron layer's threshold θ [default: 1].
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Every neuron layer's surrogate: atan, fast-sigmoid, sigmoid, straight-through,
    /// triangular, spike-operator, spike-rate-escape, with parameters as
    /// `fast-sigmoid:slope=25` or `atan:alpha=2` [default: atan (mlp), fast-sigmoid (csnn)].
    #[arg(long, value_parser = parse::<Surrogate>)]
    #[serde(deserialize_with = "named_opt")]
    pub surrogate: Option<Surrogate>,
    /// Every neuron layer's reset: subtract, zero, none or zero-then-integrate (NIR's
    /// v ← 0, then integrate) [default: subtract].
    #[arg(long, value_parser = parse_reset)]
    pub reset: Option<Reset>,
}

impl Settings {
    /// `self` with every setting that `over` has replaced.
    pub fn overridden_by(mut self, over: &Settings) -> Settings {
        macro_rules! take {
            ($($f:ident),*) => { $( if over.$f.is_some() { self.$f = over.$f.clone(); } )* };
        }
        take!(
            epochs, batch_size, steps, lr, encoding, loss, seed, threads, tbptt, max_iters,
            log_every, hidden, neuron, beta, alpha, threshold, surrogate, reset
        );
        self
    }

    /// Reads a `--config` TOML file.
    pub fn read(path: &Path) -> Result<Settings> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Whether any setting that changes the model or the data order is given (refused with
    /// `--resume`).
    pub fn changes_the_run(&self) -> bool {
        self.batch_size.is_some()
            || self.steps.is_some()
            || self.lr.is_some()
            || self.encoding.is_some()
            || self.loss.is_some()
            || self.seed.is_some()
            || self.tbptt.is_some()
            || self.max_iters.is_some()
            || self.log_every.is_some()
            || self.neuron_given()
    }

    fn neuron_given(&self) -> bool {
        self.hidden.is_some()
            || self.neuron.is_some()
            || self.beta.is_some()
            || self.alpha.is_some()
            || self.threshold.is_some()
            || self.surrogate.is_some()
            || self.reset.is_some()
    }

    /// Checks the neuron values that need no model (so that a bad one is reported before the
    /// data is even read).
    pub fn check(&self) -> Result<()> {
        for (name, v) in [("beta", self.beta), ("alpha", self.alpha)] {
            if let Some(v) = v {
                if !(0.0..=1.0).contains(&v) {
                    bail!("invalid {name}: {v} is not in [0, 1]");
                }
            }
        }
        if let Some(t) = self.threshold {
            if !(t.is_finite() && t > 0.0) {
                bail!("invalid threshold: {t} is not positive");
            }
        }
        if let Some(h) = &self.hidden {
            if h.contains(&0) {
                bail!("invalid hidden: a layer width must be at least 1");
            }
        }
        if let Some(s) = &self.surrogate {
            s.validate()?;
        }
        Ok(())
    }

    /// The training settings: `base` with these applied, validated.
    pub fn train_config(&self, mut c: TrainConfig) -> Result<TrainConfig> {
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = &self.$f { c.$f = v.clone(); } )* };
        }
        set!(
            epochs, batch_size, steps, lr, encoding, loss, seed, threads, tbptt, max_iters,
            log_every
        );
        c.validate().context("invalid training settings")?;
        Ok(c)
    }

    /// Applies the neuron settings given to every neuron layer of `spec`.
    fn apply_neurons(&self, spec: &mut ModelSpec) {
        for layer in &mut spec.layers {
            if let LayerSpec::Neuron(n) = layer {
                if let Some(b) = self.beta {
                    n.beta = Some(Value::Scalar(b));
                }
                if let (Some(a), true) = (self.alpha, takes_alpha(n.kind)) {
                    n.alpha = Some(Value::Scalar(a));
                }
                if let Some(t) = self.threshold {
                    n.threshold = Some(Value::Scalar(t));
                }
                if let Some(s) = &self.surrogate {
                    n.surrogate = Some(s.clone());
                }
                if let Some(r) = self.reset {
                    n.reset = Some(r);
                }
            }
        }
    }
}

fn takes_alpha(kind: NeuronKind) -> bool {
    matches!(
        kind,
        NeuronKind::Synaptic | NeuronKind::Alpha | NeuronKind::RSynaptic
    )
}

/// Which network to train.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelChoice {
    /// snntorch tutorial 5's MLP (its width from `--hidden`, its neurons from the flags).
    Mlp,
    /// snntorch tutorial 6's convolutional SNN.
    Csnn,
    /// A model file (TOML).
    File(PathBuf),
    /// A NIR file: its network with its weights, fine-tuned.
    Nir(PathBuf),
}

impl ModelChoice {
    /// `mlp`, `csnn` or a path (`.nir` for NIR files).
    pub fn parse(s: &str) -> ModelChoice {
        match s {
            "mlp" => ModelChoice::Mlp,
            "csnn" => ModelChoice::Csnn,
            path if Path::new(path).extension().is_some_and(|e| e == "nir") => {
                ModelChoice::Nir(PathBuf::from(path))
            }
            path => ModelChoice::File(PathBuf::from(path)),
        }
    }

    /// The network and training settings of this choice with `settings` applied, for
    /// `data` (the MLP's widths follow the data; other models must fit it), and the weights
    /// a NIR file carries (the other choices start from the seeded initialisation).
    pub fn resolve(
        &self,
        settings: &Settings,
        data: &impl Dataset,
    ) -> Result<(TrainConfig, ModelSpec, Option<Imported>)> {
        let mut weights = None;
        let features: usize = data.sample_shape().iter().product();
        let classes = data.classes();
        let (base, mut spec) = match self {
            ModelChoice::Mlp => {
                let kind = settings.neuron.unwrap_or(NeuronKind::Leaky);
                let mut neuron = NeuronSpec::new(kind);
                neuron.beta = Some(Value::Scalar(0.95));
                if takes_alpha(kind) {
                    neuron.alpha = Some(Value::Scalar(0.9));
                }
                let hidden = settings.hidden.clone().unwrap_or_else(|| vec![1000]);
                (
                    TrainConfig::default(),
                    presets::mlp(features, &hidden, classes, &neuron),
                )
            }
            other => {
                if settings.hidden.is_some() || settings.neuron.is_some() {
                    bail!("--hidden and --neuron shape the mlp model; edit the model file to change another network");
                }
                match other {
                    ModelChoice::Csnn => (TrainConfig::csnn(), presets::csnn()),
                    ModelChoice::File(path) => {
                        let file = ModelFile::read(path)?;
                        (file.train.unwrap_or_default(), file.model)
                    }
                    ModelChoice::Nir(path) => {
                        if settings.beta.is_some()
                            || settings.alpha.is_some()
                            || settings.threshold.is_some()
                        {
                            bail!("--beta, --alpha and --threshold would be replaced by the values in {}; fine-tuning starts from the file's", path.display());
                        }
                        // A NIR file carries no training settings: tutorial 5's.
                        let imported = crate::nir::read(path)?;
                        let spec = imported.spec.clone();
                        weights = Some(imported);
                        (TrainConfig::default(), spec)
                    }
                    ModelChoice::Mlp => unreachable!("handled above"),
                }
            }
        };
        settings.apply_neurons(&mut spec);
        let config = settings.train_config(base)?;
        let input: usize = spec.input.iter().product();
        if input != features {
            bail!(
                "the model takes samples of {:?} ({input} values) but the data's are {:?} ({features} values)",
                spec.input,
                data.sample_shape()
            );
        }
        Ok((config, spec, weights))
    }
}
