//! Flattening each sample to one dimension.

use burn::module::Module;

use super::SeqLayer;
use crate::error::Result;
use crate::run::Run;
use crate::seq::Seq;

/// `[T, B, C, H, W] → [T, B, C·H·W]` (PyTorch's `nn.Flatten()`); the data is not moved.
#[derive(Module, Debug, Default)]
pub struct Flatten {}

impl SeqLayer for Flatten {
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        Ok(vec![input.iter().product()])
    }

    fn forward_seq(&self, x: Seq, _: &mut Run) -> Result<Seq> {
        let shape = self.output_shape(x.shape())?;
        x.with_shape(&shape)
    }
}
