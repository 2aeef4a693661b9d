//! `spyne train`: the reference job, configurable by flags and TOML.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use burn::tensor::Device;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use spyne::data::Mnist;
use spyne::train::metrics::{MetricsWriter, Summary};
use spyne::train::{TrainConfig, Trainer};

/// Arguments of `spyne train`; every setting defaults to snntorch's tutorial 5.
#[derive(Args)]
pub struct TrainArgs {
    /// TOML file of settings (flags override it).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory holding the MNIST files (else $SPYNE_DATA, else the cache, else download).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Output directory [default: runs/<UTC timestamp>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in this directory from its last checkpoint.
    #[arg(long, conflicts_with = "out")]
    resume: Option<PathBuf>,
    /// Passes over the training set [default: 1].
    #[arg(long)]
    epochs: Option<usize>,
    /// Samples per mini-batch [default: 128].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Time steps per sample [default: 25].
    #[arg(long)]
    steps: Option<usize>,
    /// Membrane decay β [default: 0.95].
    #[arg(long)]
    beta: Option<f32>,
    /// Firing threshold θ [default: 1].
    #[arg(long)]
    threshold: Option<f32>,
    /// Hidden layer widths, comma-separated [default: 1000].
    #[arg(long, value_delimiter = ',')]
    hidden: Option<Vec<usize>>,
    /// Adam learning rate [default: 5e-4].
    #[arg(long)]
    lr: Option<f64>,
    /// Input encoding: direct, rate, latency, latency-linear, delta [default: direct].
    #[arg(long)]
    encoding: Option<String>,
    /// Loss: ce-membrane, ce-rate, ce-count, ce-max-membrane, mse-count, mse-membrane,
    /// ce-temporal, mse-temporal [default: ce-membrane].
    #[arg(long)]
    loss: Option<String>,
    /// Surrogate: atan, fast-sigmoid, sigmoid, straight-through, triangular, spike-operator,
    /// spike-rate-escape [default: atan].
    #[arg(long)]
    surrogate: Option<String>,
    /// Neuron: leaky or synaptic [default: leaky].
    #[arg(long)]
    neuron: Option<String>,
    /// Reset: subtract, zero or none [default: subtract].
    #[arg(long)]
    reset: Option<String>,
    /// Seed of every random draw [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Worker threads, 0 for all cores [default: 0].
    #[arg(long)]
    threads: Option<usize>,
    /// Truncated BPTT window in steps, 0 for full BPTT [default: 0].
    #[arg(long)]
    tbptt: Option<usize>,
    /// Stop each epoch after this many iterations (smoke runs) [default: whole epoch].
    #[arg(long)]
    max_iters: Option<usize>,
    /// Also checkpoint every N iterations within an epoch [default: only at epoch ends].
    #[arg(long, default_value_t = 0)]
    checkpoint_every: usize,
    /// No progress bar (for logs).
    #[arg(long)]
    quiet: bool,
}

impl TrainArgs {
    /// The settings: defaults, then the TOML file, then the flags.
    fn config(&self) -> Result<TrainConfig> {
        let mut c = match &self.config {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
            }
            None => TrainConfig::default(),
        };
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = &self.$f { c.$f = v.clone(); } )* };
        }
        set!(
            epochs, batch_size, steps, beta, threshold, hidden, lr, encoding, loss, surrogate,
            neuron, reset, seed, threads, tbptt, max_iters
        );
        c.validate().context("invalid training settings")?;
        Ok(c)
    }

    /// Flags that would change a resumed run's model or data order.
    fn model_flags_given(&self) -> bool {
        self.config.is_some()
            || self.batch_size.is_some()
            || self.steps.is_some()
            || self.beta.is_some()
            || self.threshold.is_some()
            || self.hidden.is_some()
            || self.lr.is_some()
            || self.encoding.is_some()
            || self.loss.is_some()
            || self.surrogate.is_some()
            || self.neuron.is_some()
            || self.reset.is_some()
            || self.seed.is_some()
            || self.tbptt.is_some()
            || self.max_iters.is_some()
    }
}

/// Runs `spyne train`.
pub fn run(args: TrainArgs) -> Result<()> {
    let device = Device::flex();
    let (mut trainer, out, resumed) = match &args.resume {
        Some(dir) => {
            if args.model_flags_given() {
                bail!("--resume continues a run with its saved settings; only --epochs, --threads and --data may be given with it");
            }
            let ckpt = dir.join("checkpoint");
            let mut t = Trainer::resume(&ckpt, &device)
                .with_context(|| format!("resuming from {}", ckpt.display()))?;
            if let Some(e) = args.epochs {
                t.config.epochs = e;
                t.config.validate()?;
            }
            if let Some(n) = args.threads {
                t.config.threads = n;
            }
            (t, dir.clone(), true)
        }
        None => {
            let config = args.config()?;
            let out = args.out.clone().unwrap_or_else(default_out_dir);
            (Trainer::new(config, &device)?, out, false)
        }
    };
    let threads = crate::threads::init(trainer.config.threads)?;
    let data = Mnist::locate_and_load(args.data.as_deref()).context("loading MNIST")?;
    let config = trainer.config.clone();
    let pixels = data.train.pixels();
    if pixels != config.inputs {
        bail!(
            "the network takes {} inputs but the images have {pixels} pixels",
            config.inputs
        );
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let ckpt_dir = out.join("checkpoint");
    let progress = &trainer.progress;
    let mut metrics = MetricsWriter::open(
        &out.join("metrics.csv"),
        resumed,
        (progress.epoch, progress.iteration),
    )?;
    if !args.quiet {
        eprintln!(
            "spyne: {} neurons {:?}, {} steps, batch {}, lr {}, {} threads, writing to {}",
            config.neuron,
            config.layer_sizes(),
            config.steps,
            config.batch_size,
            config.lr,
            threads,
            out.display()
        );
    }
    while trainer.progress.epoch < trainer.config.epochs {
        let epoch = trainer.progress.epoch + 1;
        let iterations = trainer.iterations(data.train.len()) as u64;
        let bar = progress_bar(iterations, epoch, trainer.config.epochs, args.quiet);
        bar.set_position(trainer.progress.iteration as u64);
        let (mut loss_sum, mut acc_sum, mut n) = (0.0f64, 0.0f64, 0usize);
        let mut write_err = None;
        trainer.train_epoch(
            &data.train,
            |r| {
                (loss_sum, acc_sum, n) =
                    (loss_sum + r.loss as f64, acc_sum + r.accuracy as f64, n + 1);
                if r.iteration % config.log_every == 0 {
                    if let Err(e) = metrics.write(r) {
                        write_err.get_or_insert(e);
                    }
                }
                bar.set_message(format!(
                    "loss {:.3}  train acc {:.2}%",
                    loss_sum / n as f64,
                    100.0 * acc_sum / n as f64
                ));
                bar.inc(1);
            },
            args.checkpoint_every,
            Some(&ckpt_dir),
        )?;
        if let Some(e) = write_err {
            return Err(e.into());
        }
        bar.finish();
        let acc = trainer.evaluate(&data.test, 1000)?;
        trainer.progress.test_accuracy.push(acc);
        trainer.save_checkpoint(&ckpt_dir)?;
        println!("epoch {epoch}: test accuracy {:.2}%", acc * 100.0);
    }
    let p = &trainer.progress;
    let summary = Summary {
        config: trainer.config.clone(),
        epoch_test_accuracy: p.test_accuracy.clone(),
        test_accuracy: p.test_accuracy.last().copied().unwrap_or(f32::NAN),
        train_seconds: p.train_seconds,
        samples_per_second: p.samples as f64 / p.train_seconds.max(1e-9),
        threads,
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    summary.save(&out.join("summary.json"))?;
    let curves = crate::plot::curves_after_training(&out)?;
    println!(
        "trained {} epochs in {:.1} s ({:.0} samples/s); results in {} (curves: {})",
        p.epoch,
        p.train_seconds,
        summary.samples_per_second,
        out.display(),
        curves.display()
    );
    println!("test accuracy: {:.2}%", summary.test_accuracy * 100.0);
    Ok(())
}

fn progress_bar(len: u64, epoch: usize, epochs: usize, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template(
        "epoch {prefix} [{bar:30}] {pos}/{len} {elapsed_precise}<{eta_precise} {msg}",
    )
    .expect("valid template")
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(format!("{epoch}/{epochs}"));
    bar
}

/// `runs/<YYYYmmdd-HHMMSS>` in UTC.
fn default_out_dir() -> PathBuf {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    Path::new("runs").join(format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    ))
}
