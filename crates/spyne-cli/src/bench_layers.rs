//! `spyne bench --layers`: every layer that has a kernel, timed on its kernel and on the
//! composed path (forward + backward), one JSON line each.

use std::time::Instant;

use anyhow::Result;
use burn::tensor::{Device, Distribution, Tensor};
use spyne::layer::{conv_max_pool, max_pool2d, torch_conv2d, torch_linear, SeqLayer};
use spyne::neuron::{
    LapicqueConfig, LeakyConfig, Neuron, RLeakyConfig, RSynapticConfig, RecurrentKind,
    SynapticConfig,
};
use spyne::rng::TorchRng;
use spyne::run::Run;
use spyne::seq::Seq;

/// Sizes of the layer benchmarks: the reference job's hidden layer (T = 25, B = 128,
/// N = 1000) for the feed-forward neurons, an SHD-like recurrent layer (T = 100, B = 16,
/// N = 256), and tutorial 6's second convolution.
const T: usize = 25;
const B: usize = 128;
const N: usize = 1000;

/// Median milliseconds of `reps` runs of `f` (after one warm-up).
pub(crate) fn time(reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t0 = Instant::now();
        f()?;
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

fn report(layer: &str, shape: &str, fused: f64, composed: f64) {
    let line = serde_json::json!({
        "system": "spyne",
        "bench": "layer",
        "layer": layer,
        "shape": shape,
        "fused_ms": (fused * 1000.0).round() / 1000.0,
        "composed_ms": (composed * 1000.0).round() / 1000.0,
        "speedup": (composed / fused * 100.0).round() / 100.0,
    });
    println!("{line}");
}

/// The sequence over leaf `x` (`[T, B, …]` folded as `shape`): built anew for every pass,
/// since a backward pass consumes the graph above the leaf.
fn seq(x: &Tensor<3>, shape: &[usize]) -> Result<Seq> {
    Ok(Seq::new(x.clone()).with_shape(shape)?)
}

fn new_run(composed: bool) -> Run {
    if composed {
        Run::new().composed()
    } else {
        Run::new()
    }
}

/// Forward and backward of `layer` over `x`, on the kernel or composed.
fn fwd_bwd(layer: &impl SeqLayer, x: &Tensor<3>, shape: &[usize], composed: bool) -> Result<()> {
    let y = layer.forward_seq(seq(x, shape)?, &mut new_run(composed))?;
    let _ = y.into_data().sum().backward();
    Ok(())
}

/// Times a neuron layer on `[t, b, n]` input both ways.
fn neuron<L: Neuron + SeqLayer>(
    name: &str,
    layer: &L,
    [t, b, n]: [usize; 3],
    reps: usize,
) -> Result<()>
where
    L::State: 'static,
{
    let dev = Device::flex().autodiff();
    let x = Tensor::random([t, b, n], Distribution::Uniform(-0.5, 1.5), &dev).require_grad();
    let fused = time(reps, || fwd_bwd(layer, &x, &[n], false))?;
    let composed = time(reps, || fwd_bwd(layer, &x, &[n], true))?;
    report(name, &format!("[{t}, {b}, {n}]"), fused, composed);
    Ok(())
}

/// Runs every layer benchmark.
pub fn run(reps: usize) -> Result<()> {
    let dev = Device::flex().autodiff();
    let shape = [T, B, N];
    neuron(
        "leaky",
        &LeakyConfig::new(0.95).with_learn_beta(true).init(&dev)?,
        shape,
        reps,
    )?;
    neuron(
        "synaptic",
        &SynapticConfig::new(0.9, 0.95).init(&dev)?,
        shape,
        reps,
    )?;
    neuron(
        "lapicque",
        &LapicqueConfig::from_beta(0.95).init(&dev)?,
        shape,
        reps,
    )?;
    let mut rng = TorchRng::new(0);
    let (rt, rb, rn) = (100, 16, 256);
    let all = RecurrentKind::AllToAll { features: rn };
    neuron(
        "rleaky (all-to-all)",
        &RLeakyConfig::new(0.9, all.clone()).init(&mut rng, &dev)?,
        [rt, rb, rn],
        reps,
    )?;
    let one = RecurrentKind::OneToOne(0.5.into());
    neuron(
        "rleaky (one-to-one)",
        &RLeakyConfig::new(0.9, one).init(&mut rng, &dev)?,
        [rt, rb, rn],
        reps,
    )?;
    neuron(
        "rsynaptic (all-to-all)",
        &RSynapticConfig::new(0.8, 0.9, all).init(&mut rng, &dev)?,
        [rt, rb, rn],
        reps,
    )?;

    // Leaky → Linear(1000, 10) as one op, against the layer then the product.
    let lif = LeakyConfig::new(0.95).init(&dev)?;
    let fc = torch_linear(N, 10, true, &mut rng, &dev)?;
    let x = Tensor::random(shape, Distribution::Uniform(-0.5, 1.5), &dev).require_grad();
    let pair = |composed: bool| -> Result<()> {
        let y = new_run(composed).into_linear(&lif, &fc, seq(&x, &[N])?)?;
        let _ = y.into_data().sum().backward();
        Ok(())
    };
    let (f, c) = (time(reps, || pair(false))?, time(reps, || pair(true))?);
    report("leaky + linear", &format!("[{T}, {B}, {N}] → 10"), f, c);

    // Tutorial 6's second convolution on spikes (10 % firing), alone and with its max pool.
    let conv = torch_conv2d([12, 64], [5, 5], [1, 1], [0, 0], true, &mut rng, &dev)?;
    let pool = max_pool2d([2, 2], None)?;
    let x = Tensor::<3>::random([50, B, 1728], Distribution::Bernoulli(0.1), &dev).require_grad();
    let image = [12, 12, 12];
    let c_reps = reps.div_ceil(4).max(2);
    let f = time(c_reps, || fwd_bwd(&conv, &x, &image, false))?;
    let c = time(c_reps, || fwd_bwd(&conv, &x, &image, true))?;
    report("conv2d (spikes)", "[50, 128, 12, 12, 12] → 64, 5×5", f, c);
    let both = |composed: bool| -> Result<()> {
        let y = conv_max_pool(&conv, &pool, seq(&x, &image)?, &mut new_run(composed))?;
        let _ = y.into_data().sum().backward();
        Ok(())
    };
    let (f, c) = (time(c_reps, || both(false))?, time(c_reps, || both(true))?);
    report(
        "conv2d + max_pool2d (spikes)",
        "[50, 128, 12, 12, 12] → 64, 5×5, 2×2",
        f,
        c,
    );
    Ok(())
}
