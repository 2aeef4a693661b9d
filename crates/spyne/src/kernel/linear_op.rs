//! The dense Linear layer ([`super::dense_linear`]) as a burn op with a hand-written
//! backward.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Flex, Shape};

use super::dense_linear::{self, Columns};
use super::op::{register, tensor, values};

/// Backends that run a dense Linear layer as one op.
#[backend_extension(Flex, Autodiff)]
pub trait LinearBackend: Backend {
    /// `x` `[rows, K]`, `weight` `[K, N]`, `bias` `[N]` when `has_bias` (anything
    /// otherwise). Returns `x·W (+ b)`, `[rows, N]`.
    fn dense_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        has_bias: bool,
    ) -> FloatTensor<Self>;
}

/// `[rows, K, N]` of a call.
fn dims(x: &FlexTensor, weight: &FlexTensor) -> [usize; 3] {
    let (sx, sw) = (x.layout().shape(), weight.layout().shape());
    [sx[0], sx[1], sw[1]]
}

/// The forward pass, and the input's [`Columns`] for the backward pass.
fn run(
    x: &FlexTensor,
    weight: FlexTensor,
    bias: FlexTensor,
    has_bias: bool,
) -> (FlexTensor, Option<Columns>) {
    let dims = dims(x, &weight);
    let (x, dtype) = values(x.clone());
    let (weight, _) = values(weight);
    let (bias, _) = values(bias);
    let b = if has_bias { bias.storage::<f32>() } else { &[] };
    let x = x.storage::<f32>();
    let cols = Columns::of(x, dims[0], dims[1]);
    let y = dense_linear::forward(x, weight.storage::<f32>(), b, dims, cols.as_ref());
    (tensor(y, Shape::from(vec![dims[0], dims[2]]), dtype), cols)
}

impl LinearBackend for Flex {
    fn dense_linear(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        has_bias: bool,
    ) -> FlexTensor {
        run(&x, weight, bias, has_bias).0
    }
}

#[derive(Debug)]
struct DenseLinearBackward;

impl Backward<Flex, 3> for DenseLinearBackward {
    type State = (FlexTensor, FlexTensor, [Shape; 3], bool, Option<Columns>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, weight, [sx, sw, sb], has_bias, cols) = ops.state;
        let dims = dims(&x, &weight);
        let (x, dtype) = values(x);
        let (weight, _) = values(weight);
        let (grad, _) = values(grad);
        let want_x = ops.parents[0].is_some();
        let g = dense_linear::backward(
            x.storage::<f32>(),
            weight.storage::<f32>(),
            grad.storage::<f32>(),
            dims,
            cols.as_ref(),
            (has_bias, want_x),
        );
        let computed = [
            (g.input.unwrap_or_default(), sx),
            (g.weight, sw),
            (g.bias, sb),
        ];
        register!(grads, ops.parents, computed, dtype);
    }
}

impl<C: CheckpointStrategy> LinearBackend for Autodiff<Flex, C> {
    fn dense_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        has_bias: bool,
    ) -> FloatTensor<Self> {
        let (x, x_node) = x.into_parts();
        let (weight, w_node) = weight.into_parts();
        let (bias, b_node) = bias.into_parts();
        let shapes = [&x, &weight, &bias].map(|t| t.layout().shape().clone());
        match DenseLinearBackward
            .prepare::<C>([x_node, w_node, b_node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (y, cols) = run(&x, weight.clone(), bias, has_bias);
                prep.finish((x, weight, shapes, has_bias, cols), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(run(&x, weight, bias, has_bias).0),
        }
    }
}
