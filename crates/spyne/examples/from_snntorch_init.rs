//! Trains the reference network for one epoch from snntorch's initial weights and batch order
//! (written by tools/parity_training/dump_snntorch_init.py) and prints the test accuracy, to
//! compare with snntorch's own run of that seed.
//!
//!     cargo run --release -p spyne --example from_snntorch_init -- INIT_DIR MNIST_DIR

use burn::tensor::Device;
use spyne::data::{Batch, Mnist};
use spyne::rng::Rng;
use spyne::train::params::{export, import, NamedParam};
use spyne::train::{TrainConfig, Trainer};

fn floats(path: &str) -> std::io::Result<Vec<f32>> {
    let bytes = std::fs::read(path)?;
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (init, data) = match (args.next(), args.next()) {
        (Some(i), Some(d)) => (i, d),
        _ => return Err("usage: from_snntorch_init INIT_DIR MNIST_DIR".into()),
    };
    let data = Mnist::load(std::path::Path::new(&data))?;
    let config = TrainConfig::default();
    let (batch, iterations) = (config.batch_size, data.train.len() / config.batch_size);
    let mut trainer = Trainer::new(config, &Device::flex())?;
    let mut named = export(&trainer.model);
    for key in ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"] {
        let old = named[key].clone();
        let values = floats(&format!("{init}/{key}"))?;
        named.insert(key.into(), NamedParam { values, ..old });
    }
    import(&mut trainer.model, &named)?;
    let order: Vec<usize> = std::fs::read_to_string(format!("{init}/perm.txt"))?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    for it in 0..iterations {
        let b = Batch::gather(&data.train, &order[it * batch..(it + 1) * batch]);
        trainer.train_step(&b, &mut Rng::new(0))?;
    }
    let acc = trainer.evaluate(&data.test, 1000)?;
    println!(
        "test accuracy from snntorch's start and order: {:.2}%",
        100.0 * acc
    );
    Ok(())
}
