// Forward pass on the CPU and on the GPU, side by side in one run, on a TinyLlama-shaped model built in memory with
// random codes (hidden 2048, intermediate 5632, 32 heads, 4 KV heads, vocab 32000; 8/4/2/1 bits with groups of
// 64 and f16 scales, and bf16 float weights): decode tokens/s (one token at a time after a 16-token prompt) and a
// prompt of APL_BENCH_PROMPT tokens (512), all logits of the last token only. The CPU uses every core. Prints one
// line per setting and the GPU/CPU ratios; without a usable GPU it says so and measures nothing (exit 0).
// Env: APL_BENCH_LAYERS (22), APL_BENCH_DECODE (16 tokens on the GPU; the CPU gets half), APL_BENCH_PROMPT (512),
// APL_BENCH_KINDS (e.g. "8,4,2,1,bf16").
import { createModel, gpuUnavailable, inferInfo } from '../native/forward';
import type { ForwardModel, ModelWeights } from '../native/forward-types';
import { bf16Weight, packedWeight, syntheticModel, tinyLlamaConfig } from './tiny-llama-shape';

const LAYERS = Number(process.env.APL_BENCH_LAYERS ?? 22);
const DECODE = Number(process.env.APL_BENCH_DECODE ?? 16);
const PROMPT = Number(process.env.APL_BENCH_PROMPT ?? 512);
const c = tinyLlamaConfig(LAYERS);
const KINDS = (process.env.APL_BENCH_KINDS ?? '8,4,2,1,bf16').split(',');

/** The model with every linear of the kind (bf16 or packed bits). */
function model(kind: string): ModelWeights {
  return syntheticModel(c, (r, cc) =>
    kind === 'bf16' ? bf16Weight(r, cc) : packedWeight(r, cc, Number(kind) as 1 | 2 | 4 | 8),
  );
}

const now = () => Number(process.hrtime.bigint()) / 1e9;
const tokens = (n: number) => Array.from({ length: n }, (_, i) => (i * 7919 + 13) % c.vocabSize);

/** decode tokens/s (after a 16-token prompt) and prompt tokens/s. */
function measure(m: ForwardModel, decode: number): { decode: number; prompt: number } {
  m.forward(tokens(16), 0, false); // warm-up (and the GPU's first launches)
  let t0 = now();
  for (let i = 0; i < decode; i++) m.forward([(i * 31) % c.vocabSize], 16 + i, false);
  const dec = decode / (now() - t0);
  m.reset();
  t0 = now();
  m.forward(tokens(PROMPT), 0, false);
  const pr = PROMPT / (now() - t0);
  return { decode: dec, prompt: pr };
}

function main(): void {
  if (!inferInfo()) {
    console.log('gpu-forward bench: the native addon is not built (npm run build:native); nothing measured');
    return;
  }
  const why = gpuUnavailable();
  if (why) {
    console.log(`gpu-forward bench: skipped: no usable GPU (${why})`);
    return;
  }
  console.log(
    `gpu-forward bench: ${LAYERS} layers, decode ${DECODE} tokens (CPU ${Math.max(2, DECODE >> 1)}), prompt ${PROMPT}`,
  );
  let failed = false;
  for (const kind of KINDS) {
    const w = model(kind);
    const label = kind === 'bf16' ? 'bf16' : `${kind}-bit`;
    try {
      const g = createModel(c, w, { contextLength: PROMPT + 64, backend: 'gpu' });
      const gr = measure(g, DECODE);
      g.dispose();
      const m = createModel(c, w, { contextLength: PROMPT + 64, backend: 'cpu' });
      const cr = measure(m, Math.max(2, DECODE >> 1));
      console.log(
        `  ${label.padEnd(6)} decode  cpu ${cr.decode.toFixed(1).padStart(7)}  gpu ${gr.decode.toFixed(1).padStart(8)} tokens/s  (gpu/cpu ${(gr.decode / cr.decode).toFixed(1)}×) | ` +
          `prompt ${PROMPT}  cpu ${cr.prompt.toFixed(0).padStart(6)}  gpu ${gr.prompt.toFixed(0).padStart(7)} tokens/s  (${(gr.prompt / cr.prompt).toFixed(1)}×)  [${m.backend} vs ${g.backend}]`,
      );
      m.dispose();
    } catch (e) {
      failed = true;
      console.log(`  ${label}: FAILED: ${(e as Error).message}`);
    }
  }
  if (failed) process.exitCode = 1;
}

main();
