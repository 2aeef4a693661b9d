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
mod multistep;
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
pub use self::sequence::{run_sequence, step_sequence, Sequence};
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

/// A spiking neuron layer: one step of its update equation, and (where a kernel covers it)
/// a whole sequence in one fused op.
pub trait Neuron {
    /// What the layer carries from one step to the next.
    type State: NeuronState;

    /// The resting state (all zeros) for `batch` samples of `features` neurons.
    fn init_state(&self, batch: usize, features: usize, device: &Device) -> Self::State;

    /// One time step: `input` is the current `I[t]`, `[batch, features]`; returns the spikes
    /// `S[t]` and the new state. Shapes that disagree are an [`crate::Error::Shape`].
    fn step(&self, input: Tensor<2>, state: Self::State) -> Result<(Tensor<2>, Self::State)>;

    /// The whole sequence through a fused kernel ([`crate::kernel`]), when one covers this
    /// layer on the input's device; `None` otherwise (then step instead). Values, gradients
    /// and the final state equal the step-by-step path's.
    fn fused(&self, call: FusedCall<Self::State>) -> Option<Result<Fused<Self::State>>> {
        let _ = call;
        None
    }

    /// Like [`Neuron::fused`], followed by a Linear layer `weight` (`[features, M]`, no bias)
    /// in the same op: returns the next layer's currents `[steps, batch, M]` (and the final
    /// state when asked), without materialising this layer's spikes. `None` where no fused
    /// kernel covers the layer.
    fn fused_linear(
        &self,
        call: FusedCall<Self::State>,
        weight: Tensor<2>,
    ) -> Option<Result<(Tensor<3>, Option<Self::State>)>> {
        let _ = (call, weight);
        None
    }
}

/// One fused sequence call.
#[derive(Debug, Clone)]
pub struct FusedCall<S> {
    /// `[T, batch, features]`, or `[1, batch, features]` applied at each of `steps` steps
    /// when `static_input`.
    pub input: Tensor<3>,
    /// The input is one current for every step.
    pub static_input: bool,
    /// Time steps.
    pub steps: usize,
    /// The state to start from (rest when `None`).
    pub state: Option<S>,
    /// Also return the membranes.
    pub mems: bool,
    /// Also return the state after the last step.
    pub final_state: bool,
}

impl<S> FusedCall<S> {
    /// A call over `input` (`[T, batch, features]`) from rest, returning spikes only.
    pub fn new(input: Tensor<3>) -> Self {
        let steps = input.dims()[0];
        FusedCall {
            input,
            static_input: false,
            steps,
            state: None,
            mems: false,
            final_state: false,
        }
    }

    /// A call whose `[1, batch, features]` input is the current of every one of `steps` steps.
    pub fn constant(input: Tensor<3>, steps: usize) -> Self {
        FusedCall {
            static_input: true,
            steps,
            ..FusedCall::new(input)
        }
    }

    /// Starts from `state` (or rest).
    pub fn with_state(mut self, state: Option<S>) -> Self {
        self.state = state;
        self
    }

    /// Returns the membranes too.
    pub fn with_mems(mut self, mems: bool) -> Self {
        self.mems = mems;
        self
    }

    /// Returns the final state too.
    pub fn with_final_state(mut self, final_state: bool) -> Self {
        self.final_state = final_state;
        self
    }
}

/// What a fused sequence call returns.
#[derive(Debug, Clone)]
pub struct Fused<S> {
    /// Spikes, `[T, batch, features]`.
    pub spikes: Tensor<3>,
    /// Membranes, `[T, batch, features]`, when asked for.
    pub mems: Option<Tensor<3>>,
    /// The state after the last step, when asked for.
    pub state: Option<S>,
}

/// The neurons that the Leaky/Synaptic kernel covers: which kernel, their parameter rows,
/// and their state as the kernel's planes.
trait FusedKind: Neuron {
    /// The kernel's neuron model.
    const KIND: LifKind;
    /// Threshold, surrogate and reset.
    fn core(&self) -> &SpikeCore;
    /// The kernel's parameter rows for width `n` (`[β, θ]` or `[α, β, θ]`), each `[1, n]`
    /// or `[1, 1]`.
    fn param_rows(&self, n: usize) -> Result<Vec<Tensor<2>>>;
    /// A scale applied to the input before the kernel (Lapicque's `Δt/C`).
    fn input_gain(&self) -> Option<f32> {
        None
    }
    /// The state as the kernel's planes, `[S, batch, features]` (`[U]` or `[I_syn, U]`).
    fn planes(&self, state: Self::State) -> Tensor<3>;
    /// The kernel's final-state planes as a state.
    fn state_of(&self, planes: Tensor<3>) -> Self::State;
}

/// [`Neuron::fused`] and [`Neuron::fused_linear`] for a neuron that implements
/// [`FusedKind`].
macro_rules! fused_methods {
    () => {
        fn fused(
            &self,
            call: super::FusedCall<Self::State>,
        ) -> Option<Result<super::Fused<Self::State>>> {
            super::fused_lif(self, call)
        }

        fn fused_linear(
            &self,
            call: super::FusedCall<Self::State>,
            weight: Tensor<2>,
        ) -> Option<Result<(Tensor<3>, Option<Self::State>)>> {
            super::fused_lif_linear(self, call, weight)
        }
    };
}
use fused_methods;

/// A fused call checked and packed for the kernel.
struct Packed {
    input: Tensor<3>,
    params: Tensor<2>,
    init: Option<Tensor<3>>,
    spec: LifSpec,
}

/// Checks shapes and packs the parameter rows (`[1, N]` each, broadcast from scalars and
/// channels) and initial state of a fused call. `None` off the Flex backend.
fn pack<L: FusedKind>(layer: &L, call: FusedCall<L::State>) -> Option<Result<Packed>> {
    if !kernel::supports(&call.input.device()) {
        return None;
    }
    let FusedCall {
        input,
        static_input,
        steps,
        state,
        mems,
        final_state,
    } = call;
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
    let init = state.map(|s| layer.planes(s));
    if let Some(planes) = &init {
        let expected = [L::KIND.state_rows(), batch, features];
        if planes.dims() != expected {
            return Some(Err(Error::Shape {
                context: "fused sequence initial state",
                expected: expected.to_vec(),
                got: planes.dims().to_vec(),
            }));
        }
    }
    let input = match layer.input_gain() {
        Some(g) => input.mul_scalar(g),
        None => input,
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
        mems,
        init: init.is_some(),
        final_state,
    };
    Some(Ok(Packed {
        input,
        params,
        init,
        spec,
    }))
}

/// [`Neuron::fused`] for the neurons that have a kernel.
fn fused_lif<L: FusedKind>(
    layer: &L,
    call: FusedCall<L::State>,
) -> Option<Result<Fused<L::State>>> {
    Some(pack(layer, call)?.map(|p| {
        let out = kernel::fused_sequence(p.input, p.params, p.init, p.spec);
        Fused {
            spikes: out.spikes,
            mems: out.mems,
            state: out.state.map(|s| layer.state_of(s)),
        }
    }))
}

/// [`Neuron::fused_linear`] for the neurons that have a kernel.
fn fused_lif_linear<L: FusedKind>(
    layer: &L,
    call: FusedCall<L::State>,
    weight: Tensor<2>,
) -> Option<Result<(Tensor<3>, Option<L::State>)>> {
    Some(pack(layer, call)?.and_then(|p| {
        let [n, _] = weight.dims();
        if n != p.spec.features {
            return Err(Error::Shape {
                context: "fused Linear weight rows vs layer width",
                expected: vec![p.spec.features],
                got: vec![n],
            });
        }
        let (current, state) =
            kernel::fused_sequence_linear(p.input, p.params, p.init, weight, p.spec);
        Ok((current, state.map(|s| layer.state_of(s))))
    }))
}
