//! `spyne eval`: the test accuracy of a saved model.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::tensor::Device;
use clap::Args;
use spyne::data::Mnist;
use spyne::train::{evaluate, load_network, read_state, TrainConfig};

/// Arguments of `spyne eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// A run directory, its checkpoint directory, a model.safetensors file, or a NIR file.
    #[arg(long)]
    model: PathBuf,
    /// Directory holding the data set's four IDX files (else the run's own, then
    /// $SPYNE_DATA, then the cache).
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
    let device = Device::flex();
    let (config, model) = if args.model.extension().is_some_and(|e| e == "nir") {
        // A NIR file carries no training settings: tutorial 5's (25 steps, rate coding).
        let imported = crate::nir::read(&args.model)?;
        (TrainConfig::default(), imported.network(&device)?)
    } else {
        load_network(&args.model, &device)
            .with_context(|| format!("loading the model from {}", args.model.display()))?
    };
    let data = load_data(args.data.as_deref(), &args.model)?;
    let acc = evaluate(&model, &config, &data.test, args.batch_size.max(1))?;
    println!("test accuracy: {:.2}%", acc * 100.0);
    Ok(())
}

/// The data of a saved run: `--data` when given, else the directory the run trained on
/// (remembered in its checkpoint), else the usual sources.
pub fn load_data(explicit: Option<&Path>, run: &Path) -> Result<Mnist> {
    let remembered = checkpoint_dir(run)
        .and_then(|d| read_state(&d).ok())
        .and_then(|s| s.data);
    let dir = explicit.map(Path::to_path_buf).or(remembered);
    Mnist::locate_and_load(dir.as_deref()).context("loading the data set")
}

/// The checkpoint directory of a run directory (or the directory itself).
pub fn checkpoint_dir(p: &Path) -> Option<PathBuf> {
    let ckpt = p.join("checkpoint");
    if ckpt.is_dir() {
        Some(ckpt)
    } else if p.join("state.json").is_file() {
        Some(p.to_path_buf())
    } else {
        None
    }
}
