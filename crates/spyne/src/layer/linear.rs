//! A fully connected layer with PyTorch's initialisation drawn from spyne's own RNG.

use burn::module::{Module, Param, ParamId};
use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::rng::{linear_bounds, UniformSource};

/// `y = x·W + b` with `W` stored `[in, out]` (burn's layout; PyTorch stores `[out, in]`).
#[derive(Module, Debug)]
pub struct Linear {
    /// Weight, `[in, out]`.
    pub weight: Param<Tensor<2>>,
    /// Bias, `[out]`, if any.
    pub bias: Option<Param<Tensor<1>>>,
}

impl Linear {
    /// A layer initialised like PyTorch's `nn.Linear`: weight and bias uniform in
    /// `[−1/√in, 1/√in)`, drawn from `rng` (weights first, in PyTorch's `[out, in]` order, so
    /// the same stream gives the same layer in both layouts; with a [`crate::rng::TorchRng`]
    /// seeded like `torch.manual_seed(s)` the values are PyTorch's, bit for bit).
    pub fn new(
        d_in: usize,
        d_out: usize,
        bias: bool,
        rng: &mut impl UniformSource,
        device: &Device,
    ) -> Result<Self> {
        if d_in == 0 || d_out == 0 {
            return Err(Error::invalid(
                "linear",
                format!("sizes must be positive, got {d_in}x{d_out}"),
            ));
        }
        let (kw, kb) = linear_bounds(d_in);
        let torch_order: Vec<f32> = (0..d_in * d_out).map(|_| rng.uniform_in(-kw, kw)).collect();
        let b: Option<Vec<f32>> =
            bias.then(|| (0..d_out).map(|_| rng.uniform_in(-kb, kb)).collect());
        Linear::from_torch(&torch_order, b.as_deref(), d_in, d_out, device)
    }

    /// A layer from PyTorch-layout values: `weight` is `[out, in]` row-major.
    pub fn from_torch(
        weight: &[f32],
        bias: Option<&[f32]>,
        d_in: usize,
        d_out: usize,
        device: &Device,
    ) -> Result<Self> {
        if weight.len() != d_in * d_out {
            return Err(Error::Shape {
                context: "linear weight",
                expected: vec![d_out, d_in],
                got: vec![weight.len()],
            });
        }
        let mut w = vec![0.0f32; d_in * d_out];
        for o in 0..d_out {
            for i in 0..d_in {
                w[i * d_out + o] = weight[o * d_in + i];
            }
        }
        let bias = match bias {
            Some(b) if b.len() != d_out => {
                return Err(Error::Shape {
                    context: "linear bias",
                    expected: vec![d_out],
                    got: vec![b.len()],
                })
            }
            Some(b) => Some(param(Tensor::from_data(
                TensorData::new(b.to_vec(), [d_out]),
                device,
            ))),
            None => None,
        };
        Ok(Linear {
            weight: param(Tensor::from_data(TensorData::new(w, [d_in, d_out]), device)),
            bias,
        })
    }

    /// Input and output widths.
    pub fn dims(&self) -> (usize, usize) {
        let [i, o] = self.weight.val().dims();
        (i, o)
    }

    /// `[batch, in] → [batch, out]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let y = x.matmul(self.weight.val());
        match &self.bias {
            Some(b) => y + b.val().unsqueeze_dim(0),
            None => y,
        }
    }

    /// Adds the bias (if any) to currents `[T, batch, out]` computed elsewhere.
    pub fn add_bias(&self, current: Tensor<3>) -> Tensor<3> {
        match &self.bias {
            Some(b) => current + b.val().unsqueeze_dims::<3>(&[0, 1]),
            None => current,
        }
    }

    /// `[T, batch, in] → [T, batch, out]`, as one `[T·batch, in]` product.
    pub fn forward_seq(&self, x: Tensor<3>) -> Tensor<3> {
        let [t, b, i] = x.dims();
        let (_, o) = self.dims();
        self.forward(x.reshape([t * b, i])).reshape([t, b, o])
    }
}

/// A trainable parameter (gradients are tracked when `value` lives on an autodiff device).
pub(crate) fn param<const D: usize>(value: Tensor<D>) -> Param<Tensor<D>> {
    let learn = value.device().is_autodiff();
    Param::initialized(ParamId::new(), value).set_require_grad(learn)
}
