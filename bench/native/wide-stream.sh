#!/usr/bin/env bash
# Builds and runs bench/native/wide-stream.cc (x86-64 with AVX-512 VNNI): the decode kernel's three-array layout
# against the repacked one-stream layout, side by side; with an argument, that bench of the same directory instead
# (`wide-pf`: the software prefetch modes). Run under `nice -n -10` on a shared machine.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/native/build/bench"
mkdir -p "$out"
g++ -std=c++17 -O3 -ffp-contract=off -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mavx2 -mf16c -mfma \
  "$root/bench/native/${1:-wide-stream}.cc" "$root/native/src/infer/pool.cc" -o "$out/${1:-wide-stream}" -lpthread
"$out/${1:-wide-stream}"
