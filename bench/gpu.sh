#!/usr/bin/env bash
# THE prepared script for a machine with an NVIDIA GPU (one run of ~8 minutes on an H200 with 16 cores). It:
#   1. builds the addon with CUDA (npm run build:native: quant.cu, kquant.cu, infer.cu, forward.cu, check.cu);
#   2. runs every CUDA test: the C++ programs (test/native/run.sh: quantize CUDA = scalar over the scheme table,
#      with --gpu-bench timings; test_gpu: CUDA linear = scalar, GPU forward vs CPU model), the same with the
#      one-thread-per-group kernel, and the addon's node tests (test/unit/native/*.test.ts, forward-gpu included);
#   3. times side by side: the same convert of a TinyLlama-shaped synthetic checkpoint (bench/synthetic-checkpoint.ts)
#      with --backend cpu and --backend gpu (wall time; the NPZ hashes and the accuracy reports must be equal), and
#      the forward pass on cpu vs gpu (bench/gpu-forward.bench.ts: decode tokens/s at 8/4/2/1 bits + bf16, a
#      512-token prompt); the same figures without Node from the C++ program (test_gpu --bench: the conversion's
#      weights through the engine on cpu and gpu, outputs equal; forward tokens/s); and how close the GPU is to the
#      CPU (bench/gpu-agreement.bench.ts: what the forward's guard checks, with its figures).
# The device machine may have no Node: then the CUDA objects are compiled with nvcc alone and the C++ steps run.
# It never stops at the first failure: every step runs (each under a time limit), a summary is printed and, when
# $OUT is set, written to $OUT/gpu-summary.txt with the whole log in $OUT/gpu-log.txt; the exit status is 1 when
# any step failed. Without a GPU (or nvcc, or node_modules) it runs what it can and says what it skipped.
# Usage: bash bench/gpu.sh   Env: APL_GPU_LAYERS (22: layers of the convert and forward models), APL_GPU_NO_NODE=1
# (behave as on a machine without Node).
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
layers="${APL_GPU_LAYERS:-22}"
out="${OUT:-}"
work="$(mktemp -d /tmp/apl-gpu.XXXXXX)"
trap 'rm -rf "$work"' EXIT
log="$work/log.txt"
if [ -n "$out" ]; then
  mkdir -p "$out"
  log="$out/gpu-log.txt"
fi
: >"$log"
summary=()
failed=0
say() { echo "$*" | tee -a "$log"; }
# step NAME LIMIT_S CMD...: runs CMD (output to the terminal and the log), records PASS/FAIL and its time.
step() {
  local name="$1" limit="$2"
  shift 2
  say "== $name"
  local t0=$SECONDS
  if declare -F "$1" >/dev/null; then
    "$@" 2>&1 | tee -a "$log" # a function of this script: its commands carry their own limits
  else
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$log"
  fi
  local rc=${PIPESTATUS[0]}
  local dt=$((SECONDS - t0))
  if [ "$rc" = 0 ]; then
    summary+=("PASS  $name (${dt} s)")
  else
    [ "$rc" = 124 ] && say "   (stopped after ${limit} s)"
    summary+=("FAIL  $name (exit $rc, ${dt} s)")
    failed=1
  fi
}
skip() {
  say "== $1: SKIPPED: $2"
  summary+=("SKIP  $1: $2")
}

say "== machine"
nvidia-smi -L 2>&1 | tee -a "$log" || true
lscpu 2>/dev/null | grep -E 'Model name|^CPU\(s\)' | tee -a "$log" || true
have_node=0
command -v node >/dev/null && [ -d node_modules/node-addon-api ] && [ -d node_modules/tsx ] && have_node=1
[ "${APL_GPU_NO_NODE:-0}" = 1 ] && have_node=0 # what a machine without Node runs (for a dry run)
nvcc="$(node native/find-nvcc.js 2>/dev/null || true)"
[ -n "$nvcc" ] || nvcc="$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)"
say "   nvcc: ${nvcc:-not found}; node + node_modules: $([ $have_node = 1 ] && echo yes || echo no)"

# 1. build: the addon with node-gyp where Node is there, else the CUDA objects alone with nvcc (the C++ tests and
# benches link them; the JavaScript steps are then skipped).
build_cuda_objects() {
  mkdir -p native/build/cuda
  local pids=() f o rc=0
  for f in quant:apl_cuda kquant:apl_kquant_cuda infer:apl_infer_cuda forward:apl_forward_cuda check:apl_check_cuda; do
    o="native/build/cuda/${f#*:}.o"
    (cd native && "$nvcc" -c "src/cuda/${f%%:*}.cu" -o "../$o" -O3 -std=c++17 --fmad=false -Xcompiler -fPIC \
      -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90) &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  return $rc
}
if [ $have_node = 1 ]; then
  step "build the addon (CUDA: ${nvcc:-none})" 400 npm run build:native
elif [ -n "$nvcc" ]; then
  step "compile the CUDA objects with nvcc (no Node here: no addon)" 400 build_cuda_objects
else
  skip "build" "neither Node nor nvcc on this machine"
fi
if [ $have_node = 1 ]; then
  gpu_why="$(node --import tsx -e "const f=require('./native/forward');process.stdout.write(f.inferInfo()?f.gpuUnavailable():'the native addon is not built')" 2>/dev/null || echo 'node could not load the engine')"
elif nvidia-smi -L >/dev/null 2>&1 && [ -n "$nvcc" ]; then
  gpu_why=""
else
  gpu_why="nvidia-smi finds no GPU or nvcc is missing"
fi
if [ -z "$gpu_why" ]; then say "   GPU usable"; else say "   no usable GPU: $gpu_why"; fi

# 2. tests (they skip their GPU parts, saying why, where no GPU is usable)
if [ -n "$nvcc" ] || [ $have_node = 1 ]; then
  step "C++ tests: kernels (CUDA parity, --gpu-bench timings), kquant, test_gpu (CUDA inference)" 480 \
    env APL_SKIP_JS_TESTS=1 bash test/native/run.sh --gpu-bench
  if [ -z "$gpu_why" ]; then
    step "C++ quantize tests, one CUDA thread per group" 200 \
      env APL_CUDA_ONE_THREAD=1 APL_SKIP_JS_TESTS=1 bash test/native/run.sh
  else
    skip "C++ quantize tests, one CUDA thread per group" "no usable GPU ($gpu_why)"
  fi
fi
if [ $have_node = 1 ]; then
  step "node tests of the addon (forward-gpu included)" 300 node --import tsx --test test/unit/native/*.test.ts
else
  skip "node tests" "node or node_modules not present"
fi

# 3. side by side
if [ -n "$gpu_why" ]; then
  skip "C++ bench: convert-like pass and forward, cpu vs gpu" "no usable GPU ($gpu_why)"
elif [ -x native/build/test/test_gpu ]; then
  step "C++ bench: convert-like pass ($layers layers) and forward (8/4/2/1 bits + bf16), cpu vs gpu" 300 \
    env APL_GPU_LAYERS="$layers" native/build/test/test_gpu --bench
fi
if [ -n "$gpu_why" ] || [ $have_node = 0 ]; then
  skip "convert cpu vs gpu (CLI)" "${gpu_why:-no Node here}"
  skip "forward cpu vs gpu (node bench)" "${gpu_why:-no Node here}"
else
  convert_side_by_side() {
    local ck="$work/ckpt" rcs=0
    timeout 120 node --import tsx -e "require('./bench/synthetic-checkpoint').generate('$ck', $layers)" || return 1
    for b in cpu gpu; do
      local t0
      t0=$(date +%s%N)
      APL_CLI_MAIN=1 timeout 150 node --import tsx server/src/cli.ts convert "$ck" --bits 4 --backend "$b" --out "$work/$b" \
        --name synth >"$work/$b.out" 2>&1 || { cat "$work/$b.out"; rcs=1; }
      echo "   convert --backend $b: $((($(date +%s%N) - t0) / 1000000)) ms wall"
      tail -3 "$work/$b.out"
    done
    local hc hg
    hc="$(sha256sum "$work"/cpu/*.npz | cut -c1-16)"
    hg="$(sha256sum "$work"/gpu/*.npz | cut -c1-16)"
    echo "   NPZ sha256: cpu $hc  gpu $hg"
    [ -n "$hc" ] && [ "$hc" = "$hg" ] || { echo "   NPZ outputs DIFFER"; rcs=1; }
    # The accuracy reports without what names the backend or times the run.
    node -e "
      const fs=require('fs'),p=require('path');
      const strip=(v)=>Array.isArray(v)?v.map(strip):v&&typeof v==='object'?Object.fromEntries(Object.entries(v)
        .filter(([k])=>!/backend|time|date|elapsed|seconds|duration|created|path|dir/i.test(k)).map(([k,x])=>[k,strip(x)])):v;
      const rd=(d)=>{const f=fs.readdirSync(d).find((n)=>n.includes('_accuracy_'));return JSON.stringify(strip(JSON.parse(fs.readFileSync(p.join(d,f),'utf8'))));};
      const a=rd('$work/cpu'),b=rd('$work/gpu');
      console.log('   accuracy reports '+(a===b?'equal':'DIFFER'));process.exit(a===b?0:1);" || rcs=1
    rm -rf "$ck"
    return $rcs
  }
  step "convert cpu vs gpu (synthetic TinyLlama shape, $layers layers, 4 bits)" 240 convert_side_by_side
  step "forward cpu vs gpu (decode 8/4/2/1 bits + bf16, 512-token prompt)" 240 \
    env APL_BENCH_LAYERS="$layers" node --import tsx bench/gpu-forward.bench.ts
  step "GPU against the CPU, measured (the forward guard's checks: linear kinds, one-layer models)" 120 \
    node --import tsx bench/gpu-agreement.bench.ts
fi

say ""
say "== summary"
for s in "${summary[@]}"; do say "   $s"; done
# The measured figures, gathered from the log.
grep -E 'agreement|CUDA .*GB/s|GB/s|convert --backend|convert-like|gpu = cpu|forward +(8|4|2|1)-bit|forward bf16|NPZ sha256|accuracy reports|tokens/s|forward (llama|mistral|gemma)|emulated CUDA|CUDA linear =|CUDA \(|skipped: no usable GPU' "$log" |
  sed 's/^/   /' | tee -a "$work/figures.txt" | tee -a "$log" >/dev/null
cat "$work/figures.txt"
if [ -n "$out" ]; then
  { printf '%s\n' "${summary[@]}"; cat "$work/figures.txt"; } >"$out/gpu-summary.txt"
fi
if [ "$failed" = 1 ]; then
  say "gpu.sh: some steps FAILED (see above)"
  exit 1
fi
say "gpu.sh: all steps passed or were skipped"
exit 0
