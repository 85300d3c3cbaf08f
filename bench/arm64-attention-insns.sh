#!/usr/bin/env bash
# Guest instructions of one prompt attention call on arm64 under qemu: the NEON blocked form
# (native/src/infer/attention_neon.h) against the scalar blocked form and the per-(query, key) reference, on a
# float16 cache: `bash bench/arm64-attention-insns.sh` (after `npm run test:native:arm64`, whose objects it
# links). An instruction count, NOT a speed: qemu's timings say nothing about an arm64 CPU, and an instruction
# count ignores latency, issue width and memory. It counts each executed translation block's instructions
# (bench/arm64-insns-lib.sh: qemu -d in_asm,exec,nochain, streamed through awk) for one call, one thread, minus
# the same run without the call. APL_INSNS_TOKENS (default "64"): the prompt lengths (a prompt of n tokens
# scores n(n+1)/2 (query, key) pairs per query head).
set -euo pipefail
. "$(dirname "$0")/arm64-insns-lib.sh"
INSNS_QEMU=(-cpu max)
insns_build native/build/arm64/neon attention.o arm64-attention-insns
for n in ${APL_INSNS_TOKENS:-64}; do
  for shape in tiny gemma mha; do
    read -r r rn < <(insns_net -- $shape "$n" ref)
    read -r s sn < <(insns_net -- $shape "$n" scalar)
    read -r v vn < <(insns_net -- $shape "$n" neon)
    awk -v shape=$shape -v n=$n -v r=$r -v s=$s -v v=$v -v vn=$vn 'BEGIN {
      heads = shape == "gemma" ? 8 : shape == "mha" ? 16 : 32; D = shape == "gemma" ? 256 : shape == "mha" ? 128 : 64
      e = heads * n * (n + 1) / 2 * D  # (query, key) pairs x head_dim: one score MAC + one value MAC each
      printf "attention %s (%d heads x %d), prompt %d: reference %.2f, blocked scalar %.2f, blocked %s %.3f instructions per (query, key, dim); %s %.1fx fewer than blocked scalar, %.1fx fewer than the reference\n",
        shape, heads, D, n, r / e, s / e, vn, v / e, vn, s / v, r / v }'
  done
done
