// The forward pass on kquant weights (the format convert writes by default at 2 and 4 bits; kernels in
// native/src/cpu/infer_kquant_*, spec native/src/infer/kquant_ref.h) beside groupwise 4-bit g64, in one run:
//  1. the linear layers alone (1024×4096 Gaussian, 4 and 2 bits, kquant against groupwise g64 of the same bits):
//     decode (1 token) and prompts (APL_BENCH_TOKENS, default 1,16,128), milliseconds per call on one thread, best
//     of 5 runs of ~0.3 s, every CPU variant (avx512-vnni and avx512 take the 512-bit kernel of infer_kquant_wide.h,
//     avx512-gemm its row-interleaved GEMM for 8 tokens or more, infer_kquant_gemm.h);
//  2. the whole forward pass on a TinyLlama-shaped synthetic model (as bench/decode.bench.ts: random codes, the
//     best kernel): decode tok/s at 1 and 2 threads (best token of APL_BENCH_DECODE) and a prompt of
//     APL_BENCH_PROMPT tokens on APL_BENCH_PROMPT_LAYERS layers scaled to APL_BENCH_LAYERS, for groupwise 4-bit g64
//     (g4), kquant 4-bit g24/1536 (k4) and kquant 2-bit g16/256 (k2), with the ratio kquant / g64.
// Knobs: APL_BENCH_TOKENS (part 1's token counts), APL_BENCH_VARIANTS (part 1's variants, default all),
// APL_BENCH_LAYERS (22), APL_BENCH_DECODE (16), APL_BENCH_PROMPT (512), APL_BENCH_PROMPT_LAYERS (4),
// APL_BENCH_KINDS (g4,k4,k2), APL_BENCH_KERNELS=0 (skip part 1), APL_BENCH_MODEL=0 (skip part 2),
// APL_BENCH_PEER=0 (skip llama.cpp: with node-llama-cpp installed, `npm run bench:peer-install`, each kind also
// runs in llama.cpp in the same run, written by bench/gguf.ts as Q4_0 / Q4_K / Q2_K). The machine is
// shared: quote the ratios measured side by side, not the times.
import { randomFillSync } from 'node:crypto';
import { createModel, inferInfo, linear } from '../native/forward';
import type { LinearWeight, ModelConfig, ModelWeights } from '../native/forward-types';
import * as eng from '../native/index';
import { KQ_PRESETS, kquantize } from '../native/kquant';
import { gaussian } from '../test/helpers/random';
import { peer, peerModel } from './llama-peer';
import { f16Bits, packedWeight, syntheticModel, tinyLlamaConfig } from './tiny-llama-shape';

const ROWS = 1024;
const COLS = 4096;
const TOKENS = (process.env.APL_BENCH_TOKENS ?? '1,16,128').split(',').map(Number);
const VARIANTS = process.env.APL_BENCH_VARIANTS?.split(',');

function time(w: LinearWeight, x: Float32Array, n: number, variant: string): number {
  let best = Infinity;
  for (let run = 0; run < 5; run++) {
    const t = performance.now();
    let it = 0;
    while (performance.now() - t < 300) {
      linear(w, x, n, { variant, threads: 1 });
      it++;
    }
    best = Math.min(best, (performance.now() - t) / it);
  }
  return best;
}

async function kernels() {
  const info = inferInfo();
  if (!info) {
    console.log('kquant-infer: the native addon is not built; nothing to measure');
    return;
  }
  const data = gaussian(ROWS * COLS, 1, 0.02);
  const bytes = new Uint8Array(data.buffer);
  console.log(`kquant inference kernels, ${ROWS}×${COLS}, one thread; variants: ${info.variants.join(', ')}`);
  console.log('bits  tokens  variant        kquant ms  g64 ms  kquant/g64');
  for (const bits of [4, 2] as const) {
    const k = await kquantize({ ...KQ_PRESETS[bits], data: bytes, dtype: 'f32', rows: ROWS, cols: COLS });
    const kw: LinearWeight = { kind: 'kquant', ...k };
    const p = { bits, groupSize: 64, symmetric: false, mode: 'optimized' as const, scaleDtype: 'f16' as const };
    const g = await eng.quantize({ ...p, data: bytes, dtype: 'f32', rows: ROWS, cols: COLS });
    const gw: LinearWeight = { kind: 'packed', rows: ROWS, cols: COLS, ...p, q: g.q, scales: g.scales, zeros: g.zeros };
    for (const n of TOKENS) {
      const x = gaussian(n * COLS, 2, 1);
      for (const v of info.variants.filter((v) => !VARIANTS || VARIANTS.includes(v))) {
        const a = time(kw, x, n, v);
        const b = time(gw, x, n, v);
        console.log(
          `${String(bits).padEnd(6)}${String(n).padEnd(8)}${v.padEnd(15)}${a.toFixed(3).padStart(9)}  ${b.toFixed(3).padStart(6)}  ${(a / b).toFixed(2).padStart(10)}`,
        );
      }
    }
  }
}

const LAYERS = Number(process.env.APL_BENCH_LAYERS ?? 22);
// as bench/decode.bench.ts: the weights' 2 MiB pages (native/src/infer/hugepages.h) collapsed before a model is
// timed, not in the background while it decodes (APL_HUGE=0 from outside keeps 4 KiB pages, for A/B runs)
process.env.APL_HUGE ??= 'sync';
const DECODE = Number(process.env.APL_BENCH_DECODE ?? 16);
const PROMPT = Number(process.env.APL_BENCH_PROMPT ?? 512);
const PROMPT_LAYERS = Number(process.env.APL_BENCH_PROMPT_LAYERS ?? 4);
const KINDS = (process.env.APL_BENCH_KINDS ?? 'g4,k4,k2').split(',');
const NAMES: Record<string, string> = { g4: '4-bit g64', k4: 'kquant 4-bit g24', k2: 'kquant 2-bit g16' };

/** A synthetic weight of the kind: random codes, fixed float16 scales (as decode.bench.ts). */
function synth(rows: number, cols: number, kind: string): LinearWeight {
  const rand = (n: number) => randomFillSync(new Uint8Array(n));
  if (kind === 'g4') return packedWeight(rows, cols, 4);
  const f = KQ_PRESETS[kind === 'k4' ? 4 : 2];
  const supers = rows * Math.ceil(cols / f.super);
  const half = (v: number) => new Uint8Array(new Uint16Array(supers).fill(f16Bits(v)).buffer);
  return {
    kind: 'kquant',
    rows,
    cols,
    ...f,
    q: rand(rows * Math.ceil((cols * f.bits) / 8)),
    codes: rand(rows * Math.ceil((Math.ceil(cols / f.group) * (f.scaleBits + f.minBits)) / 8)),
    d: half(0.002 / 2 ** f.scaleBits),
    dmin: half(0.03 / 2 ** f.minBits),
  };
}

function synthModel(c: ModelConfig, kind: string): ModelWeights {
  // the embedding table stays groupwise (one row read per token), as convert keeps it 8-bit groupwise
  return syntheticModel(
    c,
    (r, cc) => synth(r, cc, kind),
    (r, cc) => synth(r, cc, 'g4'),
  );
}

const now = () => Number(process.hrtime.bigint()) / 1e9;

const PEER: Record<string, string> = { g4: 'Q4_0', k4: 'Q4_K', k2: 'Q2_K' };

async function modelBench() {
  const llama = process.env.APL_BENCH_PEER === '0' ? null : await peer();
  const info = inferInfo();
  console.log(
    `\nforward pass, TinyLlama shape, kernel ${info?.selected}: decode (${LAYERS} layers, best of ${DECODE} tokens) ` +
      (PROMPT > 0 ? `and a ${PROMPT}-token prompt (${PROMPT_LAYERS} layers, scaled to ${LAYERS})` : 'no prompt') +
      ', tok/s at 1 / 2 threads',
  );
  const res: Record<string, { decode: number[]; prompt: number[] }> = {};
  const tokens = Array.from({ length: PROMPT }, (_, i) => 3 + ((i * 7919) % 31000));
  for (const kind of KINDS) {
    const r = { decode: [0, 0], prompt: [0, 0] };
    const pr = { decode: [0, 0], prompt: [0, 0] };
    if (DECODE > 0) {
      const c = tinyLlamaConfig(LAYERS);
      const w = synthModel(c, kind);
      for (const threads of [1, 2]) {
        const m = createModel(c, w, { contextLength: 64, threads });
        m.forward([1, 2, 3, 4], 0, false);
        let best = Infinity;
        for (let i = 0; i < DECODE; i++) {
          const t0 = now();
          m.forward([5 + i], 4 + i, false);
          best = Math.min(best, now() - t0);
        }
        r.decode[threads - 1] = 1 / best;
        m.dispose();
      }
      if (llama) {
        const p = await peerModel(llama, c, w);
        for (const threads of [1, 2]) {
          await p.decode(threads, 2); // warm: the GGUF's pages
          pr.decode[threads - 1] = (await p.decode(threads, DECODE)).best;
        }
        await p.close();
      }
    }
    (globalThis as { gc?: () => void }).gc?.();
    if (PROMPT > 0) {
      const c = tinyLlamaConfig(PROMPT_LAYERS);
      const w = synthModel(c, kind);
      for (const threads of [1, 2]) {
        const m = createModel(c, w, { contextLength: PROMPT, threads });
        let sec = Infinity;
        for (let rep = 0; rep < 2; rep++) {
          m.reset();
          const t0 = now();
          m.forward(tokens, 0, false);
          sec = Math.min(sec, now() - t0);
        }
        r.prompt[threads - 1] = PROMPT / ((sec * LAYERS) / PROMPT_LAYERS);
        m.dispose();
      }
      if (llama) {
        const p = await peerModel(llama, c, w);
        for (const threads of [1, 2])
          pr.prompt[threads - 1] = PROMPT / (((await p.prompt(threads, tokens)) * LAYERS) / PROMPT_LAYERS);
        await p.close();
      }
    }
    (globalThis as { gc?: () => void }).gc?.();
    res[kind] = r;
    const base = res.g4;
    const vs = (a: number[], b: number[] | undefined) =>
      b && kind !== 'g4' ? ` (${a.map((v, i) => (v / b[i]).toFixed(2)).join(' / ')}× g64)` : '';
    // APL_BENCH_PROMPT=0 measures no prompt: its figures are left out rather than printed as 0.0 and NaN.
    const promptOf = (p: number[], extra: string) =>
      PROMPT > 0 ? `   prompt ${p.map((v) => v.toFixed(1)).join(' / ')}${extra}` : '';
    console.log(
      `  ${(NAMES[kind] ?? kind).padEnd(18)} decode ${r.decode.map((v) => v.toFixed(1)).join(' / ')}${vs(r.decode, base?.decode)}` +
        promptOf(r.prompt, vs(r.prompt, base?.prompt)),
    );
    if (llama) {
      const ratio = (a: number[], b: number[]) => a.map((v, i) => (v / b[i]).toFixed(2)).join(' / ');
      console.log(
        `    llama.cpp ${PEER[kind]} (same run): decode ${pr.decode.map((v) => v.toFixed(1)).join(' / ')}` +
          `${promptOf(pr.prompt, '')}; ours / llama.cpp: decode ${ratio(r.decode, pr.decode)}` +
          (PROMPT > 0 ? `, prompt ${ratio(r.prompt, pr.prompt)}` : ''),
      );
    }
  }
}

async function main() {
  if (!inferInfo()) {
    console.log('kquant-infer: the native addon is not built; nothing to measure');
    return;
  }
  if (process.env.APL_BENCH_KERNELS !== '0') await kernels();
  if (process.env.APL_BENCH_MODEL !== '0') await modelBench();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
