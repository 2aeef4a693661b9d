//! The alpha-kernel neuron (excitatory and inhibitory currents).

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::core::{Reset, SpikeCore};
use super::param::{expect_dims, Value};
use super::{Neuron, NeuronState};
use crate::error::{Error, Result};
use crate::surrogate::Surrogate;

/// Configuration of an [`Alpha`] layer: α > β, both in `(0, 1]`, β < 1.
#[derive(Debug, Clone)]
pub struct AlphaConfig {
    /// Excitatory current decay α.
    pub alpha: Value,
    /// Inhibitory current decay β.
    pub beta: Value,
    /// Threshold θ > 0.
    pub threshold: Value,
    /// Surrogate gradient.
    pub surrogate: Surrogate,
    /// Reset mechanism.
    pub reset: Reset,
    /// Whether α and β are trained.
    pub learn_decays: bool,
    /// Whether θ is trained.
    pub learn_threshold: bool,
}

super::core::core_builders!(AlphaConfig);

impl AlphaConfig {
    /// A config with decays `alpha > beta` and the defaults.
    pub fn new(alpha: impl Into<Value>, beta: impl Into<Value>) -> Self {
        AlphaConfig {
            alpha: alpha.into(),
            beta: beta.into(),
            threshold: Value::Scalar(1.0),
            surrogate: Surrogate::default(),
            reset: Reset::Subtract,
            learn_decays: false,
            learn_threshold: false,
        }
    }

    /// Builds the layer; checks `0 < β < α ≤ 1` element-wise.
    pub fn init(&self, device: &Device) -> Result<Alpha> {
        self.alpha
            .check("alpha", "in (0, 1]", |a| a > 0.0 && a <= 1.0)?;
        self.beta
            .check("beta", "in (0, 1)", |b| b > 0.0 && b < 1.0)?;
        let (a, b) = (self.alpha.values(), self.beta.values());
        let n = a.len().max(b.len());
        for i in 0..n {
            let (ai, bi) = (a[i.min(a.len() - 1)], b[i.min(b.len() - 1)]);
            if ai <= bi {
                return Err(Error::invalid(
                    "alpha",
                    format!("alpha ({ai}) must be greater than beta ({bi})"),
                ));
            }
        }
        if self.reset == Reset::ZeroThenIntegrate {
            return Err(Error::invalid(
                "reset",
                "Alpha has no zero-then-integrate reset (its membrane is made of two currents); \
                 use subtract, zero or none",
            ));
        }
        Ok(Alpha {
            alpha: self.alpha.param(self.learn_decays, device),
            beta: self.beta.param(self.learn_decays, device),
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

/// Alpha neuron (snntorch `Alpha`): the membrane is a scaled difference of two exponentially
/// decaying currents, giving an alpha-shaped response to a spike.
///
/// With `r[t] = H(U[t−1] − θ)` detached and `τ = ln α / (ln β − ln α) + 1`:
///
/// - `E[t] = α·E[t−1] + I[t] − r[t]·θ`
/// - `N[t] = (1 − r[t])·(β·N[t−1] − I[t])`
/// - `U[t] = τ·(E[t] + N[t]) + r[t]·N[t−1]` (subtract reset, exactly as snntorch 1.0);
///   zero reset multiplies all three unreset values by `1 − r[t]`; no reset drops the r terms
/// - `S[t] = H(U[t] − θ)`
#[derive(Module, Debug)]
pub struct Alpha {
    /// Excitatory decay α.
    pub alpha: Param<Tensor<1>>,
    /// Inhibitory decay β.
    pub beta: Param<Tensor<1>>,
    /// Threshold, surrogate and reset.
    pub core: SpikeCore,
}

/// The state of an [`Alpha`] layer.
#[derive(Debug, Clone)]
pub struct AlphaState {
    /// Excitatory current.
    pub syn_exc: Tensor<2>,
    /// Inhibitory current.
    pub syn_inh: Tensor<2>,
    /// Membrane.
    pub mem: Tensor<2>,
}

impl NeuronState for AlphaState {
    fn mem(&self) -> Tensor<2> {
        self.mem.clone()
    }

    fn detach(self) -> Self {
        AlphaState {
            syn_exc: self.syn_exc.detach(),
            syn_inh: self.syn_inh.detach(),
            mem: self.mem.detach(),
        }
    }
}

impl Neuron for Alpha {
    type State = AlphaState;

    fn init_state(&self, batch: usize, features: usize, device: &Device) -> AlphaState {
        let z = || Tensor::zeros([batch, features], device);
        AlphaState {
            syn_exc: z(),
            syn_inh: z(),
            mem: z(),
        }
    }

    fn step(&self, input: Tensor<2>, state: AlphaState) -> Result<(Tensor<2>, AlphaState)> {
        let [batch, n] = input.dims();
        for t in [&state.syn_exc, &state.syn_inh, &state.mem] {
            expect_dims(t, batch, n, "Alpha state vs input")?;
        }
        let alpha = self.core.decay_row(&self.alpha, n, "alpha width")?;
        let beta = self.core.decay_row(&self.beta, n, "beta width")?;
        let theta = self.core.threshold_row(n)?;
        let r = self.core.reset_signal(&state.mem, &theta);
        let la = alpha.clone().log();
        let tau = la.clone() / (beta.clone().log() - la) + 1.0;
        let exc = state.syn_exc * alpha + input.clone();
        let inh = state.syn_inh.clone() * beta - input;
        let mem = (exc.clone() + inh.clone()) * tau;
        let keep = r.clone().neg() + 1.0;
        let (exc, inh, mem) = match self.core.reset {
            Reset::Subtract => (
                exc - r.clone() * theta.clone(),
                inh * keep,
                mem + r * state.syn_inh,
            ),
            Reset::Zero => (exc * keep.clone(), inh * keep.clone(), mem * keep),
            // Zero-then-integrate is refused when the layer is built.
            Reset::None | Reset::ZeroThenIntegrate => (exc, inh, mem),
        };
        let spk = self.core.fire(mem.clone(), theta);
        Ok((
            spk,
            AlphaState {
                syn_exc: exc,
                syn_inh: inh,
                mem,
            },
        ))
    }
}
