//! Max and average pooling over 2-D windows (burn-nn's modules).

use burn::nn::pool::{AvgPool2dConfig, MaxPool2dConfig};
use burn::nn::PaddingConfig2d;

pub use burn::nn::pool::{AvgPool2d, MaxPool2d};

use super::conv::padding_of;
use super::{image_shape, window_out, SeqLayer};
use crate::error::{Error, Result};
use crate::run::Run;
use crate::seq::Seq;

/// Max pooling over `kernel` windows moved by `stride` (PyTorch's default: the kernel).
pub fn max_pool2d(kernel: [usize; 2], stride: Option<[usize; 2]>) -> Result<MaxPool2d> {
    check(kernel, stride, "max_pool2d")?;
    Ok(MaxPool2dConfig::new(kernel)
        .with_strides(stride.unwrap_or(kernel))
        .with_padding(PaddingConfig2d::Valid)
        .init())
}

/// Average pooling over `kernel` windows moved by `stride` (default: the kernel).
pub fn avg_pool2d(kernel: [usize; 2], stride: Option<[usize; 2]>) -> Result<AvgPool2d> {
    check(kernel, stride, "avg_pool2d")?;
    Ok(AvgPool2dConfig::new(kernel)
        .with_strides(stride.unwrap_or(kernel))
        .with_padding(PaddingConfig2d::Valid)
        .init())
}

fn check(kernel: [usize; 2], stride: Option<[usize; 2]>, layer: &'static str) -> Result<()> {
    if kernel.contains(&0) || stride.is_some_and(|s| s.contains(&0)) {
        return Err(Error::invalid(
            layer,
            "the kernel and stride must be at least 1",
        ));
    }
    Ok(())
}

/// `[C, H', W']` of a pool, or an error naming the layer.
fn pooled(
    input: &[usize],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    layer: &'static str,
) -> Result<Vec<usize>> {
    let [c, h, w] = image_shape(input, layer)?;
    match (
        window_out(h, kernel[0], stride[0], padding[0]),
        window_out(w, kernel[1], stride[1], padding[1]),
    ) {
        (Some(oh), Some(ow)) => Ok(vec![c, oh, ow]),
        _ => Err(Error::Shape {
            context: layer,
            expected: vec![c, kernel[0], kernel[1]],
            got: input.to_vec(),
        }),
    }
}

impl SeqLayer for MaxPool2d {
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let padding = padding_of(&self.padding, self.kernel_size);
        pooled(
            input,
            self.kernel_size,
            self.stride,
            padding,
            "max_pool2d input",
        )
    }

    fn forward_seq(&self, x: Seq, _: &mut Run) -> Result<Seq> {
        let shape = self.output_shape(x.shape())?;
        let images = x.clone().into_images("max_pool2d input")?;
        Ok(x.map(self.forward(images), shape))
    }
}

impl SeqLayer for AvgPool2d {
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let padding = padding_of(&self.padding, self.kernel_size);
        pooled(
            input,
            self.kernel_size,
            self.stride,
            padding,
            "avg_pool2d input",
        )
    }

    fn forward_seq(&self, x: Seq, _: &mut Run) -> Result<Seq> {
        let shape = self.output_shape(x.shape())?;
        let images = x.clone().into_images("avg_pool2d input")?;
        Ok(x.map(self.forward(images), shape))
    }
}
