//! `spyne plot`: training curves, spike rasters, membrane traces and spike counts.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::tensor::Device;
use clap::{Args, Subcommand};
use spyne::data::Mnist;
use spyne::neuron::Cell;
use spyne::plot::{self, Size};
use spyne::rng::Rng;
use spyne::tensor::to_vec;
use spyne::train::{load_model, Recording, SpikingMlp, TrainConfig};

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
            let spikes = spikes_of(&s.rec, l);
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
            let layer = layer.unwrap_or(s.model.cells.len());
            let l = s.layer(layer)?;
            let spikes = spikes_of(&s.rec, l);
            let mems = to_vec(
                s.rec.mems[l]
                    .clone()
                    .context("membranes were not recorded")?,
            );
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
            let thresholds = threshold_of(&s.model.cells[l], width);
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
            let l = s.model.cells.len() - 1;
            let spikes = spikes_of(&s.rec, l);
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
    }
    Ok(())
}

fn default_out(kind: &str, sample: usize) -> PathBuf {
    PathBuf::from(format!("{kind}-sample{sample}.png"))
}

/// A model run on one test image, every layer recorded.
struct Sampled {
    config: TrainConfig,
    model: SpikingMlp,
    rec: Recording,
    sample: usize,
    label: usize,
}

impl Sampled {
    fn new(args: &SampleArgs) -> Result<Sampled> {
        let path = crate::eval::model_path(&args.model);
        let device = Device::flex();
        let (config, mut model) = load_model(&path, &device)
            .with_context(|| format!("loading the model from {}", path.display()))?;
        let data = Mnist::locate_and_load(args.data.as_deref()).context("loading MNIST")?;
        let n = data.test.len();
        if args.sample >= n {
            bail!(
                "test sample {} is out of range: the test set has {n} images (0..{n})",
                args.sample
            );
        }
        let batch = spyne::data::Batch::gather(&data.test, &[args.sample]);
        let encoding = config.encoding()?;
        let input = encoding.encode(
            &batch.images,
            1,
            config.steps,
            &mut Rng::new(config.seed),
            &device,
        )?;
        // The step-by-step path records every layer's spikes and membranes.
        model.fused = false;
        let rec = model.forward(input, config.steps, encoding.is_static(), 0)?;
        Ok(Sampled {
            label: batch.labels[0],
            config,
            model,
            rec,
            sample: args.sample,
        })
    }

    /// The 0-based index of 1-based `layer`, or an error naming the valid range.
    fn layer(&self, layer: usize) -> Result<usize> {
        let n = self.model.cells.len();
        if layer == 0 || layer > n {
            bail!("layer {layer} does not exist: the network has spiking layers 1..={n}");
        }
        Ok(layer - 1)
    }

    fn caption(&self) -> String {
        format!("test sample {} (label {})", self.sample, self.label)
    }
}

fn spikes_of(rec: &Recording, l: usize) -> Vec<f32> {
    rec.spikes[l].clone().map(to_vec).unwrap_or_default()
}

/// Each neuron's threshold (a scalar threshold repeated).
fn threshold_of(cell: &Cell, width: usize) -> Vec<f32> {
    let t = match cell {
        Cell::Leaky(n) => to_vec(n.core.threshold.val()),
        Cell::Synaptic(n) => to_vec(n.core.threshold.val()),
    };
    if t.len() == 1 {
        vec![t[0]; width]
    } else {
        t
    }
}

/// Writes `curves.png` for a finished training run.
pub fn curves_after_training(out: &Path) -> Result<PathBuf> {
    let file = out.join("curves.png");
    plot::curves(out, &file, Size::default())
        .with_context(|| format!("plotting {}", file.display()))?;
    Ok(file)
}
