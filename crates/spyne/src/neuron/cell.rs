//! A neuron layer chosen at run time (for models built from a config or the CLI).

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::{Fused, Leaky, LeakyState, Neuron, NeuronState, Synaptic, SynapticState};
use crate::error::{Error, Result};

/// One of the feed-forward neuron layers, picked by name.
#[derive(Module, Debug)]
pub enum Cell {
    /// A [`Leaky`] layer.
    Leaky(Leaky),
    /// A [`Synaptic`] layer.
    Synaptic(Synaptic),
}

/// The state of a [`Cell`].
// States move by value at every step; boxing the larger variant would allocate per step.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum CellState {
    /// State of a Leaky layer.
    Leaky(LeakyState),
    /// State of a Synaptic layer.
    Synaptic(SynapticState),
}

impl NeuronState for CellState {
    fn mem(&self) -> Tensor<2> {
        match self {
            CellState::Leaky(s) => s.mem(),
            CellState::Synaptic(s) => s.mem(),
        }
    }

    fn detach(self) -> Self {
        match self {
            CellState::Leaky(s) => CellState::Leaky(s.detach()),
            CellState::Synaptic(s) => CellState::Synaptic(s.detach()),
        }
    }
}

impl Neuron for Cell {
    type State = CellState;

    fn init_state(&self, batch: usize, features: usize, device: &Device) -> CellState {
        match self {
            Cell::Leaky(n) => CellState::Leaky(n.init_state(batch, features, device)),
            Cell::Synaptic(n) => CellState::Synaptic(n.init_state(batch, features, device)),
        }
    }

    fn step(&self, input: Tensor<2>, state: CellState) -> Result<(Tensor<2>, CellState)> {
        match (self, state) {
            (Cell::Leaky(n), CellState::Leaky(s)) => {
                n.step(input, s).map(|(o, s)| (o, CellState::Leaky(s)))
            }
            (Cell::Synaptic(n), CellState::Synaptic(s)) => {
                n.step(input, s).map(|(o, s)| (o, CellState::Synaptic(s)))
            }
            _ => Err(Error::invalid(
                "state",
                "the state belongs to a different kind of neuron layer",
            )),
        }
    }

    fn fused(
        &self,
        input: Tensor<3>,
        static_input: bool,
        steps: usize,
        mems: bool,
    ) -> Option<Result<Fused>> {
        match self {
            Cell::Leaky(n) => n.fused(input, static_input, steps, mems),
            Cell::Synaptic(n) => n.fused(input, static_input, steps, mems),
        }
    }

    fn fused_linear(
        &self,
        input: Tensor<3>,
        static_input: bool,
        steps: usize,
        weight: Tensor<2>,
    ) -> Option<Result<Tensor<3>>> {
        match self {
            Cell::Leaky(n) => n.fused_linear(input, static_input, steps, weight),
            Cell::Synaptic(n) => n.fused_linear(input, static_input, steps, weight),
        }
    }
}
