//! # spyne
//!
//! Spiking neural networks trained with backpropagation through time (BPTT) and surrogate
//! gradients, on [burn](https://burn.dev).
//!
//! - [`neuron`]: leaky integrate-and-fire and friends, as recurrent cells whose state the
//!   caller owns, each running a whole sequence through a fused kernel where one exists.
//! - [`surrogate`]: the exact Heaviside forward with a smooth backward.
//! - [`layer`], [`seq`], [`run`]: multi-step layers over whole sequences.
//! - [`model`]: networks described once (TOML or Rust), and the trait for your own.
//! - [`train`]: one trainer for every model; [`data`], [`spikegen`], [`loss`], [`decode`].
//!
//! ```
//! use burn::tensor::{Device, Tensor};
//! use spyne::neuron::{LeakyConfig, Neuron};
//!
//! let device = Device::flex();
//! let lif = LeakyConfig::new(0.9).init(&device).unwrap();
//! let mut state = lif.init_state(1, 1, &device);
//! let mut spikes = Vec::new();
//! for _ in 0..4 {
//!     let (spk, next) = lif.step(Tensor::from_floats([[0.5]], &device), state).unwrap();
//!     spikes.push(spk.into_scalar::<f32>());
//!     state = next;
//! }
//! // U = 0.5, 0.95, 1.355 (spike), then 0.9·1.355 + 0.5 − 1 = 0.7195.
//! assert_eq!(spikes, vec![0.0, 0.0, 1.0, 0.0]);
//! ```
#![warn(missing_docs)]

pub mod data;
pub mod decode;
pub mod error;
pub mod fsutil;
pub mod kernel;
pub mod layer;
pub mod loss;
pub mod model;
pub mod neuron;
#[cfg(feature = "nir")]
pub mod nir;
pub mod optim;
#[cfg(feature = "plot")]
pub mod plot;
pub mod rng;
pub mod run;
pub mod seq;
pub mod setting;
pub mod spikegen;
pub mod surrogate;
pub mod tensor;
pub mod train;

pub use error::{Error, Result};
pub use model::{ModelSpec, Network, SpikingModel};
pub use run::{Output, Run};
pub use seq::Seq;
