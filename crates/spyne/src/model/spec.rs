//! The model description: an ordered list of layers with their settings.
//!
//! Written in TOML (`[[layer]]` tables with a `type`), built in Rust ([`ModelSpec::push`] and
//! the shorthands), stored in checkpoints as JSON. Layer types map onto NIR's nodes:
//! `linear` (Affine, or Linear without bias), `conv2d`, `avg_pool2d` (AvgPool2d/SumPool2d),
//! `flatten`, `leaky` (LIF), `synaptic` (CubaLIF), `rleaky`/`rsynaptic` (a subgraph with the
//! recurrent weight on a cycle); `max_pool2d`, `dropout` and `batch_norm2d` have no NIR node.
//!
//! ```toml
//! input = [1, 28, 28]
//!
//! [[layer]]
//! type = "conv2d"
//! channels = 12
//! kernel = 5
//!
//! [[layer]]
//! type = "leaky"
//! beta = 0.5
//! surrogate = { type = "fast-sigmoid", slope = 25 }
//! ```

use serde::{Deserialize, Serialize};

pub use super::neuron_spec::{NeuronKind, NeuronSpec};

/// A whole network: the per-sample input shape and the layers, input side first. The last
/// layer is a neuron layer (the output the losses read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// One sample at one step: `[features]` or `[channels, height, width]`.
    pub input: Vec<usize>,
    /// The layers (`[[layer]]` in TOML).
    #[serde(rename = "layer")]
    pub layers: Vec<LayerSpec>,
}

/// A window size: one number for both sides, or `[rows, columns]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Size2 {
    /// The same along both axes.
    One(usize),
    /// Rows, columns.
    Two([usize; 2]),
}

impl Size2 {
    /// `[rows, columns]`.
    pub fn pair(self) -> [usize; 2] {
        match self {
            Size2::One(k) => [k, k],
            Size2::Two(p) => p,
        }
    }
}

impl From<usize> for Size2 {
    fn from(k: usize) -> Self {
        Size2::One(k)
    }
}

/// One layer of a [`ModelSpec`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum LayerSpec {
    /// Fully connected, `y = x·Wᵀ + b`.
    #[serde(rename = "linear")]
    Linear(LinearSpec),
    /// 2-D convolution.
    #[serde(rename = "conv2d")]
    Conv2d(Conv2dSpec),
    /// Max pooling.
    #[serde(rename = "max_pool2d")]
    MaxPool2d(PoolSpec),
    /// Average pooling.
    #[serde(rename = "avg_pool2d")]
    AvgPool2d(PoolSpec),
    /// Each sample to one dimension.
    #[serde(rename = "flatten")]
    Flatten(FlattenSpec),
    /// Dropout (training only).
    #[serde(rename = "dropout")]
    Dropout(DropoutSpec),
    /// Batch normalisation of image channels.
    #[serde(rename = "batch_norm2d")]
    BatchNorm2d(BatchNormSpec),
    /// A neuron layer.
    #[serde(untagged)]
    Neuron(NeuronSpec),
}

/// Settings of a `linear` layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearSpec {
    /// The layer's name (default `fcN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Inputs; checked against the previous layer when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_features: Option<usize>,
    /// Outputs.
    pub features: usize,
    /// With a bias (default true).
    #[serde(default = "yes")]
    pub bias: bool,
}

/// Settings of a `conv2d` layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv2dSpec {
    /// The layer's name (default `convN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Input channels; checked against the previous layer when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_channels: Option<usize>,
    /// Output channels.
    pub channels: usize,
    /// Kernel size.
    pub kernel: Size2,
    /// Stride (default 1).
    #[serde(default = "one_size")]
    pub stride: Size2,
    /// Zero padding on each side (default 0).
    #[serde(default = "zero_size")]
    pub padding: Size2,
    /// With a bias (default true).
    #[serde(default = "yes")]
    pub bias: bool,
}

/// Settings of a pooling layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    /// The layer's name (default `poolN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Window size.
    pub kernel: Size2,
    /// Stride (default: the window size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stride: Option<Size2>,
}

/// Settings of a `flatten` layer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlattenSpec {
    /// The layer's name (default `flattenN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Settings of a `dropout` layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropoutSpec {
    /// The layer's name (default `dropoutN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Drop probability.
    pub p: f64,
    /// A new mask at every step (default: one mask per sequence).
    #[serde(default)]
    pub per_step: bool,
}

/// Settings of a `batch_norm2d` layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchNormSpec {
    /// The layer's name (default `bnN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// ε (default 1e-5).
    #[serde(default = "bn_eps")]
    pub eps: f64,
    /// Running-statistics momentum (default 0.1).
    #[serde(default = "bn_momentum")]
    pub momentum: f64,
}

impl LayerSpec {
    /// The name given in the description, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            LayerSpec::Linear(s) => s.name.as_deref(),
            LayerSpec::Conv2d(s) => s.name.as_deref(),
            LayerSpec::MaxPool2d(s) | LayerSpec::AvgPool2d(s) => s.name.as_deref(),
            LayerSpec::Flatten(s) => s.name.as_deref(),
            LayerSpec::Dropout(s) => s.name.as_deref(),
            LayerSpec::BatchNorm2d(s) => s.name.as_deref(),
            LayerSpec::Neuron(s) => s.name.as_deref(),
        }
    }

    /// The layer's type, as model files write it.
    pub fn kind(&self) -> &'static str {
        match self {
            LayerSpec::Linear(_) => "linear",
            LayerSpec::Conv2d(_) => "conv2d",
            LayerSpec::MaxPool2d(_) => "max_pool2d",
            LayerSpec::AvgPool2d(_) => "avg_pool2d",
            LayerSpec::Flatten(_) => "flatten",
            LayerSpec::Dropout(_) => "dropout",
            LayerSpec::BatchNorm2d(_) => "batch_norm2d",
            LayerSpec::Neuron(s) => s.kind.name(),
        }
    }

    /// The prefix of default names (`fc1`, `conv2`, `lif3`, …).
    pub(crate) fn name_prefix(&self) -> &'static str {
        match self {
            LayerSpec::Linear(_) => "fc",
            LayerSpec::Conv2d(_) => "conv",
            LayerSpec::MaxPool2d(_) | LayerSpec::AvgPool2d(_) => "pool",
            LayerSpec::Flatten(_) => "flatten",
            LayerSpec::Dropout(_) => "dropout",
            LayerSpec::BatchNorm2d(_) => "bn",
            LayerSpec::Neuron(_) => "lif",
        }
    }

    /// Sets the layer's name.
    pub(crate) fn set_name(&mut self, name: String) {
        let slot = match self {
            LayerSpec::Linear(s) => &mut s.name,
            LayerSpec::Conv2d(s) => &mut s.name,
            LayerSpec::MaxPool2d(s) | LayerSpec::AvgPool2d(s) => &mut s.name,
            LayerSpec::Flatten(s) => &mut s.name,
            LayerSpec::Dropout(s) => &mut s.name,
            LayerSpec::BatchNorm2d(s) => &mut s.name,
            LayerSpec::Neuron(s) => &mut s.name,
        };
        *slot = Some(name);
    }
}

/// The Rust builder: `ModelSpec::new([784]).linear(1000).neuron(NeuronSpec::leaky(0.95))…`.
impl ModelSpec {
    /// An empty network taking samples of shape `input`.
    pub fn new(input: impl Into<Vec<usize>>) -> Self {
        ModelSpec {
            input: input.into(),
            layers: Vec::new(),
        }
    }

    /// Appends a layer.
    pub fn push(mut self, layer: LayerSpec) -> Self {
        self.layers.push(layer);
        self
    }

    /// Appends a Linear layer with `features` outputs and a bias.
    pub fn linear(self, features: usize) -> Self {
        self.push(LayerSpec::Linear(LinearSpec {
            name: None,
            in_features: None,
            features,
            bias: true,
        }))
    }

    /// Appends a `channels`-output convolution with a square `kernel`, stride 1, no padding.
    pub fn conv2d(self, channels: usize, kernel: usize) -> Self {
        self.push(LayerSpec::Conv2d(Conv2dSpec {
            name: None,
            in_channels: None,
            channels,
            kernel: kernel.into(),
            stride: one_size(),
            padding: zero_size(),
            bias: true,
        }))
    }

    /// Appends max pooling over square `kernel` windows.
    pub fn max_pool2d(self, kernel: usize) -> Self {
        self.push(LayerSpec::MaxPool2d(PoolSpec {
            name: None,
            kernel: kernel.into(),
            stride: None,
        }))
    }

    /// Appends average pooling over square `kernel` windows.
    pub fn avg_pool2d(self, kernel: usize) -> Self {
        self.push(LayerSpec::AvgPool2d(PoolSpec {
            name: None,
            kernel: kernel.into(),
            stride: None,
        }))
    }

    /// Appends a Flatten layer.
    pub fn flatten(self) -> Self {
        self.push(LayerSpec::Flatten(FlattenSpec::default()))
    }

    /// Appends dropout with probability `p` (one mask per sequence).
    pub fn dropout(self, p: f64) -> Self {
        self.push(LayerSpec::Dropout(DropoutSpec {
            name: None,
            p,
            per_step: false,
        }))
    }

    /// Appends a neuron layer.
    pub fn neuron(self, spec: NeuronSpec) -> Self {
        self.push(LayerSpec::Neuron(spec))
    }
}

fn yes() -> bool {
    true
}

fn one_size() -> Size2 {
    Size2::One(1)
}

fn zero_size() -> Size2 {
    Size2::One(0)
}

fn bn_eps() -> f64 {
    1e-5
}

fn bn_momentum() -> f64 {
    0.1
}
