//! The convolution kernel ([`super::conv`]) as a burn op with a hand-written backward.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Flex, Shape};

use super::conv::{self, ConvSpec};
use super::op::{tensor, values};

/// Backends that run a 2-D convolution through spyne's kernel.
#[backend_extension(Flex, Autodiff)]
pub trait ConvBackend: Backend {
    /// `x` `[N, C, H, W]`, `weight` `[O, C, KH, KW]`, `bias` `[O]` (anything when
    /// `!spec.bias`); returns [`ConvSpec::output_shape`] (max-pooled when `spec.pool`).
    fn conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        spec: ConvSpec,
    ) -> FloatTensor<Self>;
}

/// The forward pass, with the pooling's arg-max positions (empty without a pool) and
/// whether the input took the spike-driven pass.
fn forward(
    x: FlexTensor,
    weight: FlexTensor,
    bias: FlexTensor,
    spec: &ConvSpec,
) -> (FlexTensor, Vec<u32>, bool) {
    let (x, dtype) = values(x);
    let (weight, _) = values(weight);
    let (bias, _) = values(bias);
    let out = conv::forward(
        spec,
        x.storage::<f32>(),
        weight.storage::<f32>(),
        bias.storage::<f32>(),
    );
    (
        tensor(out.y, Shape::from(spec.output_shape().to_vec()), dtype),
        out.arg,
        out.spiking,
    )
}

impl ConvBackend for Flex {
    fn conv2d(x: FlexTensor, weight: FlexTensor, bias: FlexTensor, spec: ConvSpec) -> FlexTensor {
        forward(x, weight, bias, &spec).0
    }
}

#[derive(Debug)]
struct ConvBackward;

impl Backward<Flex, 3> for ConvBackward {
    /// The input, the weights, the bias's shape, the call, the pool's winners, and whether
    /// the forward pass took the input as sparse spikes.
    type State = (FlexTensor, FlexTensor, Shape, ConvSpec, Vec<u32>, bool);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, weight, bias_shape, spec, arg, forward_spiking) = ops.state;
        let shapes = [
            x.layout().shape().clone(),
            weight.layout().shape().clone(),
            bias_shape,
        ];
        let (x, dtype) = values(x);
        let (weight, _) = values(weight);
        let (grad, _) = values(grad);
        let [node_x, node_w, node_b] = ops.parents;
        // The same input and the same rule: no second pass over the input to measure it.
        let spiking = if spec.backward == spec.forward {
            forward_spiking
        } else {
            conv::spiking_input(x.storage::<f32>(), spec.backward)
        };
        let g = conv::backward(
            &spec,
            &arg,
            x.storage::<f32>(),
            weight.storage::<f32>(),
            grad.storage::<f32>(),
            node_x.is_some(),
            spiking,
        );
        let [sx, sw, sb] = shapes;
        for (node, (values, shape)) in
            [node_x, node_w, node_b]
                .into_iter()
                .zip([(g.input, sx), (g.weight, sw), (g.bias, sb)])
        {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, tensor(values, shape, dtype));
            }
        }
    }
}

impl<C: CheckpointStrategy> ConvBackend for Autodiff<Flex, C> {
    fn conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        spec: ConvSpec,
    ) -> FloatTensor<Self> {
        let (x, x_node) = x.into_parts();
        let (weight, w_node) = weight.into_parts();
        let (bias, b_node) = bias.into_parts();
        match ConvBackward
            .prepare::<C>([x_node, w_node, b_node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (y, arg, spiking) = forward(x.clone(), weight.clone(), bias.clone(), &spec);
                let bias_shape = bias.layout().shape().clone();
                // Nothing but the input and the pool's winners is kept for the backward pass.
                prep.finish((x, weight, bias_shape, spec, arg, spiking), y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(<Flex as ConvBackend>::conv2d(x, weight, bias, spec))
            }
        }
    }
}
