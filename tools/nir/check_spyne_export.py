"""Reads spyne's NIR exports with the peers and runs them: the export half of NIR's acceptance.

    pip install torch snntorch==1.0.0 nir==1.0.8 nirtorch
    SPYNE_WRITE_FIXTURES=1 cargo test -p spyne --test nir_export_peers   # spyne's side
    python tools/nir/check_spyne_export.py

For each of spyne's files (crates/spyne/tests/fixtures/nir/spyne_<name>.nir, with spyne's
inputs and output spikes in spyne_<name>.json) it checks that `nir.read` accepts the file (with
nir's type checks), builds the network with snntorch's `import_from_nir` mapping, runs it step
by step on the same inputs, and writes what it saw to spyne_<name>.snntorch.json. The Rust test
then requires snntorch's spikes to equal spyne's. Exits non-zero when any differ.

snntorch 1.0.0's importer has two bugs this script works around, and says so in each result:
- nirtorch 2.6 recurses into every nested NIRGraph, so `import_from_nir` fails on every
  recurrent layer ("'GraphModule' object has no attribute 'items'"), its own exports included.
  For such a graph (a chain) the script maps each node with snntorch's own
  `_nir_to_snntorch_module`, which builds the RLeaky, and chains them in a Sequential.
- It builds `nn.Flatten(start_dim, end_dim)` from NIR's dims verbatim, but NIR's dims leave out
  the batch: on a batch, Flatten(0, -1) flattens the batch too. The script runs one sample at a
  time (unbatched), where NIR's dims are torch's.
"""
import json
from importlib.metadata import version
import pathlib
import sys
import warnings

import nir
import snntorch as snn
import torch
from snntorch import import_nir as sni

warnings.filterwarnings("ignore")
DIR = pathlib.Path(__file__).resolve().parents[2] / "crates/spyne/tests/fixtures/nir"
NAMES = ["mlp", "conv_avgpool", "rleaky"]


def snntorch_network(graph):
    """snntorch's import_from_nir; for graphs it cannot import, snntorch's own node mapping
    (`_nir_to_snntorch_module`, which builds the RLeaky) over the chain of nodes."""
    try:
        return sni.import_from_nir(graph), "snntorch.import_nir.import_from_nir"
    except AttributeError as e:
        order, node = [], "input"
        while True:
            (node,) = [b for a, b in graph.edges if a == node]
            if node == "output":
                break
            order.append(node)
        layers = [sni._nir_to_snntorch_module(graph.nodes[n], init_hidden=True) for n in order]
        how = (f"import_from_nir failed ({type(e).__name__}: {e}); the nodes mapped by "
               "snntorch's own _nir_to_snntorch_module (its RLeaky) in a Sequential")
        return torch.nn.Sequential(*layers), how


def run(net, x):
    """Output spikes [T, B, out]: each sample on its own, step by step, from rest."""
    per_sample = []
    with torch.no_grad():
        for b in range(x.shape[1]):
            for m in net.modules():
                if isinstance(m, snn.SpikingNeuron):
                    m.reset_hidden()
            steps = [net(x[t, b]) for t in range(x.shape[0])]
            # nirtorch's modules return (output, state); a Sequential the spikes.
            per_sample.append(torch.stack([s[0] if isinstance(s, tuple) else s for s in steps]))
    return torch.stack(per_sample, 1)


def main():
    failed = []
    for name in NAMES:
        record = json.loads((DIR / f"spyne_{name}.json").read_text())
        shape = record["input_shape"][:2] + record["sample_shape"]
        x = torch.tensor(record["input"]).reshape(shape)
        graph = nir.read(DIR / f"spyne_{name}.nir")  # type_check=True
        net, how = snntorch_network(graph)
        spikes = run(net, x)
        want = torch.tensor(record["spikes"]).reshape(record["output_shape"])
        equal = bool(torch.equal(spikes, want))
        result = {
            "peer": f"snntorch {snn.__version__}, nir {nir.version}, nirtorch "
                    f"{version('nirtorch')}, torch {torch.__version__}",
            "nir_read": True,
            "how": how + "; run one sample at a time (snntorch's Flatten keeps NIR's "
                         "batch-less dims)",
            "spikes": spikes.flatten().tolist(),
            "equal_to_spyne": equal,
            "differing": int((spikes != want).sum()),
        }
        (DIR / f"spyne_{name}.snntorch.json").write_text(json.dumps(result))
        print(f"{name}: snntorch {'gives' if equal else 'DOES NOT give'} spyne's spikes "
              f"({int(want.sum())} of {want.numel()} output spikes, "
              f"{result['differing']} differ)")
        if not equal:
            failed.append(name)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
