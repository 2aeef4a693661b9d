"""Dumps what snntorch's seed_noise.py starts from for one seed: the tutorial network's initial
weights (PyTorch layout, little-endian f32 files) and the first epoch's batch order.

    cd ../shared/peers && python ../../main/tools/parity_training/dump_snntorch_init.py 3 /tmp/init3
    cargo run --release -p spyne --example from_snntorch_init -- /tmp/init3 ../shared/data/mnist

Training spyne from the same start and order shows whether an accuracy difference is the
seed's luck or the implementation.
"""
import sys, json, struct, os
sys.path.insert(0, os.getcwd())
import torch
from snntorch_tut5 import Net
from mnist import load_mnist
seed = int(sys.argv[1])
torch.manual_seed(seed)
net = Net(fc1_once=True)
gen = torch.Generator().manual_seed(seed)
# the same order seed_noise.py draws for its first epoch (mnist.batches: randperm(n, generator))
perm = torch.randperm(60000, generator=gen)
out = sys.argv[2]
def dump(name, t):
    with open(os.path.join(out, name), "wb") as f:
        f.write(t.detach().contiguous().numpy().astype("<f4").tobytes())
dump("fc1.weight", net.fc1.weight); dump("fc1.bias", net.fc1.bias)
dump("fc2.weight", net.fc2.weight); dump("fc2.bias", net.fc2.bias)
with open(os.path.join(out, "perm.txt"), "w") as f:
    f.write(" ".join(str(int(i)) for i in perm))
print("dumped", seed)
