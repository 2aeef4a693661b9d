#!/usr/bin/env bash
# How much does spyne slow down when another process keeps one core busy? Runs
# `spyne bench --threads 2` on an idle machine, then again next to a busy loop, and prints
# the ratio. (Python frameworks with spin-waiting thread pools slow down ~40x here.)
#
#   bench/contention.sh [--iters 30] [--repeats 3]
set -euo pipefail
cd "$(dirname "$0")/.."
iters=30 repeats=3
while [ $# -gt 0 ]; do
  case "$1" in
    --iters) iters=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
data=${SPYNE_DATA:-../shared/data/mnist}
cargo build --release -q -p spyne-cli
run() { target/release/spyne bench --data "$data" --threads 2 --iters "$iters" --repeats "$repeats"; }
median() { sed -n 's/.*"median_ms":\([0-9.]*\).*/\1/p'; }
idle=$(run | tee /dev/stderr | median)
( while :; do :; done ) &
busy_pid=$!
trap 'kill $busy_pid 2>/dev/null' EXIT
sleep 1
busy=$(run | tee /dev/stderr | median)
kill $busy_pid
awk -v a="$idle" -v b="$busy" 'BEGIN { printf "idle %.2f ms, one core busy %.2f ms: %.2fx slower\n", a, b, b / a }'
