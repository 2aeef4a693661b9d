//! The training loop: mini-batches, BPTT, Adam, evaluation and checkpoints.

use std::path::{Path, PathBuf};

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Bytes, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use super::model::SpikingMlp;
use super::params;
use crate::data::{Batch, EpochOrder, Split};
use crate::decode::{accuracy, predict_latency, predict_rate};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::loss::LossKind;
use crate::optim::Adam;
use crate::rng::{Rng, TorchRng};
use crate::spikegen::Encoding;
use crate::tensor::scalar;

/// What one training iteration reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Iteration within the epoch, from 0.
    pub iteration: usize,
    /// Iterations in this epoch.
    pub iterations: usize,
    /// The batch's loss.
    pub loss: f32,
    /// The batch's accuracy (rate decoding, or latency for temporal losses).
    pub accuracy: f32,
}

/// Where a run stands: saved with every checkpoint so that `--resume` continues exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Completed epochs.
    pub epoch: usize,
    /// Completed iterations of the current epoch (0 at an epoch boundary).
    pub iteration: usize,
    /// Test accuracy after each completed epoch.
    pub test_accuracy: Vec<f32>,
    /// Training seconds so far (test evaluation excluded).
    pub train_seconds: f64,
    /// Samples trained on so far.
    pub samples: u64,
}

/// A model with its optimizer, configuration and progress.
pub struct Trainer {
    /// The settings.
    pub config: TrainConfig,
    /// The network (on the autodiff device).
    pub model: SpikingMlp,
    /// Where the run stands.
    pub progress: Progress,
    optim: ModuleOptimizer,
    encoding: Encoding,
    loss: LossKind,
    device: Device,
}

/// File names inside a checkpoint directory.
pub const MODEL_FILE: &str = "model.safetensors";
const STATE_FILE: &str = "state.json";

#[derive(Serialize, Deserialize)]
struct CheckpointState {
    config: TrainConfig,
    progress: Progress,
    model: String,
    optimizer: String,
}

/// A seed mixed from the run seed and coordinates (epoch, iteration): every random draw of
/// an iteration is a pure function of where it is, so resuming anywhere is exact.
fn mix(seed: u64, a: u64, b: u64) -> u64 {
    Rng::new(seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F))
        .next_u64()
}

impl Trainer {
    /// A fresh run: validates `config`, draws the weights from its seed, on `device`
    /// (made autodiff if it is not).
    ///
    /// The weights come from PyTorch's generator after `torch.manual_seed(seed)`, in
    /// `nn.Linear`'s order (layer by layer, weight then bias): the same numbers snntorch's
    /// tutorial network starts from with that seed.
    pub fn new(config: TrainConfig, device: &Device) -> Result<Trainer> {
        config.validate()?;
        let device = device.clone().autodiff();
        let mut rng = TorchRng::new(config.seed);
        let model = SpikingMlp::new(&config, &mut rng, &device)?;
        Ok(Trainer {
            optim: adam(&config),
            encoding: config.encoding()?,
            loss: config.loss_kind()?,
            config,
            model,
            progress: Progress {
                epoch: 0,
                iteration: 0,
                test_accuracy: Vec::new(),
                train_seconds: 0.0,
                samples: 0,
            },
            device,
        })
    }

    /// The epoch's shuffled order of `n` samples: the `epoch`-th (from 0) `torch.randperm(n)`
    /// of a `torch.Generator().manual_seed(seed)`, as a PyTorch script shuffling with its own
    /// seeded generator draws it. Recomputed from the seed, so a resumed run needs no state.
    pub fn epoch_order(&self, epoch: usize, n: usize) -> EpochOrder {
        let mut rng = TorchRng::new(self.config.seed);
        for _ in 0..epoch {
            rng.randperm(n);
        }
        EpochOrder::torch(n, self.config.batch_size, true, &mut rng)
    }

    /// Iterations of an epoch over `n` samples (honouring `max_iters`).
    pub fn iterations(&self, n: usize) -> usize {
        let full = n / self.config.batch_size;
        match self.config.max_iters {
            0 => full,
            m => m.min(full),
        }
    }

    /// One iteration: forward over `T` steps, loss, BPTT, Adam. Returns (loss, accuracy).
    pub fn train_step(&mut self, batch: &Batch, rng: &mut Rng) -> Result<(f32, f32)> {
        let input = self.encoding.encode_compact(
            &batch.images,
            batch.len(),
            self.config.steps,
            rng,
            &self.device,
        )?;
        let rec = self.model.forward(
            input,
            self.config.steps,
            self.encoding.is_static(),
            self.config.tbptt,
        )?;
        let (spikes, mems) = (rec.output_spikes(), rec.output_mems());
        let loss = self.loss.compute(spikes.clone(), mems, &batch.labels)?;
        let loss_value = scalar(loss.clone());
        if !loss_value.is_finite() {
            return Err(Error::NonFinite(format!(
                "the loss became {loss_value} at epoch {}, iteration {}; try a smaller --lr",
                self.progress.epoch + 1,
                self.progress.iteration
            )));
        }
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        self.model = self.optim.step(self.config.lr, self.model.clone(), grads);
        let acc = accuracy(&self.predict(spikes.detach()), &batch.labels);
        Ok((loss_value, acc))
    }

    fn predict(&self, spikes: Tensor<3>) -> Vec<usize> {
        if matches!(self.loss, LossKind::CeTemporal | LossKind::MseTemporal) {
            predict_latency(spikes)
        } else {
            predict_rate(spikes)
        }
    }

    /// Trains until the end of the current epoch (continuing a resumed one), calling
    /// `on_step` after every iteration and `checkpoint` every `checkpoint_every` iterations
    /// (0: never mid-epoch). Returns the epoch just finished, from 1.
    pub fn train_epoch(
        &mut self,
        train: &Split,
        mut on_step: impl FnMut(&StepReport),
        checkpoint_every: usize,
        checkpoint_dir: Option<&Path>,
    ) -> Result<usize> {
        let epoch = self.progress.epoch;
        let order = self.epoch_order(epoch, train.len());
        let iterations = self.iterations(train.len());
        let mut start = std::time::Instant::now();
        let mut trained = 0u64;
        while self.progress.iteration < iterations {
            let it = self.progress.iteration;
            let batch = Batch::gather(train, order.batch_indices(it));
            let mut rng = Rng::new(mix(self.config.seed, epoch as u64, it as u64));
            let (loss, acc) = self.train_step(&batch, &mut rng)?;
            trained += batch.len() as u64;
            self.progress.iteration += 1;
            on_step(&StepReport {
                epoch: epoch + 1,
                iteration: it,
                iterations,
                loss,
                accuracy: acc,
            });
            let due =
                checkpoint_every > 0 && self.progress.iteration.is_multiple_of(checkpoint_every);
            if let (Some(dir), true) = (checkpoint_dir, due && self.progress.iteration < iterations)
            {
                self.progress.train_seconds += start.elapsed().as_secs_f64();
                self.progress.samples += trained;
                (start, trained) = (std::time::Instant::now(), 0);
                self.save_checkpoint(dir)?;
            }
        }
        self.progress.train_seconds += start.elapsed().as_secs_f64();
        self.progress.samples += trained;
        self.progress.epoch += 1;
        self.progress.iteration = 0;
        Ok(epoch + 1)
    }

    /// Test accuracy of the current model on `split`, in batches of `batch_size`.
    pub fn evaluate(&self, split: &Split, batch_size: usize) -> Result<f32> {
        evaluate(&self.model, &self.config, split, batch_size)
    }

    /// Writes `model.safetensors`, `optimizer.bpk` and `state.json` into `dir`, each atomically,
    /// the state last: a run killed while saving resumes from the previous checkpoint.
    pub fn save_checkpoint(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let tag = format!("e{}-i{}", self.progress.epoch, self.progress.iteration);
        let model_name = format!("model-{tag}.safetensors");
        let optim_name = format!("optimizer-{tag}.bpk");
        let named = params::export(&self.model);
        let meta = [(
            "spyne.config",
            serde_json::to_string(&self.config).unwrap_or_default(),
        )];
        write_atomic(
            &dir.join(&model_name),
            &params::to_safetensors(&named, &meta)?,
        )?;
        let optim = self.optim.into_bytes().map_err(|e| Error::Checkpoint {
            path: dir.join(&optim_name),
            reason: format!("{e:?}"),
        })?;
        write_atomic(&dir.join(&optim_name), &optim)?;
        let state = CheckpointState {
            config: self.config.clone(),
            progress: self.progress.clone(),
            model: model_name.clone(),
            optimizer: optim_name.clone(),
        };
        let json = serde_json::to_vec_pretty(&state).expect("state serialises");
        write_atomic(&dir.join(STATE_FILE), &json)?;
        // The stable name for tools (eval, plot), then drop superseded files.
        write_atomic(
            &dir.join(MODEL_FILE),
            &std::fs::read(dir.join(&model_name)).map_err(|e| Error::io("copying model", e))?,
        )?;
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

    /// Continues a run from the checkpoint in `dir`.
    pub fn resume(dir: &Path, device: &Device) -> Result<Trainer> {
        let state_path = dir.join(STATE_FILE);
        let raw = std::fs::read(&state_path)
            .map_err(|e| Error::io(format!("reading {}", state_path.display()), e))?;
        let state: CheckpointState =
            serde_json::from_slice(&raw).map_err(|e| Error::Checkpoint {
                path: state_path.clone(),
                reason: e.to_string(),
            })?;
        let mut trainer = Trainer::new(state.config, device)?;
        let model_path = dir.join(&state.model);
        let named = read_params(&model_path)?;
        params::import(&mut trainer.model, &named)?;
        let optim_path = dir.join(&state.optimizer);
        let bytes = std::fs::read(&optim_path)
            .map_err(|e| Error::io(format!("reading {}", optim_path.display()), e))?;
        trainer.optim = adam(&trainer.config)
            .from_bytes(Bytes::from_bytes_vec(bytes))
            .map_err(|e| Error::Checkpoint {
                path: optim_path,
                reason: format!("{e:?}"),
            })?;
        trainer.progress = state.progress;
        Ok(trainer)
    }

    /// The device the model trains on.
    pub fn device(&self) -> &Device {
        &self.device
    }
}

fn adam(config: &TrainConfig) -> ModuleOptimizer {
    Adam::new(config.betas, config.eps).init()
}

/// Reads a model file written by a checkpoint.
pub fn read_params(path: &Path) -> Result<std::collections::BTreeMap<String, params::NamedParam>> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    params::from_safetensors(&bytes).map_err(|reason| Error::Checkpoint {
        path: path.to_path_buf(),
        reason,
    })
}

/// Loads a saved model (a checkpoint directory or its `model.safetensors`) for inference.
pub fn load_model(path: &Path, device: &Device) -> Result<(TrainConfig, SpikingMlp)> {
    let file: PathBuf = if path.is_dir() {
        path.join(MODEL_FILE)
    } else {
        path.to_path_buf()
    };
    let bytes =
        std::fs::read(&file).map_err(|e| Error::io(format!("reading {}", file.display()), e))?;
    let (_, meta) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| Error::Checkpoint {
            path: file.clone(),
            reason: e.to_string(),
        })?;
    let config: TrainConfig = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("spyne.config"))
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| Error::Checkpoint {
            path: file.clone(),
            reason: "no spyne.config metadata: not a spyne model".into(),
        })?;
    let named = params::from_safetensors(&bytes)
        .map_err(|reason| Error::Checkpoint { path: file, reason })?;
    let mut model = SpikingMlp::new(&config, &mut Rng::new(0), device)?;
    params::import(&mut model, &named)?;
    Ok((config, model))
}

/// Accuracy of `model` on `split` (no gradients are recorded).
pub fn evaluate(
    model: &SpikingMlp,
    config: &TrainConfig,
    split: &Split,
    batch_size: usize,
) -> Result<f32> {
    let model = burn::module::Module::valid(model);
    let encoding = config.encoding()?;
    let loss = config.loss_kind()?;
    let device = model
        .linears
        .first()
        .map(|l| l.weight.val().device())
        .ok_or_else(|| Error::invalid("model", "has no layers"))?;
    let order = EpochOrder::new(split.len(), batch_size.max(1), false, None);
    let mut hits = 0usize;
    for i in 0..order.num_batches() {
        let idx = order.batch_indices(i);
        let batch = Batch::gather(split, idx);
        let mut rng = Rng::new(mix(config.seed, u64::MAX - 1, i as u64));
        let input =
            encoding.encode_compact(&batch.images, batch.len(), config.steps, &mut rng, &device)?;
        let rec = model.forward(input, config.steps, encoding.is_static(), 0)?;
        let spikes = rec.output_spikes();
        let pred = if matches!(loss, LossKind::CeTemporal | LossKind::MseTemporal) {
            predict_latency(spikes)
        } else {
            predict_rate(spikes)
        };
        hits += pred
            .iter()
            .zip(&batch.labels)
            .filter(|(p, y)| p == y)
            .count();
    }
    Ok(hits as f32 / split.len().max(1) as f32)
}
