//! The leaky neuron with explicit recurrence.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::core::{Reset, SpikeCore};
use super::param::{expect_dims, Value};
use super::recurrent::{Recurrent, RecurrentKernel, RecurrentKind};
use super::{Fused, FusedCall, Neuron, NeuronState};
use crate::error::Result;
use crate::rng::UniformSource;
use crate::surrogate::Surrogate;

/// Configuration of an [`RLeaky`] layer (defaults: θ = 1, ATan, subtract reset, β fixed,
/// recurrent weights learnable).
#[derive(Debug, Clone)]
pub struct RLeakyConfig {
    /// Membrane decay β in `[0, 1]`.
    pub beta: Value,
    /// The feedback path.
    pub recurrent: RecurrentKind,
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
    /// Whether the recurrent weights are trained.
    pub learn_recurrent: bool,
}

super::core::core_builders!(RLeakyConfig);

impl RLeakyConfig {
    /// A config with decay `beta` and feedback `recurrent`.
    pub fn new(beta: impl Into<Value>, recurrent: RecurrentKind) -> Self {
        RLeakyConfig {
            beta: beta.into(),
            recurrent,
            threshold: Value::Scalar(1.0),
            surrogate: Surrogate::default(),
            reset: Reset::Subtract,
            learn_beta: false,
            learn_threshold: false,
            learn_recurrent: true,
        }
    }

    /// Chooses which of β, θ and the recurrent weights are trained.
    pub fn with_learn(mut self, beta: bool, threshold: bool, recurrent: bool) -> Self {
        (self.learn_beta, self.learn_threshold, self.learn_recurrent) =
            (beta, threshold, recurrent);
        self
    }

    /// Builds the layer, drawing an all-to-all layer's weights from `rng`.
    pub fn init(&self, rng: &mut impl UniformSource, device: &Device) -> Result<RLeaky> {
        self.beta
            .check("beta", "in [0, 1]", |b| (0.0..=1.0).contains(&b))?;
        Ok(RLeaky {
            beta: self.beta.param(self.learn_beta, device),
            recurrent: Recurrent::new(&self.recurrent, self.learn_recurrent, rng, device)?,
            core: SpikeCore::new(
                &self.threshold,
                self.learn_threshold,
                self.surrogate.clone(),
                self.reset,
                &[Some(&self.beta), self.recurrent.one_to_one()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>(),
                device,
            )?,
        })
    }
}

/// Leaky integrate-and-fire whose output spikes feed back (snntorch `RLeaky`).
///
/// With `r[t] = H(U[t−1] − θ)` (detached) and `R` the recurrent map (Linear or `V·s`):
///
/// `U[t] = β·U[t−1] + I[t] + R(S[t−1]) − r[t]·θ` (subtract reset; zero reset multiplies the
/// whole new value by `1 − r[t]`), `S[t] = H(U[t] − θ)`. Gradients flow through the fed-back
/// spikes via the surrogate.
#[derive(Module, Debug)]
pub struct RLeaky {
    /// Decay β, `[1]` or `[features]`.
    pub beta: Param<Tensor<1>>,
    /// The feedback path.
    pub recurrent: Recurrent,
    /// Threshold, surrogate and reset.
    pub core: SpikeCore,
}

/// The state of an [`RLeaky`] layer.
#[derive(Debug, Clone)]
pub struct RLeakyState {
    /// Spikes of the previous step, `[batch, features]`.
    pub spk: Tensor<2>,
    /// Membrane, `[batch, features]`.
    pub mem: Tensor<2>,
}

impl NeuronState for RLeakyState {
    fn mem(&self) -> Tensor<2> {
        self.mem.clone()
    }

    fn detach(self) -> Self {
        RLeakyState {
            spk: self.spk.detach(),
            mem: self.mem.detach(),
        }
    }
}

impl Neuron for RLeaky {
    type State = RLeakyState;

    fn init_state(&self, batch: usize, features: usize, device: &Device) -> RLeakyState {
        RLeakyState {
            spk: Tensor::zeros([batch, features], device),
            mem: Tensor::zeros([batch, features], device),
        }
    }

    fn step(&self, input: Tensor<2>, state: RLeakyState) -> Result<(Tensor<2>, RLeakyState)> {
        let [batch, n] = input.dims();
        expect_dims(&state.spk, batch, n, "RLeaky spikes vs input")?;
        expect_dims(&state.mem, batch, n, "RLeaky membrane vs input")?;
        let beta = self.core.decay_row(&self.beta, n, "beta width")?;
        let theta = self.core.threshold_row(n)?;
        let r = self.core.reset_signal(&state.mem, &theta);
        let base = self.core.reset_before(state.mem, &r) * beta
            + input
            + self.recurrent.forward(state.spk, self.core.channels)?;
        let mem = self.core.reset_after(base, r, theta.clone());
        let spk = self.core.fire(mem.clone(), theta);
        Ok((spk.clone(), RLeakyState { spk, mem }))
    }

    fn fused(&self, call: FusedCall<RLeakyState>) -> Option<Result<Fused<RLeakyState>>> {
        let kernel = RecurrentKernel {
            core: &self.core,
            alpha: None,
            beta: &self.beta,
            recurrent: &self.recurrent,
        };
        kernel.run(
            call,
            |s: RLeakyState| Tensor::stack(vec![s.spk, s.mem], 0),
            |p: Tensor<3>| {
                let [_, b, n] = p.dims();
                let row = |k| p.clone().narrow(0, k, 1).reshape([b, n]);
                RLeakyState {
                    spk: row(0),
                    mem: row(1),
                }
            },
        )
    }
}
