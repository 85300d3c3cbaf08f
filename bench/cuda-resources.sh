#!/usr/bin/env bash
# Registers, spills, stack and shared memory of every CUDA kernel, as ptxas reports them (nvcc -Xptxas -v), for
# one architecture (default sm_90: H100/H200; APL_CUDA_ARCH=80 for A100): what a kernel's speed and its launch
# limits start from (a block of N threads needs N × registers ≤ 65536). Needs nvcc only, no GPU. bench/gpu.sh
# prints it; usage: bash bench/cuda-resources.sh
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/native"
nvcc="$(node find-nvcc.js 2>/dev/null || true)"
[ -n "$nvcc" ] || nvcc="$(command -v nvcc || true)"
if [ -z "$nvcc" ]; then
  echo "cuda-resources: nvcc not found" >&2
  exit 1
fi
arch="${APL_CUDA_ARCH:-90}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
printf '%-10s %-44s %5s %7s %7s %7s\n' file kernel regs stack spill smem
for f in src/cuda/*.cu; do
  b="$(basename "$f" .cu)"
  "$nvcc" -c "$f" -o "$tmp/$b.o" -O3 -std=c++17 --fmad=false -gencode "arch=compute_$arch,code=sm_$arch" \
    -Xptxas -v >"$tmp/$b.txt" 2>&1 || { cat "$tmp/$b.txt"; exit 1; }
  # ptxas: "Compiling entry function 'NAME'", then "N bytes stack frame, S bytes spill stores, …",
  # "Used R registers, … B bytes smem"
  awk -v file="$b" '
    /Compiling entry function/ { match($0, /\x27[^\x27]+\x27/); name = substr($0, RSTART + 1, RLENGTH - 2); stack = 0; spill = 0 }
    /bytes stack frame/ { stack = $(NF - 11) + 0; for (i = 1; i <= NF; i++) if ($i == "spill" && $(i + 1) == "stores,") spill = $(i - 2) + 0 }
    /Used [0-9]+ registers/ {
      regs = 0; smem = 0
      for (i = 1; i <= NF; i++) { if ($i == "registers,") regs = $(i - 1); if ($i == "smem") smem = $(i - 2) + 0 }
      print file, name, regs, stack, spill, smem
    }' "$tmp/$b.txt" | while read -r file name regs stack spill smem; do
    printf '%-10s %-44s %5s %7s %7s %7s\n' "$file" "$(echo "$name" | c++filt | sed -E 's/apl::cuda::(\(anonymous namespace\)::)?//; s/\(.*//' | cut -c1-44)" "$regs" "$stack" "$spill" "$smem"
  done
done
