#!/usr/bin/env bash
# Guest instructions the kquant INFERENCE kernels execute on arm64 under qemu: the NEON kernels (neon,
# neon-dotprod: cpu/infer_kquant_neon.h) against the scalar reference (infer/kquant_ref.h), and beside them the
# groupwise g64 NEON kernel of the same bits: `bash bench/arm64-kquant-infer-insns.sh` (after `npm run
# test:native:arm64`, whose objects it links). An instruction count, NOT a speed: qemu's timings say nothing
# about an arm64 CPU, and an instruction count ignores latency, issue width and memory (decode is memory-bound
# on real hardware). It counts each executed translation block's instructions (qemu -d in_asm,exec,nochain,
# streamed through awk) for one linear layer of 256 × 4096 (one thread), minus the same run without the layer.
# APL_INSNS_TOKENS (default "1 16"): the token counts (1 = decode, 16 = a prompt tile). APL_INSNS_WEIGHTS
# (default "4 2": the presets 4-bit g24, 2-bit g16): also 8 (8-bit g64) and o2 (2-bit g24), the layouts of the
# kquant natural-order path, and w4 (groupwise 4-bit g24: the groupwise natural-order path; its "kquant" columns
# are then that weight). APL_INSNS_OBJS: the object folder (default native/build/arm64/neon; a before/after).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
CXX="${CXX_ARM64:-aarch64-linux-gnu-g++}"
QEMU="${QEMU_ARM64:-qemu-aarch64}"
sysroot="${ARM64_SYSROOT:-/usr/aarch64-linux-gnu}"
b=${APL_INSNS_OBJS:-native/build/arm64/neon}  # another object folder: a before/after
[ -f "$b/infer_kquant_neon_dotprod.o" ] || {
  echo "run npm run test:native:arm64 first (no $b/infer_kquant_neon_dotprod.o)" >&2
  exit 1
}
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$CXX" -std=c++17 -O2 -ffp-contract=off -march=armv8-a -c bench/arm64-kquant-infer-insns.cc -o "$tmp/drv.o"
"$CXX" "$b"/{engine,check,scalar,dispatch,neon,avx2,avx512}.o \
  "$b"/{kernels,pool,linear,model,kv,attention,kquant_linear,infer_avx2,infer_vnni,infer_avx512,infer_neon,infer_neon_dotprod}.o \
  "$b"/{infer_kquant_avx2,infer_kquant_vnni,infer_kquant_neon,infer_kquant_neon_dotprod}.o "$tmp/drv.o" \
  -o "$tmp/drv" -lpthread
count() { # count RUN WEIGHT TOKENS [ENV...]: guest instructions (the kernel's name on stderr)
  local f="$tmp/fifo.$RANDOM"
  mkfifo "$f"
  awk '/^IN:/ {inb=1; start=""; n=0; next}
    inb && /^0x/ { if (start=="") { start=$1; sub(/^0x0*/, "", start); sub(/:$/, "", start) } n++; next }
    inb && /^$/ { if (start!="") size[start]=n; inb=0; next }
    /^Trace/ { split($4, a, "/"); pc=a[2]; sub(/^0*/, "", pc); total+=size[pc]; next }
    END { printf "%d\n", total }' "$f" >"$f.out" &
  env "${@:4}" "$QEMU" -cpu max -L "$sysroot" -d in_asm,exec,nochain -D "$f" "$tmp/drv" "$1" "$2" "$3" >"$f.name"
  wait
  echo "$(cat "$f.out") $(cat "$f.name")"
  rm -f "$f" "$f.out" "$f.name" # (a later $RANDOM may repeat the name)
}
net() { # net WEIGHT TOKENS [ENV...]: "instructions kernel"
  local a b
  read -r a name < <(count 1 "$@")
  read -r b _ < <(count 0 "$@")
  echo "$((a - b)) $name"
}
for n in ${APL_INSNS_TOKENS:-1 16}; do
  for bits in ${APL_INSNS_WEIGHTS:-4 2}; do
    read -r s sn < <(net $bits "$n" APL_FORCE_SCALAR=1)
    read -r p pn < <(net $bits "$n" APL_NO_DOTPROD=1)
    read -r d dn < <(net $bits "$n")
    read -r g gn < <(net "g${bits//[a-z]/}" "$n")
    awk -v b=$bits -v n=$n -v s=$s -v p=$p -v d=$d -v g=$g -v sn=$sn -v pn=$pn -v dn=$dn -v gn=$gn 'BEGIN {
      e = 256 * 4096 * n
      printf "kquant %s-bit, 256 x 4096, %d token(s): %s %.1f, %s %.2f (%.1fx fewer), %s %.2f (%.1fx fewer) instructions per weight-token; groupwise g64 %s %.2f (kquant / g64 %.2f)\n",
        b, n, sn, s / e, pn, p / e, s / p, dn, d / e, s / d, gn, g / e, d / g }'
  done
done
