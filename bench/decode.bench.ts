// Decode and prompt speed of the native forward pass (native/forward.ts) on a TinyLlama-shaped synthetic model
// (hidden 2048, intermediate 5632, 32 heads, 4 KV heads, vocab 32000, 22 layers) built in memory with random codes:
// 8, 4, 2 and 1 bits (group 64, f16 scales and zeros) and bf16 float weights; 1 and 2 threads. Beside each
// figure, the memory bound measured right before it: bytes read per token (weights + KV cache) ÷ the read
// bandwidth of one pass over a 512 MB buffer with the same thread count. On a shared machine both are the best of
// several tries (a token's time, a pass's time), and tokens per CPU-second (1 thread) are printed too: they move
// less with the load. The peer figures are llama.cpp's on this machine (Q4_0: decode 29 / 31 tokens/s with 1 / 2
// threads, a 128-token prompt at 72 / 140 tokens/s).
//
// APL_BENCH_LAYERS (22), APL_BENCH_DECODE (16 tokens), APL_BENCH_PROMPT (512 tokens), APL_BENCH_PROMPT_LAYERS (4).
import { randomFillSync } from 'node:crypto';
import { createModel, inferInfo } from '../native/forward';
import type { LinearWeight, ModelConfig, ModelWeights } from '../native/forward-types';
import { nativeAddon } from '../native/index';

const LAYERS = Number(process.env.APL_BENCH_LAYERS ?? 22);
const DECODE = Number(process.env.APL_BENCH_DECODE ?? 16);
const PROMPT = Number(process.env.APL_BENCH_PROMPT ?? 512);
const PROMPT_LAYERS = Number(process.env.APL_BENCH_PROMPT_LAYERS ?? 4);
const PEER = { decode: [29, 31], prompt: [72, 140] };

function cfg(layers: number): ModelConfig {
  return {
    family: 'llama',
    hiddenSize: 2048,
    intermediateSize: 5632,
    numLayers: layers,
    numHeads: 32,
    numKvHeads: 4,
    headDim: 64,
    vocabSize: 32000,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    hiddenAct: 'silu',
    embedScale: false,
    normAddOne: false,
    tieWordEmbeddings: false,
    maxPositionEmbeddings: 2048,
  };
}

function f16(v: number): number {
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer)[0];
  return ((u >>> 16) & 0x8000) | ((((u >>> 23) & 0xff) - 112) << 10) | ((u >>> 13) & 0x3ff);
}

type Kind = { bits: 1 | 2 | 4 | 8 } | 'bf16';
function weight(rows: number, cols: number, kind: Kind): LinearWeight {
  if (kind === 'bf16') {
    const data = randomFillSync(new Uint8Array(rows * cols * 2));
    const h = new Uint16Array(data.buffer);
    for (let i = 0; i < h.length; i++) h[i] = (h[i] & 0x807f) | 0x3c00; // |w| in [2^-7, 2^-6)
    return { kind: 'float', rows, cols, dtype: 'bf16', data };
  }
  const { bits } = kind;
  const g = rows * Math.ceil(cols / 64);
  const scales = new Uint16Array(g).fill(f16(0.002));
  const zeros = new Uint16Array(g).fill(f16(2 ** (bits - 1) - 0.5));
  return {
    kind: 'packed',
    rows,
    cols,
    bits,
    groupSize: 64,
    q: randomFillSync(new Uint8Array(rows * Math.ceil((cols * bits) / 8))),
    scales: new Uint8Array(scales.buffer),
    zeros: new Uint8Array(zeros.buffer),
    scaleDtype: 'f16',
  };
}

function model(c: ModelConfig, kind: Kind): { w: ModelWeights; bytes: number } {
  const h = c.hiddenSize;
  const kv = c.numKvHeads * c.headDim;
  let bytes = 0;
  const W = (r: number, cc: number) => {
    const w = weight(r, cc, kind);
    bytes +=
      w.kind === 'packed' ? w.q.length + w.scales.length + w.zeros.length : w.kind === 'float' ? w.data.length : 0;
    return w;
  };
  const ones = () => new Float32Array(h).fill(1);
  const layers = [];
  for (let l = 0; l < c.numLayers; l++)
    layers.push({
      inputNorm: ones(),
      q: W(h, h),
      k: W(kv, h),
      v: W(kv, h),
      o: W(h, h),
      postAttnNorm: ones(),
      gate: W(c.intermediateSize, h),
      up: W(c.intermediateSize, h),
      down: W(h, c.intermediateSize),
    });
  const lmHead = W(c.vocabSize, h);
  const embed = weight(c.vocabSize, h, kind); // one row read per token: not counted
  return { w: { embed, layers, finalNorm: ones(), lmHead }, bytes };
}

const now = () => Number(process.hrtime.bigint()) / 1e9;

let bwBuf: Uint8Array | undefined;
function bandwidth(threads: number): number {
  const a = nativeAddon() as { inferMemRead(b: Uint8Array, t: number): number };
  bwBuf ??= randomFillSync(new Uint8Array(1 << 29));
  const buf = bwBuf;
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const t0 = now();
    a.inferMemRead(buf, threads);
    best = Math.min(best, now() - t0);
  }
  return buf.length / best;
}

function main() {
  const info = inferInfo();
  if (!info) {
    console.log('decode bench: the native addon is not built (npm run build:native); nothing measured');
    return;
  }
  console.log(
    `kernel ${info.selected} (variants: ${info.variants.join(', ')}), ${LAYERS} layers, ${DECODE} decoded tokens`,
  );
  const c = cfg(LAYERS);
  const kinds: [string, Kind, number][] = [
    ['8-bit g64', { bits: 8 }, 8.5],
    ['4-bit g64', { bits: 4 }, 4.5],
    ['2-bit g64', { bits: 2 }, 2.5],
    ['1-bit g64', { bits: 1 }, 1.5],
    ['bf16 (--float)', 'bf16', 16],
  ];
  const ctx = 64;
  for (const [name, kind, bpw] of DECODE > 0 ? kinds : []) {
    const { w, bytes } = model(c, kind);
    for (const threads of [1, 2]) {
      const m = createModel(c, w, { contextLength: ctx, threads });
      m.forward([1, 2, 3, 4], 0, false);
      const bw = bandwidth(threads);
      const times: number[] = [];
      const c0 = process.cpuUsage();
      for (let i = 0; i < DECODE; i++) {
        const t0 = now();
        m.forward([5 + i], 4 + i, false);
        times.push(now() - t0);
      }
      const cpu = process.cpuUsage(c0);
      const cpuTps = DECODE / ((cpu.user + cpu.system) / 1e6);
      times.sort((a, b) => a - b);
      const tps = 1 / times[0];
      const median = 1 / times[times.length >> 1];
      const kvBytes = c.numLayers * 2 * (c.numKvHeads * c.headDim) * 4 * (4 + DECODE);
      const bound = bw / (bytes + kvBytes);
      const peer = bits(kind) === 4 ? `; ${(tps / PEER.decode[threads - 1]).toFixed(2)}× llama.cpp Q4_0` : '';
      const perCpu = threads === 1 ? `, ${cpuTps.toFixed(1)} tok per CPU-s` : '';
      console.log(
        `decode ${name} (${bpw} bpw, ${(bytes / 1e9).toFixed(2)} GB/token), ${threads} thread${threads > 1 ? 's' : ''}: ` +
          `best ${tps.toFixed(1)} tok/s (median ${median.toFixed(1)}${perCpu}) = ${((100 * tps) / bound).toFixed(0)} % ` +
          `of the memory bound (${bound.toFixed(1)} tok/s at ${(bw / 1e9).toFixed(1)} GB/s)${peer}`,
      );
      m.dispose();
    }
    (globalThis as { gc?: () => void }).gc?.();
  }
  // Prompt processing: compute-bound, so a fraction of the layers gives tokens/s of the whole model by scaling.
  const pc = cfg(PROMPT_LAYERS);
  for (const [name, kind] of kinds.filter((k) => k[0].startsWith('4-bit') || k[0].startsWith('8-bit'))) {
    const { w } = model(pc, kind);
    const tokens = Array.from({ length: PROMPT }, (_, i) => (i * 7919) % 32000);
    for (const threads of [1, 2]) {
      const m = createModel(pc, w, { contextLength: PROMPT, threads });
      let sec = Infinity;
      const c0 = process.cpuUsage();
      for (let rep = 0; rep < 2; rep++) {
        m.reset();
        const t0 = now();
        m.forward(tokens, 0, false);
        sec = Math.min(sec, now() - t0);
      }
      const cpu = process.cpuUsage(c0);
      const cpuSec = (cpu.user + cpu.system) / 1e6 / 2;
      // Scale to the whole model: compute-bound, so time grows with the layers (the head runs once, a small part).
      const full = sec * (LAYERS / PROMPT_LAYERS);
      const tps = PROMPT / full;
      const peer =
        bits(kind) === 4 ? `, ${(tps / PEER.prompt[threads - 1]).toFixed(2)}× llama.cpp Q4_0 (128-token prompt)` : '';
      console.log(
        `prompt ${PROMPT} tokens, ${name}, ${threads} thread${threads > 1 ? 's' : ''} (measured on ${PROMPT_LAYERS} layers, ` +
          `scaled to ${LAYERS}): ${tps.toFixed(1)} tok/s` +
          (threads === 1 ? ` (${(PROMPT / (cpuSec * (LAYERS / PROMPT_LAYERS))).toFixed(1)} tok per CPU-s)` : '') +
          peer,
      );
      m.dispose();
    }
  }
}

function bits(k: Kind): number {
  return k === 'bf16' ? 16 : k.bits;
}

main();
