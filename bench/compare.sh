#!/usr/bin/env bash
# Times one training iteration of spyne and of snntorch back to back on this machine, and
# prints the ratios. Only ratios from one run mean anything: machines differ, and so does the
# same machine from hour to hour.
#
#   bench/compare.sh [--model mlp|csnn] [--threads 2] [--iters 30] [--repeats 3] [--warmup N]
#
#   mlp  (default): snntorch tutorial 5; snntorch as written and with fc1 computed once.
#   csnn: snntorch tutorial 6 (the convolutional SNN, 50 steps), as written.
#
# spyne's warm-up: 5 iterations for the MLP; 30 for the CSNN, whose spike-driven layers cost
# more as training raises the firing rate over the first ~25 iterations (0.12 s → 0.2 s on a
# 2-core Xeon), so that the timed iterations are the steady state an epoch runs at.
# snntorch's dense iteration does not depend on the firing rate.
#
# spyne times five times the iterations (`--iters` × 5 per repeat), as bench/peers.sh does:
# with the same count, its median came from 0.3 s of a host that wanders by a fifth from
# moment to moment, against 5 s for snntorch, and single runs of this script moved spyne's
# median 5.1–6.2 ms while snntorch's stayed within 80–83 ms.
#
# Needs: ../shared/data/mnist (or SPYNE_DATA) and a Python with torch + snntorch==1.0.0
# ($PEERS_PYTHON, default $HOME/.venvs/peers/bin/python; see ../shared/peers/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
model=mlp threads=2 iters=30 repeats=3 warmup=
while [ $# -gt 0 ]; do
  case "$1" in
    --warmup) warmup=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
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
trap 'rm -rf "$out"' EXIT
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
# A peer script, with its peak resident set (KB) written to $out/<name>.rss when GNU time
# is installed (Debian package `time`).
peer() {
  local script=$1 name=$2; shift 2
  if [ -x /usr/bin/time ]; then
    (cd "$peers" && /usr/bin/time -f %M -o "$out/$name.rss" "$py" "$script" "$@" > /dev/null)
  else
    (cd "$peers" && "$py" "$script" "$@" > /dev/null)
  fi
}
if [ -z "$warmup" ]; then
  if [ "$model" = csnn ]; then warmup=30; else warmup=5; fi
fi
bench() { "$spyne" bench --model "$model" --data "$data" --threads "$threads" --iters $(( iters * 5 )) --repeats "$repeats" --warmup "$warmup" "$@"; }
bench | tee "$out/spyne.json"
bench --path composed | tee "$out/composed.json"
case "$model" in
  mlp)
    for variant in stepwise fc1once; do
      peer snntorch_tut5.py "snntorch-$variant" --mode bench --variant "$variant" \
          --threads "$threads" --iters "$iters" --repeats "$repeats" --json "$out/snntorch-$variant.json"
      tail -n 1 "$out/snntorch-$variant.json"
    done ;;
  csnn)
    peer snntorch_tut6.py snntorch-stepwise --mode bench --threads "$threads" \
        --iters "$iters" --repeats "$repeats" --json "$out/snntorch-stepwise.json"
    tail -n 1 "$out/snntorch-stepwise.json" ;;
  *) echo "--model must be mlp or csnn" >&2; exit 2 ;;
esac
python3 - "$out" <<'PY'
import json, sys, os
d = sys.argv[1]
load = lambda f: json.loads(open(os.path.join(d, f)).read().strip().splitlines()[-1])
sp, co = load("spyne.json"), load("composed.json")
for v in ("stepwise", "fc1once"):
    if not os.path.exists(os.path.join(d, f"snntorch-{v}.json")):
        continue
    s = load(f"snntorch-{v}.json")
    ms = s["iter_median_s"] * 1000
    name = "as written" if v == "stepwise" else "fc1 once"
    print(f"snntorch {name:10s} median {ms:8.2f} ms | spyne {sp['path']} {sp['median_ms']:.2f} ms: "
          f"{ms / sp['median_ms']:5.1f}x faster | spyne composed {co['median_ms']:.2f} ms: {ms / co['median_ms']:5.1f}x")
rss = os.path.join(d, "snntorch-stepwise.rss")
peer = f"; snntorch as written {int(open(rss).read().split()[-1]) / 1024:.0f} MB" if os.path.exists(rss) else ""
print(f"peak RSS: spyne {sp['peak_rss_mb']} MB (bench process, MNIST loaded){peer}")
PY
