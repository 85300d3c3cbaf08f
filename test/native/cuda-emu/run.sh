#!/usr/bin/env bash
# Runs the CUDA tests on the CPU emulation of CUDA (cuda_runtime.h, emu.cc): each native/src/cuda/*.cu (and the
# .cuh it includes) rewritten by prep.mjs and compiled with g++ into native/build/cuda-emu-asan/ under the names nvcc's
# objects have, then test/native/run.sh with APL_CUDA_EMU=1 builds test_kernels, test_kquant and test_gpu against
# them (native/build/test-emu-asan/) and runs them; last, the addon's JavaScript tests (GPU ones included) on an addon
# built on the emulation (build-addon.sh; APL_CUDA_EMU_JS=0 skips this part). No nvcc and no GPU needed.
# Everything is built with AddressSanitizer (-fsanitize=address; APL_CUDA_EMU_ASAN=0 builds without it, into other
# folders): device memory is plain heap memory here, so a kernel reading or writing past a cudaMalloc buffer stops
# the run with ASan's report naming the kernel, which a GPU would let pass or fault on without saying where.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$root"
CXX="${CXX:-g++}"
E=native/build/cuda-emu
tests=native/build/test-emu
if [ "${APL_CUDA_EMU_ASAN:-1}" = 1 ]; then
  E=native/build/cuda-emu-asan
  tests=native/build/test-emu-asan
  mkdir -p "$E"
  # run.sh calls "$CXX" for every compile and link: a wrapper adds the sanitizer to both.
  printf '#!/bin/sh\nexec %s -fsanitize=address -fno-omit-frame-pointer "$@"\n' "$CXX" >"$E/cxx.tmp"
  chmod +x "$E/cxx.tmp"
  cmp -s "$E/cxx.tmp" "$E/cxx" 2>/dev/null && rm "$E/cxx.tmp" || mv "$E/cxx.tmp" "$E/cxx"
  CXX="$root/$E/cxx"
  # The fibers a failed launch abandons, and the test programs' own allocations, are not leaks worth a report.
  export ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
fi
mkdir -p "$E"
flags=(-std=c++17 -O2 -ffp-contract=off -Wall -Wextra -Wno-unused-function -Wno-subobject-linkage)
here=test/native/cuda-emu
stale() { # stale OUT INPUT...: OUT missing or older than an input
  local o="$1"
  shift
  [ -f "$o" ] || return 0
  for i in "$@"; do [ "$i" -nt "$o" ] && return 0; done
  return 1
}
pids=()
if stale "$E/emu.o" "$here/emu.cc" "$here/cuda_runtime.h"; then
  "$CXX" "${flags[@]}" -c "$here/emu.cc" -o "$E/emu.o" &
  pids+=($!)
fi
for h in native/src/cuda/*.cuh; do
  stale "$E/$(basename "$h")" "$h" "$here/prep.mjs" && node "$here/prep.mjs" "$h" "$E/$(basename "$h")"
done
for pair in quant:apl_cuda kquant:apl_kquant_cuda infer:apl_infer_cuda forward:apl_forward_cuda check:apl_check_cuda; do
  cu="native/src/cuda/${pair%%:*}.cu"
  o="$E/${pair#*:}.o"
  if stale "$o" "$cu" native/src/cuda/*.h native/src/cuda/*.cuh native/src/*.h native/src/infer/*.h "$here/cuda_runtime.h" \
    "$here/prep.mjs"; then
    node "$here/prep.mjs" "$cu" "$E/${pair%%:*}.cc"
    "$CXX" "${flags[@]}" -I "$here" -I native/src/cuda -c "$E/${pair%%:*}.cc" -o "$o" &
    pids+=($!)
  fi
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=1; done
[ "$failed" = 0 ] || { echo "test:cuda-emu: the CUDA sources failed to compile for the emulation" >&2; exit 1; }
# The emulation itself first, against what CUDA defines.
if stale "$E/test_emu" "$here/test_emu.cu" "$E/emu.o" "$here/prep.mjs" test/native/check.h; then
  node "$here/prep.mjs" "$here/test_emu.cu" "$E/test_emu.cc"
  "$CXX" "${flags[@]}" -I "$here" -I test/native "$E/test_emu.cc" "$E/emu.o" -o "$E/test_emu" -lpthread
fi
"$E/test_emu"
echo "test:cuda-emu: the CUDA kernels on the CPU emulation of CUDA (no GPU is used)"
APL_CUDA_EMU=1 APL_CUDA_OBJ_DIR="$E" APL_NATIVE_OUT="$tests" CXX="$CXX" bash test/native/run.sh "$@"
# Then the JavaScript side of the GPU paths: the addon built on the emulation (build-addon.sh, without ASan: Node
# would need libasan preloaded) and the addon's tests with it, the GPU ones included (APL_ADDON, native/load.ts).
[ "${APL_CUDA_EMU_JS:-1}" = 1 ] || exit 0
echo "test:cuda-emu: building the addon on the CUDA emulation"
addon="$(CXX=g++ bash "$here/build-addon.sh" 2>"$root/native/build/emu-addon.log")" ||
  { cat "$root/native/build/emu-addon.log" >&2; echo "test:cuda-emu: the addon on the emulation failed to build" >&2; exit 1; }
APL_ADDON="$addon" node --import tsx --test test/unit/native/*.test.ts
