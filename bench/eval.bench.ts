// End-to-end evaluation speed and memory (`apl-quant eval`, `convert --eval`) on a TinyLlama-shaped synthetic
// checkpoint (bench/synthetic-checkpoint.ts: hidden 2048, intermediate 5632, 32 heads, 4 KV heads, vocab 32000,
// bf16) cut to APL_BENCH_EVAL_LAYERS layers (default 2), converted to 4 bits (group 64) in a child process, then
// evaluated here over random token ids with llama.cpp's protocol (ctx APL_BENCH_EVAL_CTX, default 128;
// APL_BENCH_EVAL_CHUNKS chunks, default 2): both models loaded at once (the float one bf16 as stored), one chunk's
// logits alive at a time. Prints tokens scored per second and this process's peak RSS, with the parts it is made
// of, and the same sum for 22 layers (TinyLlama) and for a 7B Llama (the 24 GB question). Run it under
// `nice -n -10`; the figures are this run's, on a shared machine only their ratios are worth comparing.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evaluateTokens } from '../server/src/eval/evaluate';
import { createForward } from '../server/src/run/engine';
import { loadModel } from '../server/src/run/load';
import { generate } from './synthetic-checkpoint';

const LAYERS = Number(process.env.APL_BENCH_EVAL_LAYERS ?? 2);
const CTX = Number(process.env.APL_BENCH_EVAL_CTX ?? 128);
const CHUNKS = Number(process.env.APL_BENCH_EVAL_CHUNKS ?? 2);
const VOCAB = 32000;
const root = join(__dirname, '..');
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const mib = (b: number) => `${(b / MiB).toFixed(0)} MiB`;
const gib = (b: number) => `${(b / GiB).toFixed(1)} GiB`;

async function main() {
  const dir = join(tmpdir(), `apl-bench-eval-tinyllama-${LAYERS}`);
  generate(dir, LAYERS);
  const out = join(tmpdir(), `apl-bench-eval-out-${LAYERS}`);
  mkdirSync(out, { recursive: true });
  const c = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      join(root, 'server/src/cli.ts'),
      'convert',
      dir,
      '--bits',
      '4',
      '--name',
      'tl',
      '--out',
      out,
      '--force',
      '--json-progress',
    ],
    { cwd: root, env: { ...process.env, APL_CLI_MAIN: '1' }, encoding: 'utf8' },
  );
  if (c.status !== 0) throw new Error(`convert failed: ${c.stderr}`);
  const manifest = join(out, 'tl_manifest_q4.json');
  const npzBytes = statSync(join(out, 'tl_quantized_q4.npz')).size;
  const m = JSON.parse(readFileSync(manifest, 'utf8'));
  const params: number = m.metadata.total_params;
  const rss0 = process.memoryUsage().rss;
  const quant = await loadModel(manifest);
  const float = await loadModel(manifest, { float: true });
  const qm = createForward(quant.config, quant.weights, { contextLength: CTX });
  const fm = createForward(float.config, float.weights, { contextLength: CTX });
  const rssLoaded = process.memoryUsage().rss;
  let seed = 7;
  const tokens = Int32Array.from({ length: CTX * CHUNKS }, () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % VOCAB;
  });
  const t0 = performance.now();
  const { summary } = await evaluateTokens(qm, fm, tokens, { ctx: CTX, maxChunks: CHUNKS, bosId: 1, vocab: VOCAB });
  const sec = (performance.now() - t0) / 1000;
  const peak = process.resourceUsage().maxRSS * 1024;
  qm.dispose();
  fm.dispose();
  const floatBytes = params * 2;
  const logits = 2 * (CTX / 2) * VOCAB * 4;
  console.log(
    `TinyLlama-shaped, ${LAYERS} of 22 layers (${(params / 1e6).toFixed(0)} M parameters), 4 bits group 64; ctx ${CTX}, ${CHUNKS} chunks, backend ${qm.backend}`,
  );
  console.log(
    `  tokens scored      ${summary.tokens_scored} in ${sec.toFixed(2)} s: ${(summary.tokens_scored / sec).toFixed(1)} tokens/s`,
  );
  console.log(
    `  (each scored token costs two forward positions of each model: the chunk's first half is context; ${((CTX * CHUNKS * 2) / sec).toFixed(0)} positions/s over both models)`,
  );
  console.log(
    `  peak RSS           ${mib(peak)} (before loading ${mib(rss0)}; both models loaded ${mib(rssLoaded)}): float bf16 ${mib(floatBytes)} + NPZ ${mib(npzBytes)} + logits ${mib(logits)}`,
  );
  // The same parts at full size: TinyLlama (22 layers) and a 7B Llama (6.74 G parameters, ~3.9 GB at 4 bits group 64
  // with 8-bit embeddings and head), logits at ctx 512 for a 32,000-token vocabulary, plus this run's fixed overhead.
  const overhead = Math.max(0, peak - floatBytes - npzBytes - logits);
  const perLayer = (params - 2 * VOCAB * 2048) / LAYERS;
  const tlParams = 2 * VOCAB * 2048 + 22 * perLayer;
  const tlNpz = (npzBytes / params) * tlParams;
  const full512 = 2 * 256 * VOCAB * 4;
  console.log(
    `  TinyLlama, 22 layers: ≈ ${gib(tlParams * 2 + tlNpz + full512 + overhead)} (bf16 ${gib(tlParams * 2)} + NPZ ${gib(tlNpz)} + logits ${mib(full512)} + ${mib(overhead)} overhead)`,
  );
  const p7 = 6.74e9;
  const q7 = 3.9e9;
  console.log(
    `  Llama 7B:             ≈ ${gib(p7 * 2 + q7 + full512 + overhead)} (bf16 ${gib(p7 * 2)} + 4-bit ${gib(q7)} + logits ${mib(full512)} + overhead): fits 24 GB; at 8 bits (+3.3 GB) ≈ ${gib(p7 * 2 + 7.2e9 + full512 + overhead)}`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
