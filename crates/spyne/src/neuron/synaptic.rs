//! The current-based (synaptic conductance) neuron.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::core::{Reset, SpikeCore};
use super::param::{expect_dims, Value};
use super::{fused_methods, FusedKind, Neuron, NeuronState};
use crate::error::Result;
use crate::kernel::LifKind;
use crate::surrogate::Surrogate;

/// Configuration of a [`Synaptic`] layer (defaults: θ = 1, ATan, subtract reset).
#[derive(Debug, Clone)]
pub struct SynapticConfig {
    /// Synaptic current decay α in `[0, 1]`.
    pub alpha: Value,
    /// Membrane decay β in `[0, 1]`.
    pub beta: Value,
    /// Threshold θ > 0.
    pub threshold: Value,
    /// Surrogate gradient.
    pub surrogate: Surrogate,
    /// Reset mechanism.
    pub reset: Reset,
    /// Whether α is trained.
    pub learn_alpha: bool,
    /// Whether β is trained.
    pub learn_beta: bool,
    /// Whether θ is trained.
    pub learn_threshold: bool,
}

super::core::core_builders!(SynapticConfig);

impl SynapticConfig {
    /// A config with decays `alpha` (current) and `beta` (membrane) and the defaults.
    pub fn new(alpha: impl Into<Value>, beta: impl Into<Value>) -> Self {
        SynapticConfig {
            alpha: alpha.into(),
            beta: beta.into(),
            threshold: Value::Scalar(1.0),
            surrogate: Surrogate::default(),
            reset: Reset::Subtract,
            learn_alpha: false,
            learn_beta: false,
            learn_threshold: false,
        }
    }

    /// Chooses which of α, β, θ are trained.
    pub fn with_learn(mut self, alpha: bool, beta: bool, threshold: bool) -> Self {
        (self.learn_alpha, self.learn_beta, self.learn_threshold) = (alpha, beta, threshold);
        self
    }

    /// Builds the layer; α or β outside `[0, 1]` or θ ≤ 0 is an error.
    pub fn init(&self, device: &Device) -> Result<Synaptic> {
        self.alpha
            .check("alpha", "in [0, 1]", |a| (0.0..=1.0).contains(&a))?;
        self.beta
            .check("beta", "in [0, 1]", |b| (0.0..=1.0).contains(&b))?;
        Ok(Synaptic {
            alpha: self.alpha.param(self.learn_alpha, device),
            beta: self.beta.param(self.learn_beta, device),
            core: SpikeCore::new(
                &self.threshold,
                self.learn_threshold,
                self.surrogate.clone(),
                self.reset,
                &[&self.alpha, &self.beta],
                device,
            )?,
        })
    }
}

/// Current-based LIF (snntorch `Synaptic`): the input charges a decaying synaptic current,
/// which charges the membrane.
///
/// With `r[t] = H(U[t−1] − θ)` (detached), α and β clamped to `[0, 1]`:
///
/// - `I_syn[t] = α·I_syn[t−1] + I[t]`
/// - `U[t] = β·U[t−1] + I_syn[t] − r[t]·θ` (subtract), `(1 − r[t])·(β·U[t−1] + I_syn[t])`
///   (zero: the whole new value is cleared; the current is not), or without the reset term
/// - `S[t] = H(U[t] − θ)`
#[derive(Module, Debug)]
pub struct Synaptic {
    /// Current decay α, `[1]` or `[features]`.
    pub alpha: Param<Tensor<1>>,
    /// Membrane decay β, `[1]` or `[features]`.
    pub beta: Param<Tensor<1>>,
    /// Threshold, surrogate and reset.
    pub core: SpikeCore,
}

/// The state of a [`Synaptic`] layer.
#[derive(Debug, Clone)]
pub struct SynapticState {
    /// Synaptic current, `[batch, features]`.
    pub syn: Tensor<2>,
    /// Membrane, `[batch, features]`.
    pub mem: Tensor<2>,
}

impl NeuronState for SynapticState {
    fn mem(&self) -> Tensor<2> {
        self.mem.clone()
    }

    fn detach(self) -> Self {
        SynapticState {
            syn: self.syn.detach(),
            mem: self.mem.detach(),
        }
    }
}

impl Neuron for Synaptic {
    type State = SynapticState;

    fn init_state(&self, batch: usize, features: usize, device: &Device) -> SynapticState {
        SynapticState {
            syn: Tensor::zeros([batch, features], device),
            mem: Tensor::zeros([batch, features], device),
        }
    }

    fn step(&self, input: Tensor<2>, state: SynapticState) -> Result<(Tensor<2>, SynapticState)> {
        let [batch, n] = input.dims();
        expect_dims(&state.syn, batch, n, "Synaptic current vs input")?;
        expect_dims(&state.mem, batch, n, "Synaptic membrane vs input")?;
        let alpha = self.core.decay_row(&self.alpha, n, "alpha width")?;
        let beta = self.core.decay_row(&self.beta, n, "beta width")?;
        let theta = self.core.threshold_row(n)?;
        let r = self.core.reset_signal(&state.mem, &theta);
        let syn = state.syn * alpha + input;
        let base = self.core.reset_before(state.mem, &r) * beta + syn.clone();
        let mem = self.core.reset_after(base, r, theta.clone());
        let spk = self.core.fire(mem.clone(), theta);
        Ok((spk, SynapticState { syn, mem }))
    }

    fused_methods!();
}

impl FusedKind for Synaptic {
    const KIND: LifKind = LifKind::Synaptic;

    fn core(&self) -> &SpikeCore {
        &self.core
    }

    fn param_rows(&self, n: usize) -> Result<Vec<Tensor<2>>> {
        Ok(vec![
            self.core.decay_row(&self.alpha, n, "alpha width")?,
            self.core.decay_row(&self.beta, n, "beta width")?,
            self.core.threshold_row(n)?,
        ])
    }

    fn planes(&self, state: SynapticState) -> Tensor<3> {
        Tensor::stack(vec![state.syn, state.mem], 0)
    }

    fn state_of(&self, planes: Tensor<3>) -> SynapticState {
        let [_, b, n] = planes.dims();
        SynapticState {
            syn: planes.clone().narrow(0, 0, 1).reshape([b, n]),
            mem: planes.narrow(0, 1, 1).reshape([b, n]),
        }
    }
}
