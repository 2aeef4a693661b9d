//! NIR, the Neuromorphic Intermediate Representation: spyne models to and from the files that
//! snntorch, Norse, SpikingJelly, Lava, Sinabs and the neuromorphic toolchains exchange.
//!
//! ```no_run
//! # fn main() -> spyne::Result<()> {
//! use spyne::nir;
//! let imported = nir::read("model.nir".as_ref(), &nir::ImportOptions::default())?;
//! let net = imported.network(&burn::tensor::Device::flex())?;
//! nir::write("again.nir".as_ref(), &net, &nir::ExportOptions::default())?;
//! # Ok(()) }
//! ```
//!
//! The mapping is snntorch's, with `dt = 1e-4` unless set (see [`export`] and [`import`]).
//! What NIR cannot say, spyne keeps in each node's `metadata`: the layer's own settings
//! (`spyne_layer`, JSON), the reset mechanism (`spyne_reset`), and β and α exactly as trained
//! (`spyne_beta`, `spyne_alpha`). A spyne → NIR → spyne round trip is therefore bit-exact,
//! while every other reader sees standard nodes. NIR's LIF resets to `v_reset`, so a file
//! without spyne's metadata is read as zero-reset neurons, and [`write`] warns about every
//! layer whose reset other readers will change.

pub mod export;
pub mod file;
pub mod graph;
pub mod import;

use std::path::Path;

use burn::tensor::Device;

use crate::error::Result;
use crate::model::params::{self, Named};
use crate::model::{ModelSpec, Network};

pub use graph::{Array, Entry, Graph, Meta, Metadata, Node};

/// snntorch's time step, in seconds.
pub const DEFAULT_DT: f64 = 1e-4;
/// Node metadata: the layer's spyne description (JSON).
pub const META_LAYER: &str = "spyne_layer";
/// Node metadata: `subtract`, `zero` or `none`.
pub const META_RESET: &str = "spyne_reset";
/// Node metadata: β as spyne holds it (one value, one per channel or one per neuron).
pub const META_BETA: &str = "spyne_beta";
/// Node metadata: α as spyne holds it.
pub const META_ALPHA: &str = "spyne_alpha";
/// Graph metadata: the dt the file was written with (as text, exactly).
pub const META_DT: &str = "spyne_dt";

/// How [`write`] maps discrete neurons onto NIR's continuous ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExportOptions {
    /// The time step, in seconds (default [`DEFAULT_DT`], snntorch's).
    pub dt: f64,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions { dt: DEFAULT_DT }
    }
}

/// How [`read`] maps NIR's continuous neurons onto discrete ones.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ImportOptions {
    /// The time step, in seconds: by default the one spyne wrote into the file, else
    /// [`DEFAULT_DT`].
    pub dt: Option<f64>,
}

/// A graph as a spyne model: the description and its parameters in PyTorch layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// The model description (layer names are the graph's node names).
    pub spec: ModelSpec,
    /// The parameters by name (`fc1.weight`, `lif1.beta`, …).
    pub params: Named,
    /// The time step the neurons were read with.
    pub dt: f64,
}

impl Imported {
    /// Builds the network on `device` with the imported parameters.
    pub fn network(&self, device: &Device) -> Result<Network> {
        let mut net = self.spec.init(&mut crate::rng::TorchRng::new(0), device)?;
        // Fresh ids from the built network, values from the file.
        let mut named = params::export(&net);
        for (name, p) in named.iter_mut() {
            if let Some(src) = self.params.get(name) {
                p.values = src.values.clone();
                p.shape = src.shape.clone();
            }
        }
        if let Some(extra) = self.params.keys().find(|k| !named.contains_key(*k)) {
            return Err(crate::Error::invalid(
                "nir graph",
                format!("parameter {extra} belongs to no layer of the model"),
            ));
        }
        params::import(&mut net, &named)?;
        Ok(net)
    }
}

/// The graph [`write`] made and what other readers will get wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    /// The graph.
    pub graph: Graph,
    /// One line per thing other NIR readers will read differently (the reset).
    pub warnings: Vec<String>,
}

/// Reads the NIR file at `path` as a spyne model.
pub fn read(path: &Path, options: &ImportOptions) -> Result<Imported> {
    import::from_graph(&file::read_graph(path)?, options)
}

/// Writes `net` to `path` as NIR; returns the graph and the warnings to show.
pub fn write(path: &Path, net: &Network, options: &ExportOptions) -> Result<Exported> {
    let exported = export::to_graph(net, options)?;
    file::write_graph(path, &exported.graph)?;
    Ok(exported)
}
