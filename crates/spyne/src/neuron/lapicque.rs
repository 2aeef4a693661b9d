//! Lapicque's RC neuron.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::core::{Reset, SpikeCore};
use super::leaky::LeakyState;
use super::param::{expect_dims, Value};
use super::{fused_methods, FusedKind, Neuron};
use crate::error::{Error, Result};
use crate::kernel::LifKind;
use crate::surrogate::Surrogate;

/// Configuration of a [`Lapicque`] layer: give `beta`, or `r` and `c`, or `beta` with one of
/// them, as snntorch does. Defaults: Δt = 1, θ = 1, ATan, subtract reset.
#[derive(Debug, Clone)]
pub struct LapicqueConfig {
    /// Decay β in `(0, 1)`; used to derive R or C when one of them is missing.
    pub beta: Option<f32>,
    /// Resistance R > 0.
    pub r: Option<f32>,
    /// Capacitance C > 0.
    pub c: Option<f32>,
    /// Time step Δt > 0.
    pub time_step: f32,
    /// Threshold θ > 0.
    pub threshold: Value,
    /// Surrogate gradient.
    pub surrogate: Surrogate,
    /// Reset mechanism.
    pub reset: Reset,
}

super::core::core_builders!(LapicqueConfig);

impl LapicqueConfig {
    /// From a decay β (R = 1, C = Δt / ln(1/β), as snntorch).
    pub fn from_beta(beta: f32) -> Self {
        LapicqueConfig {
            beta: Some(beta),
            r: None,
            c: None,
            time_step: 1.0,
            threshold: Value::Scalar(1.0),
            surrogate: Surrogate::default(),
            reset: Reset::Subtract,
        }
    }

    /// From resistance and capacitance.
    pub fn from_rc(r: f32, c: f32) -> Self {
        LapicqueConfig {
            beta: None,
            r: Some(r),
            c: Some(c),
            time_step: 1.0,
            threshold: Value::Scalar(1.0),
            surrogate: Surrogate::default(),
            reset: Reset::Subtract,
        }
    }

    /// Sets Δt.
    pub fn with_time_step(mut self, dt: f32) -> Self {
        self.time_step = dt;
        self
    }

    /// R and C after snntorch's rules for the missing one.
    pub fn resolve_rc(&self) -> Result<(f32, f32)> {
        let positive = |name: &'static str, v: f32| {
            if v.is_finite() && v > 0.0 {
                Ok(v)
            } else {
                Err(Error::invalid(
                    name,
                    format!("{v} is not positive and finite"),
                ))
            }
        };
        let dt = positive("time_step", self.time_step)?;
        let ln_inv_beta = |b: f32| -> Result<f32> {
            if b > 0.0 && b < 1.0 {
                Ok((1.0 / b).ln())
            } else {
                Err(Error::invalid("beta", format!("{b} is not in (0, 1)")))
            }
        };
        match (self.beta, self.r, self.c) {
            (_, Some(r), Some(c)) => Ok((positive("r", r)?, positive("c", c)?)),
            (Some(b), None, None) => Ok((1.0, dt / ln_inv_beta(b)?)),
            (Some(b), Some(r), None) => Ok((r, dt / (positive("r", r)? * ln_inv_beta(b)?))),
            (Some(b), None, Some(c)) => Ok((dt / (positive("c", c)? * ln_inv_beta(b)?), c)),
            _ => Err(Error::invalid(
                "lapicque",
                "give beta, or both r and c, or beta with one of them",
            )),
        }
    }

    /// Builds the layer.
    pub fn init(&self, device: &Device) -> Result<Lapicque> {
        let (r, c) = self.resolve_rc()?;
        Ok(Lapicque {
            decay: 1.0 - self.time_step / (r * c),
            gain: self.time_step / c,
            core: SpikeCore::new(
                &self.threshold,
                false,
                self.surrogate.clone(),
                self.reset,
                &[],
                device,
            )?,
        })
    }
}

/// Lapicque's RC membrane (snntorch `Lapicque`), forward Euler with step Δt:
///
/// `U[t] = (1 − Δt/(R·C))·U[t−1] + (Δt/C)·I[t] − r[t]·θ` (subtract reset;
/// zero reset multiplies the whole new value by `1 − r[t]`), `S[t] = H(U[t] − θ)`,
/// with `r[t] = H(U[t−1] − θ)` detached. Given only β, snntorch sets R = 1 and
/// C = Δt/ln(1/β), so the effective decay is `1 − ln(1/β)`, close to β for β near 1.
#[derive(Module, Debug)]
pub struct Lapicque {
    /// `1 − Δt/(R·C)`.
    pub decay: f32,
    /// `Δt/C`.
    pub gain: f32,
    /// Threshold, surrogate and reset.
    pub core: SpikeCore,
}

impl Neuron for Lapicque {
    type State = LeakyState;

    fn init_state(&self, batch: usize, features: usize, device: &Device) -> LeakyState {
        LeakyState {
            mem: Tensor::zeros([batch, features], device),
        }
    }

    fn step(&self, input: Tensor<2>, state: LeakyState) -> Result<(Tensor<2>, LeakyState)> {
        let [batch, n] = input.dims();
        expect_dims(&state.mem, batch, n, "Lapicque state vs input")?;
        let theta = self.core.threshold_row(n)?;
        let r = self.core.reset_signal(&state.mem, &theta);
        let base = input.mul_scalar(self.gain)
            + self.core.reset_before(state.mem, &r).mul_scalar(self.decay);
        let mem = self.core.reset_after(base, r, theta.clone());
        let spk = self.core.fire(mem.clone(), theta);
        Ok((spk, LeakyState { mem }))
    }

    fused_methods!();
}

/// Lapicque runs on the Synaptic kernel with `α = 0` (the current is then the scaled input)
/// and `β` the RC decay: the same operations in the same order as [`Lapicque::step`].
impl FusedKind for Lapicque {
    const KIND: LifKind = LifKind::Synaptic;

    fn core(&self) -> &SpikeCore {
        &self.core
    }

    fn param_rows(&self, n: usize) -> Result<Vec<Tensor<2>>> {
        let device = self.core.threshold.val().device();
        Ok(vec![
            Tensor::zeros([1, 1], &device),
            Tensor::full([1, 1], self.decay, &device),
            self.core.threshold_row(n)?,
        ])
    }

    fn input_gain(&self) -> Option<f32> {
        Some(self.gain)
    }

    fn planes(&self, state: LeakyState) -> Tensor<3> {
        // The current is never read (α = 0): any finite value will do.
        let mem = state.mem;
        Tensor::stack(vec![mem.zeros_like(), mem], 0)
    }

    fn state_of(&self, planes: Tensor<3>) -> LeakyState {
        let [_, b, n] = planes.dims();
        LeakyState {
            mem: planes.narrow(0, 1, 1).reshape([b, n]),
        }
    }
}
