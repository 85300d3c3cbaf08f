// Shared by the forward-pass tests: the tiny checkpoints as float models, golden logits, comparisons.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LinearWeight, ModelConfig, ModelWeights } from '../../../native/forward-types';
import { kdequantize } from '../../../native/kquant';
import { runConfigFields } from '../../../server/src/convert/carry';
import { modelInfoFromConfig } from '../../../server/src/convert/families';
import { f16ToF32 } from '../../../server/src/formats/dtypes';
import { readNpyArray } from '../../../server/src/formats/npy';
import { openNpzFile } from '../../../server/src/formats/npz';
import { openCheckpoint } from '../../../server/src/formats/safetensors';
import { openFileSource } from '../../../server/src/formats/source';
import { modelConfigFromManifest } from '../../../server/src/run/config';
import { assembleWeights, checkpointWeight } from '../../../server/src/run/load';

export const root = join(__dirname, '../../..');
export const fixture = (name: string) => join(root, 'test/fixtures', name);
export const TINY = ['tiny-llama', 'tiny-mistral', 'tiny-gemma'] as const;

/** A tiny checkpoint folder → ModelConfig (through the same path convert writes the manifest) + float weights. */
export async function checkpointModel(name: string): Promise<{ config: ModelConfig; weights: ModelWeights }> {
  const dir = fixture(name);
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const info = { ...modelInfoFromConfig(cfg, name), ...runConfigFields(cfg, cfg.model_type) };
  const config = modelConfigFromManifest(info, join(dir, 'config.json'));
  const ck = await openCheckpoint(dir);
  try {
    const weights = await assembleWeights(
      config,
      (n) => checkpointWeight(ck, n),
      (n) => ck.tensor(n) !== undefined,
      dir,
    );
    return { config, weights };
  } finally {
    await ck.close();
  }
}

export function goldenPrompt(name: string): number[] {
  const p = JSON.parse(readFileSync(fixture('golden/prompts.json'), 'utf8'));
  return p.prompts[name];
}

/** A float32 .npy as { shape, data }. */
export async function readNpyF32(path: string): Promise<{ shape: number[]; data: Float32Array }> {
  const src = await openFileSource(path);
  try {
    const { header, data } = await readNpyArray(src);
    if (header.dtype !== 'float32') throw new Error(`${path}: ${header.dtype}`);
    return { shape: header.shape, data: data as Float32Array };
  } finally {
    await src.close();
  }
}

export { openNpzFile };

/** ‖packed forward − float forward on the dequantized weights‖₂ / ‖…‖₂ allowed for whole-model logits. The weights
 *  are the same; the difference is the native forward's int8 activations (per weight group, dx = amax/127, so each
 *  input moves by ≤ amax/254: ≈0.2–0.4 % per matmul), compounded over every linear of every layer and amplified by
 *  softmax and the final norm. Measured 2.5e-2–3.6e-2 on the tiny llama/gemma/mistral at 2/4/8 bits; the single
 *  matmul is checked element by element against the exact rounding bound in cli.test.ts. The TypeScript reference
 *  fallback (no addon) is float and meets this with a margin. */
export const PACKED_VS_DEQUANTIZED = 5e-2;

export { relError } from '../../helpers/rel-error';

export function argmaxRows(x: Float32Array, rows: number): number[] {
  const cols = x.length / rows;
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (x[r * cols + c] > x[r * cols + best]) best = c;
    out.push(best);
  }
  return out;
}

/** Converts a tiny fixture into `outDir` (in-process, quiet) and returns the manifest path. */
export async function convertTiny(
  name: string,
  bits: 1 | 2 | 4 | 8,
  outDir: string,
  format?: 'groupwise' | 'kquant',
): Promise<string> {
  const { convertModel } = await import('../../../server/src/convert/pipeline');
  const r = await convertModel({ source: fixture(name), bits, outDir, force: true, name, format }, () => {});
  return r.manifest;
}

/** Dequantizes a packed weight to a float32 FloatWeight with the formula of docs/FORMAT.md (written out here). */
export function dequantizedCopy(w: LinearWeight): LinearWeight {
  if (w.kind === 'float') return w;
  if (w.kind === 'kquant') {
    // The engine's dequantization (native/kquant.ts; docs/FORMAT.md's numpy formula is tested against it).
    const f = kdequantize(w);
    return { kind: 'float', rows: w.rows, cols: w.cols, dtype: 'f32', data: new Uint8Array(f.buffer) };
  }
  const out = new Float32Array(w.rows * w.cols);
  const rowBytes = Math.ceil((w.cols * w.bits) / 8);
  const groups = Math.ceil(w.cols / w.groupSize);
  const sv = new DataView(w.scales.buffer, w.scales.byteOffset, w.scales.byteLength);
  const zv = new DataView(w.zeros.buffer, w.zeros.byteOffset, w.zeros.byteLength);
  const param = (v: DataView, i: number) =>
    w.scaleDtype === 'f16' ? f16ToF32(v.getUint16(i * 2, true)) : v.getFloat32(i * 4, true);
  for (let r = 0; r < w.rows; r++) {
    for (let c = 0; c < w.cols; c++) {
      const bit = c * w.bits;
      const q = (w.q[r * rowBytes + (bit >> 3)] >> (bit & 7)) & ((1 << w.bits) - 1);
      const g = r * groups + Math.floor(c / w.groupSize);
      out[r * w.cols + c] = (q - param(zv, g)) * param(sv, g);
    }
  }
  return {
    kind: 'float' as const,
    rows: w.rows,
    cols: w.cols,
    dtype: 'f32' as const,
    data: new Uint8Array(out.buffer),
  };
}

/** Every linear weight of `w` dequantized to float (the float forward on these is the packed forward's reference). */
export function dequantizeAll(w: ModelWeights): ModelWeights {
  const embed = dequantizedCopy(w.embed);
  return {
    embed,
    finalNorm: w.finalNorm,
    lmHead: w.lmHead === w.embed ? embed : dequantizedCopy(w.lmHead),
    layers: w.layers.map((l) => ({
      ...l,
      q: dequantizedCopy(l.q),
      k: dequantizedCopy(l.k),
      v: dequantizedCopy(l.v),
      o: dequantizedCopy(l.o),
      gate: dequantizedCopy(l.gate),
      up: dequantizedCopy(l.up),
      down: dequantizedCopy(l.down),
    })),
  };
}
