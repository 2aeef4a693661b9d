//! Activations over time, the value every multi-step layer takes and returns.

use std::sync::Arc;

use burn::tensor::Tensor;

use crate::error::{Error, Result};
use crate::kernel::SpikeIndex;

/// `steps` time steps of `batch` samples, each of shape `shape` (`[N]`, or `[C, H, W]`), with
/// time folded into the batch, as SpikingJelly's multi-step mode does: the data is one
/// `[steps·batch, features]` tensor, so a stateless layer runs once per sequence.
///
/// A *constant* sequence is one value repeated at every step (a static image): it holds only
/// `[batch, features]`, and stateless layers run on it once instead of `steps` times. The
/// first neuron layer turns it into a real sequence.
///
/// A sequence of binary spikes may carry the index of its active entries
/// ([`Seq::with_spike_index`]), as an event data set delivers them: layers that run from
/// the active inputs then need not scan the values for them.
#[derive(Debug, Clone)]
pub struct Seq {
    data: Tensor<2>,
    steps: usize,
    batch: usize,
    shape: Vec<usize>,
    constant: bool,
    spikes: Option<Arc<SpikeIndex>>,
}

impl Seq {
    /// A sequence from `[T, batch, features]`.
    pub fn new(x: Tensor<3>) -> Seq {
        let [t, b, f] = x.dims();
        Seq {
            data: x.reshape([t * b, f]),
            steps: t,
            batch: b,
            shape: vec![f],
            constant: false,
            spikes: None,
        }
    }

    /// The same `[batch, features]` value at each of `steps` steps.
    pub fn constant(x: Tensor<2>, steps: usize) -> Seq {
        let [b, f] = x.dims();
        Seq {
            data: x,
            steps,
            batch: b,
            shape: vec![f],
            constant: true,
            spikes: None,
        }
    }

    /// The same sequence, known to be binary spikes whose active entries `index` lists
    /// (`[steps·batch, features]`, row `t·batch + b`). The index must describe the values:
    /// layers read it instead of them.
    pub fn with_spike_index(mut self, index: Arc<SpikeIndex>) -> Result<Seq> {
        let rows = self.data.dims()[0];
        if self.constant || index.rows() != rows || index.cols() != self.features() {
            return Err(Error::Shape {
                context: "spike index of a sequence",
                expected: vec![rows, self.features()],
                got: vec![index.rows(), index.cols()],
            });
        }
        self.spikes = Some(index);
        Ok(self)
    }

    /// The active entries of a binary spike sequence at most `max_density` dense: the index
    /// it carries, or one built from its values (`None` when they are not all 0 or 1, too
    /// dense, constant, or not on the CPU backend).
    pub fn active_inputs(&self, max_density: f32) -> Option<Arc<SpikeIndex>> {
        if self.constant {
            return None;
        }
        match &self.spikes {
            Some(index) => (index.density() <= max_density).then(|| index.clone()),
            None => SpikeIndex::of(&self.data, max_density),
        }
    }

    /// Views each sample as `shape` (e.g. `[1, 28, 28]`); its element count must match.
    pub fn with_shape(mut self, shape: &[usize]) -> Result<Seq> {
        if shape.iter().product::<usize>() != self.features() || shape.is_empty() {
            return Err(Error::Shape {
                context: "sequence sample shape",
                expected: vec![self.features()],
                got: shape.to_vec(),
            });
        }
        self.shape = shape.to_vec();
        Ok(self)
    }

    /// Time steps.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Samples.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The shape of one sample at one step.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Values per sample and step.
    pub fn features(&self) -> usize {
        self.data.dims()[1]
    }

    /// Whether one value stands for every step.
    pub fn is_constant(&self) -> bool {
        self.constant
    }

    /// The folded data, `[steps·batch, features]` (`[batch, features]` when constant).
    pub fn data(&self) -> &Tensor<2> {
        &self.data
    }

    /// The folded data, by value.
    pub fn into_data(self) -> Tensor<2> {
        self.data
    }

    /// `[T, batch, features]`, or `[1, batch, features]` when constant.
    pub fn into_steps(self) -> Tensor<3> {
        let t = if self.constant { 1 } else { self.steps };
        self.data
            .reshape([t, self.batch, self.shape.iter().product()])
    }

    /// `[T, batch, features]`, repeating a constant value at every step.
    pub fn into_expanded(self) -> Tensor<3> {
        let (t, b, f) = (self.steps, self.batch, self.features());
        if self.constant {
            self.data.reshape([1, b, f]).expand([t, b, f])
        } else {
            self.data.reshape([t, b, f])
        }
    }

    /// `[rows, C, H, W]` for image layers (`shape` must be `[C, H, W]`).
    pub fn into_images(self, context: &'static str) -> Result<Tensor<4>> {
        let [c, h, w] = match self.shape[..] {
            [c, h, w] => [c, h, w],
            _ => {
                return Err(Error::Shape {
                    context,
                    expected: vec![0, 0, 0],
                    got: self.shape.clone(),
                })
            }
        };
        let rows = self.data.dims()[0];
        Ok(self.data.reshape([rows, c, h, w]))
    }

    /// The same sequence with new folded data (`[rows, …]` flattened per row) of sample
    /// shape `shape`.
    pub fn map<const D: usize>(self, data: Tensor<D>, shape: Vec<usize>) -> Seq {
        let rows = data.dims()[0];
        Seq {
            data: data.reshape([rows, shape.iter().product()]),
            shape,
            spikes: None,
            ..self
        }
    }

    /// Steps `start..start + len` (a constant sequence stays constant).
    pub fn window(&self, start: usize, len: usize) -> Seq {
        let data = if self.constant {
            self.data.clone()
        } else {
            self.data
                .clone()
                .narrow(0, start * self.batch, len * self.batch)
        };
        let rows = start * self.batch..(start + len) * self.batch;
        Seq {
            data,
            steps: len,
            shape: self.shape.clone(),
            spikes: self.spikes.as_ref().map(|i| Arc::new(i.rows_range(rows))),
            ..*self
        }
    }

    /// Element-wise sum (a residual connection): shapes must match; a constant operand is
    /// repeated over the other's steps.
    pub fn plus(self, other: Seq) -> Result<Seq> {
        if self.shape != other.shape || self.steps != other.steps || self.batch != other.batch {
            return Err(Error::Shape {
                context: "adding two sequences",
                expected: [vec![self.steps, self.batch], self.shape.clone()].concat(),
                got: [vec![other.steps, other.batch], other.shape.clone()].concat(),
            });
        }
        if self.constant == other.constant {
            return Ok(Seq {
                data: self.data + other.data,
                spikes: None,
                ..self
            });
        }
        let shape = self.shape.clone();
        let sum = self.into_expanded() + other.into_expanded();
        Seq::new(sum).with_shape(&shape)
    }
}
