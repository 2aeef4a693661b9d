//! Models: the description of a network ([`ModelSpec`]), the network built from it
//! ([`Network`]), and the trait every model the trainer runs implements ([`SpikingModel`]),
//! including a user's own burn module.

mod build;
mod build_neuron;
mod file;
mod network;
mod neuron_spec;
pub mod params;
pub mod presets;
pub mod spec;
mod summary;

pub use file::LAYER_TYPES;
pub use network::{Layer, Network};
pub use spec::{LayerSpec, ModelSpec, NeuronKind, NeuronSpec};
pub use summary::{summary, Summary, SummaryRow};

use burn::module::Module;

use crate::error::Result;
use crate::run::{Output, Run};
use crate::seq::Seq;

/// A spiking model: a burn [`Module`] whose forward pass runs over a whole sequence.
///
/// Build it from spyne's layers: stateless layers and neurons take and return [`Seq`]
/// ([`crate::layer::SeqLayer::forward_seq`]), the output neuron layer goes through
/// [`Run::output`], and a neuron layer feeding a Linear layer through [`Run::into_linear`].
/// Every neuron layer then takes its fused kernel by itself, carries its state through the
/// [`Run`] (truncated BPTT, streaming), and the [`crate::train::Trainer`] trains the model
/// like any other.
pub trait SpikingModel: Module {
    /// Runs the model over `x` (`[T, B, …]`, or constant over `T`); returns the output
    /// layer's spikes and membranes.
    fn forward(&self, x: Seq, run: &mut Run) -> Result<Output>;

    /// The description the model was built from, when it has one (checkpoints store it, so
    /// that `eval`, `plot` and `--resume` need nothing but the run directory).
    fn describe(&self) -> Option<&ModelSpec> {
        None
    }

    /// The parameters by name in PyTorch's layout, for a model that describes itself
    /// (written to `model.safetensors`).
    fn named_params(&self) -> Option<std::collections::BTreeMap<String, params::NamedParam>> {
        None
    }
}
