//! The training job's settings, typed: read once from TOML or flags, validated, then used.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::loss::LossKind;
use crate::setting::named;
use crate::spikegen::Encoding;

/// How a run trains (the network itself is a [`crate::model::ModelSpec`] or a user's model).
/// [`TrainConfig::default`] is snntorch's tutorial 5: 25 steps of the image, summed
/// membrane cross-entropy, Adam lr 5e-4 (0.9, 0.999), batch 128, one epoch, seed 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Samples per mini-batch (a trailing partial batch is dropped).
    pub batch_size: usize,
    /// Time steps per sample.
    pub steps: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Adam β₁, β₂.
    pub betas: (f32, f32),
    /// Adam ε (PyTorch's 1e-8).
    pub eps: f32,
    /// Input encoding.
    #[serde(deserialize_with = "named")]
    pub encoding: Encoding,
    /// Loss.
    #[serde(deserialize_with = "named")]
    pub loss: LossKind,
    /// Seed of every random draw (weights, shuffling, encoders, dropout).
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
            lr: 5e-4,
            betas: (0.9, 0.999),
            eps: 1e-8,
            encoding: Encoding::Direct,
            loss: LossKind::CeMembrane,
            seed: 0,
            threads: 0,
            tbptt: 0,
            max_iters: 0,
            log_every: 1,
        }
    }
}

/// The most worker threads a run accepts: beyond this a thread pool only costs memory and
/// start-up time (and the operating system may refuse to create it).
pub const MAX_THREADS: usize = 1024;

impl TrainConfig {
    /// snntorch tutorial 6's settings: 50 steps of the static image, `ce_rate_loss`, Adam
    /// lr 1e-2 (0.9, 0.999), batch 128, one epoch.
    pub fn csnn() -> Self {
        TrainConfig {
            steps: 50,
            lr: 1e-2,
            loss: LossKind::CeRate,
            ..TrainConfig::default()
        }
    }

    /// The shd-like job's settings (a spoken-digit-sized spike job): `steps` steps of
    /// sequence input, `ce_count_loss`, Adam lr 1e-3, batch 16.
    pub fn shd_like(steps: usize) -> Self {
        TrainConfig {
            steps,
            batch_size: 16,
            lr: 1e-3,
            loss: LossKind::CeCount,
            ..TrainConfig::default()
        }
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
        positive("log_every", self.log_every)?;
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
        if self.threads > MAX_THREADS {
            return Err(Error::invalid(
                "threads",
                format!(
                    "{} is more than any machine can use (at most {MAX_THREADS}; 0 means one per core)",
                    self.threads
                ),
            ));
        }
        Ok(())
    }

    /// Whether the loss reads first-spike times (then predictions decode latency, not rate).
    pub fn temporal(&self) -> bool {
        matches!(self.loss, LossKind::CeTemporal | LossKind::MseTemporal)
    }
}

/// A model file: a network description and, in an optional `[train]` table, the training
/// settings it comes with (defaults for `spyne train --model FILE`).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFile {
    /// The network.
    pub model: crate::model::ModelSpec,
    /// The training settings, when the file has a `[train]` table.
    pub train: Option<TrainConfig>,
}

impl ModelFile {
    /// Reads a model file's text.
    pub fn from_toml(text: &str) -> Result<ModelFile> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| Error::invalid("model file", e.to_string()))?;
        let train =
            match table.remove("train") {
                None => None,
                Some(v) => Some(<TrainConfig as Deserialize>::deserialize(v).map_err(|e| {
                    Error::invalid("model file", format!("[train]: {}", e.message()))
                })?),
            };
        Ok(ModelFile {
            model: crate::model::ModelSpec::from_table(table)?,
            train,
        })
    }

    /// Reads the model file at `path`.
    pub fn read(path: &std::path::Path) -> Result<ModelFile> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        ModelFile::from_toml(&text).map_err(|e| match e {
            Error::InvalidValue { name, reason } => Error::InvalidValue {
                name,
                reason: format!("{}: {reason}", path.display()),
            },
            other => other,
        })
    }
}
