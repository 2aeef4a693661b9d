//! A neuron layer chosen at run time (for models built from a description or the CLI).

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::{
    Alpha, AlphaState, Fused, FusedCall, Lapicque, Leaky, LeakyState, Neuron, NeuronState, RLeaky,
    RLeakyState, RSynaptic, RSynapticState, SpikeCore, Synaptic, SynapticState,
};
use crate::error::{Error, Result};
use crate::kernel::SpikeInput;

/// Any of spyne's neuron layers.
#[derive(Module, Debug)]
pub enum Cell {
    /// A [`Leaky`] layer.
    Leaky(Leaky),
    /// A [`Synaptic`] layer.
    Synaptic(Synaptic),
    /// A [`Lapicque`] layer.
    Lapicque(Lapicque),
    /// An [`Alpha`] layer.
    Alpha(Alpha),
    /// An [`RLeaky`] layer.
    RLeaky(RLeaky),
    /// An [`RSynaptic`] layer.
    RSynaptic(RSynaptic),
}

/// The state of a [`Cell`].
// States move by value at every step; boxing the larger variants would allocate per step.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum CellState {
    /// State of a Leaky or Lapicque layer.
    Leaky(LeakyState),
    /// State of a Synaptic layer.
    Synaptic(SynapticState),
    /// State of an Alpha layer.
    Alpha(AlphaState),
    /// State of an RLeaky layer.
    RLeaky(RLeakyState),
    /// State of an RSynaptic layer.
    RSynaptic(RSynapticState),
}

/// Runs `$body` with `$n` bound to the layer inside `$cell`, and `$wrap` the [`CellState`]
/// variant of its state.
macro_rules! dispatch {
    ($cell:expr, |$n:ident, $wrap:ident| $body:expr) => {
        match $cell {
            Cell::Leaky($n) => {
                use CellState::Leaky as $wrap;
                $body
            }
            Cell::Synaptic($n) => {
                use CellState::Synaptic as $wrap;
                $body
            }
            Cell::Lapicque($n) => {
                use CellState::Leaky as $wrap;
                $body
            }
            Cell::Alpha($n) => {
                use CellState::Alpha as $wrap;
                $body
            }
            Cell::RLeaky($n) => {
                use CellState::RLeaky as $wrap;
                $body
            }
            Cell::RSynaptic($n) => {
                use CellState::RSynaptic as $wrap;
                $body
            }
        }
    };
}

/// Takes the layer's own state out of a [`CellState`] (an error for another kind's state).
macro_rules! own_state {
    ($state:expr, $wrap:ident) => {
        match $state {
            $wrap(s) => s,
            _ => return Err(state_mismatch()),
        }
    };
}

fn state_mismatch() -> Error {
    Error::invalid(
        "state",
        "the state belongs to a different kind of neuron layer",
    )
}

impl Cell {
    /// The threshold, surrogate and reset the layer shares with every neuron.
    pub fn core(&self) -> &SpikeCore {
        match self {
            Cell::Leaky(n) => &n.core,
            Cell::Synaptic(n) => &n.core,
            Cell::Lapicque(n) => &n.core,
            Cell::Alpha(n) => &n.core,
            Cell::RLeaky(n) => &n.core,
            Cell::RSynaptic(n) => &n.core,
        }
    }

    /// The layer's kind, as model descriptions name it (`leaky`, `synaptic`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Cell::Leaky(_) => "leaky",
            Cell::Synaptic(_) => "synaptic",
            Cell::Lapicque(_) => "lapicque",
            Cell::Alpha(_) => "alpha",
            Cell::RLeaky(_) => "rleaky",
            Cell::RSynaptic(_) => "rsynaptic",
        }
    }
}

impl NeuronState for CellState {
    fn mem(&self) -> Tensor<2> {
        match self {
            CellState::Leaky(s) => s.mem(),
            CellState::Synaptic(s) => s.mem(),
            CellState::Alpha(s) => s.mem(),
            CellState::RLeaky(s) => s.mem(),
            CellState::RSynaptic(s) => s.mem(),
        }
    }

    fn detach(self) -> Self {
        match self {
            CellState::Leaky(s) => CellState::Leaky(s.detach()),
            CellState::Synaptic(s) => CellState::Synaptic(s.detach()),
            CellState::Alpha(s) => CellState::Alpha(s.detach()),
            CellState::RLeaky(s) => CellState::RLeaky(s.detach()),
            CellState::RSynaptic(s) => CellState::RSynaptic(s.detach()),
        }
    }
}

/// The same call with the state converted by `f` (which may fail).
fn map_call<A, B>(call: FusedCall<A>, f: impl FnOnce(A) -> Result<B>) -> Result<FusedCall<B>> {
    let FusedCall {
        input,
        static_input,
        steps,
        state,
        mems,
        final_state,
    } = call;
    Ok(FusedCall {
        input,
        static_input,
        steps,
        state: state.map(f).transpose()?,
        mems,
        final_state,
    })
}

impl Neuron for Cell {
    type State = CellState;

    fn init_state(&self, batch: usize, features: usize, device: &Device) -> CellState {
        dispatch!(self, |n, W| W(n.init_state(batch, features, device)))
    }

    fn step(&self, input: Tensor<2>, state: CellState) -> Result<(Tensor<2>, CellState)> {
        dispatch!(self, |n, W| {
            let s = own_state!(state, W);
            n.step(input, s).map(|(o, s)| (o, W(s)))
        })
    }

    fn fused(&self, call: FusedCall<CellState>) -> Option<Result<Fused<CellState>>> {
        dispatch!(self, |n, W| {
            let call = match map_call(call, |s| Ok(own_state!(s, W))) {
                Ok(c) => c,
                Err(e) => return Some(Err(e)),
            };
            n.fused(call).map(|r| {
                r.map(|f| Fused {
                    spikes: f.spikes,
                    mems: f.mems,
                    state: f.state.map(W),
                })
            })
        })
    }

    fn fused_linear(
        &self,
        call: FusedCall<CellState>,
        weight: Tensor<2>,
    ) -> Option<Result<(Tensor<3>, Option<CellState>)>> {
        dispatch!(self, |n, W| {
            let call = match map_call(call, |s| Ok(own_state!(s, W))) {
                Ok(c) => c,
                Err(e) => return Some(Err(e)),
            };
            n.fused_linear(call, weight)
                .map(|r| r.map(|(current, state)| (current, state.map(W))))
        })
    }

    fn fused_spiking(
        &self,
        call: FusedCall<CellState>,
        input: SpikeInput,
    ) -> Option<Result<Fused<CellState>>> {
        dispatch!(self, |n, W| {
            let call = match map_call(call, |s| Ok(own_state!(s, W))) {
                Ok(c) => c,
                Err(e) => return Some(Err(e)),
            };
            n.fused_spiking(call, input).map(|r| {
                r.map(|f| Fused {
                    spikes: f.spikes,
                    mems: f.mems,
                    state: f.state.map(W),
                })
            })
        })
    }

    fn fused_spiking_linear(
        &self,
        call: FusedCall<CellState>,
        input: SpikeInput,
        weight: Tensor<2>,
    ) -> Option<Result<(Tensor<3>, Option<CellState>)>> {
        dispatch!(self, |n, W| {
            let call = match map_call(call, |s| Ok(own_state!(s, W))) {
                Ok(c) => c,
                Err(e) => return Some(Err(e)),
            };
            n.fused_spiking_linear(call, input, weight)
                .map(|r| r.map(|(current, state)| (current, state.map(W))))
        })
    }
}
