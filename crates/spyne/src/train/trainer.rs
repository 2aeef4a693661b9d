//! The training loop: mini-batches, BPTT, Adam, evaluation — for any [`SpikingModel`].

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use super::forward::{encode, forward, predict};
use crate::data::{Batch, Dataset, EpochOrder};
use crate::decode::accuracy;
use crate::error::{Error, Result};
use crate::model::{ModelSpec, Network, SpikingModel};
use crate::optim::Adam;
use crate::rng::{Rng, TorchRng};
use crate::run::PathStats;
use crate::seq::Seq;
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
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
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

/// A model with its optimizer, settings and progress.
pub struct Trainer<M: SpikingModel> {
    /// The settings.
    pub config: TrainConfig,
    /// The model (on an autodiff device).
    pub model: M,
    /// Where the run stands.
    pub progress: Progress,
    /// Force the step-by-step path (for comparisons; the default uses the kernels).
    pub composed: bool,
    pub(super) optim: ModuleOptimizer,
    path: PathStats,
}

/// A seed mixed from the run seed and coordinates (epoch, iteration): every random draw of
/// an iteration is a pure function of where it is, so resuming anywhere is exact.
pub(super) fn mix(seed: u64, a: u64, b: u64) -> u64 {
    Rng::new(seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F))
        .next_u64()
}

pub(super) fn adam(config: &TrainConfig) -> ModuleOptimizer {
    Adam::new(config.betas, config.eps).init()
}

impl Trainer<Network> {
    /// A fresh run of the network `spec` describes, on `device` (made autodiff).
    ///
    /// The weights come from PyTorch's generator after `torch.manual_seed(seed)`, layer by
    /// layer in `nn.Sequential`'s order: the very weights the snntorch tutorials start from
    /// with that seed.
    pub fn from_spec(config: TrainConfig, spec: &ModelSpec, device: &Device) -> Result<Self> {
        config.validate()?;
        let model = spec.init(&mut TorchRng::new(config.seed), &device.clone().autodiff())?;
        Trainer::new(config, model)
    }
}

impl<M: SpikingModel> Trainer<M> {
    /// A fresh run of `model`, which must live on an autodiff device.
    pub fn new(config: TrainConfig, model: M) -> Result<Self> {
        config.validate()?;
        Ok(Trainer {
            optim: adam(&config),
            config,
            model,
            progress: Progress::default(),
            composed: false,
            path: PathStats::default(),
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

    /// Which path the neuron layers took in the last iteration.
    pub fn last_path(&self) -> PathStats {
        self.path
    }

    /// One iteration: encode, forward over `T` steps, loss, BPTT, Adam. Returns (loss,
    /// accuracy).
    pub fn train_step(&mut self, batch: &Batch, rng: &mut Rng) -> Result<(f32, f32)> {
        let device = self.device()?;
        let x = encode(
            batch,
            &self.config.encoding,
            self.config.steps,
            rng,
            &device,
        )?;
        self.train_seq(x, &batch.labels, rng)
    }

    /// One iteration on an input already encoded as a sequence on the model's device (spike
    /// trains from an event source, say, with their [`crate::kernel::SpikeIndex`]; see
    /// [`Seq::with_spike_index`]), with one label per sample: forward, loss, BPTT, Adam.
    /// Returns (loss, accuracy). Dropout draws from `rng`.
    pub fn train_seq(&mut self, x: Seq, labels: &[usize], rng: &mut Rng) -> Result<(f32, f32)> {
        if labels.len() != x.batch() {
            return Err(Error::Shape {
                context: "labels per sequence batch",
                expected: vec![x.batch()],
                got: vec![labels.len()],
            });
        }
        let dropout = rng.fork();
        let (out, path) = forward(&self.model, x, &self.config, Some(&dropout), self.composed)?;
        self.path = path;
        let loss = self
            .config
            .loss
            .compute(out.spikes.clone(), out.mems, labels)?;
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
        let acc = accuracy(&predict(&self.config, out.spikes.detach()), labels);
        Ok((loss_value, acc))
    }

    /// Trains until the end of the current epoch (continuing a resumed one), calling
    /// `on_step` after every iteration and `checkpoint` every `checkpoint_every` iterations
    /// (0: never mid-epoch). Returns the epoch just finished, from 1.
    pub fn train_epoch(
        &mut self,
        train: &impl Dataset,
        mut on_step: impl FnMut(&StepReport),
        checkpoint_every: usize,
        checkpoint: Option<&super::checkpoint::CheckpointDir>,
    ) -> Result<usize> {
        let epoch = self.progress.epoch;
        let order = self.epoch_order(epoch, train.len());
        let iterations = self.iterations(train.len());
        let mut start = std::time::Instant::now();
        let mut trained = 0u64;
        while self.progress.iteration < iterations {
            let it = self.progress.iteration;
            let batch = train.batch(order.batch_indices(it));
            let mut rng = Rng::new(mix(self.config.seed, epoch as u64, it as u64));
            let (loss, acc) = self.train_step(&batch, &mut rng)?;
            trained += batch.labels.len() as u64;
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
            if let (Some(dir), true) = (checkpoint, due && self.progress.iteration < iterations) {
                self.progress.train_seconds += start.elapsed().as_secs_f64();
                self.progress.samples += trained;
                (start, trained) = (std::time::Instant::now(), 0);
                dir.save(self)?;
            }
        }
        self.progress.train_seconds += start.elapsed().as_secs_f64();
        self.progress.samples += trained;
        self.progress.epoch += 1;
        self.progress.iteration = 0;
        Ok(epoch + 1)
    }

    /// Test accuracy of the current model on `split`, in batches of `batch_size`.
    pub fn evaluate(&self, split: &impl Dataset, batch_size: usize) -> Result<f32> {
        evaluate(&self.model.valid(), &self.config, split, batch_size)
    }

    /// The device the model trains on.
    pub fn device(&self) -> Result<Device> {
        self.model
            .devices()
            .into_iter()
            .next()
            .ok_or_else(|| Error::invalid("model", "has no parameters"))
    }
}

/// Accuracy of `model` on `split` (no gradients are recorded; pass `model.valid()` for a
/// model that trains).
pub fn evaluate<M: SpikingModel>(
    model: &M,
    config: &TrainConfig,
    split: &impl Dataset,
    batch_size: usize,
) -> Result<f32> {
    let device = model
        .devices()
        .into_iter()
        .next()
        .ok_or_else(|| Error::invalid("model", "has no parameters"))?;
    let order = EpochOrder::new(split.len(), batch_size.max(1), false, None);
    let mut hits = 0usize;
    for i in 0..order.num_batches() {
        let batch = split.batch(order.batch_indices(i));
        let mut rng = Rng::new(mix(config.seed, u64::MAX - 1, i as u64));
        let x = encode(&batch, &config.encoding, config.steps, &mut rng, &device)?;
        let (out, _) = forward(model, x, config, None, false)?;
        hits += predict(config, out.spikes)
            .iter()
            .zip(&batch.labels)
            .filter(|(p, y)| p == y)
            .count();
    }
    Ok(hits as f32 / split.len().max(1) as f32)
}
