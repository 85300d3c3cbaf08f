#!/usr/bin/env bash
# Guest instructions the kquant convert kernel executes on arm64 under qemu, NEON against the scalar reference:
# `bash bench/arm64-kquant-insns.sh` (after `npm run test:native:arm64`, whose objects it links). An instruction
# count, NOT a speed: qemu's timings say nothing about an arm64 CPU, and an instruction count ignores latency
# (the metrics' float64 sums are sequential chains in both kernels), issue width and memory. It counts each
# executed translation block's instructions (qemu -d in_asm,exec,nochain, streamed through awk), quantizing
# 8 × 3072 float32 minus the same run without the quantization.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
CXX="${CXX_ARM64:-aarch64-linux-gnu-g++}"
QEMU="${QEMU_ARM64:-qemu-aarch64}"
sysroot="${ARM64_SYSROOT:-/usr/aarch64-linux-gnu}"
b=native/build/arm64/neon
[ -f "$b/kquant_neon.o" ] || { echo "run npm run test:native:arm64 first (no $b/kquant_neon.o)" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$CXX" -std=c++17 -O2 -ffp-contract=off -march=armv8-a -c bench/arm64-kquant-insns.cc -o "$tmp/drv.o"
"$CXX" "$b"/{engine,check,scalar,dispatch,neon,avx2,avx512,kquant_engine,kquant_avx2,kquant_avx2_fma,kquant_neon}.o "$tmp/drv.o" \
  -o "$tmp/drv" -lpthread
count() { # count QUANTIZE BITS [ENV...]
  local f="$tmp/fifo.$RANDOM"
  mkfifo "$f"
  awk '/^IN:/ {inb=1; start=""; n=0; next}
    inb && /^0x/ { if (start=="") { start=$1; sub(/^0x0*/, "", start); sub(/:$/, "", start) } n++; next }
    inb && /^$/ { if (start!="") size[start]=n; inb=0; next }
    /^Trace/ { split($4, a, "/"); pc=a[2]; sub(/^0*/, "", pc); total+=size[pc]; next }
    END { printf "%d\n", total }' "$f" >"$f.out" &
  env "${@:3}" "$QEMU" -L "$sysroot" -d in_asm,exec,nochain -D "$f" "$tmp/drv" "$1" "$2" >/dev/null
  wait
  cat "$f.out"
}
for bits in 4 2; do
  n1=$(($(count 1 $bits APL_FORCE_SCALAR=0) - $(count 0 $bits APL_FORCE_SCALAR=0)))
  s1=$(($(count 1 $bits APL_FORCE_SCALAR=1) - $(count 0 $bits APL_FORCE_SCALAR=1)))
  awk -v b=$bits -v n=$n1 -v s=$s1 'BEGIN { printf "kquant %d-bit, 8 x 3072: scalar %d, neon %d instructions (%.0f / %.0f per element): %.2fx fewer\n", b, s, n, s / 24576, n / 24576, s / n }'
done
