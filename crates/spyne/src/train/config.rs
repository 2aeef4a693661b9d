//! The training job's settings (tutorial 5's by default), as read from TOML or flags.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::loss::LossKind;
use crate::neuron::Reset;
use crate::spikegen::Encoding;
use crate::surrogate::Surrogate;

/// Every setting of a training run. [`TrainConfig::default`] is snntorch's tutorial 5:
/// 784-1000-10, Leaky β = 0.95, θ = 1, ATan, 25 steps of the image, summed membrane
/// cross-entropy, Adam lr 5e-4 (0.9, 0.999), batch 128, one epoch, seed 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Samples per mini-batch (a trailing partial batch is dropped).
    pub batch_size: usize,
    /// Time steps per sample.
    pub steps: usize,
    /// Membrane decay β.
    pub beta: f32,
    /// Synaptic current decay α (Synaptic neurons only).
    pub alpha: f32,
    /// Firing threshold θ.
    pub threshold: f32,
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
    /// Number of inputs (784 for MNIST).
    pub inputs: usize,
    /// Number of classes.
    pub outputs: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Adam β₁, β₂.
    pub betas: (f32, f32),
    /// Adam ε (PyTorch's 1e-8).
    pub eps: f32,
    /// Input encoding: direct, rate, latency, latency-linear, delta.
    pub encoding: String,
    /// Loss: ce-membrane, ce-rate, ce-count, …
    pub loss: String,
    /// Surrogate: atan, fast-sigmoid, sigmoid, straight-through, triangular, …
    pub surrogate: String,
    /// Neuron: leaky or synaptic.
    pub neuron: String,
    /// Reset mechanism: subtract, zero or none.
    pub reset: String,
    /// Seed of every random draw (weights, shuffling, encoders).
    pub seed: u64,
    /// Worker threads (0: all cores).
    pub threads: usize,
    /// Truncated BPTT window in steps (0: full BPTT).
    pub tbptt: usize,
    /// Stop each epoch after this many iterations (0: the whole epoch); for smoke runs.
    pub max_iters: usize,
    /// Log a metrics row every this many iterations.
    pub log_every: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 1,
            batch_size: 128,
            steps: 25,
            beta: 0.95,
            alpha: 0.9,
            threshold: 1.0,
            hidden: vec![1000],
            inputs: 784,
            outputs: 10,
            lr: 5e-4,
            betas: (0.9, 0.999),
            eps: 1e-8,
            encoding: "direct".into(),
            loss: "ce-membrane".into(),
            surrogate: "atan".into(),
            neuron: "leaky".into(),
            reset: "subtract".into(),
            seed: 0,
            threads: 0,
            tbptt: 0,
            max_iters: 0,
            log_every: 1,
        }
    }
}

impl TrainConfig {
    /// `[inputs, hidden…, outputs]`.
    pub fn layer_sizes(&self) -> Vec<usize> {
        let mut s = vec![self.inputs];
        s.extend(&self.hidden);
        s.push(self.outputs);
        s
    }

    /// Checks every value; the first problem is returned as a typed error.
    pub fn validate(&self) -> Result<()> {
        let positive = |name: &'static str, v: usize| {
            if v == 0 {
                Err(Error::invalid(name, "must be at least 1"))
            } else {
                Ok(())
            }
        };
        positive("epochs", self.epochs)?;
        positive("batch_size", self.batch_size)?;
        positive("steps", self.steps)?;
        positive("inputs", self.inputs)?;
        positive("outputs", self.outputs)?;
        positive("log_every", self.log_every)?;
        if let Some(w) = self.hidden.iter().find(|&&w| w == 0) {
            return Err(Error::invalid(
                "hidden",
                format!("layer width {w} must be at least 1"),
            ));
        }
        if !(0.0..=1.0).contains(&self.beta) {
            return Err(Error::invalid(
                "beta",
                format!("{} is not in [0, 1]", self.beta),
            ));
        }
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(Error::invalid(
                "alpha",
                format!("{} is not in [0, 1]", self.alpha),
            ));
        }
        if !(self.threshold.is_finite() && self.threshold > 0.0) {
            return Err(Error::invalid(
                "threshold",
                format!("{} is not positive", self.threshold),
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::invalid("lr", format!("{} is not positive", self.lr)));
        }
        let (b1, b2) = self.betas;
        if !((0.0..1.0).contains(&b1) && (0.0..1.0).contains(&b2)) {
            return Err(Error::invalid(
                "betas",
                format!("({b1}, {b2}) must both be in [0, 1)"),
            ));
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(Error::invalid(
                "eps",
                format!("{} is not positive", self.eps),
            ));
        }
        self.encoding()?;
        self.loss_kind()?;
        Surrogate::from_name(&self.surrogate)?;
        Reset::from_name(&self.reset)?;
        if !matches!(self.neuron.as_str(), "leaky" | "synaptic") {
            return Err(Error::invalid(
                "neuron",
                format!(
                    "unknown neuron '{}' (expected leaky or synaptic)",
                    self.neuron
                ),
            ));
        }
        Ok(())
    }

    /// The parsed encoding.
    pub fn encoding(&self) -> Result<Encoding> {
        Encoding::from_name(&self.encoding)
    }

    /// The parsed loss.
    pub fn loss_kind(&self) -> Result<LossKind> {
        LossKind::from_name(&self.loss)
    }
}
