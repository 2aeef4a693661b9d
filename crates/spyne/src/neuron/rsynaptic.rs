//! The current-based neuron with explicit recurrence.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::core::{Reset, SpikeCore};
use super::param::{expect_dims, Value};
use super::recurrent::{Recurrent, RecurrentKernel, RecurrentKind};
use super::{Fused, FusedCall, Neuron, NeuronState};
use crate::error::Result;
use crate::rng::UniformSource;
use crate::surrogate::Surrogate;

/// Configuration of an [`RSynaptic`] layer (defaults: θ = 1, ATan, subtract reset,
/// recurrent weights learnable).
#[derive(Debug, Clone)]
pub struct RSynapticConfig {
    /// Current decay α in `[0, 1]`.
    pub alpha: Value,
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
    /// Whether α, β, θ and the recurrent weights are trained.
    pub learn: [bool; 4],
}

super::core::core_builders!(RSynapticConfig);

impl RSynapticConfig {
    /// A config with decays `alpha`, `beta` and feedback `recurrent`.
    pub fn new(alpha: impl Into<Value>, beta: impl Into<Value>, recurrent: RecurrentKind) -> Self {
        RSynapticConfig {
            alpha: alpha.into(),
            beta: beta.into(),
            recurrent,
            threshold: Value::Scalar(1.0),
            surrogate: Surrogate::default(),
            reset: Reset::Subtract,
            learn: [false, false, false, true],
        }
    }

    /// Builds the layer, drawing an all-to-all layer's weights from `rng`.
    pub fn init(&self, rng: &mut impl UniformSource, device: &Device) -> Result<RSynaptic> {
        self.alpha
            .check("alpha", "in [0, 1]", |a| (0.0..=1.0).contains(&a))?;
        self.beta
            .check("beta", "in [0, 1]", |b| (0.0..=1.0).contains(&b))?;
        let [la, lb, lt, lr] = self.learn;
        Ok(RSynaptic {
            alpha: self.alpha.param(la, device),
            beta: self.beta.param(lb, device),
            recurrent: Recurrent::new(&self.recurrent, lr, rng, device)?,
            core: SpikeCore::new(
                &self.threshold,
                lt,
                self.surrogate.clone(),
                self.reset,
                &[
                    Some(&self.alpha),
                    Some(&self.beta),
                    self.recurrent.one_to_one(),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>(),
                device,
            )?,
        })
    }
}

/// Current-based LIF whose output spikes feed back (snntorch `RSynaptic`).
///
/// `I_syn[t] = α·I_syn[t−1] + I[t] + R(S[t−1])`,
/// `U[t] = β·U[t−1] + I_syn[t] − r[t]·θ` (subtract; zero reset multiplies the whole new
/// membrane by `1 − r[t]`), `S[t] = H(U[t] − θ)`, with `r[t] = H(U[t−1] − θ)` detached.
#[derive(Module, Debug)]
pub struct RSynaptic {
    /// Current decay α.
    pub alpha: Param<Tensor<1>>,
    /// Membrane decay β.
    pub beta: Param<Tensor<1>>,
    /// The feedback path.
    pub recurrent: Recurrent,
    /// Threshold, surrogate and reset.
    pub core: SpikeCore,
}

/// The state of an [`RSynaptic`] layer.
#[derive(Debug, Clone)]
pub struct RSynapticState {
    /// Spikes of the previous step.
    pub spk: Tensor<2>,
    /// Synaptic current.
    pub syn: Tensor<2>,
    /// Membrane.
    pub mem: Tensor<2>,
}

impl NeuronState for RSynapticState {
    fn mem(&self) -> Tensor<2> {
        self.mem.clone()
    }

    fn detach(self) -> Self {
        RSynapticState {
            spk: self.spk.detach(),
            syn: self.syn.detach(),
            mem: self.mem.detach(),
        }
    }
}

impl Neuron for RSynaptic {
    type State = RSynapticState;

    fn init_state(&self, batch: usize, features: usize, device: &Device) -> RSynapticState {
        let z = || Tensor::zeros([batch, features], device);
        RSynapticState {
            spk: z(),
            syn: z(),
            mem: z(),
        }
    }

    fn step(&self, input: Tensor<2>, state: RSynapticState) -> Result<(Tensor<2>, RSynapticState)> {
        let [batch, n] = input.dims();
        for t in [&state.spk, &state.syn, &state.mem] {
            expect_dims(t, batch, n, "RSynaptic state vs input")?;
        }
        let alpha = self.core.decay_row(&self.alpha, n, "alpha width")?;
        let beta = self.core.decay_row(&self.beta, n, "beta width")?;
        let theta = self.core.threshold_row(n)?;
        let r = self.core.reset_signal(&state.mem, &theta);
        let syn =
            state.syn * alpha + input + self.recurrent.forward(state.spk, self.core.channels)?;
        let base = self.core.reset_before(state.mem, &r) * beta + syn.clone();
        let mem = self.core.reset_after(base, r, theta.clone());
        let spk = self.core.fire(mem.clone(), theta);
        Ok((spk.clone(), RSynapticState { spk, syn, mem }))
    }

    fn fused(&self, call: FusedCall<RSynapticState>) -> Option<Result<Fused<RSynapticState>>> {
        let kernel = RecurrentKernel {
            core: &self.core,
            alpha: Some(&self.alpha),
            beta: &self.beta,
            recurrent: &self.recurrent,
        };
        kernel.run(
            call,
            |s: RSynapticState| Tensor::stack(vec![s.spk, s.syn, s.mem], 0),
            |p: Tensor<3>| {
                let [_, b, n] = p.dims();
                let row = |k| p.clone().narrow(0, k, 1).reshape([b, n]);
                RSynapticState {
                    spk: row(0),
                    syn: row(1),
                    mem: row(2),
                }
            },
        )
    }
}
