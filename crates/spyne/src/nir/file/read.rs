//! Reading NIR's HDF5 groups into graph values.

use std::path::Path;

use hdf5::types::{VarLenAscii, VarLenUnicode};
use hdf5::{Dataset, Group};

use super::h5;
use crate::error::{Error, Result};
use crate::nir::graph::{Array, Entry, Graph, Meta, Metadata, Node};

pub(super) struct Reader<'a> {
    pub(super) path: &'a Path,
}

impl Reader<'_> {
    pub(super) fn bad(&self, at: &str, reason: impl std::fmt::Display) -> Error {
        Error::Data {
            path: self.path.to_path_buf(),
            reason: format!("{at}: {reason}"),
        }
    }

    fn dataset(&self, g: &Group, at: &str, name: &str) -> Result<Dataset> {
        g.dataset(name)
            .map_err(|_| self.bad(at, format!("missing dataset '{name}'")))
    }

    fn text(&self, d: &Dataset, at: &str) -> Result<String> {
        if let Ok(s) = d.read_scalar::<VarLenUnicode>() {
            return Ok(s.as_str().to_string());
        }
        d.read_scalar::<VarLenAscii>()
            .map(|s| s.as_str().to_string())
            .map_err(|e| self.bad(at, format!("not a string: {e}")))
    }

    fn array(&self, g: &Group, at: &str, name: &str) -> Result<Array> {
        let d = self.dataset(g, at, name)?;
        let values = d
            .read_raw::<f64>()
            .map_err(|e| self.bad(at, format!("'{name}' is not numeric: {e}")))?;
        Ok(Array {
            shape: d.shape(),
            values,
        })
    }

    fn ints(&self, g: &Group, at: &str, name: &str) -> Result<Vec<i64>> {
        self.dataset(g, at, name)?
            .read_raw::<i64>()
            .map_err(|e| self.bad(at, format!("'{name}' is not integer: {e}")))
    }

    fn sizes(&self, g: &Group, at: &str, name: &str) -> Result<Vec<usize>> {
        self.ints(g, at, name)?
            .into_iter()
            .map(|v| usize::try_from(v).map_err(|_| self.bad(at, format!("'{name}' is {v}"))))
            .collect()
    }

    /// A pair such as a stride: two values, or one for both axes.
    fn pair(&self, g: &Group, at: &str, name: &str) -> Result<[usize; 2]> {
        match self.sizes(g, at, name)?[..] {
            [a] => Ok([a, a]),
            [a, b] => Ok([a, b]),
            ref v => Err(self.bad(at, format!("'{name}' has {} values, not 2", v.len()))),
        }
    }

    fn scalar(&self, g: &Group, at: &str, name: &str) -> Result<i64> {
        match self.ints(g, at, name)?[..] {
            [v] => Ok(v),
            ref v => Err(self.bad(at, format!("'{name}' has {} values, not 1", v.len()))),
        }
    }

    fn optional_shape(&self, g: &Group, at: &str, name: &str) -> Result<Option<Vec<usize>>> {
        if g.link_exists(name) {
            self.sizes(g, at, name).map(Some)
        } else {
            Ok(None)
        }
    }

    fn reset(&self, g: &Group, at: &str, threshold: &Array) -> Result<Array> {
        if g.link_exists("v_reset") {
            self.array(g, at, "v_reset")
        } else {
            Ok(threshold.map(|_| 0.0))
        }
    }

    fn metadata(&self, g: &Group, at: &str) -> Result<Metadata> {
        let mut out = Metadata::new();
        if !g.link_exists("metadata") {
            return Ok(out);
        }
        let m = g.group("metadata").map_err(h5(self.path, at))?;
        for name in m.member_names().map_err(h5(self.path, at))? {
            // Nested metadata groups (other writers' dictionaries) are not spyne's: skip them.
            let Ok(d) = m.dataset(&name) else { continue };
            let value = match self.text(&d, at) {
                Ok(s) => Meta::Text(s),
                Err(_) => match d.read_raw::<f64>() {
                    Ok(values) => Meta::Numbers(Array {
                        shape: d.shape(),
                        values,
                    }),
                    Err(_) => continue,
                },
            };
            out.insert(name, value);
        }
        Ok(out)
    }

    pub(super) fn node(&self, g: &Group, at: &str) -> Result<Entry> {
        let kind = self.text(&self.dataset(g, at, "type")?, at)?;
        let a = |name: &str| self.array(g, at, name);
        let node = match kind.as_str() {
            "Input" => Node::Input {
                shape: self.sizes(g, at, "shape")?,
            },
            "Output" => Node::Output {
                shape: self.sizes(g, at, "shape")?,
            },
            "Affine" => Node::Affine {
                weight: a("weight")?,
                bias: a("bias")?,
            },
            "Linear" => Node::Linear {
                weight: a("weight")?,
            },
            "Conv2d" => Node::Conv2d {
                weight: a("weight")?,
                bias: a("bias")?,
                stride: self.pair(g, at, "stride")?,
                padding: self.pair(g, at, "padding").map_err(|_| {
                    self.bad(
                        at,
                        "padding must be numbers ('same' and 'valid' are not read)",
                    )
                })?,
                dilation: self.pair(g, at, "dilation")?,
                groups: self.scalar(g, at, "groups")? as usize,
                input_shape: self.optional_shape(g, at, "input_shape")?,
            },
            "SumPool2d" | "AvgPool2d" => {
                let kernel = self.pair(g, at, "kernel_size")?;
                let stride = self.pair(g, at, "stride")?;
                let padding = self.pair(g, at, "padding")?;
                if kind == "SumPool2d" {
                    Node::SumPool2d {
                        kernel,
                        stride,
                        padding,
                    }
                } else {
                    Node::AvgPool2d {
                        kernel,
                        stride,
                        padding,
                    }
                }
            }
            "Flatten" => Node::Flatten {
                start_dim: self.scalar(g, at, "start_dim")?,
                end_dim: self.scalar(g, at, "end_dim")?,
                input_shape: self.optional_shape(g, at, "input_type")?,
            },
            "LIF" => {
                let v_threshold = a("v_threshold")?;
                Node::Lif {
                    tau: a("tau")?,
                    r: a("r")?,
                    v_leak: a("v_leak")?,
                    v_reset: self.reset(g, at, &v_threshold)?,
                    v_threshold,
                }
            }
            "CubaLIF" => {
                let v_threshold = a("v_threshold")?;
                Node::CubaLif {
                    tau_syn: a("tau_syn")?,
                    tau_mem: a("tau_mem")?,
                    r: a("r")?,
                    v_leak: a("v_leak")?,
                    v_reset: self.reset(g, at, &v_threshold)?,
                    w_in: a("w_in")?,
                    v_threshold,
                }
            }
            "NIRGraph" => {
                let nodes_group = g
                    .group("nodes")
                    .map_err(|_| self.bad(at, "a NIRGraph without nodes"))?;
                let mut graph = Graph::default();
                for name in nodes_group.member_names().map_err(h5(self.path, at))? {
                    let child = nodes_group.group(&name).map_err(h5(self.path, at))?;
                    let entry = self.node(&child, &format!("{at}/nodes/{name}"))?;
                    graph.nodes.insert(name, entry);
                }
                graph.edges = self.edges(g, at)?;
                Node::Graph(graph)
            }
            other => Node::Other(other.to_string()),
        };
        Ok(Entry {
            node,
            metadata: self.metadata(g, at)?,
        })
    }

    fn edges(&self, g: &Group, at: &str) -> Result<Vec<(String, String)>> {
        let d = self.dataset(g, at, "edges")?;
        // nir.write stores a graph without edges as an empty float array.
        if d.size() == 0 {
            return Ok(Vec::new());
        }
        let flat: Vec<String> = match d.read_raw::<VarLenUnicode>() {
            Ok(v) => v.iter().map(|s| s.as_str().to_string()).collect(),
            Err(_) => d
                .read_raw::<VarLenAscii>()
                .map_err(|e| self.bad(at, format!("edges are not strings: {e}")))?
                .iter()
                .map(|s| s.as_str().to_string())
                .collect(),
        };
        if flat.is_empty() {
            return Ok(Vec::new());
        }
        if d.shape().last() != Some(&2) {
            return Err(self.bad(at, format!("edges have shape {:?}, not (N, 2)", d.shape())));
        }
        Ok(flat
            .chunks(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect())
    }
}
