//! What the trainer reads: a labelled set it can draw mini-batches from.

use super::batch::Batch;
use super::mnist::Split;

/// A labelled data set of fixed-shape samples.
///
/// Image sets (any IDX set with MNIST's layout: MNIST, Fashion-MNIST, KMNIST) give static
/// samples that the run's encoding turns into sequences; an event set (spike trains from a
/// camera or a cochlea) gives batches whose samples already are sequences
/// ([`Batch::steps`]), and plugs in by implementing this trait.
pub trait Dataset {
    /// The number of samples.
    fn len(&self) -> usize;

    /// Whether the set is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One sample's shape at one step.
    fn sample_shape(&self) -> Vec<usize>;

    /// The number of classes (labels are below it).
    fn classes(&self) -> usize;

    /// The samples at `indices`, in that order.
    fn batch(&self, indices: &[usize]) -> Batch;
}

impl Dataset for Split {
    fn len(&self) -> usize {
        Split::len(self)
    }

    fn sample_shape(&self) -> Vec<usize> {
        vec![1, self.rows, self.cols]
    }

    fn classes(&self) -> usize {
        self.labels.iter().max().map_or(0, |&m| m as usize + 1)
    }

    fn batch(&self, indices: &[usize]) -> Batch {
        Batch::gather(self, indices)
    }
}
