//! Parity with snntorch 1.0: fixtures written by `tools/fixtures/make_fixtures.py`.

mod common;

use burn::module::Param;
use burn::tensor::Tensor;
use common::*;
use serde_json::Value as Json;
use spyne::layer::linear_from_torch;
use spyne::layer::Linear;
use spyne::loss::ce_membrane_loss;
use spyne::model::params::{export, import, NamedParam};
use spyne::model::{presets, Layer, Network, NeuronSpec, SpikingModel};
use spyne::neuron::*;
use spyne::rng::Rng;
use spyne::run::Run;
use spyne::seq::Seq;
use spyne::spikegen::Encoding;

fn fixtures() -> Json {
    serde_json::from_str(include_str!("fixtures/snntorch.json")).unwrap()
}

fn floats(j: &Json) -> Vec<f32> {
    j.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

fn dims3(j: &Json) -> [usize; 3] {
    let d: Vec<usize> = j
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    [d[0], d[1], d[2]]
}

fn compare<N: Neuron>(n: &N, case: &Json) {
    let dev = cpu();
    let x = t3(&floats(&case["input"]), dims3(&case["shape"]), &dev);
    let seq = run_sequence(n, x, None, None).unwrap();
    assert_eq!(v(seq.spikes), floats(&case["spikes"]), "spikes");
    assert_close(&v(seq.mems), &floats(&case["mems"]), 1e-5, "membranes");
}

#[test]
fn leaky_matches_snntorch_for_every_reset() {
    let f = fixtures();
    for (name, reset) in [
        ("leaky_subtract", Reset::Subtract),
        ("leaky_zero", Reset::Zero),
        ("leaky_none", Reset::None),
    ] {
        let n = LeakyConfig::new(0.9)
            .with_reset(reset)
            .init(&cpu())
            .unwrap();
        compare(&n, &f[name]);
    }
}

#[test]
fn synaptic_matches_snntorch() {
    let f = fixtures();
    for (name, reset) in [
        ("synaptic_subtract", Reset::Subtract),
        ("synaptic_zero", Reset::Zero),
    ] {
        let n = SynapticConfig::new(0.7, 0.85)
            .with_reset(reset)
            .init(&cpu())
            .unwrap();
        compare(&n, &f[name]);
    }
}

#[test]
fn rleaky_matches_snntorch() {
    let f = fixtures();
    let case = &f["rleaky_linear"];
    let dev = cpu();
    let mut n = RLeakyConfig::new(0.85, RecurrentKind::AllToAll { features: 3 })
        .init(&mut Rng::new(0), &dev)
        .unwrap();
    let lin = linear_from_torch(
        &floats(&case["weight"]),
        Some(&floats(&case["bias"])),
        3,
        3,
        &dev,
    )
    .unwrap();
    n.recurrent.linear = Some(lin);
    compare(&n, case);
}

fn tutorial_net(case: &Json, device: &burn::tensor::Device) -> Network {
    let sizes: Vec<usize> = case["sizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let spec = presets::mlp(sizes[0], &[sizes[1]], sizes[2], &NeuronSpec::leaky(0.95));
    let mut model = spec.init(&mut Rng::new(0), device).unwrap();
    let mut named = export(&model);
    for key in ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"] {
        let old = &named[key];
        named.insert(
            key.to_string(),
            NamedParam {
                shape: old.shape.clone(),
                values: floats(&case[key]),
                id: old.id,
            },
        );
    }
    import(&mut model, &named).unwrap();
    model
}

fn linear(model: &Network, i: usize) -> &Linear {
    match &model.layers[i] {
        Layer::Linear(l) => l,
        other => panic!("layer {i} is {other:?}"),
    }
}

/// The tutorial network: snntorch runs fc1 at every step; spyne hoists it (a constant input),
/// and runs each Leaky layer as one fused op. Every combination: same loss, membranes and
/// gradients.
#[test]
fn tutorial_network_forward_and_gradients_match_snntorch() {
    let f = fixtures();
    let case = &f["tutorial_net"];
    let dev = grad_device();
    let model = tutorial_net(case, &dev);
    let (steps, batch) = (
        case["steps"].as_u64().unwrap() as usize,
        case["batch"].as_u64().unwrap() as usize,
    );
    let img = floats(&case["input"]);
    let targets: Vec<usize> = case["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    for (hoist, fused) in [(true, true), (true, false), (false, true), (false, false)] {
        let x = Encoding::Direct
            .encode(
                &img,
                batch,
                if hoist { 1 } else { steps },
                &mut Rng::new(0),
                &dev,
            )
            .unwrap();
        let x = if hoist {
            let [_, b, n] = x.dims();
            Seq::constant(x.reshape([b, n]), steps)
        } else {
            Seq::new(x)
        };
        // Recording keeps the hidden spikes (the fused path otherwise never makes them).
        let mut run = Run::new().recording(!fused);
        if !fused {
            run = run.composed();
        }
        let out = model.forward(x, &mut run).unwrap();
        let mems = out.mems.expect("Run::new asks for membranes");
        assert_eq!(run.stats().fused, if fused { 2 } else { 0 }, "paths");
        if !fused {
            let hidden = run.records()[0].spikes.clone();
            assert_eq!(v(hidden), floats(&case["spk1"]), "hidden spikes");
        }
        assert_close(
            &v(mems.clone()),
            &floats(&case["mem2"]),
            1e-5,
            "output membranes",
        );
        let loss = ce_membrane_loss(mems, &targets).unwrap();
        assert_close(
            &v(loss.clone()),
            &[case["loss"].as_f64().unwrap() as f32],
            1e-5,
            "loss",
        );
        let g = loss.backward();
        let grad_torch = |p: &Param<Tensor<2>>| v(p.val().grad(&g).unwrap().transpose());
        let grad1 = |p: &Option<Param<Tensor<1>>>| v(p.as_ref().unwrap().val().grad(&g).unwrap());
        let (fc1, fc2) = (linear(&model, 0), linear(&model, 2));
        assert_close(
            &grad_torch(&fc1.weight),
            &floats(&case["grad.fc1.weight"]),
            1e-4,
            "dW1",
        );
        assert_close(
            &grad1(&fc1.bias),
            &floats(&case["grad.fc1.bias"]),
            1e-4,
            "db1",
        );
        assert_close(
            &grad_torch(&fc2.weight),
            &floats(&case["grad.fc2.weight"]),
            1e-4,
            "dW2",
        );
        assert_close(
            &grad1(&fc2.bias),
            &floats(&case["grad.fc2.bias"]),
            1e-4,
            "db2",
        );
    }
}
