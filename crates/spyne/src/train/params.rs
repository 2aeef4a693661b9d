//! Named access to a model's parameters: export to and import from safetensors in
//! PyTorch's layout and snntorch tutorial names (`fc1.weight` `[out, in]`, `lif1.beta`, …).

use std::collections::BTreeMap;

use burn::module::{Param, ParamId};
use burn::tensor::{Tensor, TensorData};
use safetensors::tensor::{Dtype, TensorView};

use super::model::SpikingMlp;
use crate::error::{Error, Result};
use crate::neuron::Cell;
use crate::tensor::to_vec;

/// A parameter's values in PyTorch layout, with its burn id (kept so that a saved optimizer
/// state still matches after reloading).
#[derive(Debug, Clone, PartialEq)]
pub struct NamedParam {
    /// PyTorch shape (`[out, in]` for weights).
    pub shape: Vec<usize>,
    /// Row-major values.
    pub values: Vec<f32>,
    /// burn's parameter id.
    pub id: u64,
}

enum Slot<'a> {
    Vector(&'a mut Param<Tensor<1>>),
    Matrix(&'a mut Param<Tensor<2>>),
}

fn slots(model: &mut SpikingMlp) -> Vec<(String, Slot<'_>)> {
    let mut out = Vec::new();
    for (i, (lin, cell)) in model
        .linears
        .iter_mut()
        .zip(model.cells.iter_mut())
        .enumerate()
    {
        let n = i + 1;
        out.push((format!("fc{n}.weight"), Slot::Matrix(&mut lin.weight)));
        if let Some(b) = lin.bias.as_mut() {
            out.push((format!("fc{n}.bias"), Slot::Vector(b)));
        }
        match cell {
            Cell::Leaky(l) => {
                out.push((format!("lif{n}.beta"), Slot::Vector(&mut l.beta)));
                out.push((
                    format!("lif{n}.threshold"),
                    Slot::Vector(&mut l.core.threshold),
                ));
            }
            Cell::Synaptic(s) => {
                out.push((format!("lif{n}.alpha"), Slot::Vector(&mut s.alpha)));
                out.push((format!("lif{n}.beta"), Slot::Vector(&mut s.beta)));
                out.push((
                    format!("lif{n}.threshold"),
                    Slot::Vector(&mut s.core.threshold),
                ));
            }
        }
    }
    out
}

/// Every parameter by name, in PyTorch layout.
pub fn export(model: &SpikingMlp) -> BTreeMap<String, NamedParam> {
    let mut m = model.clone();
    slots(&mut m)
        .into_iter()
        .map(|(name, slot)| {
            let p = match slot {
                Slot::Vector(p) => NamedParam {
                    shape: p.val().dims().to_vec(),
                    values: to_vec(p.val()),
                    id: p.id.val(),
                },
                Slot::Matrix(p) => {
                    let [i, o] = p.val().dims();
                    NamedParam {
                        shape: vec![o, i],
                        values: to_vec(p.val().transpose()),
                        id: p.id.val(),
                    }
                }
            };
            (name, p)
        })
        .collect()
}

/// Replaces every parameter of `model` with the named values (shapes must match), keeping
/// each parameter's trainability and taking the given ids.
pub fn import(model: &mut SpikingMlp, params: &BTreeMap<String, NamedParam>) -> Result<()> {
    for (name, slot) in slots(model) {
        let p = params
            .get(&name)
            .ok_or_else(|| Error::invalid("checkpoint", format!("missing parameter {name}")))?;
        let mismatch = |expected: Vec<usize>| Error::Shape {
            context: "checkpoint parameter",
            expected,
            got: p.shape.clone(),
        };
        match slot {
            Slot::Vector(dst) => {
                let old = dst.val();
                if p.shape != old.dims().to_vec() {
                    return Err(mismatch(old.dims().to_vec()));
                }
                let learn = dst.is_require_grad();
                let t = Tensor::<1>::from_data(
                    TensorData::new(p.values.clone(), [p.shape[0]]),
                    &old.device(),
                );
                *dst = Param::initialized(ParamId::from(p.id), t).set_require_grad(learn);
            }
            Slot::Matrix(dst) => {
                let old = dst.val();
                let [i, o] = old.dims();
                if p.shape != vec![o, i] {
                    return Err(mismatch(vec![o, i]));
                }
                let learn = dst.is_require_grad();
                // Transpose on the host: a strided view would take other GEMM paths than a
                // freshly trained weight, and resumed runs must match bit for bit.
                let mut w = vec![0.0f32; i * o];
                for (k, row) in p.values.chunks(i).enumerate() {
                    for (j, &x) in row.iter().enumerate() {
                        w[j * o + k] = x;
                    }
                }
                let t = Tensor::<2>::from_data(TensorData::new(w, [i, o]), &old.device());
                *dst = Param::initialized(ParamId::from(p.id), t).set_require_grad(learn);
            }
        }
    }
    Ok(())
}

/// Serialises named parameters as safetensors (f32), with the ids in the metadata.
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

/// Reads named f32 parameters (and their ids, when present) from safetensors bytes.
pub fn from_safetensors(bytes: &[u8]) -> std::result::Result<BTreeMap<String, NamedParam>, String> {
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes).map_err(|e| e.to_string())?;
    let ids: BTreeMap<String, u64> = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("spyne.param_ids"))
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
    Ok(out)
}
