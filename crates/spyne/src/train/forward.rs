//! From a batch to the model's output: encoding, truncated-BPTT windows, decoding.

use burn::tensor::{Device, Tensor, TensorData};

use super::config::TrainConfig;
use crate::data::Batch;
use crate::decode::{predict_latency, predict_rate};
use crate::error::{Error, Result};
use crate::model::SpikingModel;
use crate::rng::Rng;
use crate::run::{Output, PathStats, Run, States};
use crate::seq::Seq;
use crate::spikegen::Encoding;

/// The batch as the model's input sequence of `steps` steps: static samples through the
/// encoding (a direct encoding gives a constant sequence, so layers before the first neuron
/// layer run once), sequence samples as they are.
pub fn encode(
    batch: &Batch,
    encoding: &Encoding,
    steps: usize,
    rng: &mut Rng,
    device: &Device,
) -> Result<Seq> {
    let (b, f) = (batch.labels.len(), batch.features());
    let seq = match batch.steps {
        Some(t) => {
            if batch.values.len() != t * b * f {
                return Err(Error::invalid(
                    "batch",
                    format!(
                        "{} values are not {t} steps of {b} samples of {f}",
                        batch.values.len()
                    ),
                ));
            }
            Seq::new(Tensor::from_data(
                TensorData::new(batch.values.clone(), [t, b, f]),
                device,
            ))
        }
        None if encoding.is_static() => {
            let x = Tensor::from_data(TensorData::new(batch.values.clone(), [b, f]), device);
            Seq::constant(x, steps)
        }
        None => Seq::new(encoding.encode(&batch.values, b, steps, rng, device)?),
    };
    seq.with_shape(&batch.shape)
}

/// Runs `model` over `x`, in windows of `config.tbptt` steps when set (each window starts
/// from the previous one's detached state, so gradients reach back at most one window), and
/// returns the output over all steps with the paths the neuron layers took. Dropout draws
/// from `rng` when `train` (the same masks in every window).
pub fn forward<M: SpikingModel>(
    model: &M,
    x: Seq,
    config: &TrainConfig,
    train: Option<&Rng>,
    composed: bool,
) -> Result<(Output, PathStats)> {
    let steps = x.steps();
    let window = match config.tbptt {
        0 => steps,
        k => k.min(steps),
    };
    // Membranes only where the loss reads them (evaluation reads spikes).
    let mems = train.is_some() && config.loss.uses_membrane();
    let new_run = || {
        let run = match train {
            Some(rng) => Run::new().training(rng.clone()),
            None => Run::new(),
        }
        .output_mems(mems);
        if composed {
            run.composed()
        } else {
            run
        }
    };
    if window == steps {
        let mut run = new_run();
        let out = model.forward(x, &mut run)?;
        return Ok((out, run.stats()));
    }
    let (mut spikes, mut mems) = (Vec::new(), Vec::new());
    let mut stats = PathStats::default();
    let mut states = States::default();
    let mut start = 0;
    while start < steps {
        let len = window.min(steps - start);
        let mut run = new_run().keep_states(true).with_states(states.detach());
        let out = model.forward(x.window(start, len), &mut run)?;
        stats = stats.merged(run.stats());
        states = run.into_states();
        spikes.push(out.spikes);
        mems.push(out.mems);
        start += len;
    }
    Ok((
        Output {
            spikes: Tensor::cat(spikes, 0),
            mems: mems
                .into_iter()
                .collect::<Option<Vec<_>>>()
                .map(|m| Tensor::cat(m, 0)),
        },
        stats,
    ))
}

/// The predicted classes: first spike for temporal losses, else the most spikes.
pub fn predict(config: &TrainConfig, spikes: Tensor<3>) -> Vec<usize> {
    if config.temporal() {
        predict_latency(spikes)
    } else {
        predict_rate(spikes)
    }
}
