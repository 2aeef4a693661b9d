#!/usr/bin/env bash
# Times the reference iteration of spyne and of snntorch (as written, and fc1 computed once)
# back to back on this machine, and prints the ratios. Only ratios from one run mean anything:
# machines differ, and so does the same machine from hour to hour.
#
#   bench/compare.sh [--threads 2] [--iters 30] [--repeats 3]
#
# Needs: ../shared/data/mnist (or SPYNE_DATA) and a Python with torch + snntorch==1.0.0
# ($PEERS_PYTHON, default $HOME/.venvs/peers/bin/python; see ../shared/peers/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2 iters=30 repeats=3
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --iters) iters=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
py=${PEERS_PYTHON:-$HOME/.venvs/peers/bin/python}
peers=../shared/peers
data=${SPYNE_DATA:-../shared/data/mnist}
cargo build --release -q -p spyne-cli
spyne=target/release/spyne
out=$(mktemp -d)
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
"$spyne" bench --data "$data" --threads "$threads" --iters "$iters" --repeats "$repeats" | tee "$out/spyne.json"
"$spyne" bench --data "$data" --threads "$threads" --iters "$iters" --repeats "$repeats" --path composed | tee "$out/composed.json"
for variant in stepwise fc1once; do
  (cd "$peers" && "$py" snntorch_tut5.py --mode bench --variant "$variant" --threads "$threads" \
      --iters "$iters" --repeats "$repeats" --json "$out/snntorch-$variant.json" > /dev/null)
  tail -n 1 "$out/snntorch-$variant.json"
done
python3 - "$out" <<'PY'
import json, sys, os
d = sys.argv[1]
load = lambda f: json.loads(open(os.path.join(d, f)).read().strip().splitlines()[-1])
sp, co = load("spyne.json"), load("composed.json")
for v in ("stepwise", "fc1once"):
    s = load(f"snntorch-{v}.json")
    ms = s["iter_median_s"] * 1000
    print(f"snntorch {v:8s} median {ms:7.2f} ms | spyne fused {sp['median_ms']:.2f} ms: {ms / sp['median_ms']:5.1f}x faster"
          f" | spyne composed {co['median_ms']:.2f} ms: {ms / co['median_ms']:5.1f}x")
print(f"spyne peak RSS {sp['peak_rss_mb']} MB (bench process, MNIST loaded)")
PY
rm -rf "$out"
