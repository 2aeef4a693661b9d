//! A neuron parameter that is one scalar, one value per neuron or one per channel, fixed or
//! learnable.

use burn::module::{Param, ParamId};
use burn::tensor::{Device, Tensor};

use crate::error::{Error, Result};

/// A parameter value given at construction: shared by all neurons, one per neuron, or one
/// per channel of a `[C, H, W]` layer (broadcast over `H×W`).
///
/// In a model file: a number, a list (per neuron), or `{ per_channel = [...] }`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// One value for every neuron.
    Scalar(f32),
    /// One value per neuron (the layer's width must match).
    PerNeuron(Vec<f32>),
    /// One value per channel: a layer of `C·H·W` neurons, channel-major, takes `C` values.
    PerChannel {
        /// The values, one per channel.
        per_channel: Vec<f32>,
    },
}

impl From<f32> for Value {
    fn from(v: f32) -> Self {
        Value::Scalar(v)
    }
}

impl From<Vec<f32>> for Value {
    fn from(v: Vec<f32>) -> Self {
        Value::PerNeuron(v)
    }
}

impl Value {
    /// The values, one or per neuron.
    pub fn values(&self) -> Vec<f32> {
        match self {
            Value::Scalar(v) => vec![*v],
            Value::PerNeuron(v) => v.clone(),
            Value::PerChannel { per_channel } => per_channel.clone(),
        }
    }

    /// One value per channel.
    pub fn per_channel(values: Vec<f32>) -> Value {
        Value::PerChannel {
            per_channel: values,
        }
    }

    /// The channel count, for a per-channel value.
    pub fn channels(&self) -> Option<usize> {
        match self {
            Value::PerChannel { per_channel } => Some(per_channel.len()),
            _ => None,
        }
    }

    /// Checks every value with `ok`, reporting `name` and `rule` on failure.
    pub(crate) fn check(
        &self,
        name: &'static str,
        rule: &str,
        ok: impl Fn(f32) -> bool,
    ) -> Result<()> {
        let values = self.values();
        if values.is_empty() {
            return Err(Error::invalid(name, "the value list is empty"));
        }
        match values.iter().find(|v| !ok(**v)) {
            Some(bad) => Err(Error::invalid(name, format!("{bad} is not {rule}"))),
            None => Ok(()),
        }
    }

    /// A `[1]` or `[n]` parameter on `device`, trainable when `learn` is set.
    pub(crate) fn param(&self, learn: bool, device: &Device) -> Param<Tensor<1>> {
        let t = Tensor::<1>::from_floats(self.values().as_slice(), device);
        let p = Param::initialized(ParamId::new(), t);
        p.set_require_grad(learn && device.is_autodiff())
    }
}

/// The channel count shared by a neuron's per-channel values (`None` when none is per
/// channel); two per-channel values of different lengths are an error.
pub(crate) fn channels_of(values: &[&Value]) -> Result<Option<usize>> {
    let mut found = None;
    for c in values.iter().filter_map(|v| v.channels()) {
        match found {
            Some(prev) if prev != c => {
                return Err(Error::invalid(
                    "per_channel",
                    format!("per-channel values disagree on the channel count ({prev} and {c})"),
                ))
            }
            _ => found = Some(c),
        }
    }
    Ok(found)
}

/// Broadcasts a parameter to `[1, n]` for `[batch, n]` tensors: `[1]` (scalar) stays
/// `[1, 1]`, `[n]` (per neuron) becomes `[1, n]`, and `[C]` per channel (`channels = Some(C)`,
/// `n = C·H·W`, channel-major) is repeated over each channel's `n/C` neurons.
pub(crate) fn row(
    p: &Param<Tensor<1>>,
    features: usize,
    channels: Option<usize>,
    name: &'static str,
) -> Result<Tensor<2>> {
    let v = p.val();
    let [n] = v.dims();
    if n == 1 || n == features {
        return Ok(v.reshape([1, n]));
    }
    match channels {
        Some(c) if n == c && features.is_multiple_of(c) => Ok(v
            .reshape([c, 1])
            .expand([c, features / c])
            .reshape([1, features])),
        _ => Err(Error::Shape {
            context: name,
            expected: vec![features],
            got: vec![n],
        }),
    }
}

/// `row` with β-style clamping to `[0, 1]` (snntorch clamps decays in the forward pass).
pub(crate) fn decay_row(
    p: &Param<Tensor<1>>,
    features: usize,
    channels: Option<usize>,
    name: &'static str,
) -> Result<Tensor<2>> {
    Ok(row(p, features, channels, name)?.clamp(0.0, 1.0))
}

/// Checks that `t` is `[batch, features]`.
pub(crate) fn expect_dims(
    t: &Tensor<2>,
    batch: usize,
    features: usize,
    context: &'static str,
) -> Result<()> {
    let d = t.dims();
    if d != [batch, features] {
        return Err(Error::Shape {
            context,
            expected: vec![batch, features],
            got: d.to_vec(),
        });
    }
    Ok(())
}
