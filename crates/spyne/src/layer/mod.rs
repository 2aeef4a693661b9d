//! Stateless layers that feed neurons.

mod linear;

pub use linear::Linear;
