//! One trainer for every model: encode → forward → loss → BPTT → Adam, evaluation, metrics,
//! atomic checkpoints and bit-exact resume.

pub mod checkpoint;
pub mod config;
pub mod forward;
pub mod metrics;
pub mod trainer;

pub use checkpoint::{load_network, read_state, CheckpointDir, CheckpointState, MODEL_FILE};
pub use config::{ModelFile, TrainConfig};
pub use trainer::{evaluate, Progress, StepReport, Trainer};
