#!/usr/bin/env bash
# The shd-like job (sparse spike sequences, see bench/shd_peers.py) in spyne, snntorch,
# SpikingJelly and Norse, back to back for each T, with the ratios and a picture. Only ratios
# from one run mean anything.
#
#   bench/peers.sh [--steps "100 500 2000"] [--threads 2] [--iters 10] [--out DIR]
#
# Needs a Python with the peers ($PEERS_PYTHON, default $HOME/.venvs/peers/bin/python):
#   pip install torch snntorch==1.0.0 spikingjelly==2.0.0 norse==1.1.0
# Writes DIR/results.jsonl (one JSON line per framework and T) and DIR/scaling.png
# (default DIR: target/bench-peers).
set -euo pipefail
cd "$(dirname "$0")/.."
steps="100 500 2000" threads=2 iters=10 out=target/bench-peers
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --iters) iters=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
py=${PEERS_PYTHON:-$HOME/.venvs/peers/bin/python}
cargo build --release -q -p spyne-cli
spyne=target/release/spyne
mkdir -p "$out"
results=$out/results.jsonl
: > "$results"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
for t in $steps; do
  # Fewer timed iterations where one takes seconds; at least 3.
  n=$(( iters * 500 / t )); [ "$n" -lt 3 ] && n=3; [ "$n" -gt "$iters" ] && n=$iters
  # spyne's iterations are ten to twenty times shorter than the peers': it runs five times
  # as many, so that its median, too, spans more than a moment of a noisy host.
  "$spyne" bench --job shd-like --steps "$t" --threads "$threads" --iters $(( iters * 5 )) \
    --repeats 1 --warmup 5 | tee -a "$results"
  for f in snntorch spikingjelly norse; do
    "$py" bench/shd_peers.py --framework "$f" --steps "$t" --threads "$threads" --iters "$n" \
      --warmup 1 2> /dev/null | tee -a "$results"
  done
done
python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault(r["steps"], {})[r["system"]] = r
print(f"{'T':>6} {'spyne ms':>10} {'MB':>7} | " + " | ".join(f"{p:>12} ms   MB  ratio" for p in ("snntorch", "spikingjelly", "norse")))
for t in sorted(by):
    s = by[t]["spyne"]
    cells = []
    for p in ("snntorch", "spikingjelly", "norse"):
        r = by[t].get(p)
        cells.append(f"{r['median_ms']:>15.1f} {r['peak_rss_mb']:>5.0f} {r['median_ms'] / s['median_ms']:>5.1f}x" if r else " " * 28)
    peers = [by[t][p] for p in ("snntorch", "spikingjelly", "norse") if p in by[t]]
    fastest = min(peers, key=lambda r: r["median_ms"])
    smallest = min(peers, key=lambda r: r["peak_rss_mb"])
    print(f"{t:>6} {s['median_ms']:>10.1f} {s['peak_rss_mb']:>7.0f} | " + " | ".join(cells)
          + f"   vs fastest ({fastest['system']}): {fastest['median_ms'] / s['median_ms']:.1f}x,"
          f" RSS {s['peak_rss_mb'] / smallest['peak_rss_mb']:.2f} of the smallest")
ts = sorted(by)
if len(ts) > 1:
    sp = {t: by[t]["spyne"] for t in ts}
    lo, hi = ts[0], ts[-1]
    print(f"spyne: time T={hi} / T={ts[len(ts) // 2]} = {sp[hi]['median_ms'] / sp[ts[len(ts) // 2]]['median_ms']:.2f}"
          f" (T ratio {hi / ts[len(ts) // 2]:.1f}); RSS less input T={hi} / T={lo} ="
          f" {(sp[hi]['peak_rss_mb'] - sp[hi]['input_mb']) / (sp[lo]['peak_rss_mb'] - sp[lo]['input_mb']):.2f}")
PY
"$spyne" plot scaling "$results" --out "$out/scaling.png"
