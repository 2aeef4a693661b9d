//! A network built from a description: the layers in order, each a multi-step layer.

use burn::module::Module;

use super::spec::ModelSpec;
use super::SpikingModel;
use crate::error::{Error, Result};
use crate::layer::{AvgPool2d, BatchNorm, Conv2d, Dropout, Flatten, Linear, MaxPool2d, SeqLayer};
use crate::neuron::{After, Cell, Spiking};
use crate::run::{Output, Run};
use crate::seq::Seq;

/// One layer of a [`Network`].
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Layer {
    /// Fully connected.
    Linear(Linear),
    /// 2-D convolution.
    Conv2d(Conv2d),
    /// Max pooling.
    MaxPool2d(MaxPool2d),
    /// Average pooling.
    AvgPool2d(AvgPool2d),
    /// Flatten.
    Flatten(Flatten),
    /// Dropout.
    Dropout(Dropout),
    /// Batch normalisation.
    BatchNorm2d(BatchNorm),
    /// A neuron layer.
    Neuron(Cell),
}

impl SeqLayer for Layer {
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        match self {
            Layer::Linear(l) => l.output_shape(input),
            Layer::Conv2d(l) => l.output_shape(input),
            Layer::MaxPool2d(l) => l.output_shape(input),
            Layer::AvgPool2d(l) => l.output_shape(input),
            Layer::Flatten(l) => l.output_shape(input),
            Layer::Dropout(l) => l.output_shape(input),
            Layer::BatchNorm2d(l) => l.output_shape(input),
            Layer::Neuron(l) => l.output_shape(input),
        }
    }

    fn forward_seq(&self, x: Seq, run: &mut Run) -> Result<Seq> {
        match self {
            Layer::Linear(l) => l.forward_seq(x, run),
            Layer::Conv2d(l) => l.forward_seq(x, run),
            Layer::MaxPool2d(l) => l.forward_seq(x, run),
            Layer::AvgPool2d(l) => l.forward_seq(x, run),
            Layer::Flatten(l) => l.forward_seq(x, run),
            Layer::Dropout(l) => l.forward_seq(x, run),
            Layer::BatchNorm2d(l) => l.forward_seq(x, run),
            Layer::Neuron(l) => l.forward_seq(x, run),
        }
    }
}

/// A sequential spiking network, built by [`ModelSpec::init`]; the last layer is a neuron
/// layer.
///
/// The forward pass runs every layer over the whole sequence. A neuron layer followed by a
/// Linear layer (a Flatten between them moves no data) runs as one fused op, so hidden
/// spikes never materialise; a Conv2d followed by a MaxPool2d runs as one op too (see
/// [`crate::layer::conv_max_pool`]); stateless layers before the first neuron layer run once
/// on a static input.
#[derive(Module, Debug)]
pub struct Network {
    /// The layers, input side first.
    pub layers: Vec<Layer>,
    /// The description it was built from (every layer named).
    #[module(skip)]
    pub spec: ModelSpec,
}

impl Network {
    pub(crate) fn new(layers: Vec<Layer>, spec: ModelSpec) -> Network {
        Network { layers, spec }
    }

    /// The layers' names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.spec
            .layers
            .iter()
            .map(|l| l.name().unwrap_or_default())
            .collect()
    }

    /// The per-sample input shape.
    pub fn input_shape(&self) -> &[usize] {
        &self.spec.input
    }

    /// The number of output neurons (classes).
    pub fn outputs(&self) -> usize {
        self.output_shapes()
            .last()
            .map(|s| s.iter().product())
            .unwrap_or(0)
    }

    /// Every layer's per-sample output shape.
    pub fn output_shapes(&self) -> Vec<Vec<usize>> {
        let mut shape = self.spec.input.clone();
        self.layers
            .iter()
            .map(|l| {
                shape = l.output_shape(&shape).unwrap_or_default();
                shape.clone()
            })
            .collect()
    }

    /// The first layer from `j` on that is not a Flatten (which moves no data), stopping at
    /// `last`.
    fn after_flatten(&self, mut j: usize, last: usize) -> usize {
        while matches!(self.layers[j], Layer::Flatten(_)) && j < last {
            j += 1;
        }
        j
    }
}

impl SpikingModel for Network {
    fn forward(&self, x: Seq, run: &mut Run) -> Result<Output> {
        // The data's own sample shape may differ ([1, 28, 28] into an MLP's [784]): the
        // values must match in number.
        let given = x.shape().to_vec();
        let mut x = x.with_shape(&self.spec.input).map_err(|_| Error::Shape {
            context: "network input (per sample)",
            expected: self.spec.input.clone(),
            got: given,
        })?;
        let last = self.layers.len() - 1;
        let mut i = 0;
        while i < last {
            match &self.layers[i] {
                Layer::Linear(linear) if matches!(self.layers[i + 1], Layer::Neuron(_)) => {
                    // Spikes into a Linear layer into a neuron layer: one op from the active
                    // inputs where the input is sparse spikes.
                    let Layer::Neuron(cell) = &self.layers[i + 1] else {
                        unreachable!("matched just above")
                    };
                    if i + 1 == last {
                        match run.output_spiking(linear, cell, x)? {
                            Ok(out) => return Ok(out),
                            Err(back) => x = back,
                        }
                    } else {
                        let j = self.after_flatten(i + 2, last);
                        let after = match &self.layers[j] {
                            Layer::Linear(next) => After::Linear(next),
                            _ => After::Spikes(false),
                        };
                        match run.spiking_into(linear, cell, after, x)? {
                            Spiking::Ran(y, _) => {
                                x = y;
                                i = if matches!(after, After::Linear(_)) {
                                    j + 1
                                } else {
                                    i + 2
                                };
                                continue;
                            }
                            Spiking::Not(back) => x = back,
                        }
                    }
                    x = linear.forward_seq(x, run)?;
                }
                Layer::Neuron(cell) => {
                    let j = self.after_flatten(i + 1, last);
                    if let Layer::Linear(linear) = &self.layers[j] {
                        x = run.into_linear(cell, linear, x)?;
                        i = j + 1;
                        continue;
                    }
                    x = cell.forward_seq(x, run)?;
                }
                Layer::Conv2d(conv) => {
                    if let Layer::MaxPool2d(pool) = &self.layers[i + 1] {
                        x = crate::layer::conv_max_pool(conv, pool, x, run)?;
                        i += 2;
                        continue;
                    }
                    x = conv.forward_seq(x, run)?;
                }
                layer => x = layer.forward_seq(x, run)?,
            }
            i += 1;
        }
        match &self.layers[last] {
            Layer::Neuron(cell) => run.output(cell, x),
            _ => Err(Error::invalid(
                "model",
                "the last layer must be a neuron layer",
            )),
        }
    }

    fn describe(&self) -> Option<&ModelSpec> {
        Some(&self.spec)
    }

    fn named_params(
        &self,
    ) -> Option<std::collections::BTreeMap<String, super::params::NamedParam>> {
        Some(super::params::export(self))
    }
}
