//! A model that a sequential list cannot express: a residual spiking block (the block's
//! spikes are added to its input's), written as a burn module from spyne's layers and
//! trained with spyne's trainer for a few iterations. Every neuron layer takes its fused
//! kernel by itself.
//!
//!     cargo run --release -p spyne --example residual

use burn::module::Module;
use burn::tensor::Device;
use spyne::data::Batch;
use spyne::layer::{
    conv_max_pool, max_pool2d, torch_conv2d, torch_linear, Conv2d, Linear, MaxPool2d, SeqLayer,
};
use spyne::loss::LossKind;
use spyne::neuron::{Leaky, LeakyConfig};
use spyne::rng::{Rng, TorchRng};
use spyne::train::{TrainConfig, Trainer};
use spyne::{Output, Run, Seq, SpikingModel};

/// conv → pool → Leaky → (conv → Leaky) + skip → Linear → Leaky, on 1×8×8 images.
#[derive(Module, Debug)]
struct ResidualSnn {
    stem: Conv2d,
    pool: MaxPool2d,
    lif_stem: Leaky,
    block: Conv2d,
    lif_block: Leaky,
    head: Linear,
    lif_out: Leaky,
}

impl SpikingModel for ResidualSnn {
    fn forward(&self, x: Seq, run: &mut Run) -> spyne::Result<Output> {
        let stem = conv_max_pool(&self.stem, &self.pool, x, run)?;
        let s = self.lif_stem.forward_seq(stem, run)?;
        let block = self.block.forward_seq(s.clone(), run)?;
        let r = self.lif_block.forward_seq(block, run)?;
        let flat = s.plus(r)?.with_shape(&[8 * 4 * 4])?;
        let current = self.head.forward_seq(flat, run)?;
        run.output(&self.lif_out, current)
    }
}

fn main() -> spyne::Result<()> {
    let device = Device::flex().autodiff();
    let mut rng = TorchRng::new(0);
    let lif = |beta: f32| LeakyConfig::new(beta).init(&device);
    let model = ResidualSnn {
        stem: torch_conv2d([1, 8], [3, 3], [1, 1], [1, 1], true, &mut rng, &device)?,
        pool: max_pool2d([2, 2], None)?,
        lif_stem: lif(0.8)?,
        block: torch_conv2d([8, 8], [3, 3], [1, 1], [1, 1], true, &mut rng, &device)?,
        lif_block: lif(0.8)?,
        head: torch_linear(128, 2, true, &mut rng, &device)?,
        lif_out: lif(0.9)?,
    };
    let config = TrainConfig {
        batch_size: 16,
        steps: 10,
        lr: 1e-2,
        loss: LossKind::CeRate,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(config, model)?;
    // Class 0: bright left half; class 1: bright right half.
    let mut data = Rng::new(1);
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for i in 0..16 {
        let y = i % 2;
        for p in 0..64 {
            let left = p % 8 < 4;
            images.push(if left == (y == 0) { 0.9 } else { 0.1 } * data.uniform());
        }
        labels.push(y);
    }
    let batch = Batch::samples(images, labels, vec![1, 8, 8]);
    for step in 0..10 {
        let (loss, acc) = trainer.train_step(&batch, &mut Rng::new(step))?;
        println!(
            "step {step}: loss {loss:.4}, batch accuracy {:.0}%, path {}",
            acc * 100.0,
            trainer.last_path().name()
        );
    }
    Ok(())
}
