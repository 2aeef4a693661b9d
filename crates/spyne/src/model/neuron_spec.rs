//! The settings of a neuron layer in a model description.

use serde::{Deserialize, Serialize};

use crate::neuron::{Reset, Value};
use crate::setting::named_opt;
use crate::surrogate::Surrogate;

/// The neuron models a layer can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NeuronKind {
    /// [`crate::neuron::Leaky`].
    Leaky,
    /// [`crate::neuron::Synaptic`].
    Synaptic,
    /// [`crate::neuron::Lapicque`].
    Lapicque,
    /// [`crate::neuron::Alpha`].
    Alpha,
    /// [`crate::neuron::RLeaky`].
    #[serde(rename = "rleaky")]
    RLeaky,
    /// [`crate::neuron::RSynaptic`].
    #[serde(rename = "rsynaptic")]
    RSynaptic,
}

impl NeuronKind {
    /// The name in model files.
    pub fn name(self) -> &'static str {
        match self {
            NeuronKind::Leaky => "leaky",
            NeuronKind::Synaptic => "synaptic",
            NeuronKind::Lapicque => "lapicque",
            NeuronKind::Alpha => "alpha",
            NeuronKind::RLeaky => "rleaky",
            NeuronKind::RSynaptic => "rsynaptic",
        }
    }
}

/// Settings of a neuron layer. Which ones a kind takes: β (`leaky`, `rleaky`, and with α
/// `synaptic`, `rsynaptic`, `alpha`), `lapicque`'s β or R and C with `time_step`, the
/// recurrent kinds' `all_to_all` (default true) or one-to-one weight `v`. θ, the surrogate,
/// the reset and the `learn_*` switches apply to all. A setting the kind does not take is an
/// error when the model is built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeuronSpec {
    /// The neuron model.
    #[serde(rename = "type")]
    pub kind: NeuronKind,
    /// The layer's name (default `lifN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Membrane decay β (inhibitory decay for `alpha`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<Value>,
    /// Synaptic current decay α (excitatory decay for `alpha`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<Value>,
    /// Threshold θ (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Value>,
    /// Surrogate gradient (default ATan, α = 2).
    #[serde(
        default,
        deserialize_with = "named_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub surrogate: Option<Surrogate>,
    /// Reset mechanism (default subtract).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<Reset>,
    /// Train β.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learn_beta: Option<bool>,
    /// Train α.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learn_alpha: Option<bool>,
    /// Train θ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learn_threshold: Option<bool>,
    /// Lapicque's resistance R.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r: Option<f32>,
    /// Lapicque's capacitance C.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c: Option<f32>,
    /// Lapicque's time step Δt (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_step: Option<f32>,
    /// Recurrent kinds: an all-to-all feedback layer (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_to_all: Option<bool>,
    /// Recurrent kinds: the one-to-one feedback weight (default 1; implies
    /// `all_to_all = false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v: Option<Value>,
    /// Recurrent kinds: train the feedback weights (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learn_recurrent: Option<bool>,
}

impl NeuronSpec {
    /// A layer of `kind` with every setting at its default.
    pub fn new(kind: NeuronKind) -> Self {
        NeuronSpec {
            kind,
            name: None,
            beta: None,
            alpha: None,
            threshold: None,
            surrogate: None,
            reset: None,
            learn_beta: None,
            learn_alpha: None,
            learn_threshold: None,
            r: None,
            c: None,
            time_step: None,
            all_to_all: None,
            v: None,
            learn_recurrent: None,
        }
    }

    /// A Leaky layer with decay `beta`.
    pub fn leaky(beta: impl Into<Value>) -> Self {
        NeuronSpec {
            beta: Some(beta.into()),
            ..NeuronSpec::new(NeuronKind::Leaky)
        }
    }

    /// A Synaptic layer with decays `alpha` and `beta`.
    pub fn synaptic(alpha: impl Into<Value>, beta: impl Into<Value>) -> Self {
        NeuronSpec {
            alpha: Some(alpha.into()),
            beta: Some(beta.into()),
            ..NeuronSpec::new(NeuronKind::Synaptic)
        }
    }

    /// An RLeaky layer with decay `beta` and all-to-all feedback.
    pub fn rleaky(beta: impl Into<Value>) -> Self {
        NeuronSpec {
            beta: Some(beta.into()),
            ..NeuronSpec::new(NeuronKind::RLeaky)
        }
    }

    /// Sets the surrogate.
    pub fn with_surrogate(mut self, surrogate: Surrogate) -> Self {
        self.surrogate = Some(surrogate);
        self
    }

    /// Sets the threshold.
    pub fn with_threshold(mut self, threshold: impl Into<Value>) -> Self {
        self.threshold = Some(threshold.into());
        self
    }

    /// Sets the reset mechanism.
    pub fn with_reset(mut self, reset: Reset) -> Self {
        self.reset = Some(reset);
        self
    }

    /// Names the layer.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}
