//! `spyne bench`: time the reference training iteration.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::tensor::Device;
use clap::Args;
use spyne::data::{Batch, EpochOrder, Mnist};
use spyne::rng::Rng;
use spyne::train::Trainer;

use crate::settings::{ModelChoice, Settings};

/// Arguments of `spyne bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// The network: `mlp` (tutorial 5, the reference job), `csnn` (tutorial 6) or a model
    /// file; its own training settings apply.
    #[arg(long, default_value = "mlp")]
    model: String,
    /// Directory holding the MNIST files (else $SPYNE_DATA, else the cache, else download).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Worker threads (0: all cores).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Timed iterations per repeat.
    #[arg(long, default_value_t = 30)]
    iters: usize,
    /// Repeats (min and median are over all timed iterations).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Untimed warm-up iterations.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// `fused` (default: the kernels where they apply) or `composed` (tensor ops per step).
    #[arg(long, default_value = "fused")]
    path: String,
    /// Batch size [default: the model's, 128].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Truncated BPTT window [default: none].
    #[arg(long)]
    tbptt: Option<usize>,
    /// Time every layer that has a kernel, fused and composed, instead (one line each).
    #[arg(long)]
    layers: bool,
}

/// Runs `spyne bench`: prints one JSON line.
pub fn run(args: BenchArgs) -> Result<()> {
    let threads = crate::threads::init(args.threads)?;
    if args.layers {
        return crate::bench_layers::run(args.iters.clamp(3, 30));
    }
    let composed = match args.path.as_str() {
        "fused" => false,
        "composed" => true,
        other => anyhow::bail!("unknown --path '{other}' (expected fused or composed)"),
    };
    let data = Mnist::locate_and_load(args.data.as_deref()).context("loading MNIST")?;
    let settings = Settings {
        batch_size: args.batch_size,
        tbptt: args.tbptt,
        ..Settings::default()
    };
    let (config, spec) = ModelChoice::parse(&args.model).resolve(&settings, &data.train)?;
    let batch_size = config.batch_size;
    let mut trainer = Trainer::from_spec(config, &spec, &Device::flex())?;
    trainer.composed = composed;
    let order = EpochOrder::new(data.train.len(), batch_size, true, Some(&mut Rng::new(0)));
    let batches: Vec<Batch> = (0..order.num_batches().min(64))
        .map(|i| Batch::gather(&data.train, order.batch_indices(i)))
        .collect();
    let mut rng = Rng::new(1);
    let mut k = 0usize;
    let mut step = |trainer: &mut Trainer<_>| -> Result<f64> {
        let t0 = Instant::now();
        trainer.train_step(&batches[k % batches.len()], &mut rng)?;
        k += 1;
        Ok(t0.elapsed().as_secs_f64() * 1e3)
    };
    for _ in 0..args.warmup {
        step(&mut trainer)?;
    }
    let mut times = Vec::new();
    for _ in 0..args.repeats.max(1) {
        for _ in 0..args.iters.max(1) {
            times.push(step(&mut trainer)?);
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let line = serde_json::json!({
        "system": "spyne",
        "version": env!("CARGO_PKG_VERSION"),
        "model": args.model,
        "path": trainer.last_path().name(),
        "fused_layers": trainer.last_path().fused,
        "composed_layers": trainer.last_path().composed,
        "median_ms": (median * 1000.0).round() / 1000.0,
        "min_ms": (times[0] * 1000.0).round() / 1000.0,
        "iters": times.len(),
        "threads": threads,
        "batch_size": batch_size,
        "steps": trainer.config.steps,
        "peak_rss_mb": peak_rss_mb(),
    });
    println!("{line}");
    Ok(())
}

/// The process's peak resident set (VmHWM) in MB, where /proc tells it.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((kb / 1024.0 * 10.0).round() / 10.0)
}
