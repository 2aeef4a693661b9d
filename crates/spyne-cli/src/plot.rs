//! `spyne plot`: training curves, spike rasters, membrane traces and spike counts.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::tensor::Device;
use clap::{Args, Subcommand};
use spyne::data::Dataset;
use spyne::model::{Layer, Network, SpikingModel};
use spyne::plot::{self, Size};
use spyne::rng::Rng;
use spyne::run::{Recorded, Run};
use spyne::tensor::to_vec;
use spyne::train::forward::encode;
use spyne::train::{load_network, TrainConfig};

/// What to draw.
#[derive(Subcommand)]
pub enum PlotCommand {
    /// Loss and accuracy per iteration of a run (from metrics.csv and summary.json).
    Curves {
        /// The run directory (`--out` of `spyne train`).
        #[arg(long)]
        run: PathBuf,
        /// Output file, PNG or SVG by extension [default: RUN/curves.png].
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        size: SizeArgs,
    },
    /// Spike raster (neuron × time step) of one layer for one test image.
    Raster {
        #[command(flatten)]
        sample: SampleArgs,
        /// Spiking layer, from 1 (the first hidden layer) [default: 1].
        #[arg(long, default_value_t = 1)]
        layer: usize,
    },
    /// Membrane traces of chosen neurons, with the threshold and the spikes.
    Traces {
        #[command(flatten)]
        sample: SampleArgs,
        /// Spiking layer, from 1 [default: the output layer].
        #[arg(long)]
        layer: Option<usize>,
        /// Neurons to trace, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
        neurons: Vec<usize>,
    },
    /// Output spike count per class for one test image.
    Counts {
        #[command(flatten)]
        sample: SampleArgs,
    },
    /// Time per iteration and peak memory against T, one line per framework, log axes, from
    /// the JSON lines `spyne bench` and `bench/shd_peers.py` print (`system`, `steps`,
    /// `median_ms`, `peak_rss_mb`).
    Scaling {
        /// The file of JSON lines.
        results: PathBuf,
        /// Output file, PNG or SVG by extension.
        #[arg(long)]
        out: PathBuf,
        /// The title.
        #[arg(
            long,
            default_value = "shd-like job: Linear(700, 512) → LIF → Linear(512, 20) → LIF, batch 16"
        )]
        title: String,
        #[command(flatten)]
        size: SizeArgs,
    },
}

/// The series of a file of benchmark JSON lines, in the order their systems first appear.
fn scaling_series(path: &std::path::Path) -> Result<Vec<plot::ScalingSeries>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut series: Vec<plot::ScalingSeries> = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{} line {}: not JSON", path.display(), i + 1))?;
        let field = |k: &str| -> Result<f64> {
            v[k].as_f64()
                .with_context(|| format!("{} line {}: no number '{k}'", path.display(), i + 1))
        };
        let name = v["system"]
            .as_str()
            .with_context(|| format!("{} line {}: no 'system'", path.display(), i + 1))?;
        // The memory that grows with the graph: peak resident memory less the input's bytes
        // (the same input for every framework).
        let input = v["input_mb"].as_f64().unwrap_or(0.0);
        let point = (
            field("steps")?,
            field("median_ms")?,
            field("peak_rss_mb")? - input,
        );
        match series.iter_mut().find(|s| s.name == name) {
            Some(s) => s.points.push(point),
            None => series.push(plot::ScalingSeries {
                name: name.to_string(),
                points: vec![point],
            }),
        }
    }
    Ok(series)
}

/// Picture size.
#[derive(Args)]
pub struct SizeArgs {
    /// Width in pixels.
    #[arg(long, default_value_t = 800)]
    width: u32,
    /// Height in pixels.
    #[arg(long, default_value_t = 600)]
    height: u32,
}

impl SizeArgs {
    fn size(&self) -> Size {
        Size {
            width: self.width,
            height: self.height,
        }
    }
}

/// A saved model, a test image and an output file.
#[derive(Args)]
pub struct SampleArgs {
    /// A run directory, its checkpoint directory, or a model.safetensors file.
    #[arg(long)]
    model: PathBuf,
    /// Index of the test image.
    #[arg(long)]
    sample: usize,
    /// Directory holding the MNIST files (else $SPYNE_DATA, else the cache).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Output file, PNG or SVG by extension [default: <kind>-sample<N>.png].
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    size: SizeArgs,
}

/// Runs `spyne plot`.
pub fn run(cmd: PlotCommand) -> Result<()> {
    match cmd {
        PlotCommand::Curves { run, out, size } => {
            let out = out.unwrap_or_else(|| run.join("curves.png"));
            plot::curves(&run, &out, size.size())
                .with_context(|| format!("plotting the curves of {}", run.display()))?;
            println!("wrote {}", out.display());
        }
        PlotCommand::Raster { sample, layer } => {
            let s = Sampled::new(&sample)?;
            let l = s.layer(layer)?;
            let spikes = s.spikes(l);
            let (steps, width) = (s.config.steps, spikes.len() / s.config.steps);
            let title = format!(
                "Spike raster: layer {layer} ({width} neurons), {}",
                s.caption()
            );
            let out = sample
                .out
                .clone()
                .unwrap_or_else(|| default_out("raster", sample.sample));
            plot::raster(&out, &spikes, steps, width, &title, sample.size.size())?;
            println!("wrote {}", out.display());
        }
        PlotCommand::Traces {
            sample,
            layer,
            neurons,
        } => {
            let s = Sampled::new(&sample)?;
            let layer = layer.unwrap_or(s.records.len());
            let l = s.layer(layer)?;
            let spikes = s.spikes(l);
            let mems = to_vec(s.records[l].mems.clone());
            let (steps, width) = (s.config.steps, spikes.len() / s.config.steps);
            if let Some(&bad) = neurons.iter().find(|&&n| n >= width) {
                bail!(
                    "neuron {bad} does not exist: layer {layer} has {width} neurons (0..{width})"
                );
            }
            let pick = |v: &[f32]| -> Vec<f32> {
                (0..steps)
                    .flat_map(|t| neurons.iter().map(move |&n| v[t * width + n]))
                    .collect()
            };
            let thresholds = s.thresholds(l, width)?;
            let theta: Vec<f32> = neurons.iter().map(|&n| thresholds[n]).collect();
            let title = format!("Membrane traces: layer {layer}, {}", s.caption());
            let out = sample
                .out
                .clone()
                .unwrap_or_else(|| default_out("traces", sample.sample));
            let (mems, spikes) = (pick(&mems), pick(&spikes));
            let data = plot::TraceData {
                mems: &mems,
                spikes: &spikes,
                steps,
                ids: &neurons,
                threshold: &theta,
            };
            plot::traces(&out, &data, &title, sample.size.size())?;
            println!("wrote {}", out.display());
        }
        PlotCommand::Counts { sample } => {
            let s = Sampled::new(&sample)?;
            let l = s.records.len() - 1;
            let spikes = s.spikes(l);
            let width = spikes.len() / s.config.steps;
            let counts: Vec<f32> = (0..width)
                .map(|c| (0..s.config.steps).map(|t| spikes[t * width + c]).sum())
                .collect();
            let title = format!("Output spike counts, {}", s.caption());
            let out = sample
                .out
                .clone()
                .unwrap_or_else(|| default_out("counts", sample.sample));
            plot::spike_count(&out, &counts, Some(s.label), &title, sample.size.size())?;
            println!("wrote {}", out.display());
        }
        PlotCommand::Scaling {
            results,
            out,
            title,
            size,
        } => {
            let series = scaling_series(&results)?;
            let memory = "peak resident memory less the input (MB)";
            plot::scaling(&out, &series, (&title, memory), size.size())
                .with_context(|| format!("plotting {}", results.display()))?;
            println!("wrote {}", out.display());
        }
    }
    Ok(())
}

fn default_out(kind: &str, sample: usize) -> PathBuf {
    PathBuf::from(format!("{kind}-sample{sample}.png"))
}

/// A model run on one test image, every neuron layer recorded.
struct Sampled {
    config: TrainConfig,
    model: Network,
    records: Vec<Recorded>,
    sample: usize,
    label: usize,
}

impl Sampled {
    fn new(args: &SampleArgs) -> Result<Sampled> {
        let device = Device::flex();
        let (config, model) = load_network(&args.model, &device)
            .with_context(|| format!("loading the model from {}", args.model.display()))?;
        let data = crate::eval::load_data(args.data.as_deref(), &args.model)?;
        let n = data.test.len();
        if args.sample >= n {
            bail!(
                "test sample {} is out of range: the test set has {n} images (0..{n})",
                args.sample
            );
        }
        let batch = data.test.batch(&[args.sample]);
        let mut rng = Rng::new(config.seed);
        let x = encode(&batch, &config.encoding, config.steps, &mut rng, &device)?;
        let mut run = Run::new().recording(true);
        model.forward(x, &mut run)?;
        Ok(Sampled {
            label: batch.labels[0],
            config,
            model,
            records: run.records().to_vec(),
            sample: args.sample,
        })
    }

    /// The 0-based index of 1-based spiking `layer`, or an error naming the valid range.
    fn layer(&self, layer: usize) -> Result<usize> {
        let n = self.records.len();
        if layer == 0 || layer > n {
            bail!("layer {layer} does not exist: the network has spiking layers 1..={n}");
        }
        Ok(layer - 1)
    }

    fn caption(&self) -> String {
        format!("test sample {} (label {})", self.sample, self.label)
    }

    fn spikes(&self, l: usize) -> Vec<f32> {
        to_vec(self.records[l].spikes.clone())
    }

    /// Each neuron's threshold in spiking layer `l` (scalar and per-channel values spread).
    fn thresholds(&self, l: usize, width: usize) -> Result<Vec<f32>> {
        let cell = self
            .model
            .layers
            .iter()
            .filter_map(|layer| match layer {
                Layer::Neuron(c) => Some(c),
                _ => None,
            })
            .nth(l)
            .context("no such spiking layer")?;
        let row = cell.core().threshold_row(width)?;
        Ok(to_vec(row.expand([1, width])))
    }
}

/// Writes `curves.png` for a finished training run.
pub fn curves_after_training(out: &Path) -> Result<PathBuf> {
    let file = out.join("curves.png");
    plot::curves(out, &file, Size::default())
        .with_context(|| format!("plotting {}", file.display()))?;
    Ok(file)
}
