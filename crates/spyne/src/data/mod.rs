//! Data: the IDX format, MNIST sources and mini-batches.

pub mod batch;
pub mod idx;
pub mod mnist;

pub use batch::{Batch, EpochOrder};
pub use idx::{read_idx, IdxArray};
pub use mnist::{locate, Mnist, Split};
