//! The leaky integrate-and-fire neuron.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::core::{Reset, SpikeCore};
use super::param::{expect_dims, Value};
use super::{fused_methods, FusedKind, Neuron, NeuronState};
use crate::error::Result;
use crate::kernel::LifKind;
use crate::surrogate::Surrogate;

/// Configuration of a [`Leaky`] layer (defaults: θ = 1, ATan, subtract reset, nothing learnable).
#[derive(Debug, Clone)]
pub struct LeakyConfig {
    /// Membrane decay β in `[0, 1]`, scalar or per neuron.
    pub beta: Value,
    /// Threshold θ > 0.
    pub threshold: Value,
    /// Surrogate gradient.
    pub surrogate: Surrogate,
    /// Reset mechanism.
    pub reset: Reset,
    /// Whether β is trained.
    pub learn_beta: bool,
    /// Whether θ is trained.
    pub learn_threshold: bool,
}

super::core::core_builders!(LeakyConfig);

impl LeakyConfig {
    /// A config with decay `beta` and the defaults.
    pub fn new(beta: impl Into<Value>) -> Self {
        LeakyConfig {
            beta: beta.into(),
            threshold: Value::Scalar(1.0),
            surrogate: Surrogate::default(),
            reset: Reset::Subtract,
            learn_beta: false,
            learn_threshold: false,
        }
    }

    /// Makes β learnable (or not).
    pub fn with_learn_beta(mut self, learn: bool) -> Self {
        self.learn_beta = learn;
        self
    }

    /// Makes θ learnable (or not).
    pub fn with_learn_threshold(mut self, learn: bool) -> Self {
        self.learn_threshold = learn;
        self
    }

    /// Builds the layer; β outside `[0, 1]` or θ ≤ 0 is an error.
    pub fn init(&self, device: &Device) -> Result<Leaky> {
        self.beta
            .check("beta", "in [0, 1]", |b| (0.0..=1.0).contains(&b))?;
        Ok(Leaky {
            beta: self.beta.param(self.learn_beta, device),
            core: SpikeCore::new(
                &self.threshold,
                self.learn_threshold,
                self.surrogate.clone(),
                self.reset,
                &[&self.beta],
                device,
            )?,
        })
    }
}

/// Leaky integrate-and-fire (snntorch `Leaky`).
///
/// With `r[t] = H(U[t−1] − θ)` (detached) and β clamped to `[0, 1]`:
///
/// - subtract reset: `U[t] = β·U[t−1] + I[t] − r[t]·θ`
/// - zero reset: `U[t] = β·(1 − r[t])·U[t−1] + I[t]`
/// - no reset: `U[t] = β·U[t−1] + I[t]`
///
/// and `S[t] = H(U[t] − θ)`, with the surrogate's derivative on the backward pass.
#[derive(Module, Debug)]
pub struct Leaky {
    /// Decay β, `[1]` or `[features]`.
    pub beta: Param<Tensor<1>>,
    /// Threshold, surrogate and reset.
    pub core: SpikeCore,
}

/// The state of a [`Leaky`] layer: its membrane.
#[derive(Debug, Clone)]
pub struct LeakyState {
    /// Membrane `U`, `[batch, features]`.
    pub mem: Tensor<2>,
}

impl NeuronState for LeakyState {
    fn mem(&self) -> Tensor<2> {
        self.mem.clone()
    }

    fn detach(self) -> Self {
        LeakyState {
            mem: self.mem.detach(),
        }
    }
}

impl Neuron for Leaky {
    type State = LeakyState;

    fn init_state(&self, batch: usize, features: usize, device: &Device) -> LeakyState {
        LeakyState {
            mem: Tensor::zeros([batch, features], device),
        }
    }

    fn step(&self, input: Tensor<2>, state: LeakyState) -> Result<(Tensor<2>, LeakyState)> {
        let [batch, n] = input.dims();
        expect_dims(&state.mem, batch, n, "Leaky state vs input")?;
        let beta = self.core.decay_row(&self.beta, n, "beta width")?;
        let theta = self.core.threshold_row(n)?;
        let prev = state.mem;
        let r = self.core.reset_signal(&prev, &theta);
        let mem = match self.core.reset {
            Reset::Subtract => prev * beta + input - r * theta.clone(),
            Reset::Zero | Reset::ZeroThenIntegrate => (prev.clone() - r * prev) * beta + input,
            Reset::None => prev * beta + input,
        };
        let spk = self.core.fire(mem.clone(), theta);
        Ok((spk, LeakyState { mem }))
    }

    fused_methods!();
}

impl FusedKind for Leaky {
    const KIND: LifKind = LifKind::Leaky;

    fn core(&self) -> &SpikeCore {
        &self.core
    }

    fn param_rows(&self, n: usize) -> Result<Vec<Tensor<2>>> {
        Ok(vec![
            self.core.decay_row(&self.beta, n, "beta width")?,
            self.core.threshold_row(n)?,
        ])
    }

    fn planes(&self, state: LeakyState) -> Tensor<3> {
        state.mem.unsqueeze_dim(0)
    }

    fn state_of(&self, planes: Tensor<3>) -> LeakyState {
        let [_, b, n] = planes.dims();
        LeakyState {
            mem: planes.reshape([b, n]),
        }
    }
}
