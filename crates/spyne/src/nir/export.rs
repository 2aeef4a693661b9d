//! A spyne network to a NIR graph, with snntorch's mapping by default:
//! Leaky(β, θ) → LIF(τ = dt/(1−β), r = τ/dt, v_leak = 0, v_threshold = θ, v_reset = 0);
//! Synaptic(α, β) → CubaLIF(τ_syn = dt/(1−α), τ_mem = dt/(1−β), r = τ_mem/dt,
//! w_in = τ_syn/dt); RLeaky and RSynaptic → a subgraph with the recurrent weight on a cycle.
//! Under NIR's forward-Euler reading with the same dt these are exactly spyne's updates.

use super::graph::{Array, Entry, Graph, Meta, Node};
use super::{ExportOptions, Exported, META_ALPHA, META_BETA, META_DT, META_LAYER, META_RESET};
use crate::error::{Error, Result};
use crate::model::params::{self, Named};
use crate::model::spec::{LayerSpec, NeuronKind};
use crate::model::Network;
use crate::neuron::Reset;

/// The graph of `net` (its current weights and neuron parameters).
pub fn to_graph(net: &Network, options: &ExportOptions) -> Result<Exported> {
    let dt = options.dt;
    if !(dt.is_finite() && dt > 0.0) {
        return Err(Error::invalid("dt", format!("must be positive, got {dt}")));
    }
    let named = params::export(net);
    let shapes = net.output_shapes();
    let mut graph = Graph::default();
    graph
        .metadata
        .insert(META_DT.into(), Meta::Text(dt.to_string()));
    graph.nodes.insert(
        "input".into(),
        Node::Input {
            shape: net.spec.input.clone(),
        }
        .into(),
    );
    let mut previous = "input".to_string();
    let mut in_shape = net.spec.input.clone();
    let mut zero_reset_warnings = Vec::new();
    for (i, (layer, name)) in net.spec.layers.iter().zip(net.names()).enumerate() {
        let out_shape = &shapes[i];
        let fail = |reason: String| Error::Model {
            index: i + 1,
            name: name.to_string(),
            kind: layer.kind(),
            reason,
        };
        if graph.nodes.contains_key(name) || name == "input" || name == "output" {
            return Err(fail(
                "the name is taken (NIR node names must differ, and input and output are the \
                 graph's own)"
                    .into(),
            ));
        }
        let p = |key: &str| {
            named
                .get(&format!("{name}.{key}"))
                .ok_or_else(|| fail(format!("has no parameter {key}")))
        };
        let mut metadata = super::graph::Metadata::new();
        metadata.insert(
            META_LAYER.into(),
            Meta::Text(serde_json::to_string(layer).map_err(|e| fail(e.to_string()))?),
        );
        let node = match layer {
            LayerSpec::Linear(s) => {
                let w = p("weight")?;
                let weight = Array::from_f32(&w.shape, &w.values);
                if s.bias {
                    let b = p("bias")?;
                    Node::Affine {
                        weight,
                        bias: Array::from_f32(&b.shape, &b.values),
                    }
                } else {
                    Node::Linear { weight }
                }
            }
            LayerSpec::Conv2d(s) => {
                let w = p("weight")?;
                let bias = if s.bias {
                    let b = p("bias")?;
                    Array::from_f32(&b.shape, &b.values)
                } else {
                    Array::full(&[s.channels], 0.0)
                };
                Node::Conv2d {
                    weight: Array::from_f32(&w.shape, &w.values),
                    bias,
                    stride: s.stride.pair(),
                    padding: s.padding.pair(),
                    dilation: [1, 1],
                    groups: 1,
                    // NIR's Conv2d input_shape is the spatial part, (H, W).
                    input_shape: Some(in_shape[1..].to_vec()),
                }
            }
            LayerSpec::AvgPool2d(s) => Node::AvgPool2d {
                kernel: s.kernel.pair(),
                stride: s.stride.unwrap_or(s.kernel).pair(),
                padding: [0, 0],
            },
            LayerSpec::Flatten(_) => Node::Flatten {
                start_dim: 0,
                end_dim: -1,
                input_shape: Some(in_shape.clone()),
            },
            LayerSpec::MaxPool2d(_) => {
                return Err(fail(
                    "NIR has no max pooling; use avg_pool2d (NIR AvgPool2d, or SumPool2d as a \
                     scaled average) and retrain"
                        .into(),
                ))
            }
            LayerSpec::Dropout(_) => {
                return Err(fail(
                    "NIR has no dropout; dropout is the identity at inference, so remove the \
                     layer from the model file before exporting"
                        .into(),
                ))
            }
            LayerSpec::BatchNorm2d(_) => {
                return Err(fail(
                    "NIR has no batch normalisation; fold it into the convolution before it \
                     (w·γ/√(σ²+ε), (b−μ)·γ/√(σ²+ε)+β) and export that model"
                        .into(),
                ))
            }
            LayerSpec::Neuron(s) => {
                let reset = s.reset.unwrap_or_default();
                if !means_nir_reset(s.kind, reset) {
                    zero_reset_warnings.push(format!("{name} ({} reset)", reset_name(reset)));
                }
                let spread = |key: &str| -> Result<Array> {
                    let v = p(key)?;
                    broadcast(&v.values, out_shape).map_err(&fail)
                };
                let beta = spread("beta");
                let theta = spread("threshold")?;
                let zeros = theta.map(|_| 0.0);
                let decay_tau = |a: &Array| a.map(|x| dt / (1.0 - x));
                metadata.insert(META_RESET.into(), Meta::Text(reset_name(reset).into()));
                let exact = |key: &str| -> Result<Meta> {
                    let v = p(key)?;
                    Ok(Meta::Numbers(Array::from_f32(&v.shape, &v.values)))
                };
                let cell =
                    match s.kind {
                        NeuronKind::Leaky | NeuronKind::RLeaky => {
                            metadata.insert(META_BETA.into(), exact("beta")?);
                            let tau = decay_tau(&beta?);
                            Node::Lif {
                                r: tau.map(|t| t / dt),
                                tau,
                                v_leak: zeros.clone(),
                                v_threshold: theta,
                                v_reset: zeros,
                            }
                        }
                        NeuronKind::Synaptic | NeuronKind::RSynaptic => {
                            metadata.insert(META_BETA.into(), exact("beta")?);
                            metadata.insert(META_ALPHA.into(), exact("alpha")?);
                            let tau_mem = decay_tau(&beta?);
                            let tau_syn = decay_tau(&spread("alpha")?);
                            Node::CubaLif {
                                r: tau_mem.map(|t| t / dt),
                                w_in: tau_syn.map(|t| t / dt),
                                tau_syn,
                                tau_mem,
                                v_leak: zeros.clone(),
                                v_threshold: theta,
                                v_reset: zeros,
                            }
                        }
                        NeuronKind::Lapicque | NeuronKind::Alpha => return Err(fail(
                            "has no NIR export yet; use leaky (NIR LIF) or synaptic (NIR CubaLIF)"
                                .into(),
                        )),
                    };
                if matches!(s.kind, NeuronKind::RLeaky | NeuronKind::RSynaptic) {
                    let rec = recurrent_weight(&named, name, out_shape).map_err(&fail)?;
                    let mut sub = Graph::default();
                    sub.nodes.insert(
                        "input".into(),
                        Node::Input {
                            shape: out_shape.clone(),
                        }
                        .into(),
                    );
                    sub.nodes.insert(
                        "lif".into(),
                        Entry {
                            node: cell,
                            metadata: Default::default(),
                        },
                    );
                    sub.nodes.insert("w_rec".into(), rec.into());
                    sub.nodes.insert(
                        "output".into(),
                        Node::Output {
                            shape: out_shape.clone(),
                        }
                        .into(),
                    );
                    sub.edges = [
                        ("input", "lif"),
                        ("lif", "w_rec"),
                        ("w_rec", "lif"),
                        ("lif", "output"),
                    ]
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect();
                    Node::Graph(sub)
                } else {
                    cell
                }
            }
        };
        graph
            .nodes
            .insert(name.to_string(), Entry { node, metadata });
        graph.edges.push((previous, name.to_string()));
        previous = name.to_string();
        in_shape = out_shape.clone();
    }
    graph.nodes.insert(
        "output".into(),
        Node::Output {
            shape: in_shape.clone(),
        }
        .into(),
    );
    graph.edges.push((previous, "output".into()));
    let warnings = if zero_reset_warnings.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "NIR's neurons reset to v_reset = 0 and integrate the next step from there \
             (spyne's zero-then-integrate reset): readers other than spyne will run {} that way",
            zero_reset_warnings.join(", ")
        )]
    };
    Ok(Exported { graph, warnings })
}

/// The reset as `spyne_reset` and the warnings write it.
pub(super) fn reset_name(reset: Reset) -> &'static str {
    match reset {
        Reset::Subtract => "subtract",
        Reset::Zero => "zero",
        Reset::None => "none",
        Reset::ZeroThenIntegrate => "zero-then-integrate",
    }
}

/// Whether `reset` is what NIR's `v ← v_reset = 0` means for a `kind` neuron: Leaky's zero
/// reset is, the others' zero (snntorch's: the step after a spike drops its input) is not.
fn means_nir_reset(kind: NeuronKind, reset: Reset) -> bool {
    match reset {
        Reset::ZeroThenIntegrate => true,
        Reset::Zero => kind == NeuronKind::Leaky,
        Reset::Subtract | Reset::None => false,
    }
}

/// A neuron parameter (one value, one per channel, or one per neuron) spread over the
/// layer's `shape`.
fn broadcast(values: &[f32], shape: &[usize]) -> std::result::Result<Array, String> {
    let n: usize = shape.iter().product();
    let spread: Vec<f32> = match values.len() {
        1 => vec![values[0]; n],
        len if len == n => values.to_vec(),
        len if shape.len() > 1 && len == shape[0] => values
            .iter()
            .flat_map(|&v| std::iter::repeat_n(v, n / len))
            .collect(),
        len => {
            return Err(format!(
                "a parameter of {len} values does not fit the layer's shape {shape:?}"
            ))
        }
    };
    Ok(Array::from_f32(shape, &spread))
}

/// The recurrent connection of an RLeaky/RSynaptic layer: its all-to-all layer (Affine), or
/// the one-to-one weights as a diagonal Linear, as snntorch writes it.
fn recurrent_weight(
    named: &Named,
    name: &str,
    shape: &[usize],
) -> std::result::Result<Node, String> {
    let n: usize = shape.iter().product();
    if let Some(w) = named.get(&format!("{name}.recurrent.weight")) {
        let weight = Array::from_f32(&w.shape, &w.values);
        return Ok(match named.get(&format!("{name}.recurrent.bias")) {
            Some(b) => Node::Affine {
                weight,
                bias: Array::from_f32(&b.shape, &b.values),
            },
            None => Node::Linear { weight },
        });
    }
    let v = named
        .get(&format!("{name}.recurrent.v"))
        .ok_or("has no recurrent weights")?;
    let diag = broadcast(&v.values, &[n])?;
    let mut weight = Array::full(&[n, n], 0.0);
    for (i, &d) in diag.values.iter().enumerate() {
        weight.values[i * n + i] = d;
    }
    Ok(Node::Linear { weight })
}
