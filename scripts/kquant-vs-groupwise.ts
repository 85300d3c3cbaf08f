// Same-size end-to-end comparison of the two quantization types on the trained model (test/fixtures/brown-tiny):
// the figures of README "Choosing --format". Run: `node --import tsx scripts/kquant-vs-groupwise.ts [--chunks N]`
// (default 16 chunks of 256 tokens: 4,080 scored tokens; the text has 60).
//
// 1. Converts the model with `convert` (groupwise, the default group of 64, and --format kquant) at 4 and 2 bits and
//    counts every byte of each NPZ by kind (linear layers, embeddings, norms, the NPZ's own headers).
// 2. For the same-size comparison, quantizes the 28 linear layers in memory with each candidate layout (groupwise
//    groups, kquant layouts) and keeps everything else exactly as the groupwise conversion stored it (8-bit embeddings
//    and head, float norms): the files then differ only in the linear layers, whose bytes (q, scales and zero
//    points, or q, codes, d and dmin) are counted exactly; bits per weight = those bytes × 8 / their parameters.
// 3. Runs each against the float model with the native forward (int8 activations) under llama.cpp's protocol
//    (eval/evaluate.ts: chunks of 256 tokens, the second half scored): KLD mean, 99th percentile, same top, PPL.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LinearWeight, ModelWeights } from '../native/forward-types';
import * as eng from '../native/index';
import { type KqFormat, kquantize } from '../native/kquant';
import { convertModel } from '../server/src/convert/pipeline';
import { evaluateTokens } from '../server/src/eval/evaluate';
import { createForward } from '../server/src/run/engine';
import { loadModel } from '../server/src/run/load';
import { cachedLogits } from '../test/helpers/cached-logits';

const root = join(__dirname, '..');
const fixture = join(root, 'test/fixtures/brown-tiny');
const CTX = 256;
const argChunks = process.argv.indexOf('--chunks');
const CHUNKS = argChunks > 0 ? Number(process.argv[argChunks + 1]) : 16;

type Layout = { kind: 'groupwise'; group: number } | ({ kind: 'kquant' } & KqFormat);
const LINEAR = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const;

function weightBytes(w: LinearWeight): number {
  if (w.kind === 'float') return w.data.byteLength;
  if (w.kind === 'packed') return w.q.byteLength + w.scales.byteLength + w.zeros.byteLength;
  return w.q.byteLength + w.codes.byteLength + w.d.byteLength + w.dmin.byteLength;
}

function floatBytes(w: LinearWeight): Uint8Array {
  if (w.kind !== 'float' || w.dtype !== 'bf16') throw new Error('expected bf16 source weights');
  const h = new Uint16Array(w.data.slice().buffer);
  const f = new Uint32Array(h.length);
  for (let i = 0; i < h.length; i++) f[i] = h[i] << 16;
  return new Uint8Array(f.buffer);
}

async function quantizeLinear(w: LinearWeight, l: Layout): Promise<LinearWeight> {
  const data = floatBytes(w);
  const { rows, cols } = w;
  if (l.kind === 'kquant') {
    const k = await kquantize({ ...l, data, dtype: 'f32', rows, cols });
    return {
      kind: 'kquant',
      rows,
      cols,
      bits: k.bits,
      group: k.group,
      super: k.super,
      scaleBits: k.scaleBits,
      minBits: k.minBits,
      q: k.q,
      codes: k.codes,
      d: k.d,
      dmin: k.dmin,
    };
  }
  const bits = (l as { bits?: 2 | 4 }).bits ?? 4;
  const p = { bits, groupSize: l.group, symmetric: false, mode: 'optimized' as const, scaleDtype: 'f16' as const };
  const r = await eng.quantize({ ...p, data, dtype: 'f32', rows, cols });
  return {
    kind: 'packed',
    rows,
    cols,
    bits,
    groupSize: l.group,
    q: r.q,
    scales: r.scales,
    zeros: r.zeros,
    scaleDtype: 'f16',
  };
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'apl-kq-vs-gw-'));
  try {
    const text = readFileSync(join(fixture, 'heldout.txt'), 'utf8');
    const conv: Record<string, string> = {};
    for (const bits of [4, 2] as const)
      for (const format of ['groupwise', 'kquant'] as const) {
        const r = await convertModel(
          { source: fixture, bits, format, name: `${format}${bits}`, outDir: work },
          () => {},
        );
        conv[`${format}${bits}`] = r.manifest;
      }
    const base = await loadModel(conv.groupwise4);
    const float = await loadModel(conv.groupwise4, { float: true });
    const tokens = base.tokenizer!.encode(text, true);
    const vocab = base.config.vocabSize;
    const bos = base.config.bosTokenId ?? 1;
    const floatModel = cachedLogits(createForward(float.config, float.weights, { contextLength: CTX }), vocab);

    // 1. What convert writes, byte by byte.
    console.log('## convert outputs (all bytes)\n');
    console.log(
      '| output | NPZ bytes | linear layers | embeddings + head | norms | NPZ headers | bits/weight (all) | bits/weight (linear) |',
    );
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    const params =
      float.config.vocabSize * float.config.hiddenSize * 2 +
      float.weights.layers.reduce((a, l) => a + LINEAR.reduce((b, k) => b + l[k].rows * l[k].cols, 0), 0);
    const linParams = params - float.config.vocabSize * float.config.hiddenSize * 2;
    let normParams = float.weights.finalNorm.length;
    for (const l of float.weights.layers) normParams += l.inputNorm.length + l.postAttnNorm.length;
    for (const [name, manifest] of Object.entries(conv)) {
      const m = await loadModel(manifest);
      const npz = join(manifest, '..', String(m.manifest.metadata.npz));
      const size = statSync(npz).size;
      const lin = m.weights.layers.reduce((a, l) => a + LINEAR.reduce((b, k) => b + weightBytes(l[k]), 0), 0);
      const emb = weightBytes(m.weights.embed) + weightBytes(m.weights.lmHead);
      const norms = normParams * 4;
      console.log(
        `| ${name} | ${size} | ${lin} | ${emb} | ${norms} | ${size - lin - emb - norms} | ${((size * 8) / (params + normParams)).toFixed(3)} | ${((lin * 8) / linParams).toFixed(3)} |`,
      );
    }

    // 2 + 3. Same-size candidates: only the linear layers differ.
    const cands: [string, 2 | 4, Layout][] = [
      ['groupwise g64 (convert --format groupwise)', 4, { kind: 'groupwise', group: 64 }],
      ['groupwise g48', 4, { kind: 'groupwise', group: 48 }],
      [
        'kquant g24/1536 5+6 (convert preset)',
        4,
        { kind: 'kquant', bits: 4, group: 24, super: 1536, scaleBits: 5, minBits: 6 },
      ],
      ['kquant g32/512 5+5', 4, { kind: 'kquant', bits: 4, group: 32, super: 512, scaleBits: 5, minBits: 5 }],
      ['kquant g24/1536 4+4', 4, { kind: 'kquant', bits: 4, group: 24, super: 1536, scaleBits: 4, minBits: 4 }],
      ['groupwise g64', 2, { kind: 'groupwise', group: 64 }],
      ['groupwise g48', 2, { kind: 'groupwise', group: 48 }],
      [
        'kquant g16/256 4+4 (convert preset)',
        2,
        { kind: 'kquant', bits: 2, group: 16, super: 256, scaleBits: 4, minBits: 4 },
      ],
    ];
    console.log(
      `\n## same size: linear layers only differ (embeddings 8-bit groupwise in all), ${CHUNKS} chunks of ${CTX}\n`,
    );
    console.log('| bits | linear layers | bits/weight (linear) | KLD mean | KLD p99 | same top | PPL (float) |');
    console.log('| ---: | --- | ---: | ---: | ---: | ---: | ---: |');
    for (const [label, bits, layout] of cands) {
      const l = layout.kind === 'groupwise' ? ({ ...layout, bits } as Layout) : layout;
      const layers = [];
      let bytes = 0;
      for (const fl of float.weights.layers) {
        const out: Record<string, unknown> = { inputNorm: fl.inputNorm, postAttnNorm: fl.postAttnNorm };
        for (const k of LINEAR) {
          const q = await quantizeLinear(fl[k], l);
          bytes += weightBytes(q);
          out[k] = q;
        }
        layers.push(out);
      }
      const w: ModelWeights = { ...base.weights, layers: layers as unknown as ModelWeights['layers'] };
      const qm = createForward(base.config, w, { contextLength: CTX });
      const s = evaluateTokens(qm, floatModel, tokens, { ctx: CTX, maxChunks: CHUNKS, bosId: bos, vocab }).summary;
      qm.dispose();
      console.log(
        `| ${bits} | ${label} | ${((bytes * 8) / linParams).toFixed(3)} | ${s.kld_mean.toExponential(3)} | ${s.kld_p99.toExponential(2)} | ${(100 * s.same_top).toFixed(2)} % | ${s.ppl.toFixed(2)} (${s.ppl_float.toFixed(2)}) |`,
      );
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
