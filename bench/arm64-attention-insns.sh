#!/usr/bin/env bash
# Guest instructions of one prompt attention call on arm64 under qemu: the NEON blocked form
# (native/src/infer/attention_neon.h) against the scalar blocked form and the per-(query, key) reference, on a
# float16 cache: `bash bench/arm64-attention-insns.sh` (after `npm run test:native:arm64`, whose objects it
# links). An instruction count, NOT a speed: qemu's timings say nothing about an arm64 CPU, and an instruction
# count ignores latency, issue width and memory. It counts each executed translation block's instructions (qemu
# -d in_asm,exec,nochain, streamed through awk, as bench/arm64-kquant-infer-insns.sh does) for one call, one
# thread, minus the same run without the call. APL_INSNS_TOKENS (default "64"): the prompt lengths (a prompt
# of n tokens scores n(n+1)/2 (query, key) pairs per query head).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
CXX="${CXX_ARM64:-aarch64-linux-gnu-g++}"
QEMU="${QEMU_ARM64:-qemu-aarch64}"
sysroot="${ARM64_SYSROOT:-/usr/aarch64-linux-gnu}"
b=native/build/arm64/neon
[ -f "$b/attention.o" ] || {
  echo "run npm run test:native:arm64 first (no $b/attention.o)" >&2
  exit 1
}
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$CXX" -std=c++17 -O2 -ffp-contract=off -march=armv8-a -c bench/arm64-attention-insns.cc -o "$tmp/drv.o"
"$CXX" "$b"/{attention,kv,pool}.o "$tmp/drv.o" -o "$tmp/drv" -lpthread
count() { # count RUN SHAPE TOKENS IMPL: guest instructions (the implementation's name on stderr)
  local f="$tmp/fifo.$RANDOM"
  mkfifo "$f"
  awk '/^IN:/ {inb=1; start=""; n=0; next}
    inb && /^0x/ { if (start=="") { start=$1; sub(/^0x0*/, "", start); sub(/:$/, "", start) } n++; next }
    inb && /^$/ { if (start!="") size[start]=n; inb=0; next }
    /^Trace/ { split($4, a, "/"); pc=a[2]; sub(/^0*/, "", pc); total+=size[pc]; next }
    END { printf "%d\n", total }' "$f" >"$f.out" &
  "$QEMU" -cpu max -L "$sysroot" -d in_asm,exec,nochain -D "$f" "$tmp/drv" "$@" >"$f.name"
  wait
  echo "$(cat "$f.out") $(cat "$f.name")"
  rm -f "$f" "$f.out" "$f.name" # (a later $RANDOM may repeat the name)
}
net() { # net SHAPE TOKENS IMPL: "instructions name"
  local a b name
  read -r a name < <(count 1 "$@")
  read -r b _ < <(count 0 "$@")
  echo "$((a - b)) $name"
}
for n in ${APL_INSNS_TOKENS:-64}; do
  for shape in tiny gemma mha; do
    read -r r rn < <(net $shape "$n" ref)
    read -r s sn < <(net $shape "$n" scalar)
    read -r v vn < <(net $shape "$n" neon)
    awk -v shape=$shape -v n=$n -v r=$r -v s=$s -v v=$v -v vn=$vn 'BEGIN {
      heads = shape == "gemma" ? 8 : shape == "mha" ? 16 : 32; D = shape == "gemma" ? 256 : shape == "mha" ? 128 : 64
      e = heads * n * (n + 1) / 2 * D  # (query, key) pairs x head_dim: one score MAC + one value MAC each
      printf "attention %s (%d heads x %d), prompt %d: reference %.2f, blocked scalar %.2f, blocked %s %.3f instructions per (query, key, dim); %s %.1fx fewer than blocked scalar, %.1fx fewer than the reference\n",
        shape, heads, D, n, r / e, s / e, vn, v / e, vn, s / v, r / v }'
  done
done
