//! NIR export and import: spyne → NIR → spyne is bit-exact for every layer type, reset mode
//! and parameter shape; layers NIR cannot express are clear errors naming the layer.
#![cfg(feature = "nir")]

use burn::tensor::Device;
use spyne::model::params;
use spyne::model::spec::LayerSpec;
use spyne::model::{ModelSpec, Network, NeuronKind, NeuronSpec};
use spyne::neuron::{Reset, Value};
use spyne::nir::{self, ExportOptions, ImportOptions, Meta, Node};
use spyne::rng::TorchRng;
use spyne::surrogate::Surrogate;

fn dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("spyne-nir-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `spec` built with seed 3, every neuron parameter moved off its initial value so that
/// trained values, not the description's, must come back.
fn trained(spec: ModelSpec) -> Network {
    let device = Device::flex();
    let mut net = spec.init(&mut TorchRng::new(3), &device).unwrap();
    let mut named = params::export(&net);
    for (name, p) in named.iter_mut() {
        for (i, v) in p.values.iter_mut().enumerate() {
            let nudge = 1e-3 * (1.0 + (i % 7) as f32) / 3.0;
            if name.ends_with(".beta") || name.ends_with(".alpha") {
                *v = (*v - nudge).clamp(0.05, 0.999);
            } else if name.ends_with(".threshold") {
                *v += nudge;
            }
        }
    }
    params::import(&mut net, &named).unwrap();
    net
}

fn round_trip(name: &str, net: &Network) -> nir::Imported {
    let path = dir().join(format!("{name}.nir"));
    nir::write(&path, net, &ExportOptions::default()).unwrap();
    let back = nir::read(&path, &ImportOptions::default()).unwrap();
    let again = back.network(&Device::flex()).unwrap();
    assert_eq!(
        settings(&again.spec),
        settings(&net.spec.resolved().unwrap()),
        "{name}: description"
    );
    let (a, b) = (params::export(net), params::export(&again));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "{name}"
    );
    for (k, p) in &a {
        assert_eq!(p.shape, b[k].shape, "{name}: {k} shape");
        let same = p
            .values
            .iter()
            .zip(&b[k].values)
            .all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same, "{name}: {k} differs after the round trip");
    }
    // A second trip changes nothing at all, the description's values included.
    let path2 = dir().join(format!("{name}-again.nir"));
    nir::write(&path2, &again, &ExportOptions::default()).unwrap();
    let twice = nir::read(&path2, &ImportOptions::default()).unwrap();
    assert_eq!(twice, back, "{name}: second round trip");
    back
}

/// The description's settings, without the values that live in the parameters (β, α, θ and
/// `V` start there, and training moves them) and without what the builder fills in.
fn settings(spec: &ModelSpec) -> Vec<LayerSpec> {
    spec.layers
        .iter()
        .map(|l| {
            let mut l = l.clone();
            match &mut l {
                LayerSpec::Neuron(n) => {
                    (n.beta, n.alpha, n.threshold) = (None, None, None);
                    n.v = n.v.as_ref().map(|_| Value::Scalar(0.0));
                    n.reset.get_or_insert(Reset::Subtract);
                    if n.v.is_none() && matches!(n.kind, NeuronKind::RLeaky | NeuronKind::RSynaptic)
                    {
                        n.all_to_all.get_or_insert(true);
                    }
                }
                LayerSpec::Linear(s) => s.in_features = None,
                LayerSpec::Conv2d(s) => s.in_channels = None,
                _ => {}
            }
            l
        })
        .collect()
}

fn build(spec: ModelSpec) -> Network {
    spec.init(&mut TorchRng::new(0), &Device::flex()).unwrap()
}

fn fast() -> Surrogate {
    Surrogate::FastSigmoid { slope: 25.0 }
}

#[test]
fn mlp_round_trips_for_every_reset() {
    for reset in [
        Reset::Subtract,
        Reset::Zero,
        Reset::None,
        Reset::ZeroThenIntegrate,
    ] {
        let lif = NeuronSpec::leaky(0.95).with_reset(reset);
        let spec = ModelSpec::new([20])
            .linear(16)
            .neuron(lif.clone())
            .linear(4)
            .neuron(lif);
        round_trip(&format!("mlp-{reset:?}"), &trained(spec));
    }
}

#[test]
fn conv_net_with_per_channel_parameters_round_trips() {
    let per_channel = NeuronSpec::leaky(Value::PerChannel {
        per_channel: vec![0.5, 0.6, 0.7, 0.8],
    })
    .with_threshold(Value::PerChannel {
        per_channel: vec![1.0, 0.9, 1.1, 1.2],
    })
    .with_surrogate(fast());
    let mut no_bias = ModelSpec::new([1, 10, 10]).conv2d(4, 3);
    if let Some(LayerSpec::Conv2d(c)) = no_bias.layers.last_mut() {
        c.bias = false;
        c.padding = 1.into();
    }
    let spec = no_bias
        .avg_pool2d(2)
        .neuron(per_channel)
        .flatten()
        .linear(5)
        .neuron(NeuronSpec::leaky(vec![0.9, 0.8, 0.7, 0.6, 0.5]));
    round_trip("conv", &trained(spec));
}

#[test]
fn synaptic_and_recurrent_layers_round_trip() {
    let mut rleaky_one = NeuronSpec::rleaky(0.9);
    rleaky_one.all_to_all = Some(false);
    rleaky_one.v = Some(Value::PerNeuron(vec![0.5, -0.25, 0.125, 1.0, 2.0, -1.0]));
    let mut rsyn = NeuronSpec::synaptic(0.8, 0.9);
    rsyn.kind = NeuronKind::RSynaptic;
    let spec = ModelSpec::new([7])
        .linear(6)
        .neuron(NeuronSpec::synaptic(0.7, 0.85).with_reset(Reset::Zero))
        .linear(6)
        .neuron(NeuronSpec::rleaky(0.95))
        .linear(6)
        .neuron(rleaky_one)
        .linear(3)
        .neuron(rsyn);
    let back = round_trip("recurrent", &trained(spec));
    assert_eq!(back.spec.layers.len(), 8);
}

#[test]
fn export_writes_snntorch_parameters_and_the_reset_in_metadata() {
    let net = build(
        ModelSpec::new([3])
            .linear(2)
            .neuron(NeuronSpec::leaky(0.95)),
    );
    let exported = nir::export::to_graph(&net, &ExportOptions::default()).unwrap();
    let lif = &exported.graph.nodes["lif1"];
    let Node::Lif {
        tau,
        r,
        v_threshold,
        ..
    } = &lif.node
    else {
        panic!("lif1 is {:?}", lif.node.type_name())
    };
    let beta = f64::from(0.95f32);
    assert_eq!(tau.shape, vec![2]);
    assert!((tau.values[0] - 1e-4 / (1.0 - beta)).abs() < 1e-12);
    assert!((r.values[0] - 1.0 / (1.0 - beta)).abs() < 1e-9);
    assert_eq!(v_threshold.values, vec![1.0, 1.0]);
    assert_eq!(
        lif.metadata.get(nir::META_RESET),
        Some(&Meta::Text("subtract".into()))
    );
    assert!(matches!(
        exported.graph.nodes["fc1"].node,
        Node::Affine { .. }
    ));
    let [warning] = &exported.warnings[..] else {
        panic!("{:?}", exported.warnings)
    };
    assert!(
        warning.contains("lif1 (subtract reset)") && warning.contains("zero-then-integrate"),
        "{warning}"
    );
    assert_eq!(
        exported.graph.edges,
        [("input", "fc1"), ("fc1", "lif1"), ("lif1", "output")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
    );
}

#[test]
fn without_spyne_metadata_neurons_are_zero_reset() {
    let net = build(ModelSpec::new([3]).linear(2).neuron(NeuronSpec::leaky(0.9)));
    let mut exported = nir::export::to_graph(&net, &ExportOptions::default()).unwrap();
    for entry in exported.graph.nodes.values_mut() {
        entry.metadata.clear();
    }
    let back = nir::import::from_graph(&exported.graph, &ImportOptions::default()).unwrap();
    let LayerSpec::Neuron(n) = &back.spec.layers[1] else {
        panic!()
    };
    assert_eq!(n.reset, Some(Reset::Zero));
    // β from τ alone: within f32 rounding of the exported value.
    let beta = back.params["lif1.beta"].values[0];
    assert!((beta - 0.9).abs() < 1e-6, "{beta}");
}

#[test]
fn a_different_dt_reads_different_decays() {
    let net = build(ModelSpec::new([3]).linear(2).neuron(NeuronSpec::leaky(0.9)));
    let exported = nir::export::to_graph(&net, &ExportOptions { dt: 1e-3 }).unwrap();
    let same = nir::import::from_graph(&exported.graph, &ImportOptions::default()).unwrap();
    assert_eq!(same.dt, 1e-3, "the file's own dt is the default");
    let other = nir::import::from_graph(
        &exported.graph,
        &ImportOptions {
            dt: Some(1e-4),
            ..Default::default()
        },
    );
    let other = other.unwrap();
    // τ = 1e-3 / 0.1 = 1e-2; with dt = 1e-4, β = 1 − 1e-4 / 1e-2 = 0.99, and the input scale
    // r·dt/τ = 0.1 is folded into fc1's weights.
    let LayerSpec::Neuron(n) = &other.spec.layers[1] else {
        panic!()
    };
    assert_eq!(n.reset, Some(Reset::Subtract));
    assert!((other.params["lif1.beta"].values[0] - 0.99).abs() < 1e-6);
    let w0 = params::export(&net)["fc1.weight"].values[0];
    let w1 = other.params["fc1.weight"].values[0];
    assert!((w1 - 0.1 * w0).abs() < 1e-6, "{w1} vs {w0}");
}

#[test]
fn layers_without_a_nir_node_are_errors_naming_the_layer() {
    let lif = NeuronSpec::leaky(0.5);
    let cases = [
        (
            ModelSpec::new([1, 8, 8])
                .conv2d(2, 3)
                .max_pool2d(2)
                .neuron(lif.clone()),
            "pool2",
            "avg_pool2d",
        ),
        (
            ModelSpec::new([4])
                .linear(3)
                .dropout(0.2)
                .neuron(lif.clone()),
            "dropout1",
            "remove",
        ),
    ];
    for (spec, layer, hint) in cases {
        let net = build(spec);
        let err = nir::export::to_graph(&net, &ExportOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(layer) && err.contains(hint), "{err}");
    }
}

#[test]
fn malformed_files_are_errors_not_panics() {
    let d = dir();
    let junk = d.join("junk.nir");
    std::fs::write(&junk, b"not hdf5 at all").unwrap();
    let err = nir::read(&junk, &ImportOptions::default()).unwrap_err();
    assert!(err.to_string().contains("junk.nir"), "{err}");
    let missing = nir::read(&d.join("absent.nir"), &ImportOptions::default()).unwrap_err();
    assert!(missing.to_string().contains("absent.nir"), "{missing}");
}

#[test]
fn graphs_that_are_not_chains_are_refused() {
    let net = build(ModelSpec::new([3]).linear(2).neuron(NeuronSpec::leaky(0.9)));
    let mut g = nir::export::to_graph(&net, &ExportOptions::default())
        .unwrap()
        .graph;
    g.edges.push(("input".into(), "lif1".into()));
    let err = nir::import::from_graph(&g, &ImportOptions::default()).unwrap_err();
    assert!(err.to_string().contains("feeds 2 nodes"), "{err}");
}

#[test]
fn sum_pooling_reads_as_average_pooling_with_the_window_in_the_next_weights() {
    let spec = ModelSpec::new([1, 4, 4])
        .conv2d(2, 1)
        .avg_pool2d(2)
        .flatten()
        .linear(3)
        .neuron(NeuronSpec::leaky(0.9));
    let net = build(spec);
    let mut g = nir::export::to_graph(&net, &ExportOptions::default())
        .unwrap()
        .graph;
    let Node::AvgPool2d {
        kernel,
        stride,
        padding,
    } = g.nodes["pool1"].node.clone()
    else {
        panic!()
    };
    g.nodes.get_mut("pool1").unwrap().node = Node::SumPool2d {
        kernel,
        stride,
        padding,
    };
    let back = nir::import::from_graph(&g, &ImportOptions::default()).unwrap();
    assert!(matches!(back.spec.layers[1], LayerSpec::AvgPool2d(_)));
    let (w0, w1) = (
        &params::export(&net)["fc1.weight"].values,
        &back.params["fc1.weight"].values,
    );
    assert!(w0.iter().zip(w1).all(|(a, b)| *b == 4.0 * a));
    assert_eq!(
        params::export(&net)["fc1.bias"].values,
        back.params["fc1.bias"].values
    );

    // Straight into a neuron there is nowhere to put the factor: an error, not a mean.
    let spec = ModelSpec::new([1, 4, 4])
        .conv2d(2, 1)
        .avg_pool2d(2)
        .neuron(NeuronSpec::leaky(0.9));
    let mut g = nir::export::to_graph(&build(spec), &ExportOptions::default())
        .unwrap()
        .graph;
    g.nodes.get_mut("pool1").unwrap().node = Node::SumPool2d {
        kernel,
        stride,
        padding,
    };
    let err = nir::import::from_graph(&g, &ImportOptions::default()).unwrap_err();
    assert!(err.to_string().contains("SumPool2d"), "{err}");
}

#[test]
fn export_warns_for_every_reset_other_readers_run_differently() {
    // Leaky's zero reset is NIR's v ← 0; Synaptic's (snntorch's) drops the next step's input.
    let warned = |kind_reset: NeuronSpec| -> Vec<String> {
        let spec = ModelSpec::new([6])
            .linear(4)
            .neuron(kind_reset.named("cell"));
        let net = spec.init(&mut TorchRng::new(0), &Device::flex()).unwrap();
        nir::export::to_graph(&net, &ExportOptions::default())
            .unwrap()
            .warnings
    };
    assert!(warned(NeuronSpec::leaky(0.9).with_reset(Reset::Zero)).is_empty());
    assert!(warned(NeuronSpec::leaky(0.9).with_reset(Reset::ZeroThenIntegrate)).is_empty());
    assert!(warned(NeuronSpec::synaptic(0.8, 0.9).with_reset(Reset::ZeroThenIntegrate)).is_empty());
    let w = warned(NeuronSpec::synaptic(0.8, 0.9).with_reset(Reset::Zero));
    assert!(w.len() == 1 && w[0].contains("cell (zero reset)"), "{w:?}");
}
