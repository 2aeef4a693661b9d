//! The recurrent kernel ([`super::rlif`]) as a burn op with a hand-written backward.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Flex, Shape};

use super::op::{tensor, values};
use super::rlif::{self, RlifSpec};

/// Backends that run an RLeaky or RSynaptic layer over a sequence in one op.
#[backend_extension(Flex, Autodiff)]
pub trait FusedRlifBackend: Backend {
    /// `input` `[T, B, N]` (or `[1, B, N]` static), `params` `[5, N]` (`[α, β, θ, V, b]`),
    /// `weight` `[N, N]` (all-to-all; anything otherwise), `init` `[S, B, N]` when
    /// `spec.init`. Returns [`RlifSpec::output_planes`] planes `[·, B, N]`.
    fn fused_rlif(
        input: FloatTensor<Self>,
        params: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        init: FloatTensor<Self>,
        spec: RlifSpec,
    ) -> FloatTensor<Self>;
}

impl FusedRlifBackend for Flex {
    fn fused_rlif(
        input: FlexTensor,
        params: FlexTensor,
        weight: FlexTensor,
        init: FlexTensor,
        spec: RlifSpec,
    ) -> FlexTensor {
        let (input, dtype) = values(input);
        let (params, _) = values(params);
        let (weight, _) = values(weight);
        let (init, _) = values(init);
        let out = rlif::forward(
            &spec,
            input.storage::<f32>(),
            params.storage::<f32>(),
            weight.storage::<f32>(),
            init.storage::<f32>(),
        );
        let shape = Shape::from(vec![spec.output_planes(), spec.batch, spec.features]);
        tensor(out, shape, dtype)
    }
}

#[derive(Debug)]
struct RlifBackward;

impl Backward<Flex, 4> for RlifBackward {
    type State = (FlexTensor, FlexTensor, FlexTensor, FlexTensor, RlifSpec);

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let (input, params, weight, init, spec) = ops.state;
        let shapes = [&input, &params, &weight, &init].map(|t| t.layout().shape().clone());
        let (input, dtype) = values(input);
        let (params, _) = values(params);
        let (weight, _) = values(weight);
        let (init, _) = values(init);
        let (grad, _) = values(grad);
        let g = rlif::backward(
            &spec,
            input.storage::<f32>(),
            params.storage::<f32>(),
            weight.storage::<f32>(),
            init.storage::<f32>(),
            grad.storage::<f32>(),
        );
        let [si, sp, sw, s0] = shapes;
        let computed = [(g.input, si), (g.params, sp), (g.weight, sw), (g.init, s0)];
        for (node, (values, shape)) in ops.parents.into_iter().zip(computed) {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, tensor(values, shape, dtype));
            }
        }
    }
}

impl<C: CheckpointStrategy> FusedRlifBackend for Autodiff<Flex, C> {
    fn fused_rlif(
        input: FloatTensor<Self>,
        params: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        init: FloatTensor<Self>,
        spec: RlifSpec,
    ) -> FloatTensor<Self> {
        let (input, n0) = input.into_parts();
        let (params, n1) = params.into_parts();
        let (weight, n2) = weight.into_parts();
        let (init, n3) = init.into_parts();
        match RlifBackward
            .prepare::<C>([n0, n1, n2, n3])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let out = <Flex as FusedRlifBackend>::fused_rlif(
                    input.clone(),
                    params.clone(),
                    weight.clone(),
                    init.clone(),
                    spec.clone(),
                );
                // The backward recomputes every step from the input and the initial state.
                prep.finish((input, params, weight, init, spec), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(<Flex as FusedRlifBackend>::fused_rlif(
                input, params, weight, init, spec,
            )),
        }
    }
}
