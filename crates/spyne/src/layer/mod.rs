//! Multi-step layers: every layer takes and returns whole sequences ([`Seq`]).
//!
//! The stateless layers are burn-nn's modules (Linear, Conv2d, the pools, BatchNorm) with
//! PyTorch's initialisation drawn from spyne's seeded streams, plus Flatten and a dropout
//! whose mask can be shared by every step. Time is folded into the batch, so each runs once
//! per sequence, and once in all on a constant (static) input. Neuron layers implement the
//! same trait ([`crate::neuron`]).

mod batch_norm;
mod conv;
mod dropout;
mod flatten;
mod linear;
mod pool;

pub use batch_norm::{batch_norm2d, BatchNorm};
pub use conv::{conv_max_pool, torch_conv2d, Conv2d};
pub use dropout::Dropout;
pub use flatten::Flatten;
pub use linear::{linear_from_torch, torch_linear, Linear};
pub use pool::{avg_pool2d, max_pool2d, AvgPool2d, MaxPool2d};

use crate::error::{Error, Result};
use crate::run::Run;
use crate::seq::Seq;

/// A layer over whole sequences `[T, B, …]`.
pub trait SeqLayer {
    /// The per-sample output shape for an input of shape `input`; a shape the layer cannot
    /// take is an error that names both.
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>>;

    /// Runs the layer over the sequence `x`.
    fn forward_seq(&self, x: Seq, run: &mut Run) -> Result<Seq>;
}

/// `[C, H, W]` from a per-sample shape, or an error naming `layer`.
pub(crate) fn image_shape(input: &[usize], layer: &'static str) -> Result<[usize; 3]> {
    match input {
        [c, h, w] => Ok([*c, *h, *w]),
        _ => Err(Error::Shape {
            context: layer,
            expected: vec![0, 0, 0],
            got: input.to_vec(),
        }),
    }
}

/// The output size of a window of `kernel` sliding with `stride` over `size + 2·padding`
/// (`None` when the window does not fit).
pub(crate) fn window_out(
    size: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Option<usize> {
    let padded = size + 2 * padding;
    (kernel > 0 && stride > 0 && padded >= kernel).then(|| (padded - kernel) / stride + 1)
}
