//! Dropout over sequences: one mask for the whole sequence, or a new one at every step.

use burn::module::Module;
use burn::tensor::{Tensor, TensorData};

use super::SeqLayer;
use crate::error::{Error, Result};
use crate::run::Run;
use crate::seq::Seq;

/// Zeroes each input with probability `p` during training and scales the rest by
/// `1/(1 − p)`; the identity at inference.
///
/// By default one mask serves every step of a sequence (SpikingJelly's multi-step
/// `Dropout`): a neuron that is dropped stays dropped for the whole sample, so a constant
/// input stays constant. With `per_step` each step draws its own mask (snntorch users who
/// call `nn.Dropout` inside the time loop get that). The masks come from the run's random
/// stream ([`Run::training`]), so a seed and an iteration determine them and a resumed run
/// draws the same ones. (burn-nn's `Dropout` draws from the backend's global generator and
/// cannot share a mask across steps.)
#[derive(Module, Debug)]
pub struct Dropout {
    /// Drop probability, in `[0, 1)`.
    pub p: f64,
    /// A new mask at every step.
    pub per_step: bool,
}

impl Dropout {
    /// Dropout with probability `p`, one mask per sequence.
    pub fn new(p: f64) -> Result<Dropout> {
        if !(p.is_finite() && (0.0..1.0).contains(&p)) {
            return Err(Error::invalid(
                "dropout",
                format!("the probability must be in [0, 1), got {p}"),
            ));
        }
        Ok(Dropout { p, per_step: false })
    }

    /// Draws a fresh mask at every step instead.
    pub fn per_step(mut self, per_step: bool) -> Dropout {
        self.per_step = per_step;
        self
    }
}

impl SeqLayer for Dropout {
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        Ok(input.to_vec())
    }

    fn forward_seq(&self, x: Seq, run: &mut Run) -> Result<Seq> {
        if !run.is_training() || self.p == 0.0 {
            return Ok(x);
        }
        let (t, b, f) = (x.steps(), x.batch(), x.features());
        let masks = if self.per_step { t } else { 1 };
        let keep = 1.0 - self.p as f32;
        let rng = run.rng();
        let values: Vec<f32> = (0..masks * b * f)
            .map(|_| {
                if rng.uniform() < keep {
                    1.0 / keep
                } else {
                    0.0
                }
            })
            .collect();
        let device = x.data().device();
        let mask = Tensor::<3>::from_data(TensorData::new(values, [masks, b, f]), &device);
        let shape = x.shape().to_vec();
        if x.is_constant() && !self.per_step {
            let data = x.data().clone() * mask.reshape([b, f]);
            return Ok(x.map(data, shape));
        }
        let dropped = x.into_expanded() * mask;
        Seq::new(dropped).with_shape(&shape)
    }
}
