//! What every neuron shares: threshold, surrogate and reset mechanism.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::param::{channels_of, decay_row, row, Value};
use crate::error::{Error, Result};
use crate::surrogate::{heaviside_tensor, Surrogate};

/// How the membrane is reset after a spike (applied at the next step, as in snntorch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reset {
    /// Subtract the threshold: `U ← U − θ` (default).
    #[default]
    Subtract,
    /// Reset to zero as snntorch 1.0's `reset_mechanism="zero"` does: Leaky zeroes the
    /// previous membrane, `U[t] = β·(1 − r[t])·U[t−1] + I[t]`, while Lapicque, Synaptic,
    /// RLeaky and RSynaptic clear the whole new value, `U[t] = (1 − r[t])·(β·U[t−1] + …)`,
    /// so that the step after a spike ignores its input.
    Zero,
    /// No reset.
    None,
    /// Zero the membrane, then integrate the step's input: `U[t] = β·(1 − r[t])·U[t−1] + …`
    /// for every neuron. This is NIR's `v ← v_reset` with `v_reset = 0`, what Norse does and
    /// what snntorch's zero reset does with `reset_delay=False`. For Leaky it is the same as
    /// [`Reset::Zero`]; Alpha has none.
    #[serde(rename = "zero-then-integrate")]
    ZeroThenIntegrate,
}

impl Reset {
    /// Parses `subtract`, `zero` or `none`.
    pub fn from_name(name: &str) -> Result<Reset> {
        match name.to_ascii_lowercase().as_str() {
            "subtract" => Ok(Reset::Subtract),
            "zero" => Ok(Reset::Zero),
            "none" => Ok(Reset::None),
            "zero-then-integrate" => Ok(Reset::ZeroThenIntegrate),
            other => Err(Error::invalid(
                "reset",
                format!("unknown reset mechanism '{other}' (expected subtract, zero, none or zero-then-integrate)"),
            )),
        }
    }
}

/// The builder methods every neuron config shares: `with_threshold`, `with_surrogate`,
/// `with_reset` (the config has `threshold`, `surrogate` and `reset` fields).
macro_rules! core_builders {
    ($config:ty) => {
        impl $config {
            /// Sets θ (scalar or per neuron).
            pub fn with_threshold(mut self, threshold: impl Into<$crate::neuron::Value>) -> Self {
                self.threshold = threshold.into();
                self
            }

            /// Sets the surrogate.
            pub fn with_surrogate(mut self, surrogate: $crate::surrogate::Surrogate) -> Self {
                self.surrogate = surrogate;
                self
            }

            /// Sets the reset mechanism.
            pub fn with_reset(mut self, reset: $crate::neuron::Reset) -> Self {
                self.reset = reset;
                self
            }
        }
    };
}
pub(crate) use core_builders;

/// The spiking part shared by every neuron: threshold θ (scalar or per neuron, optionally
/// learnable), the surrogate used on the backward pass, and the reset mechanism.
#[derive(Module, Debug)]
pub struct SpikeCore {
    /// Threshold θ, shape `[1]` or `[features]`.
    pub threshold: Param<Tensor<1>>,
    /// Surrogate derivative for `∂S/∂U`.
    #[module(skip)]
    pub surrogate: Surrogate,
    /// Reset mechanism.
    #[module(skip)]
    pub reset: Reset,
    /// The channel count `C` when some parameter of the layer is per channel (its neurons
    /// are then `C·H·W`, channel-major).
    #[module(skip)]
    pub channels: Option<usize>,
}

impl SpikeCore {
    /// Builds the core; `threshold` must be positive and finite. `others` are the layer's
    /// other parameter values: per-channel values must agree on the channel count.
    pub fn new(
        threshold: &Value,
        learn_threshold: bool,
        surrogate: Surrogate,
        reset: Reset,
        others: &[&Value],
        device: &Device,
    ) -> Result<Self> {
        threshold.check("threshold", "positive and finite", |v| {
            v.is_finite() && v > 0.0
        })?;
        surrogate.validate()?;
        let mut all = others.to_vec();
        all.push(threshold);
        Ok(SpikeCore {
            threshold: threshold.param(learn_threshold, device),
            surrogate,
            reset,
            channels: channels_of(&all)?,
        })
    }

    /// θ broadcast to `[1, features]`.
    pub fn threshold_row(&self, features: usize) -> Result<Tensor<2>> {
        row(&self.threshold, features, self.channels, "threshold width")
    }

    /// A decay parameter (β, α) broadcast to `[1, features]` and clamped to `[0, 1]`.
    pub fn decay_row(
        &self,
        p: &Param<Tensor<1>>,
        features: usize,
        name: &'static str,
    ) -> Result<Tensor<2>> {
        decay_row(p, features, self.channels, name)
    }

    /// Any other parameter (a recurrent weight `V`) broadcast to `[1, features]`.
    pub fn row(
        &self,
        p: &Param<Tensor<1>>,
        features: usize,
        name: &'static str,
    ) -> Result<Tensor<2>> {
        row(p, features, self.channels, name)
    }

    /// `r[t] = H(U[t−1] − θ)`, detached: whether the previous step spiked.
    pub fn reset_signal(&self, prev_mem: &Tensor<2>, theta: &Tensor<2>) -> Tensor<2> {
        heaviside_tensor((prev_mem.clone() - theta.clone()).detach())
    }

    /// `S = H(U − θ)` with the surrogate gradient (flowing to U and to a learnable θ).
    pub fn fire(&self, mem: Tensor<2>, theta: Tensor<2>) -> Tensor<2> {
        self.surrogate.spike(mem - theta)
    }

    /// The previous membrane as the step integrates it: `(1 − r)·U[t−1]` for
    /// [`Reset::ZeroThenIntegrate`], else unchanged.
    pub fn reset_before(&self, prev_mem: Tensor<2>, r: &Tensor<2>) -> Tensor<2> {
        match self.reset {
            Reset::ZeroThenIntegrate => prev_mem.clone() - r.clone() * prev_mem,
            _ => prev_mem,
        }
    }

    /// Applies the reset to a freshly computed membrane `base`, the way Lapicque, Synaptic,
    /// RLeaky and RSynaptic do in snntorch: subtract `r·θ`, or zero the whole new value
    /// (zero-then-integrate reset before, in [`SpikeCore::reset_before`]).
    pub fn reset_after(&self, base: Tensor<2>, r: Tensor<2>, theta: Tensor<2>) -> Tensor<2> {
        match self.reset {
            Reset::Subtract => base - r * theta,
            Reset::Zero => base.clone() - r * base,
            Reset::None | Reset::ZeroThenIntegrate => base,
        }
    }
}
