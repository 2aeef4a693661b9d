//! The spike-driven kernels ([`super::spike_linear`], [`super::spike_lif`]) as burn ops with
//! hand-written backward passes.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, DType, Flex, Shape};

use super::op::{register, tensor, values};
use super::spike_lif::{self, Saved, SpikeLifSpec, Weights};
use super::spike_linear::{self, SpikeLinearSpec};

/// Backends that run layers over binary spikes from their active inputs.
#[backend_extension(Flex, Autodiff)]
pub trait SpikeBackend: Backend {
    /// A Linear layer over spikes `x` (`[rows, K]`, active entries in `spec.index`):
    /// `weight` `[K, N]`, `bias` `[N]` (anything when `!spec.bias`). Returns `[rows, N]`.
    fn spike_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        spec: SpikeLinearSpec,
    ) -> FloatTensor<Self>;

    /// Spikes `x` (`[T·B, K]`, active entries in `spec.index`) through a Linear layer
    /// (`w_in` `[K, N]`, `b_in` `[N]`) into a Leaky or Synaptic layer (`params` `[rows, N]`,
    /// `init` `[S, B, N]` when `spec.lif.init`) and, with `spec.outputs`, a Linear layer
    /// `w_out` `[N, M]`. Returns the flat output of [`SpikeLifSpec::output_len`].
    #[allow(clippy::too_many_arguments)]
    fn spike_lif(
        x: FloatTensor<Self>,
        w_in: FloatTensor<Self>,
        b_in: FloatTensor<Self>,
        params: FloatTensor<Self>,
        init: FloatTensor<Self>,
        w_out: FloatTensor<Self>,
        spec: SpikeLifSpec,
    ) -> FloatTensor<Self>;
}

/// The op's tensors as contiguous `f32` values, and the callers' dtype.
fn all_values<const N: usize>(ts: [FlexTensor; N]) -> ([FlexTensor; N], DType) {
    let dtype = ts[0].dtype();
    (ts.map(|t| values(t).0), dtype)
}

fn lif_weights<'a>(spec: &SpikeLifSpec, t: &'a [FlexTensor; 5]) -> Weights<'a> {
    let [w_in, b_in, params, init, w_out] = t.each_ref().map(|t| t.storage::<f32>());
    Weights {
        w_in,
        b_in: if spec.bias { b_in } else { &[] },
        params,
        init,
        w_out: if spec.outputs.is_some() { w_out } else { &[] },
    }
}

impl SpikeBackend for Flex {
    fn spike_linear(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        spec: SpikeLinearSpec,
    ) -> FlexTensor {
        let dtype = x.dtype();
        let ([weight, bias], _) = all_values([weight, bias]);
        let n = weight.layout().shape()[1];
        let b = if spec.bias {
            bias.storage::<f32>()
        } else {
            &[]
        };
        let y = spike_linear::forward(&spec.index, weight.storage::<f32>(), b, n);
        tensor(y, Shape::from(vec![spec.index.rows(), n]), dtype)
    }

    fn spike_lif(
        x: FlexTensor,
        w_in: FlexTensor,
        b_in: FlexTensor,
        params: FlexTensor,
        init: FlexTensor,
        w_out: FlexTensor,
        spec: SpikeLifSpec,
    ) -> FlexTensor {
        let dtype = x.dtype();
        let (t, _) = all_values([w_in, b_in, params, init, w_out]);
        let (out, _) = spike_lif::forward(&spec, &lif_weights(&spec, &t), false);
        let len = out.len();
        tensor(out, Shape::from(vec![len]), dtype)
    }
}

#[derive(Debug)]
struct SpikeLinearBackward;

impl Backward<Flex, 3> for SpikeLinearBackward {
    type State = (FlexTensor, [Shape; 3], SpikeLinearSpec);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let (weight, [sx, sw, sb], spec) = ops.state;
        let ([weight, grad], dtype) = all_values([weight, grad]);
        let n = sw[1];
        let want_x = ops.parents[0].is_some();
        let g = spike_linear::backward(
            &spec.index,
            weight.storage::<f32>(),
            grad.storage::<f32>(),
            n,
            (spec.bias, want_x),
        );
        let computed = [
            (g.input.unwrap_or_default(), sx),
            (g.weight, sw),
            (g.bias, sb),
        ];
        register!(grads, ops.parents, computed, dtype);
    }
}

#[derive(Debug)]
struct SpikeLifBackward;

impl Backward<Flex, 6> for SpikeLifBackward {
    type State = ([FlexTensor; 5], [Shape; 6], SpikeLifSpec, Saved);

    fn backward(self, ops: Ops<Self::State, 6>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let (t, shapes, spec, saved) = ops.state;
        let ([grad], dtype) = all_values([grad]);
        let want_x = ops.parents[0].is_some();
        let g = spike_lif::backward(
            &spec,
            &lif_weights(&spec, &t),
            &saved,
            grad.storage::<f32>(),
            want_x,
        );
        let [sx, sw, sb, sp, s0, so] = shapes;
        let computed = [
            (g.input.unwrap_or_default(), sx),
            (g.w_in, sw),
            (g.b_in, sb),
            (g.params, sp),
            (g.init, s0),
            (g.w_out, so),
        ];
        register!(grads, ops.parents, computed, dtype);
    }
}

impl<C: CheckpointStrategy> SpikeBackend for Autodiff<Flex, C> {
    fn spike_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        spec: SpikeLinearSpec,
    ) -> FloatTensor<Self> {
        let (x, x_node) = x.into_parts();
        let (weight, w_node) = weight.into_parts();
        let (bias, b_node) = bias.into_parts();
        let shapes = [&x, &weight, &bias].map(|t| t.layout().shape().clone());
        match SpikeLinearBackward
            .prepare::<C>([x_node, w_node, b_node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = <Flex as SpikeBackend>::spike_linear(x, weight.clone(), bias, spec.clone());
                // The backward needs the weights and the index, not the input.
                prep.finish((weight, shapes, spec), y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(<Flex as SpikeBackend>::spike_linear(x, weight, bias, spec))
            }
        }
    }

    fn spike_lif(
        x: FloatTensor<Self>,
        w_in: FloatTensor<Self>,
        b_in: FloatTensor<Self>,
        params: FloatTensor<Self>,
        init: FloatTensor<Self>,
        w_out: FloatTensor<Self>,
        spec: SpikeLifSpec,
    ) -> FloatTensor<Self> {
        let parts = [x, w_in, b_in, params, init, w_out].map(|t| t.into_parts());
        let shapes = parts.each_ref().map(|(t, _)| t.layout().shape().clone());
        let [(x, nx), (w_in, nw), (b_in, nb), (params, np), (init, n0), (w_out, no)] = parts;
        match SpikeLifBackward
            .prepare::<C>([nx, nw, nb, np, n0, no])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let dtype = x.dtype();
                let (t, _) = all_values([w_in, b_in, params, init, w_out]);
                // The checkpoints (the state at each chunk's start) let the backward pass
                // recompute any chunk; the input is not kept, only its index.
                let (out, saved) = spike_lif::forward(&spec, &lif_weights(&spec, &t), true);
                let len = out.len();
                let out = tensor(out, Shape::from(vec![len]), dtype);
                prep.finish((t, shapes, spec, saved), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(<Flex as SpikeBackend>::spike_lif(
                x, w_in, b_in, params, init, w_out, spec,
            )),
        }
    }
}
