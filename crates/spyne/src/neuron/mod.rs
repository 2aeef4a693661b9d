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
mod fused;
mod lapicque;
mod leaky;
mod multistep;
mod param;
mod recurrent;
mod rleaky;
mod rsynaptic;
mod sequence;
mod spiking;
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
pub(crate) use self::spiking::{After, Spiking};
pub use self::synaptic::{Synaptic, SynapticConfig, SynapticState};

use burn::tensor::{Device, Tensor};

use crate::error::Result;
use crate::kernel::SpikeInput;

use self::fused::{fused_methods, FusedKind};

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

    /// Like [`Neuron::fused`], with the layer's input currents computed inside the op from
    /// binary spikes through a Linear layer: `call.input` holds the spikes `[steps, batch,
    /// K]` and `input` the Linear layer and the spikes' [`crate::kernel::SpikeIndex`]. The
    /// currents never exist, and the work follows the spikes. `None` where no kernel covers
    /// the layer.
    fn fused_spiking(
        &self,
        call: FusedCall<Self::State>,
        input: SpikeInput,
    ) -> Option<Result<Fused<Self::State>>> {
        let _ = (call, input);
        None
    }

    /// [`Neuron::fused_spiking`] followed by a Linear layer `weight` (`[features, M]`, no
    /// bias) in the same op, as [`Neuron::fused_linear`].
    fn fused_spiking_linear(
        &self,
        call: FusedCall<Self::State>,
        input: SpikeInput,
        weight: Tensor<2>,
    ) -> Option<Result<(Tensor<3>, Option<Self::State>)>> {
        let _ = (call, input, weight);
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
