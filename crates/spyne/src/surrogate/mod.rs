//! Surrogate gradients: the forward pass is the exact Heaviside step, the backward pass uses
//! a smooth stand-in for its derivative.
//!
//! Every formula takes `x = U − θ`, the membrane's distance above threshold.

use std::f32::consts::PI;
use std::fmt;
use std::sync::Arc;

use burn::tensor::Tensor;

use crate::error::{Error, Result};
use crate::setting::Setting;

/// A user-supplied surrogate derivative `∂S̃/∂U` as a function of `x = U − θ`.
///
/// It is evaluated element by element on the host, so it works on every backend but costs a
/// device round trip on GPUs.
#[derive(Clone)]
pub struct CustomSurrogate {
    name: String,
    pub(crate) derivative: Arc<dyn Fn(f32) -> f32 + Send + Sync>,
}

impl CustomSurrogate {
    /// Wraps `derivative` under a name used in `Debug` output and configs.
    pub fn new(
        name: impl Into<String>,
        derivative: impl Fn(f32) -> f32 + Send + Sync + 'static,
    ) -> Self {
        CustomSurrogate {
            name: name.into(),
            derivative: Arc::new(derivative),
        }
    }

    /// The name given at construction.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for CustomSurrogate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Custom({})", self.name)
    }
}

/// Surrogates as const-generic codes with up to two parameters, for kernels that compile
/// one loop per surrogate with the formula inlined ([`eval`] holds the formulas).
pub(crate) mod code {
    pub const SPIKE_OPERATOR: u8 = 0;
    pub const ATAN: u8 = 1;
    pub const FAST_SIGMOID: u8 = 2;
    pub const SIGMOID: u8 = 3;
    pub const STRAIGHT_THROUGH: u8 = 4;
    pub const TRIANGULAR: u8 = 5;
    pub const SPIKE_RATE_ESCAPE: u8 = 6;
    pub const CUSTOM: u8 = 7;
}

/// A custom derivative, or a stand-in for the built-ins (never called for them).
pub(crate) type DerivativeRef<'a> = &'a (dyn Fn(f32) -> f32 + Send + Sync);

/// `∂S̃/∂U` at `x = U − θ` for the surrogate with code `SG` and parameters `k`.
/// The one place where the formulas live.
#[inline(always)]
pub(crate) fn eval<const SG: u8>(k: [f32; 2], custom: DerivativeRef, x: f32) -> f32 {
    match SG {
        code::SPIKE_OPERATOR => heaviside(x),
        code::ATAN => {
            // k = [π/2·α, α/2]
            let z = k[0] * x;
            k[1] / (1.0 + z * z)
        }
        code::FAST_SIGMOID => {
            let d = k[0] * x.abs() + 1.0;
            1.0 / (d * d)
        }
        code::SIGMOID => {
            // Written with e^{−k|x|} so that large |x| cannot overflow; the function is even.
            let e = (-k[0] * x.abs()).exp();
            k[0] * e / ((1.0 + e) * (1.0 + e))
        }
        code::STRAIGHT_THROUGH => 1.0,
        code::TRIANGULAR => (1.0 - x.abs() / k[0]).max(0.0) / k[0],
        code::SPIKE_RATE_ESCAPE => k[1] * (-k[0] * (x - 1.0).abs()).exp(),
        _ => custom(x),
    }
}

fn no_custom(_: f32) -> f32 {
    unreachable!("built-in surrogates have no custom derivative")
}

/// Calls `$go::<…, SG>(args)` with `SG` the surrogate's code (the const generic comes last).
macro_rules! with_surrogate_code {
    ($s:expr, $go:ident ( $($arg:expr),* )) => {
        with_surrogate_code!($s, $go::<>($($arg),*))
    };
    ($s:expr, $go:ident :: < $($g:ident),* > ( $($arg:expr),* )) => {{
        use $crate::surrogate::code::*;
        match $s.code().0 {
            SPIKE_OPERATOR => $go::<$($g,)* SPIKE_OPERATOR>($($arg),*),
            ATAN => $go::<$($g,)* ATAN>($($arg),*),
            FAST_SIGMOID => $go::<$($g,)* FAST_SIGMOID>($($arg),*),
            SIGMOID => $go::<$($g,)* SIGMOID>($($arg),*),
            STRAIGHT_THROUGH => $go::<$($g,)* STRAIGHT_THROUGH>($($arg),*),
            TRIANGULAR => $go::<$($g,)* TRIANGULAR>($($arg),*),
            SPIKE_RATE_ESCAPE => $go::<$($g,)* SPIKE_RATE_ESCAPE>($($arg),*),
            _ => $go::<$($g,)* CUSTOM>($($arg),*),
        }
    }};
}
pub(crate) use with_surrogate_code;

/// The derivative used for `∂S/∂U` on the backward pass. [`Surrogate::default`] is ATan(α=2).
#[derive(Debug, Clone)]
pub enum Surrogate {
    /// `∂S̃/∂U = S`: gradient 1 where the neuron spiked, 0 where it was silent.
    SpikeOperator,
    /// `(α/2) / (1 + (π/2·α·x)²)` — snntorch's `atan` (its code, not its docstring).
    ATan {
        /// Width parameter α (default 2).
        alpha: f32,
    },
    /// `1 / (k|x| + 1)²`.
    FastSigmoid {
        /// Slope k (default 25).
        slope: f32,
    },
    /// `k·e^{−kx} / (e^{−kx} + 1)²`, the derivative of the logistic `σ(kx)`.
    Sigmoid {
        /// Slope k (default 25).
        slope: f32,
    },
    /// `1` everywhere.
    StraightThrough,
    /// `max(0, 1 − |x|/w) / w`: a triangle of width `2w` and unit area.
    Triangular {
        /// Half-width w (default 1).
        width: f32,
    },
    /// `k·exp(−β|x − 1|)`, snntorch's `spike_rate_escape`.
    SpikeRateEscape {
        /// Decay β (default 1).
        beta: f32,
        /// Scale k (default 25).
        slope: f32,
    },
    /// A user-supplied derivative.
    Custom(CustomSurrogate),
}

impl Default for Surrogate {
    fn default() -> Self {
        Surrogate::atan()
    }
}

impl Surrogate {
    /// ATan with α = 2 (the default surrogate).
    pub fn atan() -> Self {
        Surrogate::ATan { alpha: 2.0 }
    }

    /// Fast sigmoid with slope 25.
    pub fn fast_sigmoid() -> Self {
        Surrogate::FastSigmoid { slope: 25.0 }
    }

    /// Sigmoid with slope 25.
    pub fn sigmoid() -> Self {
        Surrogate::Sigmoid { slope: 25.0 }
    }

    /// Triangle of half-width 1.
    pub fn triangular() -> Self {
        Surrogate::Triangular { width: 1.0 }
    }

    /// Spike-rate escape with β = 1, k = 25.
    pub fn spike_rate_escape() -> Self {
        Surrogate::SpikeRateEscape {
            beta: 1.0,
            slope: 25.0,
        }
    }

    /// A user-supplied derivative of `x = U − θ`.
    pub fn custom(
        name: impl Into<String>,
        derivative: impl Fn(f32) -> f32 + Send + Sync + 'static,
    ) -> Self {
        Surrogate::Custom(CustomSurrogate::new(name, derivative))
    }

    /// Parses a name with optional parameters: `atan`, `fast-sigmoid:slope=25`, `sigmoid`,
    /// `straight-through`, `triangular:width=1`, `spike-operator`, `spike-rate-escape`
    /// (see [`crate::setting`]).
    pub fn from_name(name: &str) -> Result<Self> {
        let s = <Surrogate as Setting>::parse(name)?;
        s.validate()?;
        Ok(s)
    }

    /// The canonical name ([`Surrogate::from_name`] reads it back for built-ins).
    pub fn name(&self) -> String {
        match self {
            Surrogate::SpikeOperator => "spike-operator".into(),
            Surrogate::ATan { .. } => "atan".into(),
            Surrogate::FastSigmoid { .. } => "fast-sigmoid".into(),
            Surrogate::Sigmoid { .. } => "sigmoid".into(),
            Surrogate::StraightThrough => "straight-through".into(),
            Surrogate::Triangular { .. } => "triangular".into(),
            Surrogate::SpikeRateEscape { .. } => "spike-rate-escape".into(),
            Surrogate::Custom(c) => c.name.clone(),
        }
    }

    /// Checks the parameters (positive, finite widths and slopes).
    pub fn validate(&self) -> Result<()> {
        let positive = |name: &'static str, v: f32| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(Error::invalid(
                    name,
                    format!("surrogate parameter must be positive and finite, got {v}"),
                ))
            }
        };
        match *self {
            Surrogate::ATan { alpha } => positive("alpha", alpha),
            Surrogate::FastSigmoid { slope } | Surrogate::Sigmoid { slope } => {
                positive("slope", slope)
            }
            Surrogate::Triangular { width } => positive("width", width),
            Surrogate::SpikeRateEscape { beta, slope } => {
                positive("beta", beta)?;
                positive("slope", slope)
            }
            _ => Ok(()),
        }
    }

    /// `∂S̃/∂U` at one point `x = U − θ`.
    pub fn derivative(&self, x: f32) -> f32 {
        let (k, custom) = (self.code().1, self.custom_derivative());
        with_surrogate_code!(self, eval(k, custom, x))
    }

    /// The code and parameters that [`eval`] takes.
    pub(crate) fn code(&self) -> (u8, [f32; 2]) {
        match *self {
            Surrogate::SpikeOperator => (code::SPIKE_OPERATOR, [0.0; 2]),
            Surrogate::ATan { alpha } => (code::ATAN, [PI / 2.0 * alpha, alpha / 2.0]),
            Surrogate::FastSigmoid { slope } => (code::FAST_SIGMOID, [slope, 0.0]),
            Surrogate::Sigmoid { slope } => (code::SIGMOID, [slope, 0.0]),
            Surrogate::StraightThrough => (code::STRAIGHT_THROUGH, [0.0; 2]),
            Surrogate::Triangular { width } => (code::TRIANGULAR, [width, 0.0]),
            Surrogate::SpikeRateEscape { beta, slope } => (code::SPIKE_RATE_ESCAPE, [beta, slope]),
            Surrogate::Custom(_) => (code::CUSTOM, [0.0; 2]),
        }
    }

    /// The user's derivative for a custom surrogate, a placeholder for the others.
    pub(crate) fn custom_derivative(&self) -> DerivativeRef<'_> {
        match self {
            Surrogate::Custom(c) => &*c.derivative,
            _ => &no_custom,
        }
    }

    /// `∂S̃/∂U` element-wise on a tensor of `x = U − θ` (not tracked by autodiff).
    pub fn derivative_tensor<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let x = x.detach();
        match self {
            Surrogate::SpikeOperator => heaviside_tensor(x),
            Surrogate::ATan { alpha } => {
                let z = x.mul_scalar(PI / 2.0 * alpha);
                (z.clone() * z)
                    .add_scalar(1.0)
                    .recip()
                    .mul_scalar(alpha / 2.0)
            }
            Surrogate::FastSigmoid { slope } => {
                let d = x.abs().mul_scalar(*slope).add_scalar(1.0);
                (d.clone() * d).recip()
            }
            Surrogate::Sigmoid { slope } => {
                let e = x.abs().mul_scalar(-slope).exp();
                let d = e.clone().add_scalar(1.0);
                (e / (d.clone() * d)).mul_scalar(*slope)
            }
            Surrogate::StraightThrough => x.ones_like(),
            Surrogate::Triangular { width } => x
                .abs()
                .mul_scalar(-1.0 / width)
                .add_scalar(1.0)
                .clamp_min(0.0)
                .mul_scalar(1.0 / width),
            Surrogate::SpikeRateEscape { beta, slope } => x
                .sub_scalar(1.0)
                .abs()
                .mul_scalar(-beta)
                .exp()
                .mul_scalar(*slope),
            Surrogate::Custom(c) => {
                let shape = x.shape();
                let device = x.device();
                let values: Vec<f32> = crate::tensor::to_vec(x)
                    .into_iter()
                    .map(|v| (c.derivative)(v))
                    .collect();
                Tensor::from_data(burn::tensor::TensorData::new(values, shape), &device)
            }
        }
    }

    /// Fires: the exact Heaviside `H(x)` (1 where `x > 0`) on the forward pass, whose gradient
    /// with respect to `x` is this surrogate's derivative.
    ///
    /// Built from plain tensor ops (works on every backend): `H(x)` detached plus
    /// `x·s − (x·s)` detached, with `s` the detached surrogate derivative, so the value is
    /// exactly `H(x)` and the gradient exactly `s`.
    pub fn spike<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let step = heaviside_tensor(x.clone().detach());
        if !x.is_require_grad() && !x.is_tracked() {
            return step;
        }
        let s = self.derivative_tensor(x.clone());
        let xs = x * s;
        step + (xs.clone() - xs.detach())
    }
}

/// `H(x)`: 1 for `x > 0`, else 0 (snntorch's convention: exactly at threshold is silent).
pub fn heaviside(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else {
        0.0
    }
}

/// Element-wise [`heaviside`] on a tensor.
pub fn heaviside_tensor<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.greater_elem(0.0).float()
}

mod repr;
