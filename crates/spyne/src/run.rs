//! One forward pass of a model over a sequence: what the layers need besides their input.
//!
//! A [`Run`] carries the training flag and the random stream (dropout), the neuron states
//! carried in from a previous window and out to the next one (truncated BPTT, streaming),
//! what to record (every layer's spikes and membranes, for plots), and which path each neuron
//! layer took (fused kernel or step by step). The caller owns it: nothing is hidden in the
//! model.

use std::any::Any;

use burn::tensor::Tensor;

use crate::error::{Error, Result};
use crate::neuron::NeuronState;
use crate::rng::Rng;

/// A neuron layer's state with its type erased, so that one [`States`] holds every layer's.
pub trait AnyState: Any {
    /// The state cut from the autodiff graph.
    fn detach_boxed(self: Box<Self>) -> Box<dyn AnyState>;
    /// `self` as [`Any`], to take the concrete state back out.
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
    /// A copy.
    fn clone_boxed(&self) -> Box<dyn AnyState>;
    /// The membrane, `[batch, features]`.
    fn mem(&self) -> Tensor<2>;
}

impl<S: NeuronState + 'static> AnyState for S {
    fn detach_boxed(self: Box<Self>) -> Box<dyn AnyState> {
        Box::new((*self).detach())
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }

    fn clone_boxed(&self) -> Box<dyn AnyState> {
        Box::new(self.clone())
    }

    fn mem(&self) -> Tensor<2> {
        NeuronState::mem(self)
    }
}

/// The states of a model's neuron layers, in the order the layers run.
#[derive(Default)]
pub struct States(Vec<Option<Box<dyn AnyState>>>);

impl Clone for States {
    fn clone(&self) -> Self {
        States(
            self.0
                .iter()
                .map(|s| s.as_ref().map(|s| s.clone_boxed()))
                .collect(),
        )
    }
}

impl std::fmt::Debug for States {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "States({} layers)", self.0.len())
    }
}

impl States {
    /// Every state cut from the autodiff graph (the window boundary of truncated BPTT).
    pub fn detach(self) -> States {
        States(
            self.0
                .into_iter()
                .map(|s| s.map(|s| s.detach_boxed()))
                .collect(),
        )
    }

    /// The number of neuron layers that left a state.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no layer left a state.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The membrane of the `k`-th neuron layer, `[batch, features]`.
    pub fn mem(&self, k: usize) -> Option<Tensor<2>> {
        self.0.get(k)?.as_ref().map(|s| s.mem())
    }
}

/// How many neuron layers ran through a fused kernel, and how many step by step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PathStats {
    /// Layers (or layer + Linear pairs) that ran as one fused op.
    pub fused: usize,
    /// Layers that ran step by step with plain tensor ops.
    pub composed: usize,
    /// Linear layers that took binary spikes and ran from the active inputs only (on their
    /// own or fused into the neuron layer after them).
    pub sparse: usize,
}

impl PathStats {
    /// `"fused"` when every neuron layer took a kernel, `"composed"` when none did, else
    /// `"mixed"`.
    pub fn name(&self) -> &'static str {
        match (self.fused, self.composed) {
            (_, 0) => "fused",
            (0, _) => "composed",
            _ => "mixed",
        }
    }

    /// The sum of two counts.
    pub fn merged(self, other: PathStats) -> PathStats {
        PathStats {
            fused: self.fused + other.fused,
            composed: self.composed + other.composed,
            sparse: self.sparse + other.sparse,
        }
    }
}

/// One neuron layer's recorded outputs, `[T, batch, features]` (for plots).
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Spikes.
    pub spikes: Tensor<3>,
    /// Membranes.
    pub mems: Tensor<3>,
}

/// The output layer's spikes and membranes, `[T, batch, classes]`: what losses read.
#[derive(Debug, Clone)]
pub struct Output {
    /// Spikes.
    pub spikes: Tensor<3>,
    /// Membranes (`None` when the run was told that nothing reads them, see
    /// [`Run::output_mems`]).
    pub mems: Option<Tensor<3>>,
}

/// The context of one forward pass (see the module docs).
#[derive(Debug)]
pub struct Run {
    train: bool,
    rng: Rng,
    fused: bool,
    carried: States,
    out: States,
    keep_states: bool,
    record: bool,
    records: Vec<Recorded>,
    stats: PathStats,
    output_mems: bool,
}

impl Default for Run {
    fn default() -> Self {
        Run::new()
    }
}

impl Run {
    /// An inference pass from rest: no dropout, fused kernels where they apply, nothing
    /// recorded, final states dropped.
    pub fn new() -> Run {
        Run {
            train: false,
            rng: Rng::new(0),
            fused: true,
            carried: States::default(),
            out: States::default(),
            keep_states: false,
            record: false,
            records: Vec::new(),
            stats: PathStats::default(),
            output_mems: true,
        }
    }

    /// A training pass: dropout draws its masks from `rng`.
    pub fn training(mut self, rng: Rng) -> Run {
        self.train = true;
        self.rng = rng;
        self
    }

    /// Starts every neuron layer from the state it left in an earlier pass (see
    /// [`Run::into_states`]) instead of rest.
    pub fn with_states(mut self, states: States) -> Run {
        self.carried = states;
        self
    }

    /// Keeps every neuron layer's final state, for [`Run::into_states`].
    pub fn keep_states(mut self, keep: bool) -> Run {
        self.keep_states = keep;
        self
    }

    /// Records every neuron layer's spikes and membranes (for plots; hidden layers then
    /// materialise their spikes instead of fusing into the next Linear layer).
    pub fn recording(mut self, record: bool) -> Run {
        self.record = record;
        self
    }

    /// Whether the output layer returns its membranes (default: yes). A loss that reads only
    /// spikes saves the `[T, batch, classes]` membranes and their gradient.
    pub fn output_mems(mut self, yes: bool) -> Run {
        self.output_mems = yes;
        self
    }

    /// Whether the output layer returns its membranes.
    pub fn wants_output_mems(&self) -> bool {
        self.output_mems
    }

    /// Forces the step-by-step path everywhere (the reference the kernels are tested against).
    pub fn composed(mut self) -> Run {
        self.fused = false;
        self
    }

    /// Whether this is a training pass.
    pub fn is_training(&self) -> bool {
        self.train
    }

    /// The random stream of this pass (dropout masks).
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// Whether neuron layers may use their fused kernels.
    pub fn fused_allowed(&self) -> bool {
        self.fused
    }

    /// Whether final states are wanted.
    pub fn keeps_states(&self) -> bool {
        self.keep_states
    }

    /// Whether every neuron layer's outputs are recorded.
    pub fn is_recording(&self) -> bool {
        self.record
    }

    /// Which path the neuron layers took so far.
    pub fn stats(&self) -> PathStats {
        self.stats
    }

    /// The recorded neuron layers, in the order they ran.
    pub fn records(&self) -> &[Recorded] {
        &self.records
    }

    /// The final states of the neuron layers (empty unless [`Run::keep_states`]).
    pub fn into_states(self) -> States {
        self.out
    }

    /// The state the next neuron layer starts from (its index is the count of neuron layers
    /// that ran before it), or `None` for rest.
    pub(crate) fn take_state<S: NeuronState + 'static>(&mut self) -> Result<Option<S>> {
        let k = self.out.0.len();
        let Some(slot) = self.carried.0.get_mut(k) else {
            return Ok(None);
        };
        match slot.take() {
            None => Ok(None),
            Some(boxed) => boxed.into_any().downcast::<S>().map(|s| Some(*s)).map_err(|_| {
                Error::invalid(
                    "state",
                    format!("the carried state of neuron layer {k} belongs to another kind of layer"),
                )
            }),
        }
    }

    /// Hands back a state taken with [`Run::take_state`] that no layer used (the op it was
    /// taken for did not apply).
    pub(crate) fn restore_state<S: NeuronState + 'static>(&mut self, state: Option<S>) {
        let k = self.out.0.len();
        if let (Some(slot), Some(s)) = (self.carried.0.get_mut(k), state) {
            *slot = Some(Box::new(s));
        }
    }

    /// Counts a Linear layer that ran from its active (spiking) inputs.
    pub(crate) fn count_sparse(&mut self) {
        self.stats.sparse += 1;
    }

    /// Stores the final state of the neuron layer that just ran (and counts its path).
    pub(crate) fn finish_layer<S: NeuronState + 'static>(&mut self, state: Option<S>, fused: bool) {
        let kept = if self.keep_states {
            state.map(|s| Box::new(s) as Box<dyn AnyState>)
        } else {
            None
        };
        self.out.0.push(kept);
        if fused {
            self.stats.fused += 1;
        } else {
            self.stats.composed += 1;
        }
    }

    /// Adds a neuron layer's outputs to the recording.
    pub(crate) fn record(&mut self, spikes: Tensor<3>, mems: Tensor<3>) {
        self.records.push(Recorded { spikes, mems });
    }
}
