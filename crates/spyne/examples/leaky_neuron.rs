//! A single Leaky neuron driven by a constant current: prints its membrane and spikes.
//!
//!     cargo run --release -p spyne --example leaky_neuron

use burn::tensor::{Device, Tensor};
use spyne::neuron::{run_sequence, LeakyConfig, Reset};

fn main() -> spyne::Result<()> {
    let device = Device::flex();
    let steps = 20;
    for reset in [Reset::Subtract, Reset::Zero] {
        let lif = LeakyConfig::new(0.8).with_reset(reset).init(&device)?;
        let input = Tensor::<3>::ones([steps, 1, 1], &device).mul_scalar(0.3);
        let out = run_sequence(&lif, input, None, None)?;
        let mems = spyne::tensor::to_vec(out.mems);
        let spikes = spyne::tensor::to_vec(out.spikes);
        println!("reset = {reset:?}");
        for (t, (u, s)) in mems.iter().zip(&spikes).enumerate() {
            let bar = "#".repeat((u.max(0.0) * 40.0) as usize);
            println!(
                "t={t:2} U={u:6.3} {} {bar}",
                if *s > 0.0 { "spike" } else { "     " }
            );
        }
    }
    Ok(())
}
