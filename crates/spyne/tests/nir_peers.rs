//! NIR files written by the peers (tools/nir/peers_fixtures.py), imported by spyne: the
//! peer's output spikes exactly and its membranes within 1e-5, on the stored inputs.
//! snntorch reports the membrane before its reset, as spyne does; Norse after it (v_reset,
//! 0, on a spike step).
#![cfg(feature = "nir")]

use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};
use spyne::model::spec::{LayerSpec, NeuronKind};
use spyne::neuron::Reset;
use spyne::nir::{self, Convention, ImportOptions};
use spyne::run::Run;
use spyne::seq::Seq;
use spyne::tensor::to_vec;
use spyne::SpikingModel;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/nir")
        .join(name)
}

fn floats(v: &serde_json::Value, key: &str) -> Vec<f32> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key}"))
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn dims(v: &serde_json::Value, key: &str) -> [usize; 3] {
    let d: Vec<usize> = v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    // [T, B, one sample's values]: the network reshapes to its own input shape.
    [d[0], d[1], d[2..].iter().product()]
}

/// Imports `<name>.nir`, runs it on the stored input and compares with the peer.
fn reproduces(name: &str) {
    let norse = name.starts_with("norse");
    let convention = if norse {
        Convention::Norse
    } else {
        Convention::Snntorch
    };
    let options = ImportOptions {
        dt: None,
        convention,
    };
    let imported = nir::read(&fixture(&format!("{name}.nir")), &options)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    for layer in &imported.spec.layers {
        if let LayerSpec::Neuron(n) = layer {
            // snntorch's networks ran its zero reset; Norse's v ← 0 then integrates.
            let want = match (convention, n.kind) {
                (Convention::Norse, NeuronKind::Synaptic) => Reset::ZeroThenIntegrate,
                _ => Reset::Zero,
            };
            assert_eq!(n.reset, Some(want), "{name}: {:?}", n.kind);
        }
    }
    let device = Device::flex();
    let net = imported.network(&device).unwrap();
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture(&format!("{name}.json"))).unwrap()).unwrap();
    let x = Tensor::<3>::from_data(
        TensorData::new(floats(&record, "input"), dims(&record, "input_shape")),
        &device,
    );
    let out = net.forward(Seq::new(x), &mut Run::new()).unwrap();
    let spikes = to_vec(out.spikes);
    let mut mems = to_vec(out.mems.expect("Run::new asks for membranes"));
    if norse {
        for (m, s) in mems.iter_mut().zip(&spikes) {
            *m *= 1.0 - s;
        }
    }
    let (want_spikes, want_mems) = (floats(&record, "spikes"), floats(&record, "mems"));
    assert_eq!(spikes.len(), want_spikes.len(), "{name}");
    assert_eq!(spikes, want_spikes, "{name}: spikes");
    assert!(
        want_spikes.iter().any(|&s| s > 0.0),
        "{name}: the fixture has spikes"
    );
    let worst = mems
        .iter()
        .zip(&want_mems)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= 1e-5, "{name}: membranes differ by up to {worst}");
}

#[test]
fn snntorch_mlp_export_reproduces_snntorch() {
    reproduces("snntorch_mlp");
}

#[test]
fn snntorch_conv_net_with_average_pooling_reproduces_snntorch() {
    reproduces("snntorch_conv_avgpool");
}

#[test]
fn snntorch_rleaky_export_reproduces_snntorch() {
    // snntorch writes the recurrent layer flattened: '1.lif' ↔ '1.w_rec' on a cycle.
    let imported = nir::read(&fixture("snntorch_rleaky.nir"), &ImportOptions::default()).unwrap();
    assert!(imported.params.contains_key("1.lif.recurrent.weight"));
    reproduces("snntorch_rleaky");
}

#[test]
fn snntorch_rleaky_read_as_standard_nir_integrates_after_a_spike() {
    // Without the snntorch convention the file means what NIR says: v ← 0, then integrate.
    let imported = nir::read(&fixture("snntorch_rleaky.nir"), &ImportOptions::default()).unwrap();
    let resets: Vec<_> = imported
        .spec
        .layers
        .iter()
        .filter_map(|l| match l {
            LayerSpec::Neuron(n) => Some((n.kind, n.reset)),
            _ => None,
        })
        .collect();
    assert_eq!(
        resets,
        [
            (NeuronKind::RLeaky, Some(Reset::ZeroThenIntegrate)),
            (NeuronKind::Leaky, Some(Reset::Zero))
        ]
    );
}

#[test]
fn norse_lif_box_export_reproduces_norse() {
    // Norse writes tau = dt·τ with dt = 1 ms; read by its convention: β = 1 − dt/τ.
    let imported = nir::read(
        &fixture("norse_lif.nir"),
        &ImportOptions {
            dt: None,
            convention: Convention::Norse,
        },
    )
    .unwrap();
    assert_eq!(imported.dt, 1e-3);
    let beta = &imported.params["1.beta"].values;
    assert!(
        (beta[0] - 0.9).abs() < 1e-6,
        "β of τ = 10 ms at 1 ms: {beta:?}"
    );
    reproduces("norse_lif");
}

#[test]
fn norse_lif_cell_export_reproduces_norse() {
    reproduces("norse_cubalif");
}

#[test]
fn norse_file_read_as_standard_nir_is_refused_not_misread() {
    // Read as NIR means it, Norse's τ = 10 µs at dt = 0.1 ms gives β = −9: no decay.
    let err = nir::read(&fixture("norse_lif.nir"), &ImportOptions::default()).unwrap_err();
    assert!(err.to_string().contains("β"), "{err}");
}
