//! `spyne export` and `spyne import`: NIR files to and from run directories.

use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::tensor::Device;
use clap::Args;
use spyne::nir::{self, Convention, ExportOptions, ImportOptions};
use spyne::train::{load_network, CheckpointDir, TrainConfig, Trainer};

/// Arguments of `spyne export`.
#[derive(Args)]
pub struct ExportArgs {
    /// A run directory, its checkpoint directory, or a model.safetensors file.
    #[arg(long)]
    model: PathBuf,
    /// The NIR file to write.
    #[arg(long)]
    out: PathBuf,
    /// The time step in seconds that maps β onto τ (snntorch's 1e-4 by default).
    #[arg(long, default_value_t = nir::DEFAULT_DT)]
    dt: f64,
}

/// Arguments of `spyne import`.
#[derive(Args)]
pub struct ImportArgs {
    /// The NIR file to read.
    file: PathBuf,
    /// The run directory to write (for `eval`, `plot` and `train --resume`).
    #[arg(long)]
    out: PathBuf,
    /// The time step in seconds that maps τ onto β (default: the file's own, else 1e-4,
    /// or 1e-3 for Norse's files).
    #[arg(long)]
    dt: Option<f64>,
    /// Whose meaning the file's neurons follow: `nir` (the standard), `snntorch` (its
    /// Synaptic and recurrent layers ran snntorch's zero reset) or `norse` (Norse 1.1's
    /// `to_nir`, which writes dt·τ for τ).
    #[arg(long, default_value = "nir")]
    convention: Convention,
}

/// Runs `spyne export`.
pub fn export(args: ExportArgs) -> Result<()> {
    let (_, net) = load_network(&args.model, &Device::flex())
        .with_context(|| format!("loading the model from {}", args.model.display()))?;
    let exported = nir::write(&args.out, &net, &ExportOptions { dt: args.dt })
        .with_context(|| format!("exporting to {}", args.out.display()))?;
    for w in &exported.warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "wrote {} ({} nodes, dt = {})",
        args.out.display(),
        exported.graph.nodes.len(),
        args.dt
    );
    Ok(())
}

/// Reads a NIR file (of NIR's own convention, with the file's dt) as a network, with the
/// context the CLI reports.
pub fn read(file: &std::path::Path) -> Result<nir::Imported> {
    read_with(file, &ImportOptions::default())
}

fn read_with(file: &std::path::Path, options: &ImportOptions) -> Result<nir::Imported> {
    nir::read(file, options).with_context(|| format!("importing {}", file.display()))
}

/// Runs `spyne import`.
pub fn import(args: ImportArgs) -> Result<()> {
    let options = ImportOptions {
        dt: args.dt,
        convention: args.convention,
    };
    let imported = read_with(&args.file, &options)?;
    let net = imported
        .network(&Device::flex().autodiff())
        .with_context(|| format!("building the model of {}", args.file.display()))?;
    let table = spyne::model::summary(&net).to_string();
    let trainer = Trainer::new(TrainConfig::default(), net)?;
    CheckpointDir::new(args.out.join("checkpoint"), None)
        .save(&trainer)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!("{table}");
    println!(
        "wrote the run directory {} (dt = {})",
        args.out.display(),
        imported.dt
    );
    Ok(())
}
