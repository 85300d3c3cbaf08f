// The manifest beside an archive, and the quantized weights it describes: which member is which part of which
// weight, and the geometry the engine's dequantize (native/index.ts) needs for the inspector's dequantized view.
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join } from 'node:path';
import type { KqFormat } from '../../../native/kquant';
import { isOutputManifestName } from '../convert/names';
import type { Manifest, WeightEntry } from '../formats/manifest';
import { matrixView } from '../formats/manifest';
import { type Checkpoint, openCheckpoint } from '../formats/safetensors';
import { readRegularFile } from '../formats/source';
import { defaultCacheDir } from '../hub/cache';
import type { InspectorMember } from '../protocol';
import { kquantFormatOfEntry } from './dequant-kquant';

/** Manifests larger than this are not parsed while looking for the one beside an archive. */
const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;

/**
 * The manifest in the archive's folder (`*_manifest_q*.json`, or any `*manifest*.json`) whose metadata.npz names
 * the archive; null when there is none. Unreadable or malformed candidates are skipped.
 */
export async function findManifestFor(npzPath: string): Promise<{ path: string; manifest: Manifest } | null> {
  const dir = dirname(npzPath);
  const base = basename(npzPath);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return null;
  }
  const candidates = names
    .filter((n) => /manifest.*\.json$/i.test(n))
    .sort((a, b) => Number(isOutputManifestName(b)) - Number(isOutputManifestName(a)));
  for (const n of candidates) {
    const p = join(dir, n);
    try {
      const m = JSON.parse((await readRegularFile(p, MAX_MANIFEST_BYTES)).toString('utf8')) as Manifest;
      if (
        m &&
        typeof m === 'object' &&
        Array.isArray(m.weights) &&
        m.metadata?.npz &&
        basename(m.metadata.npz) === base
      ) {
        return { path: p, manifest: m };
      }
    } catch {
      // not a manifest we can read: try the next one
    }
  }
  return null;
}

const stripNpy = (n: string) => n.replace(/\.npy$/, '');

/** The member's role in the manifest (the weight it belongs to and which part it is), if any. */
export function memberRole(manifest: Manifest, memberName: string): InspectorMember['role'] | undefined {
  const key = stripNpy(memberName);
  for (const w of manifest.weights) {
    if (!w || typeof w !== 'object') continue;
    const kquant = w.quantization?.type === 'kquant';
    const quantized = w.quantization?.type !== 'none' && (!!w.q_scales || kquant);
    const parts: [string | null | undefined, NonNullable<InspectorMember['role']>['part']][] = [
      [w.q, quantized ? 'q' : 'float'],
      [w.q_scales, 'q_scales'],
      [w.q_zero_point, 'q_zero_point'],
      [w.q_codes, 'q_codes'],
      [w.q_d, 'q_d'],
      [w.q_dmin, 'q_dmin'],
    ];
    for (const [m, part] of parts) {
      if (typeof m === 'string' && stripNpy(m) === key) {
        return {
          weight: w.name,
          part,
          bits: w.bit_width,
          groupSize: quantized ? (w.quantization.group_size ?? matrixView(w.shape ?? []).cols) : undefined,
        };
      }
    }
  }
  return undefined;
}

/** The quantized weight whose packed member is `memberName`, with its matrix geometry; undefined otherwise. */
export function quantizedWeight(
  manifest: Manifest,
  memberName: string,
): { weight: WeightEntry; rows: number; cols: number; bits: number; groupSize: number; kq?: KqFormat } | undefined {
  const key = stripNpy(memberName);
  const w = manifest.weights.find(
    (x) =>
      x &&
      typeof x.q === 'string' &&
      stripNpy(x.q) === key &&
      x.quantization?.type !== 'none' &&
      (!!x.q_scales || x.quantization?.type === 'kquant'),
  );
  if (!w || !Array.isArray(w.shape)) return undefined;
  const kq = kquantFormatOfEntry(w);
  if (kq) {
    const { rows, cols } = matrixView(w.shape);
    if (!(rows > 0) || !(cols > 0)) return undefined;
    return { weight: w, rows, cols, bits: kq.bits, groupSize: kq.group, kq };
  }
  if (!w.q_zero_point || !w.q_scales) return undefined;
  const { rows, cols } = matrixView(w.shape);
  const bits = w.bit_width;
  const groupSize = w.quantization.group_size ?? cols;
  if (![1, 2, 4, 8].includes(bits) || !(groupSize > 0) || !(rows > 0) || !(cols > 0)) return undefined;
  return { weight: w, rows, cols, bits, groupSize };
}

/**
 * The source checkpoint a manifest names: model.source as a folder (absolute, or relative to the manifest), else the
 * Hugging Face cache snapshot of model.source at model.revision; null with the reason when neither opens.
 */
export async function openSourceCheckpoint(
  m: { path: string; manifest: Manifest } | null,
): Promise<{ checkpoint: Checkpoint | null; detail: string }> {
  const source = m?.manifest.model?.source;
  if (!m || typeof source !== 'string' || !source) return { checkpoint: null, detail: 'the manifest names no source' };
  const candidates = [isAbsolute(source) ? source : join(dirname(m.path), source)];
  const rev = m.manifest.model.revision;
  if (/^[\w.-]+\/[\w.-]+$/.test(source) && typeof rev === 'string' && /^[0-9a-f]{40}$/.test(rev)) {
    candidates.push(join(defaultCacheDir(), `models--${source.replace('/', '--')}`, 'snapshots', rev));
  }
  for (const dir of candidates) {
    try {
      if (!(await stat(dir)).isDirectory()) continue;
      return { checkpoint: await openCheckpoint(dir), detail: dir };
    } catch {
      // not there, or not a checkpoint: try the next
    }
  }
  return { checkpoint: null, detail: `source ${source} not found (looked in ${candidates.join(', ')})` };
}
