//! `spyne bench --crossover`: where the spike-driven layers stop paying. Each layer runs
//! forward and backward on Bernoulli spike inputs of rising density, once on the kernel that
//! walks the active inputs and once dense; one JSON line per layer and density.

use anyhow::Result;
use burn::tensor::{Device, Distribution, Tensor};
use spyne::kernel::{self, ConvPath, ConvSpec, SpikeIndex, SpikeInput};
use spyne::layer::torch_linear;
use spyne::neuron::{FusedCall, LeakyConfig, Neuron};
use spyne::rng::TorchRng;

use crate::bench_layers::time;

/// The input densities tried.
const DENSITIES: [f32; 9] = [0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5];

fn report(layer: &str, shape: &str, density: f32, sparse: f64, dense: f64) {
    let line = serde_json::json!({
        "system": "spyne",
        "bench": "crossover",
        "layer": layer,
        "shape": shape,
        "density": density,
        "sparse_ms": (sparse * 1000.0).round() / 1000.0,
        "dense_ms": (dense * 1000.0).round() / 1000.0,
        "sparse_speedup": (dense / sparse * 100.0).round() / 100.0,
    });
    println!("{line}");
}

/// Runs every crossover measurement.
pub fn run(reps: usize) -> Result<()> {
    let dev = Device::flex().autodiff();
    let mut rng = TorchRng::new(0);
    // The shd-like job's first layer: [T·B = 8000, 700] spikes → 512, then Leaky(0.9) and
    // Linear(512, 20).
    let (t, b, k, n, m) = (500, 16, 700, 512, 20);
    let fc = torch_linear(k, n, true, &mut rng, &dev)?;
    let out = torch_linear(n, m, false, &mut rng, &dev)?;
    let lif = LeakyConfig::new(0.9).init(&dev)?;
    let call = |x: &Tensor<3>| FusedCall::new(x.clone());
    for &d in &DENSITIES {
        let x = Tensor::<3>::random([t, b, k], Distribution::Bernoulli(d.into()), &dev);
        let flat = || x.clone().reshape([t * b, k]);
        // The index is built every pass, as the layers do from plain values.
        let index = || SpikeIndex::of(&x, 1.0).expect("Bernoulli spikes");
        let sparse = time(reps, || {
            let y = kernel::spike_linear(
                flat(),
                index(),
                fc.weight.val(),
                fc.bias.as_ref().map(|b| b.val()),
            );
            let _ = y.sum().backward();
            Ok(())
        })?;
        let dense = time(reps, || {
            let _ = fc.forward(flat()).sum().backward();
            Ok(())
        })?;
        report("linear", "[8000, 700] → 512", d, sparse, dense);

        let input = || SpikeInput {
            index: index(),
            weight: fc.weight.val(),
            bias: fc.bias.as_ref().map(|b| b.val()),
            chunk: 0,
        };
        let chain = |y: Tensor<3>| {
            let _ = y.sum().backward();
            Ok(())
        };
        let sparse = time(reps, || {
            let (y, _) = lif
                .fused_spiking_linear(call(&x), input(), out.weight.val())
                .expect("Flex")?;
            chain(y)
        })?;
        let dense = time(reps, || {
            let current = fc.forward(flat()).reshape([t, b, n]);
            let (y, _) = lif
                .fused_linear(call(&current), out.weight.val())
                .expect("Flex")?;
            chain(y)
        })?;
        report(
            "linear → leaky → linear",
            "[500, 16, 700] → 512 → 20",
            d,
            sparse,
            dense,
        );
    }
    // Tutorial 6's second convolution: [640, 12, 12, 12] spikes → 64 channels, 5×5.
    let (images, c, hw, o) = (640, 12, 12, 64);
    let weight =
        Tensor::<4>::random([o, c, 5, 5], Distribution::Uniform(-0.06, 0.06), &dev).require_grad();
    let bias = Tensor::<1>::zeros([o], &dev).require_grad();
    let spec = |path: ConvPath| ConvSpec {
        n: images,
        c,
        h: hw,
        w: hw,
        o,
        kh: 5,
        kw: 5,
        stride: [1, 1],
        padding: [0, 0],
        bias: true,
        forward: path,
        backward: path,
        pool: None,
    };
    for &d in &DENSITIES {
        let x = Tensor::<4>::random([images, c, hw, hw], Distribution::Bernoulli(d.into()), &dev);
        let pass = |path: ConvPath| {
            let y = kernel::conv2d(x.clone(), weight.clone(), Some(bias.clone()), spec(path));
            let _ = y.sum().backward();
            Ok(())
        };
        let reps = reps.div_ceil(3).max(2);
        let sparse = time(reps, || pass(ConvPath::Sparse))?;
        let dense = time(reps, || pass(ConvPath::Dense))?;
        report("conv2d", "[640, 12, 12, 12] → 64, 5×5", d, sparse, dense);
    }
    Ok(())
}
