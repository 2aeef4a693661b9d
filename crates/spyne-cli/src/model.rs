//! `spyne model`: the summary table of a network (layer, type, output shape, parameters).

use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::tensor::Device;
use clap::Args;
use spyne::model::{presets, summary, ModelSpec};
use spyne::rng::TorchRng;
use spyne::train::{load_network, ModelFile};

/// Arguments of `spyne model`.
#[derive(Args)]
pub struct ModelArgs {
    /// `mlp`, `csnn`, a model file (TOML), a NIR file (.nir), or a run directory.
    model: String,
    /// Also print the description as TOML (a model file that builds this network).
    #[arg(long)]
    toml: bool,
}

/// The description behind `--model`: a preset, a model file or a saved run.
pub fn describe(choice: &str) -> Result<ModelSpec> {
    Ok(match choice {
        "mlp" => presets::mlp(784, &[1000], 10, &spyne::model::NeuronSpec::leaky(0.95)),
        "csnn" => presets::csnn(),
        path => {
            let p = PathBuf::from(path);
            if p.extension().is_some_and(|e| e == "nir") {
                crate::nir::read(&p)?.spec
            } else if p.is_dir() || p.extension().is_some_and(|e| e == "safetensors") {
                load_network(&p, &Device::flex())
                    .with_context(|| format!("loading the model from {}", p.display()))?
                    .1
                    .spec
            } else {
                ModelFile::read(&p)?.model
            }
        }
    })
}

/// Runs `spyne model`: builds the network (checking every layer) and prints its summary.
pub fn run(args: ModelArgs) -> Result<()> {
    let spec = describe(&args.model)?;
    print_summary(&spec)?;
    if args.toml {
        println!("\n{}", spec.resolved()?.to_toml());
    }
    Ok(())
}

/// Builds `spec` and prints its summary table.
pub fn print_summary(spec: &ModelSpec) -> Result<()> {
    let net = spec.init(&mut TorchRng::new(0), &Device::flex().autodiff())?;
    println!("{}", summary(&net));
    Ok(())
}
