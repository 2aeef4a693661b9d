//! `spyne train`: train a network on an image set (MNIST by default), configurable by flags,
//! a settings file and a model file.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use burn::tensor::Device;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use spyne::data::{Dataset, Mnist};
use spyne::model::Network;
use spyne::train::metrics::{MetricsWriter, Summary};
use spyne::train::{CheckpointDir, Trainer};

use crate::settings::{ModelChoice, Settings};

/// Arguments of `spyne train`; every setting defaults to the model's tutorial (5 for `mlp`,
/// 6 for `csnn`).
#[derive(Args)]
pub struct TrainArgs {
    /// The network: `mlp` (snntorch tutorial 5), `csnn` (tutorial 6), a model file (TOML),
    /// or a NIR file (.nir) to fine-tune.
    #[arg(long, default_value = "mlp")]
    model: String,
    /// TOML file of settings (flags override it).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory holding the data set's four IDX files, with MNIST's names (else
    /// $SPYNE_DATA, else the cache, else download MNIST).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Output directory [default: runs/<UTC timestamp>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in this directory from its last checkpoint.
    #[arg(long, conflicts_with = "out")]
    resume: Option<PathBuf>,
    #[command(flatten)]
    settings: Settings,
    /// Also checkpoint every N iterations within an epoch [default: only at epoch ends].
    #[arg(long, default_value_t = 0)]
    checkpoint_every: usize,
    /// Print the model's summary table before training.
    #[arg(long)]
    print_model: bool,
    /// No progress bar (for logs).
    #[arg(long)]
    quiet: bool,
}

/// The trainer, its output directory and data, ready to train.
struct Prepared {
    trainer: Trainer<Network>,
    out: PathBuf,
    data: Mnist,
    data_dir: Option<PathBuf>,
    resumed: bool,
    threads: usize,
}

/// Everything checked before any work is written.
fn prepare(args: &TrainArgs) -> Result<Prepared> {
    let device = Device::flex();
    if let Some(dir) = &args.resume {
        if args.config.is_some() || args.model != "mlp" || args.settings.changes_the_run() {
            bail!("--resume continues a run with its saved settings; only --epochs, --threads and --data may be given with it");
        }
        let ckpt = dir.join("checkpoint");
        let (mut trainer, state) = Trainer::resume(&ckpt, &device)
            .with_context(|| format!("resuming from {}", ckpt.display()))?;
        if let Some(e) = args.settings.epochs {
            trainer.config.epochs = e;
        }
        if let Some(n) = args.settings.threads {
            trainer.config.threads = n;
        }
        trainer.config.validate()?;
        let threads = crate::threads::init(trainer.config.threads)?;
        let data_dir = args.data.clone().or(state.data);
        let data = Mnist::locate_and_load(data_dir.as_deref()).context("loading the data set")?;
        return Ok(Prepared {
            trainer,
            out: dir.clone(),
            data,
            data_dir,
            resumed: true,
            threads,
        });
    }
    let settings = match &args.config {
        Some(path) => Settings::read(path)?.overridden_by(&args.settings),
        None => args.settings.clone(),
    };
    // Threads first: a count no machine can start would otherwise hang or abort.
    settings.train_config(Default::default())?;
    settings.check()?;
    let threads = crate::threads::init(settings.threads.unwrap_or(0))?;
    let data = Mnist::locate_and_load(args.data.as_deref()).context("loading the data set")?;
    let choice = ModelChoice::parse(&args.model);
    let (config, spec, weights) = choice.resolve(&settings, &data.train)?;
    if config.batch_size > data.train.len() {
        bail!(
            "the batch size {} is larger than the training set ({} samples): no batch would train",
            config.batch_size,
            data.train.len()
        );
    }
    if args.print_model {
        crate::model::print_summary(&spec)?;
    }
    let mut trainer = Trainer::from_spec(config, &spec, &device).context("building the model")?;
    if let Some(w) = &weights {
        w.load_into(&mut trainer.model)
            .with_context(|| format!("loading the weights of {}", args.model))?;
    }
    let classes = data.train.classes().max(data.test.classes());
    let outputs = trainer.model.outputs();
    if outputs < classes {
        bail!("the model has {outputs} outputs but the data has {classes} classes");
    }
    Ok(Prepared {
        trainer,
        out: args.out.clone().unwrap_or_else(default_out_dir),
        data,
        data_dir: args.data.clone(),
        resumed: false,
        threads,
    })
}

/// Runs `spyne train`.
pub fn run(args: TrainArgs) -> Result<()> {
    let Prepared {
        mut trainer,
        out,
        data,
        data_dir,
        resumed,
        threads,
    } = prepare(&args)?;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    // Remember an absolute data path, so that the run directory works from anywhere.
    let data_dir = data_dir.map(|d| std::fs::canonicalize(&d).unwrap_or(d));
    let ckpt = CheckpointDir::new(out.join("checkpoint"), data_dir);
    let progress = &trainer.progress;
    let mut metrics = MetricsWriter::open(
        &out.join("metrics.csv"),
        resumed,
        (progress.epoch, progress.iteration),
    )?;
    let config = trainer.config.clone();
    if !args.quiet {
        let shapes: Vec<String> = trainer
            .model
            .names()
            .iter()
            .zip(trainer.model.spec.layers.iter())
            .map(|(n, l)| format!("{n}:{}", l.kind()))
            .collect();
        eprintln!(
            "spyne: {} ({} layers: {}), {} steps, batch {}, lr {}, {} threads, writing to {}",
            args.model,
            shapes.len(),
            shapes.join(" "),
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
            Some(&ckpt),
        )?;
        if let Some(e) = write_err {
            return Err(e.into());
        }
        bar.finish();
        let acc = trainer.evaluate(&data.test, 1000)?;
        trainer.progress.test_accuracy.push(acc);
        ckpt.save(&trainer)?;
        println!("epoch {epoch}: test accuracy {:.2}%", acc * 100.0);
    }
    let p = &trainer.progress;
    let summary = Summary {
        config: trainer.config.clone(),
        model: Some(trainer.model.spec.clone()),
        path: trainer.last_path().name().to_string(),
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
