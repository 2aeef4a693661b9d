//! The convolution kernel ([`super::conv`]) as a burn op with a hand-written backward.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, DType, Flex, Shape};

use super::conv::{self, ConvInput, ConvSpec, InputBits};
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

/// The forward pass, with the pooling's arg-max positions (empty without a pool) and the
/// input as bits where it took the spike-driven pass.
fn forward(
    x: &FlexTensor,
    weight: FlexTensor,
    bias: FlexTensor,
    spec: &ConvSpec,
) -> (FlexTensor, Vec<u32>, Option<InputBits>) {
    let (x, dtype) = values(x.clone());
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
        out.spikes,
    )
}

impl ConvBackend for Flex {
    fn conv2d(x: FlexTensor, weight: FlexTensor, bias: FlexTensor, spec: ConvSpec) -> FlexTensor {
        forward(&x, weight, bias, &spec).0
    }
}

/// What the backward pass keeps of the input.
#[derive(Debug, Clone)]
enum Kept {
    /// The values.
    Values(FlexTensor),
    /// The forward pass's bits of binary spikes (1/32 of the values' bytes), where the
    /// backward pass takes the same path.
    Spikes(InputBits),
}

#[derive(Debug)]
struct ConvBackward;

impl Backward<Flex, 3> for ConvBackward {
    /// The input, its shape and float type, the weights, the bias's shape, the call and
    /// the pool's winners.
    type State = (Kept, (Shape, DType), FlexTensor, Shape, ConvSpec, Vec<u32>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let (kept, (x_shape, dtype), weight, bias_shape, spec, arg) = ops.state;
        let shapes = [x_shape, weight.layout().shape().clone(), bias_shape];
        let (weight, _) = values(weight);
        let (grad, _) = values(grad);
        let [node_x, node_w, node_b] = ops.parents;
        let x;
        let input = match &kept {
            Kept::Spikes(bits) => ConvInput::Spikes(bits),
            Kept::Values(kept_x) => {
                x = values(kept_x.clone()).0;
                ConvInput::Values(x.storage::<f32>())
            }
        };
        let g = conv::backward(
            &spec,
            &arg,
            input,
            weight.storage::<f32>(),
            grad.storage::<f32>(),
            node_x.is_some(),
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
                let (y, arg, spikes) = forward(&x, weight.clone(), bias.clone(), &spec);
                let x_meta = (x.layout().shape().clone(), x.dtype());
                let bias_shape = bias.layout().shape().clone();
                // Nothing but the input (as bits where the backward pass takes it as the
                // same spikes) and the pool's winners is kept for the backward pass.
                let kept = match spikes {
                    Some(bits) if spec.backward == spec.forward => Kept::Spikes(bits),
                    _ => Kept::Values(x),
                };
                prep.finish((kept, x_meta, weight, bias_shape, spec, arg), y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(<Flex as ConvBackend>::conv2d(x, weight, bias, spec))
            }
        }
    }
}
