//! Mini-batches: seeded shuffling, `drop_last`, and pixel scaling.

use super::mnist::Split;
use crate::rng::{Rng, TorchRng};

/// One mini-batch on the host.
///
/// Static samples (images: `steps` is `None`) are `[len, features]` values that the run's
/// encoding turns into a sequence; sequence samples (event data: `steps` is `Some(T)`) are
/// `[T, len, features]` values fed as they are.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The values, row-major (pixels scaled to `[0, 1]` for images).
    pub values: Vec<f32>,
    /// One class index per sample.
    pub labels: Vec<usize>,
    /// One sample's shape at one step (`[1, 28, 28]` for MNIST).
    pub shape: Vec<usize>,
    /// `Some(T)` when every sample is already a sequence of `T` steps.
    pub steps: Option<usize>,
}

impl Batch {
    /// Static samples: `values` is `[labels.len(), shape…]`.
    pub fn samples(values: Vec<f32>, labels: Vec<usize>, shape: Vec<usize>) -> Batch {
        Batch {
            values,
            labels,
            shape,
            steps: None,
        }
    }

    /// Gathers the images at `indices` from `split`.
    pub fn gather(split: &Split, indices: &[usize]) -> Batch {
        let pixels = split.pixels();
        let mut images = Vec::with_capacity(indices.len() * pixels);
        for &i in indices {
            images.extend(split.image(i).iter().map(|&p| p as f32 / 255.0));
        }
        Batch::samples(
            images,
            indices.iter().map(|&i| split.labels[i] as usize).collect(),
            vec![1, split.rows, split.cols],
        )
    }

    /// Values per sample and step.
    pub fn features(&self) -> usize {
        self.shape.iter().product()
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// The order of one epoch: a permutation of the split's indices cut into batches.
///
/// Like PyTorch's `DataLoader(shuffle=True, drop_last=True)`: a trailing partial batch is
/// dropped when `drop_last` is set.
#[derive(Debug, Clone)]
pub struct EpochOrder {
    order: Vec<usize>,
    batch_size: usize,
    drop_last: bool,
}

impl EpochOrder {
    /// A shuffled order of `0..n` drawn from `rng` (or the identity when `rng` is `None`).
    pub fn new(n: usize, batch_size: usize, drop_last: bool, rng: Option<&mut Rng>) -> Self {
        let mut order: Vec<usize> = (0..n).collect();
        if let Some(rng) = rng {
            rng.shuffle(&mut order);
        }
        EpochOrder::from_order(order, batch_size, drop_last)
    }

    /// The order `torch.randperm(n, generator)` gives with this generator: the `DataLoader`
    /// order of a PyTorch script that shuffles with the same seeded generator.
    pub fn torch(n: usize, batch_size: usize, drop_last: bool, rng: &mut TorchRng) -> Self {
        EpochOrder::from_order(rng.randperm(n), batch_size, drop_last)
    }

    /// A given order of sample indices, cut into batches of `batch_size` (> 0).
    pub fn from_order(order: Vec<usize>, batch_size: usize, drop_last: bool) -> Self {
        assert!(
            batch_size > 0,
            "batch_size must be positive (validated by callers)"
        );
        EpochOrder {
            order,
            batch_size,
            drop_last,
        }
    }

    /// The number of batches in the epoch.
    pub fn num_batches(&self) -> usize {
        if self.drop_last {
            self.order.len() / self.batch_size
        } else {
            self.order.len().div_ceil(self.batch_size)
        }
    }

    /// The indices of batch `i` (`i < num_batches()`).
    pub fn batch_indices(&self, i: usize) -> &[usize] {
        let start = i * self.batch_size;
        let end = (start + self.batch_size).min(self.order.len());
        &self.order[start..end]
    }
}
