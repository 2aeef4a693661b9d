//! NIR graphs as HDF5 files, laid out as `nir.write` (1.0.8) writes them: a `version`
//! string, then the group `node` holding the graph (`type = "NIRGraph"`, `edges` an `(N, 2)`
//! array of strings, `nodes/<name>/` one group per node with its `type` and parameter
//! datasets, `metadata/` when not empty). Numeric datasets are gzip-compressed.

use std::path::Path;

mod read;
mod write;

use hdf5::File;

use super::graph::{Entry, Graph, Node};
use crate::error::{Error, Result};
use read::Reader;
use write::Writer;

/// The NIR version written to `/version`.
pub const NIR_VERSION: &str = "1.0.8";

pub(super) fn h5(path: &Path, what: impl std::fmt::Display) -> impl Fn(hdf5::Error) -> Error + '_ {
    let what = what.to_string();
    move |e| Error::Data {
        path: path.to_path_buf(),
        reason: format!("{what}: {e}"),
    }
}

/// Reads the graph stored in the NIR file at `path`.
pub fn read_graph(path: &Path) -> Result<Graph> {
    let file = File::open(path).map_err(h5(path, "not an HDF5 file"))?;
    let node = file
        .group("node")
        .map_err(h5(path, "no /node group: not a NIR file"))?;
    let reader = Reader { path };
    match reader.node(&node, "node")? {
        Entry {
            node: Node::Graph(mut g),
            metadata,
        } => {
            g.metadata = metadata;
            Ok(g)
        }
        other => Err(reader.bad(
            "node",
            format!(
                "the top node is a {}, not a NIRGraph",
                other.node.type_name()
            ),
        )),
    }
}

/// Writes `graph` to `path` (replacing it atomically: a killed export leaves the old file).
pub fn write_graph(path: &Path, graph: &Graph) -> Result<()> {
    let tmp = path.with_extension("nir.partial");
    let result = (|| {
        let file = File::create(&tmp).map_err(h5(path, "cannot create the file"))?;
        let w = Writer { path };
        w.text(&file, "version", NIR_VERSION)?;
        let node = file.create_group("node").map_err(h5(path, "node"))?;
        w.graph(&node, graph, &graph.metadata)?;
        file.close().map_err(h5(path, "closing"))
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).map_err(|source| Error::Io {
        context: format!("moving {} into place", path.display()),
        source,
    })
}
