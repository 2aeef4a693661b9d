//! NIR's data model: a graph of typed nodes joined by edges, as the `nir` Python package
//! (1.0.8, `nir/ir/*.py`) defines it. Plain values, with no file format attached
//! ([`super::file`] reads and writes them as HDF5).

use std::collections::BTreeMap;

/// An array of numbers with its shape (row-major). Floats of either width read into `f64`;
/// the writer stores `f32`, as snntorch and Norse do.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// The dimensions (`[]` for a scalar).
    pub shape: Vec<usize>,
    /// The values, row-major.
    pub values: Vec<f64>,
}

impl Array {
    /// An array of `shape` filled with `value`.
    pub fn full(shape: &[usize], value: f64) -> Self {
        Array {
            shape: shape.to_vec(),
            values: vec![value; shape.iter().product()],
        }
    }

    /// An array from `f32` values.
    pub fn from_f32(shape: &[usize], values: &[f32]) -> Self {
        Array {
            shape: shape.to_vec(),
            values: values.iter().map(|&v| f64::from(v)).collect(),
        }
    }

    /// The values as `f32`.
    pub fn to_f32(&self) -> Vec<f32> {
        self.values.iter().map(|&v| v as f32).collect()
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the array holds no values.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Applies `f` to every value.
    pub fn map(&self, f: impl Fn(f64) -> f64) -> Array {
        Array {
            shape: self.shape.clone(),
            values: self.values.iter().map(|&v| f(v)).collect(),
        }
    }
}

/// A value in a node's `metadata`: NIR stores each entry as a dataset of its own.
#[derive(Debug, Clone, PartialEq)]
pub enum Meta {
    /// A UTF-8 string.
    Text(String),
    /// Numbers.
    Numbers(Array),
}

/// A node's `metadata` group.
pub type Metadata = BTreeMap<String, Meta>;

/// One NIR node. Time constants are in seconds; the discrete-time meaning comes from the
/// `dt` the reader assumes (see [`super::ExportOptions::dt`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// The graph's input, one sample's shape.
    Input {
        /// Shape of one sample.
        shape: Vec<usize>,
    },
    /// The graph's output, one sample's shape.
    Output {
        /// Shape of one sample.
        shape: Vec<usize>,
    },
    /// `y = W·x + b`, `W` `[out, in]`.
    Affine {
        /// `[out, in]`.
        weight: Array,
        /// `[out]`.
        bias: Array,
    },
    /// `y = W·x`, `W` `[out, in]`.
    Linear {
        /// `[out, in]`.
        weight: Array,
    },
    /// 2-D convolution (cross-correlation, as PyTorch).
    Conv2d {
        /// `[out, in, kh, kw]`.
        weight: Array,
        /// `[out]`.
        bias: Array,
        /// Rows, columns.
        stride: [usize; 2],
        /// Zero padding on each side, rows, columns.
        padding: [usize; 2],
        /// Rows, columns.
        dilation: [usize; 2],
        /// Channel groups.
        groups: usize,
        /// The input's spatial shape `[h, w]`, when the writer stored it.
        input_shape: Option<Vec<usize>>,
    },
    /// The sum over each window.
    SumPool2d {
        /// Window rows, columns.
        kernel: [usize; 2],
        /// Rows, columns.
        stride: [usize; 2],
        /// Rows, columns.
        padding: [usize; 2],
    },
    /// The mean over each window.
    AvgPool2d {
        /// Window rows, columns.
        kernel: [usize; 2],
        /// Rows, columns.
        stride: [usize; 2],
        /// Rows, columns.
        padding: [usize; 2],
    },
    /// Dimensions `start..=end` of a sample merged into one (negative counts from the end).
    Flatten {
        /// First dimension merged.
        start_dim: i64,
        /// Last dimension merged.
        end_dim: i64,
        /// The sample shape before, when stored.
        input_shape: Option<Vec<usize>>,
    },
    /// Leaky integrate-and-fire: `τ·v̇ = (v_leak − v) + R·I`; spike and reset to `v_reset`
    /// when `v > v_threshold`.
    Lif {
        /// τ, seconds.
        tau: Array,
        /// R.
        r: Array,
        /// v_leak.
        v_leak: Array,
        /// v_threshold.
        v_threshold: Array,
        /// v_reset (0 when the file has none).
        v_reset: Array,
    },
    /// Current-based LIF: `τ_syn·İ = −I + w_in·S`, `τ_mem·v̇ = (v_leak − v) + R·I`.
    CubaLif {
        /// τ_syn, seconds.
        tau_syn: Array,
        /// τ_mem, seconds.
        tau_mem: Array,
        /// R.
        r: Array,
        /// v_leak.
        v_leak: Array,
        /// v_threshold.
        v_threshold: Array,
        /// v_reset (0 when the file has none).
        v_reset: Array,
        /// w_in.
        w_in: Array,
    },
    /// A nested graph (snntorch's RLeaky and RSynaptic are one, with the recurrent weight on a
    /// cycle).
    Graph(Graph),
    /// A node type spyne reads but has no layer for (`LI`, `IF`, `Scale`, `Delay`, …): its
    /// type string.
    Other(String),
}

impl Node {
    /// NIR's type string.
    pub fn type_name(&self) -> &str {
        match self {
            Node::Input { .. } => "Input",
            Node::Output { .. } => "Output",
            Node::Affine { .. } => "Affine",
            Node::Linear { .. } => "Linear",
            Node::Conv2d { .. } => "Conv2d",
            Node::SumPool2d { .. } => "SumPool2d",
            Node::AvgPool2d { .. } => "AvgPool2d",
            Node::Flatten { .. } => "Flatten",
            Node::Lif { .. } => "LIF",
            Node::CubaLif { .. } => "CubaLIF",
            Node::Graph(_) => "NIRGraph",
            Node::Other(t) => t,
        }
    }
}

/// A node with its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The node.
    pub node: Node,
    /// Free-form metadata (spyne keeps what NIR cannot say here: the exact reset, the exact β).
    pub metadata: Metadata,
}

impl From<Node> for Entry {
    fn from(node: Node) -> Self {
        Entry {
            node,
            metadata: Metadata::new(),
        }
    }
}

/// A NIR graph: named nodes and directed edges `(from, to)`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Graph {
    /// The nodes by name.
    pub nodes: BTreeMap<String, Entry>,
    /// The edges, in file order.
    pub edges: Vec<(String, String)>,
    /// The graph's own metadata.
    pub metadata: Metadata,
}

impl Graph {
    /// The names of the nodes `name` feeds.
    pub fn successors<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.edges
            .iter()
            .filter(move |(a, _)| a == name)
            .map(|(_, b)| b.as_str())
    }

    /// The names of the nodes feeding `name`.
    pub fn predecessors<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.edges
            .iter()
            .filter(move |(_, b)| b == name)
            .map(|(a, _)| a.as_str())
    }
}
