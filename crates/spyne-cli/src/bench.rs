//! `spyne bench`: time the reference training iteration.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::tensor::Device;
use clap::Args;
use std::sync::Arc;

use burn::tensor::{Tensor, TensorData};
use spyne::data::{Batch, EpochOrder, Mnist};
use spyne::kernel::SpikeIndex;
use spyne::model::{presets, Network};
use spyne::rng::Rng;
use spyne::seq::Seq;
use spyne::train::{TrainConfig, Trainer};

use crate::settings::{ModelChoice, Settings};

/// The job `spyne bench` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// `--model` on MNIST (tutorial 5 by default).
    Mnist,
    /// Sparse spike sequences as in SHD: Bernoulli spikes at p = 0.05, `[T, 16, 700]`,
    /// through Linear(700, 512) → Leaky(0.9) → Linear(512, 20) → Leaky(0.9), `ce_count_loss`,
    /// Adam lr 1e-3.
    ShdLike,
}

impl std::str::FromStr for Job {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Job, String> {
        match s {
            "mnist" => Ok(Job::Mnist),
            "shd-like" | "shd" => Ok(Job::ShdLike),
            other => Err(format!(
                "unknown job '{other}' (expected mnist or shd-like)"
            )),
        }
    }
}

/// The input spike density of the shd-like job.
pub const SHD_DENSITY: f64 = 0.05;

/// Arguments of `spyne bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// `mnist` (the model on MNIST) or `shd-like` (sparse spike sequences, see `--steps`).
    #[arg(long, default_value = "mnist")]
    job: Job,
    /// Time steps [default: the model's (25 for mlp); 500 for shd-like].
    #[arg(long)]
    steps: Option<usize>,
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
    /// Time the spike-driven layers against their dense paths at rising input densities
    /// instead (one line per layer and density): where the crossover lies.
    #[arg(long)]
    crossover: bool,
    /// shd-like: give the input as plain values, so that the spike index is built from them
    /// every iteration (by default it comes with the input, as an event data set gives it).
    #[arg(long)]
    scan: bool,
}

/// What the timed iterations train on.
enum Inputs {
    /// MNIST batches, encoded every iteration.
    Batches(Vec<Batch>),
    /// One input sequence on the device, and its labels.
    Seq(Box<(Seq, Vec<usize>)>),
}

/// Runs `spyne bench`: prints one JSON line.
pub fn run(args: BenchArgs) -> Result<()> {
    let threads = crate::threads::init(args.threads)?;
    if args.layers {
        return crate::bench_layers::run(args.iters.clamp(3, 30));
    }
    if args.crossover {
        return crate::bench_crossover::run(args.iters.clamp(3, 30));
    }
    let composed = match args.path.as_str() {
        "fused" => false,
        "composed" => true,
        other => anyhow::bail!("unknown --path '{other}' (expected fused or composed)"),
    };
    let (mut trainer, inputs, model) = match args.job {
        Job::Mnist => mnist_job(&args)?,
        Job::ShdLike => shd_like_job(&args)?,
    };
    let batch_size = trainer.config.batch_size;
    let input_mb = match &inputs {
        Inputs::Batches(b) => b[0].values.len() as f64 * 4.0 / 1e6,
        Inputs::Seq(s) => (s.0.steps() * s.0.batch() * s.0.features()) as f64 * 4.0 / 1e6,
    };
    trainer.composed = composed;
    let mut rng = Rng::new(1);
    let mut k = 0usize;
    let mut step = |trainer: &mut Trainer<_>| -> Result<f64> {
        let t0 = Instant::now();
        match &inputs {
            Inputs::Batches(b) => trainer.train_step(&b[k % b.len()], &mut rng)?,
            Inputs::Seq(s) => trainer.train_seq(s.0.clone(), &s.1, &mut rng)?,
        };
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
        "job": match args.job { Job::Mnist => "mnist", Job::ShdLike => "shd-like" },
        "model": model,
        "path": trainer.last_path().name(),
        "fused_layers": trainer.last_path().fused,
        "composed_layers": trainer.last_path().composed,
        "sparse_layers": trainer.last_path().sparse,
        "median_ms": (median * 1000.0).round() / 1000.0,
        "min_ms": (times[0] * 1000.0).round() / 1000.0,
        "iters": times.len(),
        "threads": threads,
        "batch_size": batch_size,
        "steps": trainer.config.steps,
        "peak_rss_mb": peak_rss_mb(),
        "input_mb": (input_mb * 10.0).round() / 10.0,
    });
    println!("{line}");
    Ok(())
}

/// The trainer and up to 64 batches of `--model` on MNIST.
fn mnist_job(args: &BenchArgs) -> Result<(Trainer<Network>, Inputs, String)> {
    let data = Mnist::locate_and_load(args.data.as_deref()).context("loading MNIST")?;
    let settings = Settings {
        batch_size: args.batch_size,
        tbptt: args.tbptt,
        steps: args.steps,
        ..Settings::default()
    };
    let (config, spec, _) = ModelChoice::parse(&args.model).resolve(&settings, &data.train)?;
    let batch_size = config.batch_size;
    let trainer = Trainer::from_spec(config, &spec, &Device::flex())?;
    let order = EpochOrder::new(data.train.len(), batch_size, true, Some(&mut Rng::new(0)));
    let batches = (0..order.num_batches().min(64))
        .map(|i| Batch::gather(&data.train, order.batch_indices(i)))
        .collect();
    Ok((trainer, Inputs::Batches(batches), args.model.clone()))
}

/// The trainer and the one input of the shd-like job: seeded Bernoulli spikes `[T, B, 700]`
/// on the device (with their index unless `--scan`), and labels.
fn shd_like_job(args: &BenchArgs) -> Result<(Trainer<Network>, Inputs, String)> {
    if args.model != "mlp" {
        anyhow::bail!("the shd-like job has its own network; --model does not apply");
    }
    let mut config = TrainConfig::shd_like(args.steps.unwrap_or(500));
    if let Some(b) = args.batch_size {
        config.batch_size = b;
    }
    if let Some(k) = args.tbptt {
        config.tbptt = k;
    }
    let spec = presets::shd_like();
    let (t, b, f) = (config.steps, config.batch_size, 700);
    let bytes = (t * b * f) as f64 * 4.0;
    if bytes > 8e9 {
        anyhow::bail!(
            "{t} steps × {b} samples × {f} channels is {:.1} GB of input; use fewer steps",
            bytes / 1e9
        );
    }
    let trainer = Trainer::from_spec(config, &spec, &Device::flex())?;
    let mut rng = Rng::new(0);
    let values: Vec<f32> = (0..t * b * f)
        .map(|_| f32::from(f64::from(rng.uniform()) < SHD_DENSITY))
        .collect();
    let labels = (0..b).map(|_| rng.below(20)).collect();
    let index = (!args.scan).then(|| SpikeIndex::build(&values, f, 1.0));
    let x = Seq::new(Tensor::from_data(
        TensorData::new(values, [t, b, f]),
        &trainer.device()?,
    ));
    let x = match index {
        Some(index) => {
            let index = index.context("the shd-like input is binary")?;
            x.with_spike_index(Arc::new(index))?
        }
        None => x,
    };
    Ok((
        trainer,
        Inputs::Seq(Box::new((x, labels))),
        "shd-like".into(),
    ))
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
