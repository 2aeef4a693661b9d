//! spyne's NIR exports as the peers read them. For the tutorial-5 MLP, a conv net with
//! AvgPool2d and an RLeaky net, the fixtures hold spyne's file, spyne's output spikes on fixed
//! inputs (`spyne_<name>.json`), and what `tools/nir/check_spyne_export.py` saw when it read
//! the file with `nir.read` and ran it in snntorch (`spyne_<name>.snntorch.json`).
//!
//! The tests check that spyne still writes the same graph, still gives the same spikes, and
//! that snntorch gave those spikes too. To rewrite the spyne side after a deliberate change:
//! `SPYNE_WRITE_FIXTURES=1 cargo test -p spyne --test nir_export_peers`, then rerun the script.
#![cfg(feature = "nir")]

use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};
use serde_json::json;
use spyne::model::{params, ModelSpec, Network, NeuronSpec};
use spyne::neuron::Reset;
use spyne::nir::{self, ExportOptions, ImportOptions};
use spyne::rng::{Rng, TorchRng};
use spyne::run::Run;
use spyne::seq::Seq;
use spyne::tensor::to_vec;
use spyne::SpikingModel;

const T: usize = 12;
const B: usize = 3;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/nir")
        .join(name)
}

/// The three models: zero reset everywhere, since snntorch builds nothing else from NIR
/// (Leaky's zero is NIR's; RLeaky's is zero-then-integrate, which is what NIR's means).
/// Weights are PyTorch's initialisation for the seed, scaled so that every layer spikes.
fn models() -> Vec<(&'static str, ModelSpec, f32)> {
    let zero = |beta: f32| NeuronSpec::leaky(beta).with_reset(Reset::Zero);
    let mut rleaky = NeuronSpec::rleaky(0.9).with_reset(Reset::ZeroThenIntegrate);
    rleaky.all_to_all = Some(true);
    vec![
        (
            "mlp",
            ModelSpec::new([784])
                .linear(1000)
                .neuron(zero(0.95))
                .linear(10)
                .neuron(zero(0.95)),
            2.0,
        ),
        (
            "conv_avgpool",
            ModelSpec::new([1, 12, 12])
                .conv2d(4, 3)
                .avg_pool2d(2)
                .neuron(zero(0.9))
                .flatten()
                .linear(5)
                .neuron(zero(0.9)),
            5.0,
        ),
        (
            "rleaky",
            ModelSpec::new([20])
                .linear(8)
                .neuron(rleaky)
                .linear(4)
                .neuron(zero(0.9)),
            10.0,
        ),
    ]
}

fn build(spec: &ModelSpec, gain: f32) -> Network {
    let mut net = spec.init(&mut TorchRng::new(0), &Device::flex()).unwrap();
    let mut named = params::export(&net);
    for (name, p) in named.iter_mut() {
        if name.ends_with(".weight") {
            p.values.iter_mut().for_each(|v| *v *= gain);
        }
    }
    params::import(&mut net, &named).unwrap();
    net
}

/// Fixed input spikes `[T, B, features]` at rate 0.3.
fn input(features: usize) -> Vec<f32> {
    let mut rng = Rng::new(1);
    (0..T * B * features)
        .map(|_| f32::from(rng.uniform() < 0.3))
        .collect()
}

fn spikes(net: &Network, x: &[f32], features: usize) -> Vec<f32> {
    let device = Device::flex();
    let x = Tensor::<3>::from_data(TensorData::new(x.to_vec(), [T, B, features]), &device);
    to_vec(net.forward(Seq::new(x), &mut Run::new()).unwrap().spikes)
}

fn read_json(name: &str) -> serde_json::Value {
    let path = fixture(name);
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn spyne_exports_run_in_snntorch_with_spynes_spikes() {
    let write = std::env::var_os("SPYNE_WRITE_FIXTURES").is_some();
    let tmp = std::env::temp_dir().join(format!("spyne-nir-export-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    for (name, spec, gain) in models() {
        let net = build(&spec, gain);
        let features: usize = spec.input.iter().product();
        let x = input(features);
        let ours = spikes(&net, &x, features);
        let file = format!("spyne_{name}.nir");
        if write {
            nir::write(&fixture(&file), &net, &ExportOptions::default()).unwrap();
            let record = json!({
                "writer": "spyne (crates/spyne/tests/nir_export_peers.rs)",
                "input_shape": [T, B, features],
                "sample_shape": spec.input,
                "input": x,
                "spikes": ours,
                "output_shape": [T, B, net.outputs()],
            });
            std::fs::write(
                fixture(&format!("spyne_{name}.json")),
                serde_json::to_vec(&record).unwrap(),
            )
            .unwrap();
            continue;
        }
        // spyne writes the same graph as when the fixture was made.
        let now = tmp.join(&file);
        nir::write(&now, &net, &ExportOptions::default()).unwrap();
        assert_eq!(
            nir::file::read_graph(&now).unwrap(),
            nir::file::read_graph(&fixture(&file)).unwrap(),
            "{name}: the export changed; rewrite the fixtures and rerun the script"
        );
        let record = read_json(&format!("spyne_{name}.json"));
        assert_eq!(floats(&record["input"]), x, "{name}: input");
        assert_eq!(floats(&record["spikes"]), ours, "{name}: spyne's spikes");
        assert!(ours.iter().any(|&s| s > 0.0), "{name}: the output spikes");
        // The stored file, read back by spyne, gives the same spikes.
        let back = nir::read(&fixture(&file), &ImportOptions::default())
            .unwrap()
            .network(&Device::flex())
            .unwrap();
        assert_eq!(spikes(&back, &x, features), ours, "{name}: read back");
        // What snntorch did with the file.
        let peer = read_json(&format!("spyne_{name}.snntorch.json"));
        assert_eq!(peer["nir_read"], json!(true), "{name}: nir.read: {peer}");
        assert_eq!(
            floats(&peer["spikes"]),
            ours,
            "{name}: snntorch's spikes ({})",
            peer["how"]
        );
    }
}
