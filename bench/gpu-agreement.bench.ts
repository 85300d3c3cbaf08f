// How close the GPU is to the CPU, measured: what the GPU forward's guard (native/gpu-selftest.ts) checks, with the
// figures it does not print. For bench/gpu.sh on a machine with a GPU (and on the CUDA emulation, with APL_ADDON):
//  - linear: each kind of weight the forward reads (packed 8/4/2/1 bits g64 f16, kquant 4 and 2 bits, bf16, f16),
//    256 rows × 2048 and × 5632 columns, 3 tokens, GPU against the CPU scalar kernel: how many of the outputs differ
//    (the kernels are bit-exact by construction: 0 expected) and the largest relative difference;
//  - forward: the guard's one-layer model for the attention shapes of TinyLlama, Mistral 7B and Gemma 2B, both KV
//    caches: the relative L2 distance of the logits at each step (the guard refuses above 2e-5).
// Without a usable GPU it says so and measures nothing (exit 0).
import { gpuUnavailable, inferInfo, ropeFrequencies } from '../native/forward';
import type { LinearWeight, ModelConfig } from '../native/forward-types';
import { forwardDistances, SELFTEST_FORWARD_BOUND, type SelfTestAddon } from '../native/gpu-selftest';
import { nativeAddon } from '../native/index';
import { KQ_PRESETS, kquantize } from '../native/kquant';
import { gaussian } from '../test/helpers/random';
import { bf16Weight, f16Bits, packedWeight, tinyLlamaConfig } from './tiny-llama-shape';

/** Gaussian float32 values (σ 0.02) as bytes. */
const gaussianBytes = (n: number, seed: number): Uint8Array => new Uint8Array(gaussian(n, seed, 0.02).buffer);

function f16Weight(rows: number, cols: number): LinearWeight {
  const f = gaussian(rows * cols, rows + cols, 0.02);
  const h = Uint16Array.from(f, (v) => f16Bits(v));
  return { kind: 'float', rows, cols, dtype: 'f16', data: new Uint8Array(h.buffer) };
}

async function kinds(rows: number, cols: number): Promise<[string, LinearWeight][]> {
  const out: [string, LinearWeight][] = [];
  for (const bits of [8, 4, 2, 1] as const) out.push([`packed ${bits}-bit g64`, packedWeight(rows, cols, bits)]);
  for (const bits of [4, 2] as const) {
    const r = await kquantize({
      ...KQ_PRESETS[bits],
      data: gaussianBytes(rows * cols, cols + bits),
      dtype: 'f32',
      rows,
      cols,
    });
    out.push([`kquant ${bits}-bit`, { kind: 'kquant', ...r, bits: r.bits as 2 | 4 | 8 }]);
  }
  out.push(['bf16', bf16Weight(rows, cols)], ['f16', f16Weight(rows, cols)]);
  return out;
}

async function main() {
  const why = inferInfo() ? gpuUnavailable() : 'the native addon is not built';
  if (why) {
    console.log(`gpu-agreement: skipped: no usable GPU (${why})`);
    return;
  }
  const a = nativeAddon() as unknown as SelfTestAddon;
  console.log('== GPU against the CPU scalar kernel: linear, 256 rows, 3 tokens (bit-exact by construction)');
  for (const cols of [2048, 5632]) {
    const x = gaussian(3 * cols, 7);
    for (const [name, w] of await kinds(256, cols)) {
      const cpu = a.inferLinear(w, x, 3, 0, 'scalar', false);
      const gpu = a.inferLinear(w, x, 3, 0, undefined, true);
      let differ = 0;
      let worst = 0;
      for (let i = 0; i < cpu.length; i++)
        if (!Object.is(cpu[i], gpu[i])) {
          differ++;
          worst = Math.max(worst, Math.abs(gpu[i] - cpu[i]) / Math.max(Math.abs(cpu[i]), 1e-30));
        }
      console.log(
        `agreement linear ${name.padEnd(18)} cols ${String(cols).padStart(4)}: ${differ ? `${differ} of ${cpu.length} outputs differ, largest relative ${worst.toPrecision(3)}` : `all ${cpu.length} outputs equal bit for bit`}`,
      );
    }
  }
  console.log(
    `== GPU against the CPU scalar model: the guard's one-layer model, logits' relative L2 (bound ${SELFTEST_FORWARD_BOUND})`,
  );
  const tiny = tinyLlamaConfig(1);
  const shapes: [string, ModelConfig][] = [
    ['TinyLlama (32 heads / 4 KV of 64)', tiny],
    [
      'Mistral 7B (32 / 8 of 128, window)',
      { ...tiny, family: 'mistral', numHeads: 32, numKvHeads: 8, headDim: 128, slidingWindow: 4096 },
    ],
    [
      'Gemma 2B (8 / 1 of 256, GeGLU)',
      {
        ...tiny,
        family: 'gemma',
        numHeads: 8,
        numKvHeads: 1,
        headDim: 256,
        hiddenAct: 'gelu_tanh',
        embedScale: true,
        normAddOne: true,
        tieWordEmbeddings: true,
      },
    ],
  ];
  for (const [name, c] of shapes)
    for (const kv of ['f16', 'f32'] as const) {
      const d = forwardDistances(a, c, ropeFrequencies, kv);
      const text = typeof d === 'string' ? d : d.map((s) => `pos ${s.pos} ${s.rel.toExponential(2)}`).join(', ');
      console.log(`agreement forward ${name.padEnd(36)} kv ${kv}: ${text}`);
    }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
