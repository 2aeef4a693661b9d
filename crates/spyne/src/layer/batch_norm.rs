//! Batch normalisation of image channels, with statistics over time and batch.

use burn::nn::BatchNormConfig;
use burn::tensor::Device;

pub use burn::nn::BatchNorm;

use super::{image_shape, SeqLayer};
use crate::error::{Error, Result};
use crate::run::Run;
use crate::seq::Seq;

/// BatchNorm over the `channels` of `[C, H, W]` samples (PyTorch's `nn.BatchNorm2d`
/// defaults: ε = 1e-5, momentum 0.1). Over a sequence the statistics cover every step and
/// sample, as time is folded into the batch.
pub fn batch_norm2d(
    channels: usize,
    eps: f64,
    momentum: f64,
    device: &Device,
) -> Result<BatchNorm> {
    if channels == 0 || !(eps.is_finite() && eps > 0.0) || !(0.0..=1.0).contains(&momentum) {
        return Err(Error::invalid(
            "batch_norm2d",
            format!("needs channels ≥ 1, ε > 0 and momentum in [0, 1]; got {channels}, {eps}, {momentum}"),
        ));
    }
    Ok(BatchNormConfig::new(channels)
        .with_epsilon(eps)
        .with_momentum(momentum)
        .init(device))
}

impl SeqLayer for BatchNorm {
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let [c, _, _] = image_shape(input, "batch_norm2d input")?;
        let [n] = self.gamma.dims();
        if c != n {
            return Err(Error::Shape {
                context: "batch_norm2d channels",
                expected: vec![n],
                got: input.to_vec(),
            });
        }
        Ok(input.to_vec())
    }

    fn forward_seq(&self, x: Seq, _: &mut Run) -> Result<Seq> {
        let shape = self.output_shape(x.shape())?;
        let images = x.clone().into_images("batch_norm2d input")?;
        Ok(x.map(self.forward(images), shape))
    }
}
