// Memory of the native forward pass: peak RSS of a TinyLlama-shaped synthetic model (hidden 2048, intermediate 5632,
// 32 heads, 4 KV heads of 64, vocab 32000, 22 layers; every linear 4-bit g64 with f16 scales and zero points,
// random codes) with a float16 and a float32 KV cache at its full context (2048) and at 4096, each in a fresh
// process (peak RSS only grows), side by side; then the memory of 7B models at 4 bits with a 4096 context,
// computed from their shapes (docs/ARCHITECTURE.md quotes them).
//
// APL_BENCH_MEM_LAYERS (22). A child run: memory.bench.ts --child <f16|f32> <context>.
import { spawnSync } from 'node:child_process';
import { createModel, inferInfo } from '../native/forward';
import { packedWeight, syntheticModel, tinyLlamaConfig, weightBytes } from './tiny-llama-shape';

const LAYERS = Number(process.env.APL_BENCH_MEM_LAYERS ?? 22);
const MB = 1e6;

function child(kv: 'f16' | 'f32', ctx: number): void {
  const c = tinyLlamaConfig(LAYERS);
  let bytes = 0;
  const W = (r: number, cc: number) => {
    const w = packedWeight(r, cc, 4);
    bytes += weightBytes(w);
    return w;
  };
  const w = syntheticModel(c, W);
  const before = process.resourceUsage().maxRSS * 1024;
  const m = createModel(c, w, { contextLength: ctx, threads: 1, kvCache: kv });
  m.forward([1, 2, 3, 4, 5, 6, 7, 8], 0, false);
  for (let i = 0; i < 4; i++) m.forward([9 + i], 8 + i, false);
  const peak = process.resourceUsage().maxRSS * 1024;
  console.log(JSON.stringify({ kv, ctx, weights: bytes, kvBytes: m.kvBytes ?? 0, before, peak }));
  m.dispose();
}

/** Bytes of a llama-style model with every linear at `bpw` bits per weight, and its KV cache. */
function shapeBytes(s: { h: number; inter: number; layers: number; kvHeads: number; headDim: number; vocab: number }) {
  const kvd = s.kvHeads * s.headDim;
  const params = s.layers * (2 * s.h * s.h + 2 * s.h * kvd + 3 * s.h * s.inter) + 2 * s.vocab * s.h;
  return {
    params,
    weights: (bpw: number) => (params * bpw) / 8,
    kv: (ctx: number, b: number) => s.layers * ctx * kvd * 2 * b,
  };
}

function main(): void {
  const info = inferInfo();
  if (!info) {
    console.log('memory bench: the native addon is not built (npm run build:native); nothing measured');
    return;
  }
  console.log(`kernel ${info.selected}; TinyLlama-shaped 4-bit g64 model, ${LAYERS} layers, 1 thread`);
  for (const ctx of [2048, 4096]) {
    const rows: Record<string, { weights: number; kvBytes: number; before: number; peak: number }> = {};
    for (const kv of ['f16', 'f32'] as const) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', __filename, '--child', kv, String(ctx)], {
        encoding: 'utf8',
      });
      const line = r.stdout.trim().split('\n').at(-1) ?? '';
      if (r.status !== 0 || !line.startsWith('{')) {
        console.log(`context ${ctx}, ${kv} KV: the child run failed: ${r.stderr.trim().split('\n').at(-1)}`);
        continue;
      }
      rows[kv] = JSON.parse(line);
      const x = rows[kv];
      console.log(
        `context ${ctx}, ${kv} KV cache: weights ${(x.weights / MB).toFixed(0)} MB, KV ${(x.kvBytes / MB).toFixed(1)} MB; ` +
          `peak RSS ${(x.peak / MB).toFixed(0)} MB (${(x.before / MB).toFixed(0)} MB before the model)`,
      );
    }
    if (rows.f16 && rows.f32)
      console.log(
        `  f16 saves ${((rows.f32.peak - rows.f16.peak) / MB).toFixed(1)} MB of peak RSS ` +
          `(KV ${(rows.f32.kvBytes / MB).toFixed(1)} → ${(rows.f16.kvBytes / MB).toFixed(1)} MB)`,
      );
  }
  const GB = 1e9;
  const models = [
    ['Llama-2-7B (32 KV heads)', { h: 4096, inter: 11008, layers: 32, kvHeads: 32, headDim: 128, vocab: 32000 }],
    ['Mistral-7B (8 KV heads)', { h: 4096, inter: 14336, layers: 32, kvHeads: 8, headDim: 128, vocab: 32000 }],
  ] as const;
  for (const [name, s] of models) {
    const b = shapeBytes(s);
    const w = b.weights(4.5);
    console.log(
      `${name}, computed: ${(b.params / 1e9).toFixed(2)} B weights at 4.5 bpw (4-bit g64, f16 scale + zero) = ` +
        `${(w / GB).toFixed(2)} GB; KV at 4096: f32 ${(b.kv(4096, 4) / GB).toFixed(2)} GB, f16 ` +
        `${(b.kv(4096, 2) / GB).toFixed(2)} GB; total f32 ${((w + b.kv(4096, 4)) / GB).toFixed(2)} GB → f16 ` +
        `${((w + b.kv(4096, 2)) / GB).toFixed(2)} GB`,
    );
  }
}

const i = process.argv.indexOf('--child');
if (i >= 0) child(process.argv[i + 1] === 'f32' ? 'f32' : 'f16', Number(process.argv[i + 2]));
else main();
