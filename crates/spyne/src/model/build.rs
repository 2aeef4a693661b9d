//! From a description to a network: names, shapes, settings and PyTorch's initialisation.

use burn::tensor::Device;

use super::build_neuron::build_neuron;
use super::network::{Layer, Network};
use super::spec::{LayerSpec, ModelSpec, NeuronKind};
use crate::error::{Error, Result};
use crate::layer::{
    avg_pool2d, batch_norm2d, max_pool2d, torch_conv2d, torch_linear, Dropout, Flatten, SeqLayer,
};
use crate::rng::UniformSource;

/// The most values one sample's activations at one step may hold: beyond this no machine
/// trains the model, and the allocation would fail deep inside.
const MAX_VALUES: u128 = 1 << 36;

/// Bytes a parameter costs in training: the value, its gradient and Adam's two moments.
const TRAINING_BYTES: u128 = 16;

impl ModelSpec {
    /// The description with every layer named (`fc1`, `conv1`, `lif1`, … by kind and
    /// position, as snntorch's tutorials name them); duplicate names are an error.
    pub fn resolved(&self) -> Result<ModelSpec> {
        let mut spec = self.clone();
        let mut counts = std::collections::HashMap::new();
        let mut seen = std::collections::HashSet::new();
        for (i, layer) in spec.layers.iter_mut().enumerate() {
            let n = counts.entry(layer.name_prefix()).or_insert(0usize);
            *n += 1;
            if layer.name().is_none() {
                layer.set_name(format!("{}{n}", layer.name_prefix()));
            }
            let name = layer.name().unwrap_or_default().to_string();
            if !seen.insert(name.clone()) {
                return Err(layer_error(i, layer, "another layer has the same name"));
            }
        }
        Ok(spec)
    }

    /// Builds the network on `device`, drawing weights from `rng` layer by layer in the
    /// order PyTorch's `nn.Sequential` would (with a [`crate::rng::TorchRng`] seeded like
    /// `torch.manual_seed(s)`, the same weights). Every layer's setting and shape is checked
    /// first; a model whose parameters cannot fit in this machine's memory for training is
    /// refused before anything is allocated.
    pub fn init(&self, rng: &mut impl UniformSource, device: &Device) -> Result<Network> {
        let spec = self.resolved()?;
        if spec.input.is_empty() || spec.input.contains(&0) {
            return Err(Error::invalid(
                "model input",
                format!("{:?} is not a sample shape", spec.input),
            ));
        }
        if !matches!(spec.layers.last(), Some(LayerSpec::Neuron(_))) {
            return Err(Error::invalid(
                "model",
                "the last layer must be a neuron layer (its spikes and membranes are the output)",
            ));
        }
        // Plan every layer (settings, shapes, sizes) before allocating any.
        let mut shape = spec.input.clone();
        let mut total: u128 = 0;
        for (i, ls) in spec.layers.iter().enumerate() {
            let fail = |reason: String| layer_error(i, ls, &reason);
            let size = plan_params(ls, &shape).map_err(fail)?;
            total += size;
            if let Some(avail) = crate::fsutil::available_memory() {
                if total * TRAINING_BYTES > avail as u128 {
                    return Err(fail(format!(
                        "the model would have {total} parameters, which need {:.1} GB to train \
                         (weights, gradients, Adam moments); this machine has {:.1} GB available",
                        (total * TRAINING_BYTES) as f64 / 1e9,
                        avail as f64 / 1e9
                    )));
                }
            }
            shape = plan_shape(ls, &shape).map_err(fail)?;
            if shape.iter().map(|&d| d as u128).product::<u128>() > MAX_VALUES {
                return Err(fail(format!("its output {shape:?} is too large")));
            }
        }
        let mut shape = spec.input.clone();
        let mut layers = Vec::new();
        for (i, ls) in spec.layers.iter().enumerate() {
            let fail = |e: Error| layer_error(i, ls, &e.to_string());
            let layer = build_layer(ls, &shape, rng, device).map_err(fail)?;
            shape = layer.output_shape(&shape).map_err(fail)?;
            layers.push(layer);
        }
        Ok(Network::new(layers, spec))
    }
}

/// The output shape of a layer for input `shape`, from its description (the same rules as
/// the built layers' [`SeqLayer::output_shape`], which the tests hold it to).
fn plan_shape(ls: &LayerSpec, shape: &[usize]) -> std::result::Result<Vec<usize>, String> {
    let window = |kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2], c: usize| {
        match shape {
            [_, h, w] => match (
                crate::layer::window_out(*h, kernel[0], stride[0], padding[0]),
                crate::layer::window_out(*w, kernel[1], stride[1], padding[1]),
            ) {
                (Some(oh), Some(ow)) => Ok(vec![c, oh, ow]),
                _ => Err(format!(
                    "a {kernel:?} window (stride {stride:?}, padding {padding:?}) does not fit the input {shape:?}"
                )),
            },
            _ => Err(format!(
                "takes [channels, height, width] inputs but the previous layer gives {shape:?}"
            )),
        }
    };
    match ls {
        LayerSpec::Linear(s) => Ok(vec![s.features]),
        LayerSpec::Conv2d(s) => {
            if s.stride.pair().contains(&0) {
                return Err("the stride must be at least 1".into());
            }
            window(
                s.kernel.pair(),
                s.stride.pair(),
                s.padding.pair(),
                s.channels,
            )
        }
        LayerSpec::MaxPool2d(s) | LayerSpec::AvgPool2d(s) => {
            let k = s.kernel.pair();
            let stride = s.stride.map(|x| x.pair()).unwrap_or(k);
            if stride.contains(&0) {
                return Err("the stride must be at least 1".into());
            }
            window(k, stride, [0, 0], shape.first().copied().unwrap_or(0))
        }
        LayerSpec::Flatten(_) => Ok(vec![shape.iter().product()]),
        LayerSpec::BatchNorm2d(_) if shape.len() != 3 => Err(format!(
            "takes [channels, height, width] inputs but the previous layer gives {shape:?}"
        )),
        _ => Ok(shape.to_vec()),
    }
}

fn layer_error(i: usize, layer: &LayerSpec, reason: &str) -> Error {
    Error::Model {
        index: i + 1,
        name: layer.name().unwrap_or("?").to_string(),
        kind: layer.kind(),
        reason: reason.to_string(),
    }
}

/// The number of weights the layer will hold for input `shape` (checked before any is
/// allocated), and the shape checks that need no weights.
fn plan_params(ls: &LayerSpec, shape: &[usize]) -> std::result::Result<u128, String> {
    let n: u128 = shape.iter().map(|&d| d as u128).product();
    let fits = |want: usize, what: &str| {
        if want == 0 {
            Err(format!("{what} must be at least 1"))
        } else {
            Ok(())
        }
    };
    Ok(match ls {
        LayerSpec::Linear(s) => {
            fits(s.features, "features")?;
            if shape.len() != 1 {
                return Err(format!(
                    "takes flat inputs but the previous layer gives {shape:?}; add a flatten layer"
                ));
            }
            if let Some(i) = s.in_features {
                if i != shape[0] {
                    return Err(format!(
                        "in_features = {i} but the previous layer gives {shape:?}"
                    ));
                }
            }
            n * s.features as u128 + s.features as u128
        }
        LayerSpec::Conv2d(s) => {
            fits(s.channels, "channels")?;
            let [kh, kw] = s.kernel.pair();
            let c = match shape {
                [c, _, _] => *c,
                _ => {
                    return Err(format!(
                    "takes [channels, height, width] inputs but the previous layer gives {shape:?}"
                ))
                }
            };
            if let Some(i) = s.in_channels {
                if i != c {
                    return Err(format!(
                        "in_channels = {i} but the previous layer gives {shape:?}"
                    ));
                }
            }
            (c * kh * kw * s.channels + s.channels) as u128
        }
        LayerSpec::BatchNorm2d(_) => 4 * shape.first().copied().unwrap_or(0) as u128,
        LayerSpec::Neuron(s) if matches!(s.kind, NeuronKind::RLeaky | NeuronKind::RSynaptic) => {
            if s.v.is_none() && s.all_to_all != Some(false) {
                n * n + n
            } else {
                n
            }
        }
        LayerSpec::Neuron(_) => 3 * n,
        _ => 0,
    })
}

/// One layer for input `shape`.
fn build_layer(
    ls: &LayerSpec,
    shape: &[usize],
    rng: &mut impl UniformSource,
    device: &Device,
) -> Result<Layer> {
    let features: usize = shape.iter().product();
    Ok(match ls {
        LayerSpec::Linear(s) => {
            Layer::Linear(torch_linear(features, s.features, s.bias, rng, device)?)
        }
        LayerSpec::Conv2d(s) => {
            let c_in = shape[0];
            Layer::Conv2d(torch_conv2d(
                [c_in, s.channels],
                s.kernel.pair(),
                s.stride.pair(),
                s.padding.pair(),
                s.bias,
                rng,
                device,
            )?)
        }
        LayerSpec::MaxPool2d(s) => {
            Layer::MaxPool2d(max_pool2d(s.kernel.pair(), s.stride.map(|x| x.pair()))?)
        }
        LayerSpec::AvgPool2d(s) => {
            Layer::AvgPool2d(avg_pool2d(s.kernel.pair(), s.stride.map(|x| x.pair()))?)
        }
        LayerSpec::Flatten(_) => Layer::Flatten(Flatten {}),
        LayerSpec::Dropout(s) => Layer::Dropout(Dropout::new(s.p)?.per_step(s.per_step)),
        LayerSpec::BatchNorm2d(s) => {
            let c = shape.first().copied().unwrap_or(0);
            Layer::BatchNorm2d(batch_norm2d(c, s.eps, s.momentum, device)?)
        }
        LayerSpec::Neuron(s) => Layer::Neuron(build_neuron(s, features, shape, rng, device)?),
    })
}
