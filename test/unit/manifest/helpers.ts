// Shared helpers for the manifest tests: the numpy-written fixture, mutations, and offsets found by text search
// (independent of the parser under test).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Diagnostic, Range } from 'vscode-languageserver-types';
import { LineIndex } from '../../../server/src/manifest/document';
import type { NpzIndex } from '../../../server/src/manifest/npz-index';

export const FIXTURES = join(__dirname, '../../fixtures/manifests');
export const MANIFEST_PATH = join(FIXTURES, 'tiny_manifest_q4.json');
export const NPZ_PATH = join(FIXTURES, 'tiny_quantized_q4.npz');
export const REPORT_PATH = join(FIXTURES, 'tiny_accuracy_q4.json');

export const manifestText = (): string => readFileSync(MANIFEST_PATH, 'utf8');
// biome-ignore lint/suspicious/noExplicitAny: tests mutate the parsed manifest freely
export type AnyManifest = any;

/** The fixture, changed by `f`, printed as the converter prints (2-space indent). */
export function mutate(f: (m: AnyManifest) => void): string {
  const m = JSON.parse(manifestText());
  f(m);
  return `${JSON.stringify(m, null, 2)}\n`;
}

/** Offset of `needle` at or after the first occurrence of `after` (both must exist). */
export function offsetOf(text: string, needle: string, after?: string): number {
  const start = after === undefined ? 0 : text.indexOf(after);
  if (start < 0) throw new Error(`not found: ${after}`);
  const i = text.indexOf(needle, start);
  if (i < 0) throw new Error(`not found: ${needle}`);
  return i;
}

/** The range of `needle` (optionally searched after `after`). */
export function rangeOf(text: string, needle: string, after?: string): Range {
  const i = offsetOf(text, needle, after);
  return new LineIndex(text).range(i, needle.length);
}

export function codes(ds: Diagnostic[]): string[] {
  return ds.map((d) => String(d.code));
}

export function only(ds: Diagnostic[], code: string): Diagnostic[] {
  return ds.filter((d) => d.code === code);
}

/** An in-memory NPZ index that agrees with the fixture manifest (built from its own shapes). */
export function indexFor(text: string): NpzIndex {
  const m = JSON.parse(text);
  const members = new Map<string, { dtype: string; shape: number[] }>();
  for (const w of m.weights) {
    const [rows, cols] = w.shape.length === 1 ? [1, w.shape[0]] : w.shape;
    const key = (s: string) => s.replace(/\.npy$/, '');
    if (w.quantization.type === 'none') {
      members.set(key(w.q), { dtype: 'float16', shape: w.shape });
      continue;
    }
    const b = w.quantization.bits;
    const g = Math.ceil(cols / w.quantization.group_size);
    members.set(key(w.q), { dtype: 'uint8', shape: [rows, Math.ceil((cols * b) / 8)] });
    members.set(key(w.q_scales), { dtype: 'float16', shape: [rows, g] });
    members.set(key(w.q_zero_point), { dtype: 'float16', shape: [rows, g] });
  }
  return { file: 'mem.npz', members };
}
