//! The cross-entropy of [`super::cross_entropy`] as a burn op with a hand-written backward.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Flex, Shape};

use super::cross_entropy;
use super::op::{register, tensor, values};

/// What a cross-entropy call needs besides the logits.
#[derive(Debug, Clone)]
pub struct CrossEntropySpec {
    /// One target class per batch row; row `r` of the logits has `targets[r % len]`.
    pub targets: Arc<[usize]>,
    /// The factor `s` of `L = −s·Σ_r log softmax(x_r)[y_r]`.
    pub scale: f32,
}

/// Backends that take a cross-entropy over rows of logits in one op.
#[backend_extension(Flex, Autodiff)]
pub trait LossBackend: Backend {
    /// `logits` `[rows, C]`, every target below `C`. Returns the loss, `[1]`.
    fn cross_entropy(logits: FloatTensor<Self>, spec: CrossEntropySpec) -> FloatTensor<Self>;
}

/// The loss and the softmax of `logits`, `[rows, C]`.
fn run(logits: FlexTensor, spec: &CrossEntropySpec) -> (FlexTensor, Vec<f32>, [usize; 2]) {
    let shape = logits.layout().shape().clone();
    let (x, dtype) = values(logits);
    let (loss, probs) =
        cross_entropy::forward(x.storage::<f32>(), shape[1], &spec.targets, spec.scale);
    let loss = tensor(vec![loss], Shape::from(vec![1]), dtype);
    (loss, probs, [shape[0], shape[1]])
}

impl LossBackend for Flex {
    fn cross_entropy(logits: FlexTensor, spec: CrossEntropySpec) -> FlexTensor {
        run(logits, &spec).0
    }
}

#[derive(Debug)]
struct CrossEntropyBackward;

impl Backward<Flex, 1> for CrossEntropyBackward {
    type State = (Vec<f32>, [usize; 2], CrossEntropySpec, burn::backend::DType);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let (probs, [rows, c], spec, dtype) = ops.state;
        let (grad, _) = values(grad);
        let g = grad.storage::<f32>()[0];
        let dx = cross_entropy::backward(&probs, c, &spec.targets, spec.scale, g);
        register!(
            grads,
            ops.parents,
            [(dx, Shape::from(vec![rows, c]))],
            dtype
        );
    }
}

impl<C: CheckpointStrategy> LossBackend for Autodiff<Flex, C> {
    fn cross_entropy(logits: FloatTensor<Self>, spec: CrossEntropySpec) -> FloatTensor<Self> {
        let (logits, node) = logits.into_parts();
        match CrossEntropyBackward
            .prepare::<C>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let dtype = logits.dtype();
                let (loss, probs, dims) = run(logits, &spec);
                prep.finish((probs, dims, spec, dtype), loss)
            }
            OpsKind::UnTracked(prep) => prep.finish(run(logits, &spec).0),
        }
    }
}
