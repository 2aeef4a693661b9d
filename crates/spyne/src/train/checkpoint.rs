//! Checkpoints: everything a run needs to resume bit for bit, and to be evaluated or plotted
//! from its directory alone.
//!
//! A checkpoint directory holds `state.json` (settings, progress, the model description,
//! where the data came from), the model's burn record `model-<tag>.bpk` and Adam's state
//! `optimizer-<tag>.bpk` (the resume point), and, for a described network,
//! `model.safetensors`: the weights in PyTorch's layout and names, with the description in
//! its metadata. Every file is written atomically and the state last, so a run killed at
//! any moment resumes from its last complete checkpoint.

use std::path::{Path, PathBuf};

use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};
use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use super::trainer::{adam, Progress, Trainer};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::model::{params, ModelSpec, Network, SpikingModel};
use crate::rng::TorchRng;

/// The stable file name of a described network's weights.
pub const MODEL_FILE: &str = "model.safetensors";
const STATE_FILE: &str = "state.json";

/// `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointState {
    /// The run's settings.
    pub config: TrainConfig,
    /// Where it stands.
    pub progress: Progress,
    /// The model description (absent for a model written in Rust).
    pub model_spec: Option<ModelSpec>,
    /// The data directory the run read, when one was named.
    pub data: Option<PathBuf>,
    /// The model's record file.
    pub model: String,
    /// The optimizer's state file.
    pub optimizer: String,
}

/// Where a run writes its checkpoints, and what it records about its data.
#[derive(Debug, Clone)]
pub struct CheckpointDir {
    /// The directory.
    pub dir: PathBuf,
    /// The data directory to remember for `--resume`.
    pub data: Option<PathBuf>,
}

fn checkpoint_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))
}

impl CheckpointDir {
    /// A checkpoint directory (created on the first save).
    pub fn new(dir: impl Into<PathBuf>, data: Option<PathBuf>) -> Self {
        CheckpointDir {
            dir: dir.into(),
            data,
        }
    }

    /// Saves `trainer`: the model, Adam's state, and the state file last; then drops the
    /// files of earlier checkpoints.
    pub fn save<M: SpikingModel>(&self, trainer: &Trainer<M>) -> Result<()> {
        let dir = &self.dir;
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let p = &trainer.progress;
        let tag = format!("e{}-i{}", p.epoch, p.iteration);
        let (model_name, optim_name) = (format!("model-{tag}.bpk"), format!("optimizer-{tag}.bpk"));
        let record = trainer.model.clone().into_record().into_bytes();
        let record = record.map_err(|e| checkpoint_error(&dir.join(&model_name), e))?;
        write_atomic(&dir.join(&model_name), &record)?;
        let optim = trainer.optim.into_bytes();
        let optim =
            optim.map_err(|e| checkpoint_error(&dir.join(&optim_name), format!("{e:?}")))?;
        write_atomic(&dir.join(&optim_name), &optim)?;
        let spec = trainer.model.describe().cloned();
        if let Some(spec) = &spec {
            let weights = network_weights(&trainer.model, spec, &trainer.config)?;
            write_atomic(&dir.join(MODEL_FILE), &weights)?;
        }
        let state = CheckpointState {
            config: trainer.config.clone(),
            progress: p.clone(),
            model_spec: spec,
            data: self.data.clone(),
            model: model_name.clone(),
            optimizer: optim_name.clone(),
        };
        let json = serde_json::to_vec_pretty(&state).expect("the state serialises");
        write_atomic(&dir.join(STATE_FILE), &json)?;
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let stale = (name.starts_with("model-") || name.starts_with("optimizer-"))
                    && name != model_name
                    && name != optim_name;
                if stale {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }
}

/// A described network's weights as safetensors, with its settings and description in the
/// metadata (read back by [`load_network`]).
fn network_weights<M: SpikingModel>(
    model: &M,
    spec: &ModelSpec,
    config: &TrainConfig,
) -> Result<Vec<u8>> {
    let named = model
        .named_params()
        .ok_or_else(|| Error::invalid("model", "describes itself but names no parameters"))?;
    let meta = [
        (
            "spyne.config",
            serde_json::to_string(config).unwrap_or_default(),
        ),
        (
            "spyne.model",
            serde_json::to_string(spec).unwrap_or_default(),
        ),
    ];
    params::to_safetensors(&named, &meta)
}

/// Reads `state.json` of the checkpoint directory `dir`.
pub fn read_state(dir: &Path) -> Result<CheckpointState> {
    let path = dir.join(STATE_FILE);
    serde_json::from_slice(&read(&path)?).map_err(|e| checkpoint_error(&path, e))
}

impl<M: SpikingModel> Trainer<M> {
    /// Continues the run checkpointed in `dir` with `model` (built as the run built it; its
    /// weights and Adam's state are replaced by the saved ones).
    pub fn resume_into(dir: &Path, model: M) -> Result<(Self, CheckpointState)> {
        let state = read_state(dir)?;
        let mut trainer = Trainer::new(state.config.clone(), model)?;
        let model_path = dir.join(&state.model);
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(read(&model_path)?))
            .map_err(|e| checkpoint_error(&model_path, e))?;
        trainer.model = trainer
            .model
            .try_load_record(record)
            .map_err(|e| checkpoint_error(&model_path, e))?;
        let optim_path = dir.join(&state.optimizer);
        trainer.optim = adam(&trainer.config)
            .from_bytes(Bytes::from_bytes_vec(read(&optim_path)?))
            .map_err(|e| checkpoint_error(&optim_path, format!("{e:?}")))?;
        trainer.progress = state.progress.clone();
        Ok((trainer, state))
    }
}

impl Trainer<Network> {
    /// Continues the run checkpointed in `dir`, rebuilding its network from the saved
    /// description.
    pub fn resume(dir: &Path, device: &Device) -> Result<(Self, CheckpointState)> {
        let state = read_state(dir)?;
        let spec = state.model_spec.as_ref().ok_or_else(|| {
            checkpoint_error(
                &dir.join(STATE_FILE),
                "holds no model description (a model written in Rust resumes with Trainer::resume_into)",
            )
        })?;
        let model = spec.init(
            &mut TorchRng::new(state.config.seed),
            &device.clone().autodiff(),
        )?;
        Trainer::resume_into(dir, model)
    }
}

/// Loads a saved network for inference: a run directory, its `checkpoint/` directory, or a
/// `model.safetensors` file. Returns the run's settings and the network on `device`.
pub fn load_network(path: &Path, device: &Device) -> Result<(TrainConfig, Network)> {
    let file = if path.is_dir() {
        let ckpt = path.join("checkpoint");
        if ckpt.is_dir() {
            ckpt
        } else {
            path.to_path_buf()
        }
        .join(MODEL_FILE)
    } else {
        path.to_path_buf()
    };
    let bytes = read(&file)?;
    let (named, meta) = params::from_safetensors(&bytes).map_err(|e| checkpoint_error(&file, e))?;
    let parse = |key: &str| {
        meta.get(key)
            .ok_or_else(|| checkpoint_error(&file, format!("no {key} metadata: not a spyne model")))
    };
    let config: TrainConfig =
        serde_json::from_str(parse("spyne.config")?).map_err(|e| checkpoint_error(&file, e))?;
    let spec: ModelSpec =
        serde_json::from_str(parse("spyne.model")?).map_err(|e| checkpoint_error(&file, e))?;
    let mut net = spec.init(&mut TorchRng::new(0), device)?;
    params::import(&mut net, &named).map_err(|e| checkpoint_error(&file, e))?;
    Ok((config, net))
}
