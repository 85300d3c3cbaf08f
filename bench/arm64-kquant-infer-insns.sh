#!/usr/bin/env bash
# Guest instructions the kquant INFERENCE kernels execute on arm64 under qemu: the NEON kernels (neon,
# neon-dotprod: cpu/infer_kquant_neon.h) against the scalar reference (infer/kquant_ref.h), and beside them the
# groupwise g64 NEON kernel of the same bits: `bash bench/arm64-kquant-infer-insns.sh` (after `npm run
# test:native:arm64`, whose objects it links). An instruction count, NOT a speed: qemu's timings say nothing
# about an arm64 CPU, and an instruction count ignores latency, issue width and memory (decode is memory-bound
# on real hardware). It counts each executed translation block's instructions (bench/arm64-insns-lib.sh: qemu
# -d in_asm,exec,nochain, streamed through awk) for one linear layer of 256 × 4096 (one thread), minus the same
# run without the layer.
# APL_INSNS_TOKENS (default "1 16"): the token counts (1 = decode, 16 = a prompt tile). APL_INSNS_WEIGHTS
# (default "4 2": the presets 4-bit g24, 2-bit g16): also 8 (8-bit g64) and o2 (2-bit g24), the layouts of the
# kquant natural-order path, and w4 (groupwise 4-bit g24: the groupwise natural-order path; its "kquant" columns
# are then that weight). APL_INSNS_OBJS: the object folder (default native/build/arm64/neon; a before/after).
set -euo pipefail
. "$(dirname "$0")/arm64-insns-lib.sh"
INSNS_QEMU=(-cpu max)
insns_build "${APL_INSNS_OBJS:-native/build/arm64/neon}" infer_kquant_neon_dotprod.o arm64-kquant-infer-insns
for n in ${APL_INSNS_TOKENS:-1 16}; do
  for bits in ${APL_INSNS_WEIGHTS:-4 2}; do
    read -r s sn < <(insns_net APL_FORCE_SCALAR=1 -- $bits "$n")
    read -r p pn < <(insns_net APL_NO_DOTPROD=1 -- $bits "$n")
    read -r d dn < <(insns_net -- $bits "$n")
    read -r g gn < <(insns_net -- "g${bits//[a-z]/}" "$n")
    awk -v b=$bits -v n=$n -v s=$s -v p=$p -v d=$d -v g=$g -v sn=$sn -v pn=$pn -v dn=$dn -v gn=$gn 'BEGIN {
      e = 256 * 4096 * n
      printf "kquant %s-bit, 256 x 4096, %d token(s): %s %.1f, %s %.2f (%.1fx fewer), %s %.2f (%.1fx fewer) instructions per weight-token; groupwise g64 %s %.2f (kquant / g64 %.2f)\n",
        b, n, sn, s / e, pn, p / e, s / p, dn, d / e, s / d, gn, g / e, d / g }'
  done
done
