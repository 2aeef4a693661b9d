//! The fused kernels as a burn op with a hand-written backward (burn's backend extension):
//! implemented for the Flex CPU backend and for autodiff over it.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Bytes, DType, Flex, Shape};

use super::adam::{self, AdamStep};
use super::lif::{self, LifSpec};
use super::lif_linear;

/// Backends that run a Leaky or Synaptic layer over a sequence in one op.
#[backend_extension(Flex, Autodiff)]
pub trait FusedLifBackend: Backend {
    /// `input`: `[T, B, N]`, or `[B, N]` when `spec.static_input`; `params`: `[rows, N]`
    /// (`[β, θ]` or `[α, β, θ]`); `init`: the initial state `[S, B, N]` when `spec.init`
    /// (anything otherwise). Returns [`LifSpec::output_planes`] planes `[·, B, N]`: spikes,
    /// then membranes when `spec.mems`, then the final state when `spec.final_state`.
    fn fused_lif(
        input: FloatTensor<Self>,
        params: FloatTensor<Self>,
        init: FloatTensor<Self>,
        spec: LifSpec,
    ) -> FloatTensor<Self>;

    /// The same layer followed by a Linear layer without bias: `weight` is `[N, M]`; returns
    /// a flat tensor: the next layer's currents `[T, B, M]`, then the layer's final state
    /// `[S, B, N]` when `spec.final_state`.
    fn fused_lif_linear(
        input: FloatTensor<Self>,
        params: FloatTensor<Self>,
        init: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        spec: LifSpec,
    ) -> FloatTensor<Self>;
}

/// Backends that apply one Adam step to a parameter in one op (no gradient flows through it).
#[backend_extension(Flex)]
pub trait FusedAdamBackend: Backend {
    /// `param`, `grad` and the moments `m`, `v` share one shape. Returns the new parameter
    /// and the new moments.
    fn fused_adam(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        m: FloatTensor<Self>,
        v: FloatTensor<Self>,
        step: AdamStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

impl FusedAdamBackend for Flex {
    fn fused_adam(
        param: FlexTensor,
        grad: FlexTensor,
        m: FlexTensor,
        v: FlexTensor,
        step: AdamStep,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let shape = param.layout().shape().clone();
        let (param, dtype) = values(param);
        let (grad, _) = values(grad);
        // The moments are the optimizer's own: updated in place unless shared (then copied).
        let (mut m, m_dtype) = values(m);
        let (mut v, v_dtype) = values(v);
        let out = adam::update(
            param.storage::<f32>(),
            grad.storage::<f32>(),
            m.storage_mut::<f32>(),
            v.storage_mut::<f32>(),
            step,
        );
        (
            tensor(out, shape, dtype),
            as_dtype(m, m_dtype),
            as_dtype(v, v_dtype),
        )
    }
}

/// The logical values of a Flex tensor as `f32`, row-major.
pub(super) fn values(t: FlexTensor) -> (FlexTensor, DType) {
    let dtype = t.dtype();
    (as_dtype(t, DType::F32).to_contiguous(), dtype)
}

/// `values` back as a tensor of `shape` in the caller's `dtype`.
pub(super) fn tensor(v: Vec<f32>, shape: Shape, dtype: DType) -> FlexTensor {
    let t = FlexTensor::new(Bytes::from_elems(v), Layout::contiguous(shape), DType::F32);
    as_dtype(t, dtype)
}

/// `t` cast to the float type `dtype` (unchanged when it already is).
fn as_dtype(t: FlexTensor, dtype: DType) -> FlexTensor {
    if t.dtype() == dtype {
        t
    } else {
        Flex::float_cast(t, dtype.into())
    }
}

impl FusedLifBackend for Flex {
    fn fused_lif(
        input: FlexTensor,
        params: FlexTensor,
        init: FlexTensor,
        spec: LifSpec,
    ) -> FlexTensor {
        let (input, dtype) = values(input);
        let (params, _) = values(params);
        let (init, _) = values(init);
        let out = lif::forward(
            &spec,
            input.storage::<f32>(),
            params.storage::<f32>(),
            init.storage::<f32>(),
        );
        let shape = Shape::from(vec![spec.output_planes(), spec.batch, spec.features]);
        tensor(out, shape, dtype)
    }

    fn fused_lif_linear(
        input: FlexTensor,
        params: FlexTensor,
        init: FlexTensor,
        weight: FlexTensor,
        spec: LifSpec,
    ) -> FlexTensor {
        let m = weight.layout().shape()[1];
        let (input, dtype) = values(input);
        let (params, _) = values(params);
        let (init, _) = values(init);
        let (weight, _) = values(weight);
        let out = lif_linear::forward(
            &spec,
            input.storage::<f32>(),
            params.storage::<f32>(),
            init.storage::<f32>(),
            weight.storage::<f32>(),
            m,
        );
        let len = out.len();
        tensor(out, Shape::from(vec![len]), dtype)
    }
}

/// Registers each computed gradient `(values, shape)` with its parent node, when the parent
/// is tracked. (A macro: autodiff's node type cannot be named outside burn.)
macro_rules! register {
    ($grads:expr, $parents:expr, $computed:expr, $dtype:expr) => {
        for (node, (values, shape)) in $parents.into_iter().zip($computed) {
            if let Some(node) = node {
                $grads.register::<Flex>(node.id, tensor(values, shape, $dtype));
            }
        }
    };
}
pub(super) use register;

#[derive(Debug)]
struct FusedLifLinearBackward;

impl Backward<Flex, 4> for FusedLifLinearBackward {
    type State = (FlexTensor, FlexTensor, FlexTensor, FlexTensor, LifSpec);

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let (input, params, init, weight, spec) = ops.state;
        let shapes = [&input, &params, &init, &weight].map(|t| t.layout().shape().clone());
        let m = shapes[3][1];
        let (input, dtype) = values(input);
        let (params, _) = values(params);
        let (init, _) = values(init);
        let (weight, _) = values(weight);
        let (grad, _) = values(grad);
        let g = lif_linear::backward(
            &spec,
            input.storage::<f32>(),
            params.storage::<f32>(),
            init.storage::<f32>(),
            (weight.storage::<f32>(), m),
            grad.storage::<f32>(),
        );
        let [si, sp, s0, sw] = shapes;
        let computed = [(g.input, si), (g.params, sp), (g.init, s0), (g.weight, sw)];
        register!(grads, ops.parents, computed, dtype);
    }
}

#[derive(Debug)]
struct FusedLifBackward;

impl Backward<Flex, 3> for FusedLifBackward {
    type State = (FlexTensor, FlexTensor, FlexTensor, LifSpec);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let (input, params, init, spec) = ops.state;
        let shapes = [&input, &params, &init].map(|t| t.layout().shape().clone());
        let (input, dtype) = values(input);
        let (params, _) = values(params);
        let (init, _) = values(init);
        let (grad, _) = values(grad);
        let g = lif::backward(
            &spec,
            input.storage::<f32>(),
            params.storage::<f32>(),
            init.storage::<f32>(),
            grad.storage::<f32>(),
        );
        let [si, sp, s0] = shapes;
        let computed = [(g.input, si), (g.params, sp), (g.init, s0)];
        register!(grads, ops.parents, computed, dtype);
    }
}

impl<C: CheckpointStrategy> FusedLifBackend for Autodiff<Flex, C> {
    fn fused_lif(
        input: FloatTensor<Self>,
        params: FloatTensor<Self>,
        init: FloatTensor<Self>,
        spec: LifSpec,
    ) -> FloatTensor<Self> {
        let (input, input_node) = input.into_parts();
        let (params, params_node) = params.into_parts();
        let (init, init_node) = init.into_parts();
        match FusedLifBackward
            .prepare::<C>([input_node, params_node, init_node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let out = <Flex as FusedLifBackend>::fused_lif(
                    input.clone(),
                    params.clone(),
                    init.clone(),
                    spec.clone(),
                );
                // The backward recomputes membranes from the input: nothing else is kept.
                prep.finish((input, params, init, spec), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(<Flex as FusedLifBackend>::fused_lif(
                input, params, init, spec,
            )),
        }
    }

    fn fused_lif_linear(
        input: FloatTensor<Self>,
        params: FloatTensor<Self>,
        init: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        spec: LifSpec,
    ) -> FloatTensor<Self> {
        let (input, input_node) = input.into_parts();
        let (params, params_node) = params.into_parts();
        let (init, init_node) = init.into_parts();
        let (weight, weight_node) = weight.into_parts();
        let nodes = [input_node, params_node, init_node, weight_node];
        match FusedLifLinearBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let out = <Flex as FusedLifBackend>::fused_lif_linear(
                    input.clone(),
                    params.clone(),
                    init.clone(),
                    weight.clone(),
                    spec.clone(),
                );
                prep.finish((input, params, init, weight, spec), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(<Flex as FusedLifBackend>::fused_lif_linear(
                input, params, init, weight, spec,
            )),
        }
    }
}
