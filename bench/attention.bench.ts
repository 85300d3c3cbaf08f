// Prompt attention A/B: the blocked attention (native/src/infer/attention.cc, the default) against the reference
// form (APL_ATTN=ref: one dot / axpy call per (query, key)) on the TinyLlama shape (32 heads over 4 KV heads of
// 64, 4-bit g64 weights, random codes), a prompt of APL_BENCH_PROMPT tokens (512) on APL_BENCH_PROMPT_LAYERS
// layers (4) scaled to 22 as in decode.bench.ts, 1 and 2 threads. The two forms alternate, APL_BENCH_ROUNDS
// (3) rounds each, best time of each; then one profiled prompt of each (APL_PROFILE=1: the attention step's
// share of the forward pass, from the model's stderr report). APL_BENCH_HEAD_DIM / _HEADS / _KV_HEADS change
// the shape (e.g. 256 / 8 / 1 for a gemma-like attention).
import { loadavg } from 'node:os';
import { createModel, inferInfo } from '../native/forward';
import { packedWeight, syntheticModel, tinyLlamaConfig } from './tiny-llama-shape';

const PROMPT = Number(process.env.APL_BENCH_PROMPT ?? 512);
const PROMPT_LAYERS = Number(process.env.APL_BENCH_PROMPT_LAYERS ?? 4);
const ROUNDS = Number(process.env.APL_BENCH_ROUNDS ?? 3);
const LAYERS = 22;

const now = () => Number(process.hrtime.bigint()) / 1e9;

/** Runs fn with the environment variables set (the model reads them when it is created). */
function withEnv<T>(vars: Record<string, string | undefined>, fn: () => T): T {
  const old: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(vars)) {
    old[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return fn();
  } finally {
    for (const [k, v] of Object.entries(old)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

function main() {
  const info = inferInfo();
  if (!info) {
    console.log('attention bench: the native addon is not built (npm run build:native); nothing measured');
    return;
  }
  const c = tinyLlamaConfig(PROMPT_LAYERS);
  if (process.env.APL_BENCH_HEAD_DIM) c.headDim = Number(process.env.APL_BENCH_HEAD_DIM);
  if (process.env.APL_BENCH_HEADS) c.numHeads = Number(process.env.APL_BENCH_HEADS);
  if (process.env.APL_BENCH_KV_HEADS) c.numKvHeads = Number(process.env.APL_BENCH_KV_HEADS);
  const w = syntheticModel(c, (r, cc) => packedWeight(r, cc, 4));
  const tokens = Array.from({ length: PROMPT }, (_, i) => 3 + ((i * 7919) % 31000));
  const scale = LAYERS / PROMPT_LAYERS;
  console.log(
    `attention bench: kernel ${info.selected}, ${c.numHeads} heads / ${c.numKvHeads} KV heads of ${c.headDim}, ` +
      `prompt ${PROMPT} tokens on ${PROMPT_LAYERS} layers (tok/s scaled to ${LAYERS}), best of ${ROUNDS} alternating rounds`,
  );
  const forms: [string, string | undefined][] = [
    ['reference', 'ref'],
    ['blocked', undefined],
  ];
  for (const threads of [1, 2]) {
    const best = new Map<string, number>();
    const models = forms.map(([name, env]) => ({
      name,
      m: withEnv({ APL_ATTN: env }, () => createModel(c, w, { contextLength: PROMPT, threads })),
    }));
    for (let r = 0; r < ROUNDS; r++)
      for (const { name, m } of models) {
        m.reset();
        const t0 = now();
        m.forward(tokens, 0, false);
        best.set(name, Math.min(best.get(name) ?? Infinity, now() - t0));
      }
    for (const { m } of models) m.dispose();
    const tps = (name: string) => PROMPT / ((best.get(name) ?? 0) * scale);
    console.log(
      `  ${threads} thread${threads > 1 ? 's' : ''}: reference ${tps('reference').toFixed(1)} tok/s, blocked ` +
        `${tps('blocked').toFixed(1)} tok/s: ${(tps('blocked') / tps('reference')).toFixed(2)}× (load average ` +
        `${loadavg()
          .map((v) => v.toFixed(1))
          .join(' ')})`,
    );
  }
  // the profiled prompts: the model prints its steps to stderr when disposed
  for (const [name, env] of forms) {
    console.log(`  APL_PROFILE, ${name}, 1 thread (stderr):`);
    withEnv({ APL_ATTN: env, APL_PROFILE: '1' }, () => {
      const m = createModel(c, w, { contextLength: PROMPT, threads: 1 });
      m.forward(tokens, 0, false);
      m.dispose();
    });
  }
}

main();
