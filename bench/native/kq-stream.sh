#!/usr/bin/env bash
# Builds and runs bench/native/kq-stream.cc (x86-64; APL_KS_KERNEL=vnni needs AVX-512 VNNI): the kquant wide
# decode's two reading orders side by side. Run under `nice -n -10` on a shared machine.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/native/build/bench"
mkdir -p "$out"
f=(-std=c++17 -O3 -ffp-contract=off)
s="$root/native/src"
g++ "${f[@]}" -mavx2 -mf16c -mfma -mavx512f -mavx512bw -mavx512vl -mavx512vnni -c "$s/cpu/infer_kquant_vnni.cc" \
  -o "$out/ks_vnni.o" &
g++ "${f[@]}" -mavx2 -mf16c -mfma -c "$s/cpu/infer_kquant_avx2.cc" -o "$out/ks_avx2.o" &
wait
# kquant_linear.cc names the AMX variant (cpu/infer_amx.cc, which needs the groupwise kernels): not benched here
echo 'namespace apl { namespace infer { struct KqKernel; const KqKernel* kq_amx_kernel() { return nullptr; } } }' \
  >"$out/ks_noamx.cc"
g++ "${f[@]}" "$out/ks_noamx.cc" "$root/bench/native/kq-stream.cc" "$s/infer/kquant_linear.cc" "$s/infer/pool.cc" \
  "$s/cpu/infer_kquant_neon.cc" "$s/cpu/infer_kquant_neon_dotprod.cc" "$out/ks_vnni.o" "$out/ks_avx2.o" -o "$out/kq-stream" -lpthread
"$out/kq-stream"
