"""The shd-like job in the Python frameworks, timed per training iteration.

    pip install torch snntorch==1.0.0 spikingjelly==2.0.0 norse==1.1.0
    python bench/shd_peers.py --framework snntorch --steps 500

The job (as `spyne bench --job shd-like`): Bernoulli input spikes at p = 0.05, [T, 16, 700],
seeded; Linear(700, 512) → LIF(β = 0.9) → Linear(512, 20) → LIF(β = 0.9); ce_count_loss (cross
entropy of the output spike counts); Adam lr 1e-3. One iteration is forward + loss + backward +
Adam step, as for tutorial 5. Each framework is written the way its users write it:

- snntorch 1.0: the per-step Python loop of its tutorials (`snn.Leaky`, β = 0.9, subtract
  reset, ATan surrogate) and `SF.ce_count_loss`.
- SpikingJelly 2.0: multi-step `layer.Linear` and `neuron.LIFNode` (τ = 10 with
  `decay_input=False`, i.e. U = 0.9·U + I, soft reset, ATan; 2.0 has only the torch
  backend), `reset_net` per iteration.
- Norse 1.1: `SequentialState` over the whole sequence with `LIF` modules (τ_mem_inv = 100 at
  dt = 1 ms, i.e. β = 0.9, and τ_syn_inv = 1000 so that the current lasts one step, which
  makes it the same leaky integrator).

Prints one JSON line: median_ms, min_ms, peak_rss_mb (the process's peak resident set, torch
included), input_mb.
"""
import argparse
import json
import resource
import statistics
import time

import torch

T_DEFAULT, BATCH, FEATURES, HIDDEN, CLASSES, DENSITY = 500, 16, 700, 512, 20, 0.05


def snntorch_model():
    import snntorch as snn
    from snntorch import functional as SF

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(FEATURES, HIDDEN)
            self.lif1 = snn.Leaky(beta=0.9)
            self.fc2 = torch.nn.Linear(HIDDEN, CLASSES)
            self.lif2 = snn.Leaky(beta=0.9)

        def forward(self, x):
            mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
            spk_rec = []
            for step in range(x.shape[0]):
                spk1, mem1 = self.lif1(self.fc1(x[step]), mem1)
                spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
                spk_rec.append(spk2)
            return torch.stack(spk_rec)

    loss = SF.ce_count_loss()
    return Net(), lambda net, x: net(x), loss


def spikingjelly_model():
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    def lif():
        return neuron.LIFNode(tau=10.0, decay_input=False, v_reset=None,
                              surrogate_function=surrogate.ATan(), step_mode="m")

    net = torch.nn.Sequential(
        layer.Linear(FEATURES, HIDDEN, step_mode="m"), lif(),
        layer.Linear(HIDDEN, CLASSES, step_mode="m"), lif(),
    )

    def forward(net, x):
        functional.reset_net(net)
        return net(x)

    return net, forward, count_ce


def norse_model():
    import norse.torch as norse

    # The current decays within one step (dt·τ_syn_inv = 1): a leaky integrator, β = 0.9.
    p = norse.LIFParameters(tau_syn_inv=torch.tensor(1000.0), tau_mem_inv=torch.tensor(100.0))
    net = norse.SequentialState(
        torch.nn.Linear(FEATURES, HIDDEN), norse.LIF(p),
        torch.nn.Linear(HIDDEN, CLASSES), norse.LIF(p),
    )
    return net, lambda net, x: net(x)[0], count_ce


def count_ce(spikes, targets):
    """ce_count_loss: cross entropy of the spike counts over time."""
    return torch.nn.functional.cross_entropy(spikes.sum(0), targets)


MODELS = {"snntorch": snntorch_model, "spikingjelly": spikingjelly_model, "norse": norse_model}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--framework", choices=sorted(MODELS), required=True)
    ap.add_argument("--steps", type=int, default=T_DEFAULT)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net, forward, loss_fn = MODELS[a.framework]()
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(a.steps, BATCH, FEATURES, generator=g) < DENSITY).float()
    y = torch.randint(0, CLASSES, (BATCH,), generator=g)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def iteration():
        t0 = time.perf_counter()
        loss = loss_fn(forward(net, x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()
        return (time.perf_counter() - t0) * 1e3

    for _ in range(a.warmup):
        iteration()
    times = sorted(iteration() for _ in range(a.iters * a.repeats))
    print(json.dumps({
        "system": a.framework,
        "job": "shd-like",
        "steps": a.steps,
        "median_ms": round(statistics.median(times), 3),
        "min_ms": round(times[0], 3),
        "iters": len(times),
        "threads": a.threads,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "input_mb": round(x.numel() * 4 / 1e6, 1),
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
