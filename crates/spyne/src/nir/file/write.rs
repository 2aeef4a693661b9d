//! Writing graph values as NIR's HDF5 groups.

use std::path::Path;

use hdf5::types::VarLenUnicode;
use hdf5::Group;

use super::h5;
use crate::error::{Error, Result};
use crate::nir::graph::{Array, Entry, Graph, Meta, Metadata, Node};

const GZIP_LEVEL: u8 = 4;

pub(super) struct Writer<'a> {
    pub(super) path: &'a Path,
}

impl Writer<'_> {
    fn err(&self, at: &str) -> impl Fn(hdf5::Error) -> Error + '_ {
        h5(self.path, format!("writing {at}"))
    }

    fn unicode(&self, s: &str, at: &str) -> Result<VarLenUnicode> {
        s.parse().map_err(|e| Error::Data {
            path: self.path.to_path_buf(),
            reason: format!("{at}: {e}"),
        })
    }

    pub(super) fn text(&self, g: &Group, name: &str, value: &str) -> Result<()> {
        let v = self.unicode(value, name)?;
        g.new_dataset::<VarLenUnicode>()
            .create(name)
            .and_then(|d| d.write_scalar(&v))
            .map_err(self.err(name))
    }

    fn array(&self, g: &Group, name: &str, a: &Array) -> Result<()> {
        let values: Vec<f32> = a.values.iter().map(|&v| v as f32).collect();
        self.numbers(g, name, &a.shape, &values)
    }

    fn numbers<T: hdf5::H5Type>(
        &self,
        g: &Group,
        name: &str,
        shape: &[usize],
        values: &[T],
    ) -> Result<()> {
        let view = ndarray::ArrayView::from_shape(ndarray::IxDyn(shape), values).map_err(|e| {
            Error::Data {
                path: self.path.to_path_buf(),
                reason: format!("{name}: {e}"),
            }
        })?;
        let builder = g.new_dataset_builder().with_data(view);
        // Scalars cannot be chunked, and gzip needs chunks.
        let builder = if shape.is_empty() {
            builder
        } else {
            builder.deflate(GZIP_LEVEL)
        };
        builder.create(name).map(|_| ()).map_err(self.err(name))
    }

    fn ints(&self, g: &Group, name: &str, values: &[usize]) -> Result<()> {
        let v: Vec<i64> = values.iter().map(|&v| v as i64).collect();
        self.numbers(g, name, &[v.len()], &v)
    }

    fn int(&self, g: &Group, name: &str, value: i64) -> Result<()> {
        self.numbers(g, name, &[], &[value])
    }

    fn group(&self, g: &Group, name: &str) -> Result<Group> {
        g.create_group(name).map_err(self.err(name))
    }

    fn metadata(&self, g: &Group, metadata: &Metadata) -> Result<()> {
        if metadata.is_empty() {
            return Ok(());
        }
        let m = self.group(g, "metadata")?;
        for (k, v) in metadata {
            match v {
                Meta::Text(s) => self.text(&m, k, s)?,
                Meta::Numbers(a) => self.array(&m, k, a)?,
            }
        }
        Ok(())
    }

    pub(super) fn graph(&self, g: &Group, graph: &Graph, metadata: &Metadata) -> Result<()> {
        self.text(g, "type", "NIRGraph")?;
        let nodes = self.group(g, "nodes")?;
        for (name, entry) in &graph.nodes {
            let child = self.group(&nodes, name)?;
            self.node(&child, entry)?;
        }
        let flat: Vec<VarLenUnicode> = graph
            .edges
            .iter()
            .flat_map(|(a, b)| [a, b])
            .map(|s| self.unicode(s, "edges"))
            .collect::<Result<_>>()?;
        let view = ndarray::ArrayView::from_shape((graph.edges.len(), 2), &flat).map_err(|e| {
            Error::Data {
                path: self.path.to_path_buf(),
                reason: format!("edges: {e}"),
            }
        })?;
        g.new_dataset_builder()
            .with_data(view)
            .create("edges")
            .map_err(self.err("edges"))?;
        self.metadata(g, metadata)
    }

    fn node(&self, g: &Group, entry: &Entry) -> Result<()> {
        let node = &entry.node;
        if let Node::Graph(inner) = node {
            return self.graph(g, inner, &entry.metadata);
        }
        self.text(g, "type", node.type_name())?;
        match node {
            Node::Input { shape } | Node::Output { shape } => self.ints(g, "shape", shape)?,
            Node::Affine { weight, bias } => {
                self.array(g, "weight", weight)?;
                self.array(g, "bias", bias)?;
            }
            Node::Linear { weight } => self.array(g, "weight", weight)?,
            Node::Conv2d {
                weight,
                bias,
                stride,
                padding,
                dilation,
                groups,
                input_shape,
            } => {
                self.array(g, "weight", weight)?;
                self.array(g, "bias", bias)?;
                self.ints(g, "stride", stride)?;
                self.ints(g, "padding", padding)?;
                self.ints(g, "dilation", dilation)?;
                self.int(g, "groups", *groups as i64)?;
                if let Some(s) = input_shape {
                    self.ints(g, "input_shape", s)?;
                }
            }
            Node::SumPool2d {
                kernel,
                stride,
                padding,
            }
            | Node::AvgPool2d {
                kernel,
                stride,
                padding,
            } => {
                self.ints(g, "kernel_size", kernel)?;
                self.ints(g, "stride", stride)?;
                self.ints(g, "padding", padding)?;
            }
            Node::Flatten {
                start_dim,
                end_dim,
                input_shape,
            } => {
                self.int(g, "start_dim", *start_dim)?;
                self.int(g, "end_dim", *end_dim)?;
                if let Some(s) = input_shape {
                    self.ints(g, "input_type", s)?;
                }
            }
            Node::Lif {
                tau,
                r,
                v_leak,
                v_threshold,
                v_reset,
            } => {
                self.array(g, "tau", tau)?;
                self.array(g, "r", r)?;
                self.array(g, "v_leak", v_leak)?;
                self.array(g, "v_threshold", v_threshold)?;
                self.array(g, "v_reset", v_reset)?;
            }
            Node::CubaLif {
                tau_syn,
                tau_mem,
                r,
                v_leak,
                v_threshold,
                v_reset,
                w_in,
            } => {
                self.array(g, "tau_syn", tau_syn)?;
                self.array(g, "tau_mem", tau_mem)?;
                self.array(g, "r", r)?;
                self.array(g, "v_leak", v_leak)?;
                self.array(g, "v_threshold", v_threshold)?;
                self.array(g, "v_reset", v_reset)?;
                self.array(g, "w_in", w_in)?;
            }
            Node::Graph(_) => unreachable!("handled above"),
            Node::Other(t) => {
                return Err(Error::invalid(
                    "nir",
                    format!("spyne does not write {t} nodes"),
                ))
            }
        }
        self.metadata(g, &entry.metadata)
    }
}
