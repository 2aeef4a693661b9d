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
//! while every other reader sees standard nodes. NIR's neurons reset to `v_reset` and
//! integrate the next step from there, so a file without spyne's metadata is read as
//! zero-reset Leaky and zero-then-integrate Synaptic, RLeaky and RSynaptic layers (snntorch's
//! and Norse's files have [`Convention`]s of their own), and [`write`] warns about every
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
    /// The time step, in seconds: by default the one spyne wrote into the file, else the
    /// convention's ([`DEFAULT_DT`], or [`NORSE_DT`] for Norse's files).
    pub dt: Option<f64>,
    /// Whose reading of the time constants the file follows.
    pub convention: Convention,
}

/// Norse's default time step (`norse.torch.to_nir(..., dt=0.001)`), in seconds.
pub const NORSE_DT: f64 = 1e-3;

/// How a file's producer meant its neuron parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Convention {
    /// NIR's own: τ in seconds, `τ·dv/dt = (v_leak − v) + r·I`, and a CubaLIF's current
    /// `τ_syn·dI/dt = −I + w_in·S` (snntorch, SpikingJelly, Sinabs, spyne).
    #[default]
    Nir,
    /// snntorch 1.0's `export_to_nir`: NIR's τ, but its networks ran snntorch's zero reset,
    /// which for Synaptic, RLeaky and RSynaptic drops the input of the step after a spike
    /// (read as [`Reset::Zero`](crate::neuron::Reset::Zero) rather than zero-then-integrate).
    /// snntorch writes v_reset = 0 for subtract-reset neurons too.
    Snntorch,
    /// Norse 1.1's `to_nir`, which writes `tau = dt / tau_mem_inv`, that is dt·τ rather than τ
    /// (its own `from_nir` does not read it back), and whose LIFCell adds the raw input to its
    /// current rather than `w_in·dt/τ_syn` of it. Read so that spyne steps exactly as Norse
    /// did: `β = 1 − dt·tau_mem_inv`, the input scaled by `dt·tau_mem_inv`.
    Norse,
}

impl Convention {
    /// The time step a file of this convention means when it names none.
    pub fn default_dt(self) -> f64 {
        match self {
            Convention::Nir | Convention::Snntorch => DEFAULT_DT,
            Convention::Norse => NORSE_DT,
        }
    }
}

impl std::str::FromStr for Convention {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Convention> {
        match s.to_ascii_lowercase().as_str() {
            "nir" => Ok(Convention::Nir),
            "snntorch" => Ok(Convention::Snntorch),
            "norse" => Ok(Convention::Norse),
            _ => Err(crate::Error::invalid(
                "convention",
                format!("unknown convention '{s}' (expected nir, snntorch or norse)"),
            )),
        }
    }
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
        self.load_into(&mut net)?;
        Ok(net)
    }

    /// Sets the parameters of `net`, a network built from [`Imported::spec`], to the
    /// imported ones.
    pub fn load_into(&self, net: &mut Network) -> Result<()> {
        // Fresh ids from the built network, values from the file.
        let mut named = params::export(net);
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
        params::import(net, &named)
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
