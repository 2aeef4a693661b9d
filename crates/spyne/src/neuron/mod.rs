//! Spiking neurons as recurrent cells.
//!
//! Every neuron shares the [`SpikeCore`] (threshold θ, surrogate, reset mechanism) and follows
//! snntorch 1.0's discretisation: the reset applied at step `t` is `r[t] = H(U[t−1] − θ)`
//! computed from the previous membrane and detached from the graph, and the spike is
//! `S[t] = H(U[t] − θ)` with the surrogate on the backward pass.
//!
//! State is a value the caller owns: [`Neuron::step`] takes it and returns the next one.
//! Tensors are `[batch, features]` per step and `[time, batch, features]` per sequence;
//! flatten other feature dimensions first.

mod alpha;
mod cell;
mod core;
mod lapicque;
mod leaky;
mod param;
mod recurrent;
mod rleaky;
mod rsynaptic;
mod sequence;
mod synaptic;

pub use self::alpha::{Alpha, AlphaConfig, AlphaState};
pub use self::cell::{Cell, CellState};
pub use self::core::{Reset, SpikeCore};
pub use self::lapicque::{Lapicque, LapicqueConfig};
pub use self::leaky::{Leaky, LeakyConfig, LeakyState};
pub use self::param::Value;
pub use self::recurrent::{Recurrent, RecurrentKind};
pub use self::rleaky::{RLeaky, RLeakyConfig, RLeakyState};
pub use self::rsynaptic::{RSynaptic, RSynapticConfig, RSynapticState};
pub use self::sequence::{run_sequence, Sequence};
pub use self::synaptic::{Synaptic, SynapticConfig, SynapticState};

use burn::tensor::{Device, Tensor};

use crate::error::{Error, Result};
use crate::kernel::{self, LifKind, LifSpec};

/// The evolving state of a neuron layer: membranes (and currents, spikes where the model has
/// them), one row per sample.
pub trait NeuronState: Clone + Sized {
    /// The membrane potential `U`, `[batch, features]`.
    fn mem(&self) -> Tensor<2>;
    /// The same state cut from the autodiff graph (truncated BPTT).
    fn detach(self) -> Self;
}

/// A spiking neuron layer: one step of its update equation.
pub trait Neuron {
    /// What the layer carries from one step to the next.
    type State: NeuronState;

    /// The resting state (all zeros) for `batch` samples of `features` neurons.
    fn init_state(&self, batch: usize, features: usize, device: &Device) -> Self::State;

    /// One time step: `input` is the current `I[t]`, `[batch, features]`; returns the spikes
    /// `S[t]` and the new state. Shapes that disagree are an [`crate::Error::Shape`].
    fn step(&self, input: Tensor<2>, state: Self::State) -> Result<(Tensor<2>, Self::State)>;

    /// The whole sequence from rest through a fused kernel ([`crate::kernel`]), when one
    /// covers this layer on `input`'s device; `None` otherwise (then step instead).
    ///
    /// `input` is `[T, batch, features]`, or `[1, batch, features]` applied at each of
    /// `steps` steps when `static_input`. Returns the spikes `[steps, batch, features]` and,
    /// when `mems` is set, the membranes. Gradients equal the step-by-step path's.
    fn fused(
        &self,
        input: Tensor<3>,
        static_input: bool,
        steps: usize,
        mems: bool,
    ) -> Option<Result<Fused>> {
        let _ = (input, static_input, steps, mems);
        None
    }

    /// Like [`Neuron::fused`], followed by a Linear layer `weight` (`[features, M]`, no bias)
    /// in the same op: returns the next layer's currents `[steps, batch, M]`, without
    /// materialising this layer's spikes. `None` where no fused kernel covers the layer.
    fn fused_linear(
        &self,
        input: Tensor<3>,
        static_input: bool,
        steps: usize,
        weight: Tensor<2>,
    ) -> Option<Result<Tensor<3>>> {
        let _ = (input, static_input, steps, weight);
        None
    }
}

/// Spikes and (when asked for) membranes of a fused sequence, `[T, batch, features]`.
pub type Fused = (Tensor<3>, Option<Tensor<3>>);

/// The neurons a fused kernel covers: which kernel, and their parameter rows.
trait FusedKind {
    /// The kernel's neuron model.
    const KIND: LifKind;
    /// Threshold, surrogate and reset.
    fn core(&self) -> &SpikeCore;
    /// The kernel's parameter rows for width `n` (`[β, θ]` or `[α, β, θ]`), each `[1, n]`
    /// or `[1, 1]`.
    fn param_rows(&self, n: usize) -> Result<Vec<Tensor<2>>>;
}

/// [`Neuron::fused`] and [`Neuron::fused_linear`] for a neuron that implements
/// [`FusedKind`].
macro_rules! fused_methods {
    () => {
        fn fused(
            &self,
            input: Tensor<3>,
            static_input: bool,
            steps: usize,
            mems: bool,
        ) -> Option<Result<super::Fused>> {
            super::fused_lif(self, input, static_input, steps, mems)
        }

        fn fused_linear(
            &self,
            input: Tensor<3>,
            static_input: bool,
            steps: usize,
            weight: Tensor<2>,
        ) -> Option<Result<Tensor<3>>> {
            super::fused_lif_linear(self, input, static_input, steps, weight)
        }
    };
}
use fused_methods;

/// Checks shapes and packs the parameter rows (`[1, N]` each, broadcast from scalars) of a
/// fused call. `None` off the Flex backend.
fn fused_call<L: FusedKind>(
    layer: &L,
    input: Tensor<3>,
    static_input: bool,
    steps: usize,
) -> Option<Result<(Tensor<3>, Tensor<2>, LifSpec)>> {
    if !kernel::supports(&input.device()) {
        return None;
    }
    let [t, batch, features] = input.dims();
    if steps == 0 || (static_input && t != 1) || (!static_input && t != steps) {
        return Some(Err(Error::Shape {
            context: "fused sequence input steps",
            expected: vec![if static_input { 1 } else { steps }, batch, features],
            got: vec![t, batch, features],
        }));
    }
    let params = match layer.param_rows(features) {
        Ok(rows) => Tensor::cat(
            rows.into_iter().map(|r| r.expand([1, features])).collect(),
            0,
        ),
        Err(e) => return Some(Err(e)),
    };
    let core = layer.core();
    let spec = LifSpec {
        kind: L::KIND,
        reset: core.reset,
        surrogate: core.surrogate.clone(),
        steps,
        batch,
        features,
        static_input,
        mems: false,
    };
    Some(Ok((input, params, spec)))
}

/// [`Neuron::fused`] for the neurons that have a kernel.
fn fused_lif<L: FusedKind>(
    layer: &L,
    input: Tensor<3>,
    static_input: bool,
    steps: usize,
    mems: bool,
) -> Option<Result<Fused>> {
    Some(
        fused_call(layer, input, static_input, steps)?.map(|(input, params, spec)| {
            kernel::fused_sequence(input, params, LifSpec { mems, ..spec })
        }),
    )
}

/// [`Neuron::fused_linear`] for the neurons that have a kernel.
fn fused_lif_linear<L: FusedKind>(
    layer: &L,
    input: Tensor<3>,
    static_input: bool,
    steps: usize,
    weight: Tensor<2>,
) -> Option<Result<Tensor<3>>> {
    Some(
        fused_call(layer, input, static_input, steps)?.and_then(|(input, params, spec)| {
            let [n, _] = weight.dims();
            if n != spec.features {
                return Err(Error::Shape {
                    context: "fused Linear weight rows vs layer width",
                    expected: vec![spec.features],
                    got: vec![n],
                });
            }
            Ok(kernel::fused_sequence_linear(input, params, weight, spec))
        }),
    )
}
