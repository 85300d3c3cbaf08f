#!/usr/bin/env bash
# One prepared script for a machine with an NVIDIA GPU: builds the CUDA kernels and the plain C++ test program,
# runs the kernel tests (CUDA against the scalar reference, bit-exact, over the scheme table), times CUDA
# quantization (kernels alone and with host↔device copies) against the CPU engine on the same machine, then — when
# Node and node_modules are there — builds the addon and runs its JavaScript tests (which then test backend 'gpu').
# Usage: bash bench/gpu.sh   (from anywhere; needs nvcc and g++; Node optional)
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
echo "== machine"
nvidia-smi -L 2>/dev/null || echo "nvidia-smi: not available"
lscpu 2>/dev/null | grep -E 'Model name|^CPU\(s\)' || true
nvcc="$(node native/find-nvcc.js 2>/dev/null || true)"
[ -n "$nvcc" ] || nvcc="$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)"
if [ -z "$nvcc" ]; then
  echo "gpu.sh: nvcc not found; nothing to do" >&2
  exit 1
fi
echo "== nvcc: $nvcc"
mkdir -p native/build/cuda
t0=$(date +%s)
"$nvcc" -c native/src/cuda/quant.cu -o native/build/cuda/apl_cuda.o -O3 -std=c++17 --fmad=false -Xcompiler -fPIC \
  -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 || exit 1
echo "   compiled in $(( $(date +%s) - t0 )) s"
touch test/native/test_kernels.cc # relink the test program with CUDA
echo "== kernel tests (+ CUDA parity and timings)"
APL_SKIP_JS_TESTS=1 bash test/native/run.sh --gpu-bench
rc=$?
echo "== the same with the one-thread-per-group CUDA kernel (the literal reference)"
APL_CUDA_ONE_THREAD=1 APL_SKIP_JS_TESTS=1 bash test/native/run.sh --gpu-bench || rc=1
if command -v node >/dev/null && [ -d node_modules/node-addon-api ] && [ -d node_modules/tsx ]; then
  echo "== addon build and JavaScript tests"
  npm run build:native && node --import tsx --test test/unit/native/*.test.ts || rc=1
  node --import tsx bench/quantize.bench.ts || true
else
  echo "== addon JavaScript tests SKIPPED: node or node_modules not present on this machine"
fi
exit $rc
