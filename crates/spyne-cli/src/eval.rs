//! `spyne eval`: the test accuracy of a saved model.

use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::tensor::Device;
use clap::Args;
use spyne::data::Mnist;
use spyne::train::{evaluate, load_model};

/// Arguments of `spyne eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// A run directory, its checkpoint directory, or a model.safetensors file.
    #[arg(long)]
    model: PathBuf,
    /// Directory holding the MNIST files (else $SPYNE_DATA, else the cache).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Worker threads (0: all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Samples per evaluation batch.
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
}

/// Runs `spyne eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    crate::threads::init(args.threads)?;
    let path = model_path(&args.model);
    let device = Device::flex();
    let (config, model) = load_model(&path, &device)
        .with_context(|| format!("loading the model from {}", path.display()))?;
    let data = Mnist::locate_and_load(args.data.as_deref()).context("loading MNIST")?;
    let acc = evaluate(&model, &config, &data.test, args.batch_size.max(1))?;
    println!("test accuracy: {:.2}%", acc * 100.0);
    Ok(())
}

/// Accepts a run directory (with `checkpoint/`), a checkpoint directory, or a file.
pub fn model_path(p: &std::path::Path) -> PathBuf {
    let ckpt = p.join("checkpoint");
    if ckpt.is_dir() {
        ckpt
    } else {
        p.to_path_buf()
    }
}
