#!/usr/bin/env bash
# Builds and runs bench/native/wide-pf.cc (x86-64 with AVX-512 VNNI): the wide decode kernel's software prefetch
# modes side by side on weights in 2 MiB pages. Run under `nice -n -10` on a shared machine.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/native/build/bench"
mkdir -p "$out"
g++ -std=c++17 -O3 -ffp-contract=off -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mavx2 -mf16c -mfma \
  "$root/bench/native/wide-pf.cc" "$root/native/src/infer/pool.cc" -o "$out/wide-pf" -lpthread
"$out/wide-pf"
