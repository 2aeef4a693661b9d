//! A network's parameters by name, in PyTorch's layout: `fc1.weight` `[out, in]`, `fc1.bias`,
//! `conv1.weight` `[out, in, kh, kw]`, `lif1.beta`, `lif1.threshold`,
//! `lif1.recurrent.weight`, `bn1.running_mean`, … (the layer names come from the description,
//! so the tutorials' networks get snntorch's names). Read and written as safetensors.

use std::collections::BTreeMap;

use burn::module::{Param, ParamId, RunningState};
use burn::tensor::{Tensor, TensorData};
use safetensors::tensor::{Dtype, TensorView};

use super::network::{Layer, Network};
use crate::error::{Error, Result};
use crate::neuron::Cell;
use crate::tensor::to_vec;

/// Parameters by name.
pub type Named = BTreeMap<String, NamedParam>;

/// A file's metadata (string keys and values).
pub type Metadata = BTreeMap<String, String>;

/// A parameter's values in PyTorch layout, with its burn id (kept so that a saved optimizer
/// state still matches after reloading).
#[derive(Debug, Clone, PartialEq)]
pub struct NamedParam {
    /// PyTorch shape (`[out, in]` for Linear weights).
    pub shape: Vec<usize>,
    /// Row-major values.
    pub values: Vec<f32>,
    /// burn's parameter id.
    pub id: u64,
}

enum Slot<'a> {
    /// A tensor in the same layout in both frameworks.
    Same1(&'a mut Param<Tensor<1>>),
    Same4(&'a mut Param<Tensor<4>>),
    /// burn's `[in, out]`, PyTorch's `[out, in]`.
    Transposed(&'a mut Param<Tensor<2>>),
    /// A running statistic (not trained; no id).
    Running(&'a mut RunningState<Tensor<1>>),
}

fn neuron_slots<'a>(prefix: &str, cell: &'a mut Cell, out: &mut Vec<(String, Slot<'a>)>) {
    let mut push = |name: &str, slot: Slot<'a>| out.push((format!("{prefix}.{name}"), slot));
    match cell {
        Cell::Leaky(n) => {
            push("beta", Slot::Same1(&mut n.beta));
            push("threshold", Slot::Same1(&mut n.core.threshold));
        }
        Cell::Synaptic(n) => {
            push("alpha", Slot::Same1(&mut n.alpha));
            push("beta", Slot::Same1(&mut n.beta));
            push("threshold", Slot::Same1(&mut n.core.threshold));
        }
        Cell::Lapicque(n) => push("threshold", Slot::Same1(&mut n.core.threshold)),
        Cell::Alpha(n) => {
            push("alpha", Slot::Same1(&mut n.alpha));
            push("beta", Slot::Same1(&mut n.beta));
            push("threshold", Slot::Same1(&mut n.core.threshold));
        }
        Cell::RLeaky(n) => {
            push("beta", Slot::Same1(&mut n.beta));
            push("threshold", Slot::Same1(&mut n.core.threshold));
            recurrent_slots(&mut n.recurrent, &mut push);
        }
        Cell::RSynaptic(n) => {
            push("alpha", Slot::Same1(&mut n.alpha));
            push("beta", Slot::Same1(&mut n.beta));
            push("threshold", Slot::Same1(&mut n.core.threshold));
            recurrent_slots(&mut n.recurrent, &mut push);
        }
    }
}

fn recurrent_slots<'a>(r: &'a mut crate::neuron::Recurrent, push: &mut impl FnMut(&str, Slot<'a>)) {
    if let Some(l) = r.linear.as_mut() {
        push("recurrent.weight", Slot::Transposed(&mut l.weight));
        if let Some(b) = l.bias.as_mut() {
            push("recurrent.bias", Slot::Same1(b));
        }
    }
    if let Some(v) = r.v.as_mut() {
        push("recurrent.v", Slot::Same1(v));
    }
}

fn slots(model: &mut Network) -> Vec<(String, Slot<'_>)> {
    let names: Vec<String> = model.names().into_iter().map(String::from).collect();
    let mut out = Vec::new();
    for (layer, name) in model.layers.iter_mut().zip(names) {
        match layer {
            Layer::Linear(l) => {
                out.push((format!("{name}.weight"), Slot::Transposed(&mut l.weight)));
                if let Some(b) = l.bias.as_mut() {
                    out.push((format!("{name}.bias"), Slot::Same1(b)));
                }
            }
            Layer::Conv2d(c) => {
                out.push((format!("{name}.weight"), Slot::Same4(&mut c.weight)));
                if let Some(b) = c.bias.as_mut() {
                    out.push((format!("{name}.bias"), Slot::Same1(b)));
                }
            }
            Layer::BatchNorm2d(bn) => {
                out.push((format!("{name}.weight"), Slot::Same1(&mut bn.gamma)));
                out.push((format!("{name}.bias"), Slot::Same1(&mut bn.beta)));
                out.push((
                    format!("{name}.running_mean"),
                    Slot::Running(&mut bn.running_mean),
                ));
                out.push((
                    format!("{name}.running_var"),
                    Slot::Running(&mut bn.running_var),
                ));
            }
            Layer::Neuron(cell) => neuron_slots(&name, cell, &mut out),
            _ => {}
        }
    }
    out
}

/// Every parameter by name, in PyTorch layout.
pub fn export(model: &Network) -> BTreeMap<String, NamedParam> {
    let mut m = model.clone();
    slots(&mut m)
        .into_iter()
        .map(|(name, slot)| {
            let (shape, values, id) = match slot {
                Slot::Same1(p) => (p.val().dims().to_vec(), to_vec(p.val()), p.id.val()),
                Slot::Same4(p) => (p.val().dims().to_vec(), to_vec(p.val()), p.id.val()),
                Slot::Transposed(p) => {
                    let [i, o] = p.val().dims();
                    (vec![o, i], to_vec(p.val().transpose()), p.id.val())
                }
                Slot::Running(r) => {
                    let v = r.value_sync();
                    (v.dims().to_vec(), to_vec(v), 0)
                }
            };
            (name, NamedParam { shape, values, id })
        })
        .collect()
}

/// Replaces every parameter of `model` with the named values (shapes must match), keeping
/// each parameter's trainability and taking the given ids.
pub fn import(model: &mut Network, params: &BTreeMap<String, NamedParam>) -> Result<()> {
    let expected: usize = slots(model).len();
    if params.len() != expected {
        let known: Vec<String> = slots(model).into_iter().map(|(n, _)| n).collect();
        if let Some(extra) = params.keys().find(|k| !known.contains(k)) {
            return Err(Error::invalid(
                "checkpoint",
                format!("parameter {extra} belongs to no layer of this model"),
            ));
        }
    }
    for (name, slot) in slots(model) {
        let p = params
            .get(&name)
            .ok_or_else(|| Error::invalid("checkpoint", format!("missing parameter {name}")))?;
        let check = |expected: Vec<usize>| {
            if p.shape == expected && p.values.len() == expected.iter().product::<usize>() {
                Ok(())
            } else {
                Err(Error::Shape {
                    context: "checkpoint parameter",
                    expected,
                    got: p.shape.clone(),
                })
            }
        };
        match slot {
            Slot::Same1(dst) => {
                check(dst.val().dims().to_vec())?;
                *dst = replaced(dst, p.values.clone(), p);
            }
            Slot::Same4(dst) => {
                check(dst.val().dims().to_vec())?;
                *dst = replaced(dst, p.values.clone(), p);
            }
            Slot::Transposed(dst) => {
                let [i, o] = dst.val().dims();
                check(vec![o, i])?;
                // Transpose on the host: a strided view would take other GEMM paths than a
                // freshly trained weight, and resumed runs must match bit for bit.
                let mut w = vec![0.0f32; i * o];
                for (k, row) in p.values.chunks(i).enumerate() {
                    for (j, &x) in row.iter().enumerate() {
                        w[j * o + k] = x;
                    }
                }
                *dst = replaced(dst, w, p);
            }
            Slot::Running(dst) => {
                let old = dst.value_sync();
                check(old.dims().to_vec())?;
                let t = Tensor::from_data(
                    TensorData::new(p.values.clone(), old.shape()),
                    &old.device(),
                );
                *dst = RunningState::new(t);
            }
        }
    }
    Ok(())
}

/// `dst`'s parameter with new `values` (burn layout), `p`'s id and `dst`'s trainability.
fn replaced<const D: usize>(
    dst: &Param<Tensor<D>>,
    values: Vec<f32>,
    p: &NamedParam,
) -> Param<Tensor<D>> {
    let old = dst.val();
    let learn = dst.is_require_grad();
    let t = Tensor::<D>::from_data(TensorData::new(values, old.shape()), &old.device());
    Param::initialized(ParamId::from(p.id), t).set_require_grad(learn)
}

/// Serialises named parameters as safetensors (f32), with the ids and `extra` in the metadata.
pub fn to_safetensors(
    params: &BTreeMap<String, NamedParam>,
    extra: &[(&str, String)],
) -> Result<Vec<u8>> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = params
        .iter()
        .map(|(n, p)| {
            (
                n.clone(),
                p.values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                p.shape.clone(),
            )
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .map(|(n, b, s)| {
            TensorView::new(Dtype::F32, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::invalid("safetensors", e.to_string()))
        })
        .collect::<Result<_>>()?;
    let ids: BTreeMap<&String, u64> = params.iter().map(|(n, p)| (n, p.id)).collect();
    let mut meta: std::collections::HashMap<String, String> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    meta.insert(
        "spyne.param_ids".into(),
        serde_json::to_string(&ids).unwrap_or_default(),
    );
    safetensors::serialize(views, Some(meta))
        .map_err(|e| Error::invalid("safetensors", e.to_string()))
}

/// Reads named f32 parameters (and their ids, when present) from safetensors bytes; returns
/// them with the file's metadata.
pub fn from_safetensors(bytes: &[u8]) -> std::result::Result<(Named, Metadata), String> {
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes).map_err(|e| e.to_string())?;
    let meta: Metadata = meta
        .metadata()
        .clone()
        .map(|m| m.into_iter().collect())
        .unwrap_or_default();
    let ids: BTreeMap<String, u64> = meta
        .get("spyne.param_ids")
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(format!("tensor {name} is {:?}, expected F32", view.dtype()));
        }
        let values = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let id = ids
            .get(&name)
            .copied()
            .unwrap_or_else(|| ParamId::new().val());
        out.insert(
            name,
            NamedParam {
                shape: view.shape().to_vec(),
                values,
                id,
            },
        );
    }
    Ok((out, meta))
}
