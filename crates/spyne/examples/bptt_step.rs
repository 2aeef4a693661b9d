//! BPTT training steps of a small SNN (Linear → Leaky → Linear → Leaky, summed membrane
//! cross-entropy, Adam) on a toy two-class problem.
//!
//!     cargo run --release -p spyne --example bptt_step

use burn::tensor::Device;
use spyne::data::Batch;
use spyne::model::{presets, NeuronSpec};
use spyne::rng::Rng;
use spyne::train::{TrainConfig, Trainer};

fn main() -> spyne::Result<()> {
    let config = TrainConfig {
        steps: 10,
        lr: 1e-2,
        ..TrainConfig::default()
    };
    let spec = presets::mlp(8, &[16], 2, &NeuronSpec::leaky(0.95));
    let mut trainer = Trainer::from_spec(config, &spec, &Device::flex())?;
    // Class 0 lights the first half of the inputs, class 1 the second half.
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for i in 0..32 {
        let y = i % 2;
        images.extend((0..8).map(|p| if (p < 4) == (y == 0) { 1.0 } else { 0.1 }));
        labels.push(y);
    }
    let batch = Batch::samples(images, labels, vec![8]);
    for step in 0..20 {
        let (loss, acc) = trainer.train_step(&batch, &mut Rng::new(step))?;
        println!(
            "step {step:2}: loss {loss:.4}, batch accuracy {:.0}%",
            acc * 100.0
        );
    }
    Ok(())
}
