#!/usr/bin/env bash
# Builds and runs the plain C++ kernel tests (no Node), then the addon's JavaScript tests. Called by
# `npm run test:native` (scripts/run-native-tests.mjs). The C++ program goes to native/build/test/ (ignored).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
out=native/build/test
# The CUDA objects nvcc built (native/build/cuda, linked with the static CUDA runtime), or with APL_CUDA_EMU=1 the
# same .cu files compiled for the CPU emulation of CUDA (test/native/cuda-emu/run.sh), into programs of their own.
cuda_dir=native/build/cuda
cudart=(-L/usr/local/cuda/lib64 -lcudart_static -ldl -lrt -lpthread)
emu="${APL_CUDA_EMU:-0}"
if [ "$emu" = 1 ]; then
  out="${APL_NATIVE_OUT:-native/build/test-emu}"
  cuda_dir="${APL_CUDA_OBJ_DIR:-native/build/cuda-emu}"
  cudart=("$cuda_dir/emu.o" -lpthread)
fi
mkdir -p "$out"
bin="$out/test_kernels"
CXX="${CXX:-g++}"
flags=(-std=c++17 -O2 -ffp-contract=off -Wall -Wextra -Wno-unused-function -Wno-maybe-uninitialized)
srcs=(native/src/engine.cc native/src/check.cc native/src/cpu/scalar.cc native/src/cpu/dispatch.cc native/src/cpu/neon.cc test/native/test_kernels.cc)
# The two-level-scale type's test program (test_kquant) links the same engine objects plus these.
kq_srcs=(native/src/kquant_engine.cc native/src/cpu/kquant_neon.cc test/native/test_kquant.cc)  # kquant_neon: a stub off arm64
arch="$(uname -m)"
# CUDA: reuse the object node-gyp built (npm run build:native) when there is one.
cuda_obj=$cuda_dir/apl_cuda.o
libs=(-lpthread)
check_obj=$cuda_dir/apl_check_cuda.o
if [ -f "$cuda_obj" ] && [ -f "$check_obj" ] && [ "${APL_NO_CUDA:-0}" != 1 ]; then
  flags+=(-DAPL_HAVE_CUDA)
  libs=("$cuda_obj" "$check_obj" "${cudart[@]}")
fi
newer=0
[ -x "$bin" ] || newer=1
for f in native/src/*.h native/src/*.cc native/src/cpu/* test/native/*.cc test/native/*.h test/native/run.sh "$cuda_dir"/*.o; do
  [ "$f" -nt "$bin" ] && newer=1
done
if [ "$newer" = 1 ]; then
  echo "test:native: building $bin"
  objs=()
  pids=()
  for s in "${srcs[@]}"; do
    o="$out/$(basename "${s%.cc}").o"
    "$CXX" "${flags[@]}" -c "$s" -o "$o" &
    pids+=($!)
    objs+=("$o")
  done
  if [ "$arch" = x86_64 ]; then
    "$CXX" "${flags[@]}" -mavx2 -mf16c -mno-fma -c native/src/cpu/avx2.cc -o "$out/avx2.o" &
    pids+=($!)
    "$CXX" "${flags[@]}" -mavx512f -mavx512bw -mavx2 -mf16c -mno-fma -c native/src/cpu/avx512.cc -o "$out/avx512.o" &
    pids+=($!)
    objs+=("$out/avx2.o" "$out/avx512.o")
  else
    for s in avx2 avx512; do
      "$CXX" "${flags[@]}" -c "native/src/cpu/$s.cc" -o "$out/$s.o" &
      pids+=($!)
      objs+=("$out/$s.o")
    done
  fi
  for s in "${kq_srcs[@]}"; do
    "$CXX" "${flags[@]}" -c "$s" -o "$out/$(basename "${s%.cc}").o" &
    pids+=($!)
  done
  if [ "$arch" = x86_64 ]; then
    "$CXX" "${flags[@]}" -mavx2 -mf16c -mno-fma -c native/src/cpu/kquant_avx2.cc -o "$out/kquant_avx2.o" &
    pids+=($!)
    "$CXX" "${flags[@]}" -mavx2 -mf16c -mfma -c native/src/cpu/kquant_avx2_fma.cc -o "$out/kquant_avx2_fma.o" &
    pids+=($!)
    "$CXX" "${flags[@]}" -mavx512f -mavx512vl -mavx2 -mf16c -mfma -c native/src/cpu/kquant_avx512.cc \
      -o "$out/kquant_avx512.o" &
  else
    "$CXX" "${flags[@]}" -c native/src/cpu/kquant_avx512.cc -o "$out/kquant_avx512.o" &
    pids+=($!)
    "$CXX" "${flags[@]}" -c native/src/cpu/kquant_avx2.cc -o "$out/kquant_avx2.o" &
    pids+=($!)
    "$CXX" "${flags[@]}" -c native/src/cpu/kquant_avx2_fma.cc -o "$out/kquant_avx2_fma.o" &
  fi
  pids+=($!)
  failed=0
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  if [ "$failed" = 1 ]; then
    rm -f "$bin"
    echo "test:native: the C++ test program failed to compile" >&2
    exit 1
  fi
  "$CXX" "${objs[@]}" -o "$bin" "${libs[@]}"
  kq_libs=("${libs[@]}")
  [ -f "$cuda_dir/apl_kquant_cuda.o" ] && [ "${APL_NO_CUDA:-0}" != 1 ] && [ -f "$cuda_obj" ] &&
    kq_libs=("$cuda_dir/apl_kquant_cuda.o" "${libs[@]}")
  "$CXX" "${objs[@]/%test_kernels.o/kquant_engine.o}" "$out/test_kquant.o" "$out/kquant_avx2.o" "$out/kquant_avx2_fma.o" \
    "$out/kquant_avx512.o" "$out/kquant_neon.o" -o "$out/test_kquant" \
    "${kq_libs[@]}"
fi
# The CUDA inference test program (test_gpu): the kernels' index math emulated on the CPU always; CUDA against
# the scalar reference when a GPU is usable (it says "skipped: no usable GPU (reason)" otherwise).
gbin="$out/test_gpu"
gsrcs=(test/native/test_gpu.cc test/native/test_gpu_bench.cc native/src/infer/kernels.cc native/src/infer/pool.cc native/src/infer/linear.cc
  native/src/infer/model.cc native/src/infer/kquant_linear.cc native/src/infer/kv.cc native/src/infer/attention.cc native/src/cpu/infer_neon.cc
  native/src/cpu/infer_neon_dotprod.cc native/src/cpu/infer_kquant_neon.cc native/src/cpu/infer_kquant_neon_dotprod.cc)
gflags=()
for f in "${flags[@]}"; do [ "$f" = -DAPL_HAVE_CUDA ] || gflags+=("$f"); done
glibs=(-lpthread)
cuda_gpu_objs=("$cuda_dir/apl_cuda.o" "$cuda_dir/apl_infer_cuda.o" "$cuda_dir/apl_forward_cuda.o"
  "$cuda_dir/apl_check_cuda.o")
if [ "${APL_NO_CUDA:-0}" != 1 ] && ls "${cuda_gpu_objs[@]}" >/dev/null 2>&1; then
  gflags+=(-DAPL_HAVE_CUDA)
  # the quantize engine's objects (built above for test_kernels, with CUDA) for the gpu = cpu conversion test
  glibs=("$out/engine.o" "$out/check.o" "$out/scalar.o" "$out/dispatch.o" "$out/neon.o" "$out/avx2.o" "$out/avx512.o"
    "${cuda_gpu_objs[@]}" "${cudart[@]}")
fi
# The inference kernel tests without Node (test_infer, also run for arm64 by run-arm64.sh): the same inference
# objects as test_gpu (its two test files left out) and the same libraries.
ibin="$out/test_infer"
gnewer=0
[ -x "$gbin" ] || gnewer=1
[ -x "$ibin" ] || gnewer=1
[ "$bin" -nt "$gbin" ] && gnewer=1
for f in "${gsrcs[@]}" test/native/test_infer.cc test/native/*.h native/src/infer/*.h native/src/cpu/infer_*.cc native/src/cpu/infer_*.h native/src/cuda/* native/src/quant.h test/native/run.sh "$cuda_dir"/*.o; do
  [ "$f" -nt "$gbin" ] && gnewer=1
done
if [ "$gnewer" = 1 ]; then
  echo "test:native: building $gbin"
  gobjs=()
  gpids=()
  for s in "${gsrcs[@]}"; do
    o="$out/g_$(basename "${s%.cc}").o"
    "$CXX" "${gflags[@]}" -c "$s" -o "$o" &
    gpids+=($!)
    gobjs+=("$o")
  done
  for v in avx2:"-mavx2 -mf16c -mfma" vnni:"-mavx2 -mf16c -mfma -mavx512f -mavx512bw -mavx512vl -mavx512vnni" \
    avx512:"-mavx2 -mf16c -mfma -mavx512f -mavx512bw -mavx512vl -mavx512vnni" \
    amx:"-mavx2 -mf16c -mfma -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mamx-tile -mamx-int8"; do
    name="${v%%:*}"
    vf=()
    [ "$arch" = x86_64 ] && read -r -a vf <<<"${v#*:}"
    "$CXX" "${gflags[@]}" "${vf[@]}" -c "native/src/cpu/infer_$name.cc" -o "$out/g_infer_$name.o" &
    gpids+=($!)
    gobjs+=("$out/g_infer_$name.o")
    if [ -f "native/src/cpu/infer_kquant_$name.cc" ]; then # the kquant kernels of the same variant
      "$CXX" "${gflags[@]}" "${vf[@]}" -c "native/src/cpu/infer_kquant_$name.cc" -o "$out/g_infer_kquant_$name.o" &
      gpids+=($!)
      gobjs+=("$out/g_infer_kquant_$name.o")
    fi
  done
  "$CXX" "${gflags[@]}" -c test/native/test_infer.cc -o "$out/g_test_infer.o" &
  gpids+=($!)
  gfailed=0
  for p in "${gpids[@]}"; do wait "$p" || gfailed=1; done
  if [ "$gfailed" = 1 ]; then
    rm -f "$gbin"
    echo "test:native: test_gpu failed to compile" >&2
    exit 1
  fi
  "$CXX" "${gobjs[@]}" -o "$gbin" "${glibs[@]}" || { echo "test:native: test_gpu failed to link" >&2; exit 1; }
  iobjs=("$out/g_test_infer.o")
  for o in "${gobjs[@]}"; do
    case "$o" in */g_test_gpu.o | */g_test_gpu_bench.o) ;; *) iobjs+=("$o") ;; esac
  done
  "$CXX" "${iobjs[@]}" -o "$ibin" "${glibs[@]}" || { echo "test:native: test_infer failed to link" >&2; exit 1; }
fi

# The attention test program (test_attention): the blocked attention against the reference form (no CUDA).
abin="$out/test_attention"
asrcs=(test/native/test_attention.cc native/src/infer/attention.cc native/src/infer/kv.cc native/src/infer/pool.cc)
anewer=0
[ -x "$abin" ] || anewer=1
for f in "${asrcs[@]}" test/native/check.h native/src/infer/*.h native/src/quant.h test/native/run.sh; do
  [ "$f" -nt "$abin" ] && anewer=1
done
if [ "$anewer" = 1 ]; then
  echo "test:native: building $abin"
  aflags=()
  for f in "${flags[@]}"; do [ "$f" = -DAPL_HAVE_CUDA ] || aflags+=("$f"); done
  "$CXX" "${aflags[@]}" "${asrcs[@]}" -o "$abin" -lpthread || { echo "test:native: test_attention failed to build" >&2; exit 1; }
fi

# The huge-page advice for the weights (test_hugepages: header only, no CUDA).
hbin="$out/test_hugepages"
if [ ! -x "$hbin" ] || [ test/native/test_hugepages.cc -nt "$hbin" ] || [ native/src/infer/hugepages.h -nt "$hbin" ] ||
  [ native/src/infer/infer.h -nt "$hbin" ] || [ native/src/direct_io.h -nt "$hbin" ] || [ test/native/check.h -nt "$hbin" ]; then
  echo "test:native: building $hbin"
  "$CXX" -std=c++17 -O2 -Wall -Wextra test/native/test_hugepages.cc -o "$hbin" -lpthread ||
    { echo "test:native: test_hugepages failed to build" >&2; exit 1; }
fi

if [ "$emu" = 1 ]; then
  # The programs with CUDA tests, their CUDA on the emulation: conversion (test_kernels), kquant (test_kquant),
  # inference linears and the forward pass (test_gpu).
  "$bin" "$@"
  "$out/test_kquant"
  "$gbin"
  exit 0
fi
"$bin" "$@"
# The whole program again on the scalar reference. Not an `&&` list: under `set -e` a failure there would not stop
# the script, and a failing forced-scalar pass would exit 0.
if ! scalar_out="$(APL_FORCE_SCALAR=1 "$bin" 2>&1)"; then
  printf '%s\n' "$scalar_out" >&2
  echo "test:native: the forced-scalar run (APL_FORCE_SCALAR=1) FAILED" >&2
  exit 1
fi
echo "test:native: forced-scalar run passed"
"$out/test_kquant"
# The plain AVX2 kquant build again (APL_NO_FMA=1: kq_select_kernel takes it; test_kquant checks that).
if ! nf_out="$(APL_NO_FMA=1 "$out/test_kquant" 2>&1)"; then
  printf '%s\n' "$nf_out" >&2
  echo "test:native: test_kquant FAILED under APL_NO_FMA=1" >&2
  exit 1
fi
echo "test:native: test_kquant under APL_NO_FMA=1 passed"
# The AVX2 FMA build chosen on an AVX-512 machine (APL_NO_AVX512=1; test_kquant checks the choice).
if ! n5_out="$(APL_NO_AVX512=1 "$out/test_kquant" 2>&1)"; then
  printf '%s\n' "$n5_out" >&2
  echo "test:native: test_kquant FAILED under APL_NO_AVX512=1" >&2
  exit 1
fi
echo "test:native: test_kquant under APL_NO_AVX512=1 passed"
# Both AVX-512 builds chosen in turn (APL_SPLIT_512: the CPU said to split 512-bit operations, or not; test_kquant
# checks the choice and runs both builds either way).
for split in 1 0; do
  if ! sp_out="$(APL_SPLIT_512=$split "$out/test_kquant" 2>&1)"; then
    printf '%s\n' "$sp_out" >&2
    echo "test:native: test_kquant FAILED under APL_SPLIT_512=$split" >&2
    exit 1
  fi
done
echo "test:native: test_kquant under APL_SPLIT_512=1 and =0 passed"
"$abin"
"$hbin"
APL_FORCE_SCALAR=1 "$abin" >/dev/null || { echo "test:native: test_attention FAILED under APL_FORCE_SCALAR=1" >&2; exit 1; }
"$gbin" ${APL_GPU_BENCH:+--bench}

# test_infer checks every inference variant this CPU runs against the scalar reference in one run; it runs once per
# choice the engine can make here, each asserting which kernel it chose (APL_EXPECT_KERNEL): the default (the
# best variant), without AVX-512 (APL_NO_AVX512=1: avx2) and forced scalar; with GFNI, also without it
# (APL_WIDE_GFNI=0).
cpu_has() { grep -qw "$1" /proc/cpuinfo 2>/dev/null; }
runs=()
if [ "$arch" = x86_64 ] && cpu_has avx2 && cpu_has fma && cpu_has f16c; then
  if cpu_has avx512f && cpu_has avx512bw && cpu_has avx512vl && cpu_has avx512_vnni; then
    # AMX (avx512-amx) where the CPU has it; test_infer itself says whether the OS granted the tiles
    if cpu_has amx_tile && cpu_has amx_int8; then
      runs+=("avx512-amx:" "avx512-gemm:APL_NO_AMX=1")
    else
      runs+=("avx512-gemm:")
    fi
    # decode's planes by GFNI (cpu/infer_wide.h wide_gfni) where the CPU has it; the shift and mask as well
    cpu_has gfni && runs+=("avx512-gemm:APL_WIDE_GFNI=0")
  fi
  runs+=("avx2:APL_NO_AVX512=1")
else
  runs+=(":")  # another CPU: the default choice, unchecked
fi
runs+=("scalar:APL_FORCE_SCALAR=1")
for r in "${runs[@]}"; do
  want="${r%%:*}"
  envs=()
  [ -n "${r#*:}" ] && envs=("${r#*:}")
  if ! iout="$(env "${envs[@]}" APL_EXPECT_KERNEL="$want" "$ibin" 2>&1)"; then
    printf '%s\n' "$iout" >&2
    echo "test:native: test_infer FAILED (${envs[*]:-default choice}${want:+, expected kernel $want})" >&2
    exit 1
  fi
  echo "test:native: test_infer passed (${envs[*]:-default choice}): $(printf '%s\n' "$iout" | grep -m1 'inference variants') $(printf '%s\n' "$iout" | tail -1)"
done

if [ "${APL_SKIP_JS_TESTS:-0}" = 1 ]; then
  echo "test:native: JavaScript tests skipped (APL_SKIP_JS_TESTS=1)"
  exit 0
fi
# The addon's JavaScript tests (they say plainly when the addon is not built and they fall back).
node --import tsx --test test/unit/native/*.test.ts
# The AVX-512 decode kernel and the kquant wide decode (AVX-512 and AVX2) in their block-by-block order too
# (APL_WIDE_SEQ=0; the default reads a row pair in memory order, infer_wide.h, infer_kquant_wide_rows.h): both
# must equal the scalar reference bit for bit.
APL_WIDE_SEQ=0 node --import tsx --test test/unit/native/infer-kernels.test.ts test/unit/native/infer-kquant.test.ts
# The AVX-512 decode kernel's row-pair form too (APL_WIDE_DEC=0; the default reads one row at a time,
# infer_wide_dec.h): it must equal the scalar reference bit for bit as well.
APL_WIDE_DEC=0 node --import tsx --test test/unit/native/infer-kernels.test.ts
# The same API tests on the TypeScript reference alone (the fallback users get without a compiler).
APL_NO_NATIVE=1 APL_QUIET_NATIVE=1 node --import tsx --test test/unit/native/api.test.ts
