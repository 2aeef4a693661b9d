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

use crate::error::Result;

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
}
