//! The 2-D convolution: burn-nn's `Conv2d`, initialised as PyTorch's `nn.Conv2d`.

use burn::nn::conv::Conv2dConfig;
use burn::nn::PaddingConfig2d;
use burn::tensor::{Device, Tensor, TensorData};

pub use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;

use super::linear::{checked_len, draw, param};
use super::{image_shape, window_out, SeqLayer};
use crate::error::{Error, Result};
use crate::kernel::{self, ConvPath, ConvSpec};
use crate::rng::{linear_bounds, UniformSource};
use crate::run::Run;
use crate::seq::Seq;

/// A `c_in → c_out` convolution with a `kernel` window, `stride` and zero `padding` (per
/// side), initialised like PyTorch's `nn.Conv2d` (Kaiming-uniform with a = √5 over the
/// fan-in `c_in·kh·kw`, bias uniform in `±1/√fan_in`), weight then bias drawn from `rng` in
/// PyTorch's `[out, in, kh, kw]` order.
pub fn torch_conv2d(
    [c_in, c_out]: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    bias: bool,
    rng: &mut impl UniformSource,
    device: &Device,
) -> Result<Conv2d> {
    if stride.contains(&0) {
        return Err(Error::invalid("conv2d", "the stride must be at least 1"));
    }
    let n = checked_len(&[c_out, c_in, kernel[0], kernel[1]], "conv2d")?;
    let fan_in = c_in * kernel[0] * kernel[1];
    let (kw, kb) = linear_bounds(fan_in);
    let w = draw(n, kw, rng)?;
    let b = if bias {
        Some(draw(c_out, kb, rng)?)
    } else {
        None
    };
    let [ph, pw] = padding;
    let mut conv = Conv2dConfig::new([c_in, c_out], kernel)
        .with_stride(stride)
        .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
        .with_bias(bias)
        .init(&Device::flex());
    let shape = [c_out, c_in, kernel[0], kernel[1]];
    conv.weight = param(Tensor::from_data(TensorData::new(w, shape), device));
    conv.bias = b.map(|b| param(Tensor::from_data(TensorData::new(b, [c_out]), device)));
    Ok(conv)
}

/// Symmetric padding (rows, columns) of a convolution or pool.
pub(crate) fn padding_of(p: &PaddingConfig2d, kernel: [usize; 2]) -> [usize; 2] {
    match *p {
        PaddingConfig2d::Valid => [0, 0],
        PaddingConfig2d::Explicit(top, left, _, _) => [top, left],
        PaddingConfig2d::Same => [kernel[0] / 2, kernel[1] / 2],
    }
}

/// The kernel's settings for `conv` on `x`, when spyne's convolution kernel covers it (the
/// Flex device, no groups or dilation, symmetric padding); `None` runs burn's.
fn kernel_spec(conv: &Conv2d, x: &Tensor<4>, run: &Run) -> Option<ConvSpec> {
    let [o, c, kh, kw] = conv.weight.dims();
    let [n, _, h, w] = x.dims();
    let symmetric = match conv.padding {
        PaddingConfig2d::Explicit(t, l, b, r) => t == b && l == r,
        _ => true,
    };
    let plain = conv.groups == 1 && conv.dilation == [1, 1] && symmetric;
    (plain && run.fused_allowed() && kernel::supports(&x.device())).then(|| ConvSpec {
        n,
        c,
        h,
        w,
        o,
        kh,
        kw,
        stride: conv.stride,
        padding: padding_of(&conv.padding, [kh, kw]),
        bias: conv.bias.is_some(),
        forward: ConvPath::Auto,
        backward: ConvPath::Auto,
        pool: None,
    })
}

/// `conv` followed by `pool` as one op where spyne's kernel covers both (a max pool over
/// non-overlapping windows): the full convolution output is never stored, and the backward
/// pass visits only the position that won each window. Otherwise the two run one after the
/// other. Equal to `pool.forward_seq(conv.forward_seq(x))`.
pub fn conv_max_pool(conv: &Conv2d, pool: &MaxPool2d, x: Seq, run: &mut Run) -> Result<Seq> {
    let shape = pool.output_shape(&conv.output_shape(x.shape())?)?;
    let images = x.clone().into_images("conv2d input")?;
    let fusable = pool.kernel_size == pool.stride
        && pool.dilation == [1, 1]
        && !pool.ceil_mode
        && matches!(pool.padding, PaddingConfig2d::Valid);
    match kernel_spec(conv, &images, run).filter(|_| fusable) {
        Some(spec) => {
            let spec = ConvSpec {
                pool: Some(pool.kernel_size),
                ..spec
            };
            let bias = conv.bias.as_ref().map(|b| b.val());
            Ok(x.map(kernel::conv2d(images, conv.weight.val(), bias, spec), shape))
        }
        None => {
            let y = conv.forward_seq(x, run)?;
            pool.forward_seq(y, run)
        }
    }
}

impl SeqLayer for Conv2d {
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let [c, h, w] = image_shape(input, "conv2d input")?;
        let [c_out, c_in, kh, kw] = self.weight.dims();
        let [ph, pw] = padding_of(&self.padding, [kh, kw]);
        let out = |size, k, s, p, d: usize| window_out(size, d * (k - 1) + 1, s, p);
        match (
            c == c_in * self.groups,
            out(h, kh, self.stride[0], ph, self.dilation[0]),
            out(w, kw, self.stride[1], pw, self.dilation[1]),
        ) {
            (true, Some(oh), Some(ow)) => Ok(vec![c_out, oh, ow]),
            _ => Err(Error::Shape {
                context: "conv2d input (channels, or an image smaller than the kernel)",
                expected: vec![c_in * self.groups, kh, kw],
                got: input.to_vec(),
            }),
        }
    }

    /// `[T, B, C, H, W] → [T, B, C', H', W']` as one convolution over `T·B` images (`B` for
    /// a constant input).
    fn forward_seq(&self, x: Seq, run: &mut Run) -> Result<Seq> {
        let shape = self.output_shape(x.shape())?;
        let images = x.clone().into_images("conv2d input")?;
        let y = match kernel_spec(self, &images, run) {
            Some(spec) => kernel::conv2d(
                images,
                self.weight.val(),
                self.bias.as_ref().map(|b| b.val()),
                spec,
            ),
            None => self.forward(images),
        };
        Ok(x.map(y, shape))
    }
}
