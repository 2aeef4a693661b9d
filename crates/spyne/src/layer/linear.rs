//! The fully connected layer: burn-nn's `Linear`, initialised as PyTorch's `nn.Linear`.

use burn::module::{Param, ParamId};
use burn::tensor::{Device, Tensor, TensorData};

pub use burn::nn::Linear;

use super::SeqLayer;
use crate::error::{Error, Result};
use crate::kernel;
use crate::rng::{linear_bounds, UniformSource};
use crate::run::Run;
use crate::seq::Seq;

/// A `d_in → d_out` layer initialised like PyTorch's `nn.Linear`: weight and bias uniform in
/// `[−1/√in, 1/√in)`, drawn from `rng` (weights first, in PyTorch's `[out, in]` order, so the
/// same stream gives the same layer in both layouts; with a [`crate::rng::TorchRng`] seeded
/// like `torch.manual_seed(s)` the values are PyTorch's, bit for bit). burn stores the
/// weight `[in, out]`.
pub fn torch_linear(
    d_in: usize,
    d_out: usize,
    bias: bool,
    rng: &mut impl UniformSource,
    device: &Device,
) -> Result<Linear> {
    let weights = checked_len(&[d_in, d_out], "linear")?;
    let (kw, kb) = linear_bounds(d_in);
    let torch_order = draw(weights, kw, rng)?;
    let b = if bias {
        Some(draw(d_out, kb, rng)?)
    } else {
        None
    };
    linear_from_torch(&torch_order, b.as_deref(), d_in, d_out, device)
}

/// A layer from PyTorch-layout values: `weight` is `[out, in]` row-major.
pub fn linear_from_torch(
    weight: &[f32],
    bias: Option<&[f32]>,
    d_in: usize,
    d_out: usize,
    device: &Device,
) -> Result<Linear> {
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

/// The product of `dims`, refusing zero sizes and counts that overflow or that no machine
/// could hold (more than 2⁴⁰ values).
pub(crate) fn checked_len(dims: &[usize], layer: &'static str) -> Result<usize> {
    if dims.contains(&0) {
        return Err(Error::invalid(
            layer,
            format!("sizes must be positive, got {dims:?}"),
        ));
    }
    dims.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= 1 << 40)
        .ok_or_else(|| {
            Error::invalid(
                layer,
                format!(
                    "{dims:?} is too large ({} values)",
                    dims.iter().map(|&d| d as f64).product::<f64>()
                ),
            )
        })
}

/// `n` values uniform in `[−k, k)`, failing cleanly when the memory is not there.
pub(crate) fn draw(n: usize, k: f32, rng: &mut impl UniformSource) -> Result<Vec<f32>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        Error::invalid(
            "model",
            format!("cannot allocate {n} weights ({:.1} GB)", n as f64 * 4e-9),
        )
    })?;
    v.extend((0..n).map(|_| rng.uniform_in(-k, k)));
    Ok(v)
}

/// A trainable parameter (gradients are tracked when `value` lives on an autodiff device).
pub(crate) fn param<const D: usize>(value: Tensor<D>) -> Param<Tensor<D>> {
    let learn = value.device().is_autodiff();
    Param::initialized(ParamId::new(), value).set_require_grad(learn)
}

impl SeqLayer for Linear {
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let [d_in, d_out] = self.weight.dims();
        if input != [d_in] {
            return Err(Error::Shape {
                context: "linear layer input",
                expected: vec![d_in],
                got: input.to_vec(),
            });
        }
        Ok(vec![d_out])
    }

    /// `[T, B, in] → [T, B, out]`, as one `[T·B, in]` product (one `[B, in]` product for a
    /// constant input).
    ///
    /// Binary spikes at most [`kernel::SPARSE_LINEAR_DENSITY`] dense take the spike-driven
    /// kernel on the CPU backend (unless the run is [`Run::composed`]): the sum of the weight
    /// rows of the inputs that fired, forward and for the weight gradient. Any other input
    /// there takes [`kernel::dense_linear`]: burn's product and bias as one op, without the
    /// zeroed copies burn makes of each output.
    fn forward_seq(&self, x: Seq, run: &mut Run) -> Result<Seq> {
        let shape = self.output_shape(x.shape())?;
        if run.fused_allowed() {
            if let Some(index) = x.active_inputs(kernel::SPARSE_LINEAR_DENSITY) {
                run.count_sparse();
                let bias = self.bias.as_ref().map(|b| b.val());
                let y = kernel::spike_linear(x.data().clone(), index, self.weight.val(), bias);
                return Ok(x.map(y, shape));
            }
        }
        if run.fused_allowed() && kernel::supports(&x.data().device()) {
            // The dense op: burn's product and bias, without its copies.
            let bias = self.bias.as_ref().map(|b| b.val());
            let y = kernel::dense_linear(x.data().clone(), self.weight.val(), bias);
            return Ok(x.map(y, shape));
        }
        let y = self.forward(x.data().clone());
        Ok(x.map(y, shape))
    }
}
