//! A NIR graph to a spyne model description and its parameters. The graph must be a chain
//! from its Input to its Output; a nested graph with a LIF or CubaLIF on a cycle through an
//! Affine or Linear node is an RLeaky or RSynaptic layer. LIF(τ, r, θ) reads back as
//! Leaky(β = 1 − dt/τ, θ); an input scale r·dt/τ other than 1 is folded into the weights
//! before it. Without spyne's metadata every neuron is zero-reset, which is what NIR means.

mod neuron;

use std::collections::BTreeMap;

use super::graph::{Array, Entry, Graph, Meta, Node};
use super::{Convention, ImportOptions, Imported, META_DT, META_LAYER};
use crate::error::{Error, Result};
use crate::model::params::{Named, NamedParam};
use crate::model::spec::{
    Conv2dSpec, FlattenSpec, LayerSpec, LinearSpec, ModelSpec, PoolSpec, Size2,
};

/// Relative tolerance for parameters that must agree (an input scale of 1, equal
/// thresholds).
const TOL: f64 = 1e-5;

/// The model and parameters `graph` describes.
pub fn from_graph(graph: &Graph, options: &ImportOptions) -> Result<Imported> {
    let dt = match (options.dt, graph.metadata.get(META_DT)) {
        (Some(dt), _) => dt,
        // Written as text: the f32 numeric datasets would round it.
        (None, Some(Meta::Text(t))) => t.parse().unwrap_or(options.convention.default_dt()),
        _ => options.convention.default_dt(),
    };
    if !(dt.is_finite() && dt > 0.0) {
        return Err(Error::invalid("dt", format!("must be positive, got {dt}")));
    }
    let (chain, feedback) = chain(graph)?;
    let input = match &graph.nodes[&chain[0]].node {
        Node::Input { shape } => shape.clone(),
        _ => unreachable!("the chain starts at the Input node"),
    };
    let mut b = Builder {
        spec: ModelSpec::new(input),
        params: Named::new(),
        dt,
        convention: options.convention,
        last_weighted: None,
        pending_scale: 1.0,
    };
    for name in &chain[1..chain.len() - 1] {
        match feedback.get(name) {
            Some(w) => b.neuron(name, &graph.nodes[name], Some(&graph.nodes[w].node))?,
            None => b.node(name, &graph.nodes[name])?,
        }
    }
    let output = match &graph.nodes[chain.last().expect("non-empty")].node {
        Node::Output { shape } => shape.clone(),
        _ => unreachable!("the chain ends at the Output node"),
    };
    let spec = b.spec.resolved()?;
    let net_out: usize = {
        let net = spec.init(
            &mut crate::rng::TorchRng::new(0),
            &burn::tensor::Device::flex(),
        )?;
        net.outputs()
    };
    let out_n: usize = output.iter().product();
    if !output.is_empty() && out_n != net_out {
        return Err(bad(format!(
            "the Output node has shape {output:?} ({out_n} values) but the layers give {net_out}"
        )));
    }
    Ok(Imported {
        spec,
        params: b.params,
        dt,
    })
}

fn bad(reason: impl Into<String>) -> Error {
    Error::invalid("nir graph", reason)
}

/// The node names from Input to Output, each feeding the next, and the neurons with a
/// feedback weight of their own (flattened recurrent layers: neuron → weight name).
fn chain(graph: &Graph) -> Result<(Vec<String>, BTreeMap<String, String>)> {
    let inputs: Vec<&String> = graph
        .nodes
        .iter()
        .filter(|(_, e)| matches!(e.node, Node::Input { .. }))
        .map(|(n, _)| n)
        .collect();
    let [start] = inputs[..] else {
        return Err(bad(format!(
            "spyne reads graphs with one Input node; this one has {}",
            inputs.len()
        )));
    };
    for (a, b) in &graph.edges {
        for n in [a, b] {
            if !graph.nodes.contains_key(n) {
                return Err(bad(format!(
                    "an edge names the node '{n}', which does not exist"
                )));
            }
        }
    }
    // snntorch writes RLeaky flattened into the graph: a weight node whose only input and
    // only output is one LIF/CubaLIF node. Such a weight is that neuron's feedback.
    let feedback: BTreeMap<String, String> = graph
        .nodes
        .iter()
        .filter(|(_, e)| matches!(e.node, Node::Affine { .. } | Node::Linear { .. }))
        .filter_map(|(w, _)| {
            let succ: Vec<&str> = graph.successors(w).collect();
            let pred: Vec<&str> = graph.predecessors(w).collect();
            match (&succ[..], &pred[..]) {
                ([c], [d]) if c == d && is_cell(&graph.nodes[*c].node) => {
                    Some((c.to_string(), w.clone()))
                }
                _ => None,
            }
        })
        .collect();
    let is_feedback = |n: &str| feedback.values().any(|w| w == n);
    let mut chain = vec![start.clone()];
    loop {
        let here = chain.last().expect("non-empty");
        if matches!(graph.nodes[here].node, Node::Output { .. }) {
            break;
        }
        let next: Vec<&str> = graph.successors(here).filter(|n| !is_feedback(n)).collect();
        let [next] = next[..] else {
            return Err(bad(format!(
                "node '{here}' feeds {} nodes ({}); spyne reads chains of layers",
                next.len(),
                next.join(", ")
            )));
        };
        if chain.iter().any(|c| c == next) {
            return Err(bad(format!("the graph has a cycle through '{next}'")));
        }
        if graph.predecessors(next).filter(|n| !is_feedback(n)).count() != 1 {
            return Err(bad(format!(
                "node '{next}' has several inputs; spyne reads chains of layers"
            )));
        }
        chain.push(next.to_string());
    }
    if chain.len() + feedback.len() != graph.nodes.len() {
        let extra: Vec<&String> = graph
            .nodes
            .keys()
            .filter(|k| !chain.contains(k) && !is_feedback(k))
            .collect();
        return Err(bad(format!(
            "nodes off the path from input to output: {}",
            extra
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok((chain, feedback))
}

fn is_cell(node: &Node) -> bool {
    matches!(node, Node::Lif { .. } | Node::CubaLif { .. })
}

struct Builder {
    spec: ModelSpec,
    params: Named,
    dt: f64,
    /// Whose reading of τ the file follows.
    convention: Convention,
    /// The name of the last Linear or Conv2d layer (an input scale folds into it).
    last_weighted: Option<String>,
    /// A SumPool2d's window size, waiting for the next weighted layer.
    pending_scale: f64,
}

fn param(shape: &[usize], values: Vec<f32>) -> NamedParam {
    NamedParam {
        shape: shape.to_vec(),
        values,
        id: 0,
    }
}

/// The layer spyne's exporter stored in `metadata`, when it matches the node's kind.
fn stored_layer(entry: &Entry, kind: &str) -> Option<LayerSpec> {
    let Some(Meta::Text(json)) = entry.metadata.get(META_LAYER) else {
        return None;
    };
    serde_json::from_str::<LayerSpec>(json)
        .ok()
        .filter(|l| l.kind() == kind || (kind == "neuron" && matches!(l, LayerSpec::Neuron(_))))
}

fn numbers<'a>(entry: &'a Entry, key: &str) -> Option<&'a Array> {
    match entry.metadata.get(key) {
        Some(Meta::Numbers(a)) => Some(a),
        _ => None,
    }
}

impl Builder {
    fn push(&mut self, mut layer: LayerSpec, name: &str) {
        if layer.name().is_none() {
            layer.set_name(name.to_string());
        }
        self.spec.layers.push(layer);
    }

    /// Weights (and a bias) of the layer `name`, with a pending SumPool2d scale applied.
    fn weighted(&mut self, name: &str, weight: &Array, bias: Option<&Array>) {
        let scale = std::mem::replace(&mut self.pending_scale, 1.0);
        let w = weight.map(|v| v * scale);
        self.params
            .insert(format!("{name}.weight"), param(&w.shape, w.to_f32()));
        if let Some(b) = bias {
            self.params
                .insert(format!("{name}.bias"), param(&b.shape, b.to_f32()));
        }
        self.last_weighted = Some(name.to_string());
    }

    fn node(&mut self, name: &str, entry: &Entry) -> Result<()> {
        let at = |reason: String| {
            bad(format!(
                "node '{name}' ({}): {reason}",
                entry.node.type_name()
            ))
        };
        match &entry.node {
            Node::Affine { weight, .. } | Node::Linear { weight } if weight.shape.len() == 2 => {
                let bias = match &entry.node {
                    Node::Affine { bias, .. } => Some(bias),
                    _ => None,
                };
                let mut spec = LinearSpec {
                    name: None,
                    in_features: Some(weight.shape[1]),
                    features: weight.shape[0],
                    bias: bias.is_some(),
                };
                if let Some(LayerSpec::Linear(s)) = stored_layer(entry, "linear") {
                    spec.name = s.name;
                }
                let layer_name = spec.name.clone().unwrap_or_else(|| name.to_string());
                self.weighted(&layer_name, weight, bias);
                self.push(LayerSpec::Linear(spec), name);
            }
            Node::Conv2d {
                weight,
                bias,
                stride,
                padding,
                dilation,
                groups,
                ..
            } => {
                if *dilation != [1, 1] || *groups != 1 {
                    return Err(at(format!(
                        "dilation {dilation:?} and groups {groups} are not supported (1 only)"
                    )));
                }
                let [out, inp, kh, kw] = weight.shape[..] else {
                    return Err(at(format!("weight shape {:?} is not 4-D", weight.shape)));
                };
                let stored = stored_layer(entry, "conv2d");
                let (layer_name, with_bias) = match &stored {
                    Some(LayerSpec::Conv2d(s)) => (s.name.clone(), s.bias),
                    _ => (None, true),
                };
                let spec = Conv2dSpec {
                    name: layer_name.clone(),
                    in_channels: Some(inp),
                    channels: out,
                    kernel: if kh == kw {
                        Size2::One(kh)
                    } else {
                        Size2::Two([kh, kw])
                    },
                    stride: pair(*stride),
                    padding: pair(*padding),
                    bias: with_bias,
                };
                let layer_name = layer_name.unwrap_or_else(|| name.to_string());
                self.weighted(&layer_name, weight, with_bias.then_some(bias));
                self.push(LayerSpec::Conv2d(spec), name);
            }
            Node::AvgPool2d {
                kernel,
                stride,
                padding,
            }
            | Node::SumPool2d {
                kernel,
                stride,
                padding,
            } => {
                if *padding != [0, 0] {
                    return Err(at(format!("padding {padding:?} is not supported (0 only)")));
                }
                if matches!(entry.node, Node::SumPool2d { .. }) {
                    // A sum is the mean times the window: the factor goes into the weights of
                    // the next layer, which is linear in its input.
                    self.pending_scale *= (kernel[0] * kernel[1]) as f64;
                }
                let stored_name = match stored_layer(entry, "avg_pool2d") {
                    Some(LayerSpec::AvgPool2d(s)) => s.name,
                    _ => None,
                };
                let spec = PoolSpec {
                    name: stored_name,
                    kernel: pair(*kernel),
                    stride: (stride != kernel).then_some(pair(*stride)),
                };
                self.push(LayerSpec::AvgPool2d(spec), name);
            }
            Node::Flatten {
                start_dim, end_dim, ..
            } => {
                if *start_dim != 0 || !(*end_dim == -1 || *end_dim as usize + 1 == self.rank()) {
                    return Err(at(format!(
                        "flattening dimensions {start_dim}..={end_dim}: spyne flattens whole samples"
                    )));
                }
                let stored_name = match stored_layer(entry, "flatten") {
                    Some(LayerSpec::Flatten(s)) => s.name,
                    _ => None,
                };
                self.push(LayerSpec::Flatten(FlattenSpec { name: stored_name }), name);
            }
            Node::Lif { .. } | Node::CubaLif { .. } => self.neuron(name, entry, None)?,
            Node::Graph(sub) => {
                let (cell, rec) = neuron::recurrent_parts(sub).map_err(at)?;
                let merged = Entry {
                    node: cell.node.clone(),
                    metadata: entry.metadata.clone(),
                };
                self.neuron(name, &merged, Some(rec))?;
            }
            Node::Input { .. } | Node::Output { .. } => {
                return Err(at("an Input or Output node inside the chain".into()))
            }
            other => {
                return Err(at(format!(
                    "spyne has no layer for NIR {} nodes (it reads Affine, Linear, Conv2d, \
                     AvgPool2d, SumPool2d, Flatten, LIF, CubaLIF and recurrent subgraphs)",
                    other.type_name()
                )))
            }
        }
        Ok(())
    }

    /// The rank of the current sample shape (before the node being read).
    fn rank(&self) -> usize {
        self.spec
            .clone()
            .resolved()
            .ok()
            .and_then(|s| {
                s.init(
                    &mut crate::rng::TorchRng::new(0),
                    &burn::tensor::Device::flex(),
                )
                .ok()
            })
            .and_then(|n| n.output_shapes().last().cloned())
            .unwrap_or_else(|| self.spec.input.clone())
            .len()
    }
}

fn pair(p: [usize; 2]) -> Size2 {
    if p[0] == p[1] {
        Size2::One(p[0])
    } else {
        Size2::Two(p)
    }
}
