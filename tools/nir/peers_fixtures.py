"""Writes the NIR fixtures spyne's import tests read (crates/spyne/tests/fixtures/nir/).

    pip install torch snntorch==1.0.0 norse==1.1.0 nir==1.0.8 nirtorch
    python tools/nir/peers_fixtures.py [NAME ...]     # all of them by default

For each network: `<name>.nir` (the peer's own export) and `<name>.json` (fixed input
spikes `[T, B, in]` and the peer's output spikes and membranes `[T, B, out]`, run step by
step in the peer). The peers' networks use zero reset, which is what NIR's LIF means, so the
file describes them exactly.

Known peer problems worked around here (nir 1.0.8, snntorch 1.0.0):
- snntorch's export keeps the batch dimension in the Input shape: `ignore_dims=[0]`.
- a scalar beta/threshold exports 0-d arrays that nir's type check rejects: pass one value
  per neuron (Norse's default parameters are 0-d too).
- Norse's `to_nir` has no `ignore_dims`: it is given one unbatched sample.

Norse 1.1's files mean something else than NIR says: `tau = dt / tau_mem_inv` (dt·τ, not τ),
r = 1, and its LIFCell adds the raw input to the current. spyne reads them with
`--convention norse`. Norse reports the membrane after its reset (v_reset on a spike step),
where snntorch and spyne report it before.
"""
import json
import pathlib

import sys
import warnings

import nir
import norse.torch as norse
import numpy as np
import snntorch as snn
import torch
from snntorch.export_nir import export_to_nir

# nirtorch's tracing API is deprecated and says so on every export.
warnings.filterwarnings("ignore", category=DeprecationWarning)

OUT = pathlib.Path(__file__).resolve().parents[2] / "crates/spyne/tests/fixtures/nir"
T, B = 12, 3


def leaky(n, beta, output=False):
    shape = n if isinstance(n, tuple) else (n,)
    return snn.Leaky(
        beta=torch.full(shape, beta),
        threshold=torch.ones(shape),
        reset_mechanism="zero",
        init_hidden=True,
        output=output,
    )


def mlp():
    """snntorch tutorial 5's MLP: 784-1000-10, beta 0.95."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(784, 1000), leaky(1000, 0.95),
        torch.nn.Linear(1000, 10), leaky(10, 0.95, output=True),
    )
    return net, (784,)


def conv():
    """A convolutional SNN with average pooling: Conv2d(1, 4, 3) → AvgPool2d(2) → Leaky →
    Flatten → Linear(100, 5) → Leaky, on 1×12×12 inputs."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.AvgPool2d(2), leaky((4, 5, 5), 0.9),
        torch.nn.Flatten(), torch.nn.Linear(100, 5), leaky(5, 0.9, output=True),
    )
    with torch.no_grad():
        # PyTorch's initialisation is too weak for this small net to spike at all.
        net[0].weight *= 3.0
        net[4].weight *= 4.0
    return net, (1, 12, 12)


def rleaky():
    """A recurrent SNN: Linear(20, 8) → RLeaky(8, all-to-all) → Linear(8, 4) → Leaky."""
    torch.manual_seed(0)
    rec = snn.RLeaky(
        beta=torch.full((8,), 0.9),
        threshold=torch.ones(8),
        linear_features=8,
        reset_mechanism="zero",
        init_hidden=True,
    )
    net = torch.nn.Sequential(
        torch.nn.Linear(20, 8), rec, torch.nn.Linear(8, 4), leaky(4, 0.9, output=True),
    )
    with torch.no_grad():
        net[0].weight *= 6.0
        net[2].weight *= 8.0
    return net, (20,)


def norse_lif():
    """Norse's LIFBoxCell (current-free LIF) network: Linear(20, 10) → LIFBox(τ = 10 ms) →
    Linear(10, 4) → LIFBox(τ = 20 ms), dt = 1 ms."""
    torch.manual_seed(0)
    net = norse.SequentialState(
        torch.nn.Linear(20, 10), norse_box(10, 100.0),
        torch.nn.Linear(10, 4), norse_box(4, 50.0),
    )
    with torch.no_grad():
        net[0].weight *= 60.0
        net[2].weight *= 80.0
    return net, (20,)


def norse_cubalif():
    """Norse's LIFCell (current-based LIF) network: Linear(20, 10) → LIF(τ_syn = 5 ms,
    τ_mem = 10 ms) → Linear(10, 4) → LIF(τ_syn = 5 ms, τ_mem = 20 ms), dt = 1 ms."""
    torch.manual_seed(0)
    net = norse.SequentialState(
        torch.nn.Linear(20, 10), norse_cell(10, 100.0),
        torch.nn.Linear(10, 4), norse_cell(4, 50.0),
    )
    with torch.no_grad():
        net[0].weight *= 20.0
        net[2].weight *= 30.0
    return net, (20,)


def norse_box(n, tau_mem_inv):
    return norse.LIFBoxCell(norse.LIFBoxParameters(
        tau_mem_inv=torch.full((n,), tau_mem_inv), v_leak=torch.zeros(n),
        v_th=torch.ones(n), v_reset=torch.zeros(n)))


def norse_cell(n, tau_mem_inv):
    return norse.LIFCell(norse.LIFParameters(
        tau_syn_inv=torch.full((n,), 200.0), tau_mem_inv=torch.full((n,), tau_mem_inv),
        v_leak=torch.zeros(n), v_th=torch.ones(n), v_reset=torch.zeros(n)))


def run_norse(net, x):
    """Steps a Norse network; returns the output spikes and the last cell's membranes."""
    spikes, mems, state = [], [], None
    with torch.no_grad():
        for t in range(x.shape[0]):
            spk, state = net(x[t], state)
            spikes.append(spk)
            mems.append(state[-1].v.clone())
    return torch.stack(spikes), torch.stack(mems)


def run(net, x):
    """Steps the network; returns the output layer's spikes and membranes."""
    for m in net.modules():
        if isinstance(m, snn.SpikingNeuron):
            m.reset_hidden()
    spikes, mems = [], []
    with torch.no_grad():
        for t in range(x.shape[0]):
            spk, mem = net(x[t])
            spikes.append(spk)
            mems.append(mem)
    return torch.stack(spikes), torch.stack(mems)


FIXTURES = {
    "snntorch_mlp": mlp,
    "snntorch_conv_avgpool": conv,
    "snntorch_rleaky": rleaky,
    "norse_lif": norse_lif,
    "norse_cubalif": norse_cubalif,
}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    names = sys.argv[1:] or list(FIXTURES)
    for name in names:
        net, shape = FIXTURES[name]()
        if name.startswith("norse"):
            graph = norse.to_nir(net, torch.zeros(*shape), dt=1e-3)
            peer = f"norse 1.1 (to_nir, dt = 1e-3), nir {nir.version}"
        else:
            graph = export_to_nir(net, torch.zeros(1, *shape), ignore_dims=[0])
            peer = f"snntorch {snn.__version__}, nir {nir.version}"
        nir.write(OUT / f"{name}.nir", graph)
        nir.read(OUT / f"{name}.nir")  # the peer's file passes nir's own checks
        g = torch.Generator().manual_seed(1)
        # Rates high enough that the hidden and output layers spike.
        x = (torch.rand(T, B, *shape, generator=g) < 0.3).float()
        spikes, mems = (run_norse if name.startswith("norse") else run)(net, x)
        record = {
            "peer": peer,
            "steps": T,
            "batch": B,
            "input": x.flatten().tolist(),
            "input_shape": list(x.shape),
            "spikes": spikes.flatten().tolist(),
            "mems": mems.flatten().tolist(),
            "output_shape": list(spikes.shape),
        }
        (OUT / f"{name}.json").write_text(json.dumps(record))
        print(name, "output spikes:", int(spikes.sum()), "of", spikes.numel())


if __name__ == "__main__":
    main()
