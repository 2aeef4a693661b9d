//! A neuron parameter that is one scalar or one value per neuron, fixed or learnable.

use burn::module::{Param, ParamId};
use burn::tensor::{Device, Tensor};

use crate::error::{Error, Result};

/// A parameter value given at construction: shared by all neurons, or one per neuron.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// One value for every neuron.
    Scalar(f32),
    /// One value per neuron (the layer's width must match).
    PerNeuron(Vec<f32>),
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
            return Err(Error::invalid(name, "per-neuron value list is empty"));
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

/// Broadcasts a `[1]` or `[n]` parameter to `[1, n']` for `[batch, n]` tensors, checking width.
pub(crate) fn row(p: &Param<Tensor<1>>, features: usize, name: &'static str) -> Result<Tensor<2>> {
    let v = p.val();
    let [n] = v.dims();
    if n != 1 && n != features {
        return Err(Error::Shape {
            context: name,
            expected: vec![features],
            got: vec![n],
        });
    }
    Ok(v.reshape([1, n]))
}

/// `row` with β-style clamping to `[0, 1]` (snntorch clamps decays in the forward pass).
pub(crate) fn decay_row(
    p: &Param<Tensor<1>>,
    features: usize,
    name: &'static str,
) -> Result<Tensor<2>> {
    Ok(row(p, features, name)?.clamp(0.0, 1.0))
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
