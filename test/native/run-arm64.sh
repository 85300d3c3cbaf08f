#!/usr/bin/env bash
# Cross-builds the plain C++ kernel tests (test/native/*.cc: no Node) for arm64 with aarch64-linux-gnu-g++ and
# runs them under qemu-aarch64, twice: as built (the NEON kernels; test_kquant must choose the kquant NEON variant,
# kquant_neon.cc, and prints "kquant kernel: NAME") and with APL_FORCE_SCALAR=1 (the reference). One build, as the
# addon is built: baseline armv8-a, except infer_neon_dotprod.cc and infer_kquant_neon_dotprod.cc
# (armv8.2-a+dotprod, the vdotq_s32 kernels, chosen at run time). The inference tests then run on emulated CPUs
# with the dot-product extension (qemu's `max`: both NEON kernels, groupwise and kquant, checked against the
# reference, `neon-dotprod` chosen for both) and without it (Cortex-A72: `neon` chosen, and no instruction of the
# extension may run: qemu would stop the program with SIGILL). test_infer prints "kquant kernel: NAME" too.
# Called by `npm run test:native:arm64`. Output goes to native/build/arm64/ (ignored).
#
# Without the cross compiler or qemu it says so and exits 0 ("skipped"); install them with
#   apt-get install -y g++-aarch64-linux-gnu qemu-user
# Under CI=true (.ci/run installs both) or APL_REQUIRE_ARM64=1 that is a failure. Any failed check fails the script.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
CXX="${CXX_ARM64:-aarch64-linux-gnu-g++}"
QEMU="${QEMU_ARM64:-qemu-aarch64}"
sysroot="${ARM64_SYSROOT:-/usr/aarch64-linux-gnu}"
if ! command -v "$CXX" >/dev/null || ! command -v "$QEMU" >/dev/null || [ ! -d "$sysroot" ]; then
  msg="test:native:arm64: skipped: no aarch64 cross compiler / qemu ($CXX, $QEMU, $sysroot; apt-get install -y g++-aarch64-linux-gnu qemu-user)"
  if [ "${APL_REQUIRE_ARM64:-0}" = 1 ] || [ "${CI:-}" = true ]; then
    echo "$msg; under CI=true / APL_REQUIRE_ARM64=1 this is a failure" >&2
    exit 1
  fi
  echo "$msg"
  exit 0
fi

base=(-std=c++17 -O2 -ffp-contract=off -Wall -Wextra -Wno-unused-function -Wno-maybe-uninitialized -Werror)
engine=(native/src/engine.cc native/src/check.cc native/src/cpu/scalar.cc native/src/cpu/dispatch.cc
  native/src/cpu/neon.cc native/src/cpu/avx2.cc native/src/cpu/avx512.cc)
kquant=(native/src/kquant_engine.cc native/src/cpu/kquant_avx2.cc native/src/cpu/kquant_avx2_fma.cc native/src/cpu/kquant_avx512.cc
        native/src/cpu/kquant_neon.cc)
infer=(native/src/infer/kernels.cc native/src/infer/pool.cc native/src/infer/linear.cc native/src/infer/model.cc
  native/src/infer/kv.cc native/src/infer/attention.cc native/src/infer/kquant_linear.cc
  native/src/cpu/infer_avx2.cc native/src/cpu/infer_vnni.cc native/src/cpu/infer_avx512.cc
  native/src/cpu/infer_neon.cc native/src/cpu/infer_neon_dotprod.cc native/src/cpu/infer_kquant_avx2.cc native/src/cpu/infer_kquant_vnni.cc
  native/src/cpu/infer_kquant_neon.cc native/src/cpu/infer_kquant_neon_dotprod.cc native/src/cpu/infer_amx.cc)

# stale OBJECT SOURCE: the object is missing or older than its source, a header or this script.
stale() {
  [ -f "$1" ] || return 0
  local f
  for f in "$2" native/src/*.h native/src/cpu/*.h native/src/infer/*.h test/native/*.h test/native/run-arm64.sh; do
    [ "$f" -nt "$1" ] && return 0
  done
  return 1
}

# build VARIANT MARCH: the stale objects with -march=MARCH, then the three test programs.
build() {
  local variant=$1 march=$2 out=native/build/arm64/$1
  mkdir -p "$out"
  local pids=() failed=0 s o n=0
  for s in "${engine[@]}" "${kquant[@]}" "${infer[@]}" test/native/test_kernels.cc test/native/test_kquant.cc \
    test/native/test_infer.cc test/native/test_attention.cc; do
    [ -e "$s" ] || continue
    o="$out/$(basename "${s%.cc}").o"
    stale "$o" "$s" || continue
    ((n++ == 0)) && echo "test:native:arm64: building $variant (-march=$march)"
    rm -f "$o"
    local m=$march
    case "$s" in native/src/cpu/infer_neon_dotprod.cc | native/src/cpu/infer_kquant_neon_dotprod.cc) m=armv8.2-a+dotprod ;; esac
    "$CXX" "${base[@]}" -march="$m" -c "$s" -o "$o" &
    pids+=($!)
    # two compiles at a time: the machine is shared
    if ((${#pids[@]} >= 2)); then
      wait "${pids[0]}" || failed=1
      pids=("${pids[@]:1}")
    fi
  done
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  if [ "$failed" = 1 ]; then
    echo "test:native:arm64: compiling for arm64 FAILED ($variant)" >&2
    exit 1
  fi
  local eo=() ko=() io=()
  for s in "${engine[@]}"; do eo+=("$out/$(basename "${s%.cc}").o"); done
  for s in "${kquant[@]}"; do [ -e "$s" ] && ko+=("$out/$(basename "${s%.cc}").o"); done
  for s in "${infer[@]}"; do io+=("$out/$(basename "${s%.cc}").o"); done
  "$CXX" "${eo[@]}" "$out/test_kernels.o" -o "$out/test_kernels" -lpthread
  "$CXX" "${eo[@]}" "${ko[@]}" "$out/test_kquant.o" -o "$out/test_kquant" -lpthread
  "$CXX" "${eo[@]}" "${io[@]}" "$out/test_infer.o" -o "$out/test_infer" -lpthread
  "$CXX" "$out/attention.o" "$out/kv.o" "$out/pool.o" "$out/test_attention.o" -o "$out/test_attention" -lpthread
}

# run VARIANT PROGRAM [QEMU_CPU EXPECTED_KERNEL]: as built, then forced scalar; a failure of either fails the script.
run() {
  local bin=native/build/arm64/$1/$2 cpu=(${3:+-cpu "$3"}) expect=${4:-}
  echo "test:native:arm64: $1 $2${3:+ on $3}"
  if ! APL_EXPECT_KERNEL="$expect" "$QEMU" "${cpu[@]}" -L "$sysroot" "$bin"; then
    echo "test:native:arm64: $1 $2${3:+ on $3} FAILED" >&2
    exit 1
  fi
  local o
  if ! o="$(APL_FORCE_SCALAR=1 "$QEMU" "${cpu[@]}" -L "$sysroot" "$bin" 2>&1)"; then
    printf '%s\n' "$o" >&2
    echo "test:native:arm64: $1 $2 FAILED in the forced-scalar run (APL_FORCE_SCALAR=1)" >&2
    exit 1
  fi
  local k
  k="$(printf '%s\n' "$o" | grep -m1 -o 'kquant kernel: [a-z0-9-]*' || true)"
  echo "test:native:arm64: $1 $2 forced-scalar run passed${k:+ ($k)}"
}

t0=$SECONDS
# a stale two-build layout (before the run-time choice) is removed
rm -rf native/build/arm64/dotprod
build neon armv8-a
run neon test_kernels
# kquant (convert's default format): the NEON variant against the reference over test_kquant's tables, and chosen
# (APL_EXPECT_KERNEL; kq_select_kernel falls back to the reference when it disagrees, which fails this run).
run neon test_kquant "" neon
# The inference kernels: with the dot-product extension both NEON kernels are listed (and checked against the
# reference) and the vdotq_s32 one is chosen; without it only the plain one is listed, chosen, and run. The
# kquant inference kernel follows (kq_kernel_for: the NEON kquant variant of the same name, after its
# self-check); APL_EXPECT_KERNEL names both.
run neon test_infer max neon-dotprod
run neon test_infer cortex-a72 neon
run neon test_attention max
run neon test_attention cortex-a72
# The CUDA emulation's own test (test/native/cuda-emu: its ucontext fibers, the path hosts other than x86-64 take).
e=native/build/arm64/cuda-emu
mkdir -p "$e"
node test/native/cuda-emu/prep.mjs test/native/cuda-emu/test_emu.cu "$e/test_emu.cc"
"$CXX" "${base[@]}" -I test/native/cuda-emu -I test/native "$e/test_emu.cc" test/native/cuda-emu/emu.cc -o "$e/test_emu" \
  -lpthread || { echo "test:native:arm64: the CUDA emulation failed to build" >&2; exit 1; }
if ! eo="$("$QEMU" -L "$sysroot" "$e/test_emu" 2>&1)"; then
  printf '%s\n' "$eo" >&2
  echo "test:native:arm64: the CUDA emulation's test FAILED" >&2
  exit 1
fi
echo "test:native:arm64: $(printf '%s\n' "$eo" | tail -1)"
echo "test:native:arm64: all passed ($((SECONDS - t0)) s)"
