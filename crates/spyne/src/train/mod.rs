//! Training a feed-forward SNN on an image-classification set (the reference job).

pub mod config;
pub mod metrics;
pub mod model;
pub mod params;
pub mod trainer;

pub use config::TrainConfig;
pub use model::{Recording, SpikingMlp};
pub use trainer::{evaluate, load_model, Progress, StepReport, Trainer};
