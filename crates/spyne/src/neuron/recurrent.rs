//! The feedback path of the explicitly recurrent neurons.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::param::{row, Value};
use crate::error::{Error, Result};
use crate::layer::Linear;
use crate::rng::UniformSource;

/// How output spikes are fed back into the layer.
#[derive(Debug, Clone, PartialEq)]
pub enum RecurrentKind {
    /// All-to-all: a `features × features` Linear layer with bias (snntorch `all_to_all=True`).
    AllToAll {
        /// The layer's width.
        features: usize,
    },
    /// One weight per neuron, or one shared weight `V` (snntorch `all_to_all=False`).
    OneToOne(Value),
}

/// The recurrent connection `R(S[t−1])`: a Linear layer or an element-wise weight `V`.
#[derive(Module, Debug)]
pub struct Recurrent {
    /// The all-to-all layer, when that is the kind.
    pub linear: Option<Linear>,
    /// The one-to-one weight `V`, `[1]` or `[features]`, when that is the kind.
    pub v: Option<Param<Tensor<1>>>,
}

impl Recurrent {
    /// Builds the connection; `learn` decides whether its weights are trained.
    pub fn new(
        kind: &RecurrentKind,
        learn: bool,
        rng: &mut impl UniformSource,
        device: &Device,
    ) -> Result<Self> {
        Ok(match kind {
            RecurrentKind::AllToAll { features } => {
                let mut linear = Linear::new(*features, *features, true, rng, device)?;
                if !learn {
                    linear = linear.no_grad();
                }
                Recurrent {
                    linear: Some(linear),
                    v: None,
                }
            }
            RecurrentKind::OneToOne(v) => {
                v.check("V", "finite", f32::is_finite)?;
                Recurrent {
                    linear: None,
                    v: Some(v.param(learn, device)),
                }
            }
        })
    }

    /// `R(s)` for spikes `s`, `[batch, features]`.
    pub fn forward(&self, spikes: Tensor<2>) -> Result<Tensor<2>> {
        let [_, n] = spikes.dims();
        if let Some(linear) = &self.linear {
            let (i, _) = linear.dims();
            if i != n {
                return Err(Error::Shape {
                    context: "recurrent layer width",
                    expected: vec![i],
                    got: vec![n],
                });
            }
            return Ok(linear.forward(spikes));
        }
        let v = self
            .v
            .as_ref()
            .expect("Recurrent holds a linear layer or a weight V");
        Ok(spikes * row(v, n, "recurrent V width")?)
    }
}
