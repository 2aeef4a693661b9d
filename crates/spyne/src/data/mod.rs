//! Data: the IDX format, image sets (MNIST and sets with its layout), mini-batches, and the
//! [`Dataset`] trait the trainer reads.

pub mod batch;
pub mod dataset;
pub mod idx;
pub mod mnist;

pub use batch::{Batch, EpochOrder};
pub use dataset::Dataset;
pub use idx::{read_idx, IdxArray};
pub use mnist::{locate, Mnist, Split};
