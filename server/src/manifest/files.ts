// The files beside a manifest: the NPZ (metadata.npz), the accuracy report (metadata.accuracy_report, or
// <name>_accuracy_q<bits>.json next to <name>_manifest_q<bits>.json) and the files `apl-quant run` reads
// (metadata.tokenizer, tokenizer_config, generation_config). Loaded through the formats API and cached by
// (path, size, mtime): each request re-stats, so an NPZ rewritten on disk is re-read and re-checked.
import { readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { reportOfManifest } from '../convert/names';
import { FormatError, oneLine } from '../formats/errors';
import { openNpz } from '../formats/npz';
import { checkSideBytes, MAX_SIDE_BYTES, SIDE_KEYS, type SideKey } from '../formats/side-file';
import { openFileSource, readRegularFile } from '../formats/source';
import { describeTokenizerConfig, describeTokenizerJson, tokenizerIdCount } from '../formats/tokenizer-json';
import { isObject, type ManifestDoc } from './document';
import { type NpzState, npzIndexFromArchive } from './npz-index';
import { type ReportState, toLoadedReport } from './report';

/** A report larger than this is not read (a report is a few hundred bytes per weight). */
const MAX_REPORT_BYTES = 64 * 1024 * 1024;

/** The side files' keys and size limit live with their check (formats/side-file.ts). */
export { MAX_SIDE_BYTES, SIDE_KEYS, type SideKey } from '../formats/side-file';

export interface SideFile {
  key: SideKey;
  path: string;
}

/**
 * A side file as read: sound (with the ids a tokenizer defines and what the hover says of it), or why `apl-quant run`
 * would refuse it.
 */
export type SideState =
  | { key: SideKey; file: string; ids?: number; about: string }
  | { key: SideKey; file: string; problem: 'missing' | 'unreadable'; message: string };

export function isSideProblem(s: SideState): s is Extract<SideState, { problem: string }> {
  return 'problem' in s;
}

export interface ManifestFiles {
  npzPath?: string;
  reportPath?: string;
  /** True when reportPath was named in the manifest (a missing file is then a problem). */
  reportNamed: boolean;
  /** The side files the manifest names. */
  side?: SideFile[];
}

/** Resolves the NPZ and report paths a manifest refers to. */
export function manifestFiles(doc: ManifestDoc, manifestPath: string): ManifestFiles {
  const dir = dirname(manifestPath);
  const meta = isObject(doc.value) && isObject(doc.value.metadata) ? doc.value.metadata : {};
  const at = (p: string) => (isAbsolute(p) ? p : resolve(dir, p));
  const npzPath = typeof meta.npz === 'string' && meta.npz ? at(meta.npz) : undefined;
  const side: SideFile[] = [];
  for (const key of SIDE_KEYS) {
    const v = meta[key];
    if (typeof v === 'string' && v) side.push({ key, path: at(v) });
  }
  const reportNamed = typeof meta.accuracy_report === 'string' && meta.accuracy_report !== '';
  return { npzPath, reportPath: reportOfManifest(manifestPath, meta), reportNamed, side };
}

/** Reads and checks a side file as `apl-quant run` would (formats/tokenizer-json.ts); a problem instead of throwing. */
export async function loadSideFile(path: string, key: SideKey): Promise<SideState> {
  const problem = (p: 'missing' | 'unreadable', message: string): SideState => ({
    key,
    file: path,
    problem: p,
    message,
  });
  let bytes: Buffer;
  try {
    bytes = await readRegularFile(path, MAX_SIDE_BYTES);
  } catch (e) {
    if (e instanceof FormatError && e.problem === 'no such file') {
      return problem('missing', `${key} file not found: ${path}`);
    }
    return problem('unreadable', oneLine((e as Error).message));
  }
  const content = checkSideBytes(key, bytes);
  if (content.problem !== undefined) return problem('unreadable', oneLine(`${path}: ${content.problem}`));
  const { value } = content;
  if (key === 'tokenizer')
    return { key, file: path, ids: tokenizerIdCount(value), about: describeTokenizerJson(value) };
  if (key === 'tokenizer_config') return { key, file: path, about: describeTokenizerConfig(value) };
  return { key, file: path, about: describeGenerationConfig(value as Record<string, unknown>) };
}

/** The generation config's scalar settings in a line (temperature, top_p, max_length, token ids…). */
function describeGenerationConfig(g: Record<string, unknown>): string {
  const shown = Object.entries(g)
    .filter(
      ([k, v]) =>
        !k.startsWith('_') && k !== 'transformers_version' && ['number', 'boolean', 'string'].includes(typeof v),
    )
    .slice(0, 10)
    .map(([k, v]) => `${k} ${String(v)}`);
  return shown.length ? shown.join(' · ') : 'no settings (the defaults apply)';
}

/** Reads an NPZ's index (every member's dtype, shape, CRC-32); a problem instead of throwing. */
export async function loadNpzIndex(path: string): Promise<NpzState> {
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) return { problem: 'unreadable', file: path, message: `${path}: not a file` };
    size = st.size;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR')
      return { problem: 'missing', file: path, message: `NPZ file not found: ${path}` };
    return { problem: 'unreadable', file: path, message: `${path}: ${(e as Error).message}` };
  }
  let src: Awaited<ReturnType<typeof openFileSource>> | undefined;
  try {
    src = await openFileSource(path);
    const archive = await openNpz(src);
    try {
      return await npzIndexFromArchive(archive, path, size);
    } finally {
      await archive.close().catch(() => {});
    }
  } catch (e) {
    const msg = (e as Error).message ?? String(e);
    return { problem: 'unreadable', file: path, message: msg.startsWith(path) ? msg : `${path}: ${msg}` };
  } finally {
    await src?.close().catch(() => {});
  }
}

/** Reads an accuracy report; undefined when it is absent and was not named by the manifest. */
export async function loadReport(path: string, named: boolean): Promise<ReportState | undefined> {
  try {
    const st = await stat(path);
    if (!st.isFile() || st.size > MAX_REPORT_BYTES)
      return { problem: 'unreadable', file: path, message: `${path}: not a readable accuracy report` };
    const text = await readFile(path, 'utf8');
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      return { problem: 'unreadable', file: path, message: oneLine(`${path}: not JSON (${(e as Error).message})`) };
    }
    const r = toLoadedReport(value, path);
    return r ?? { problem: 'unreadable', file: path, message: `${path}: not an accuracy report (no "weights" array)` };
  } catch (e) {
    if (!named) return undefined;
    const code = (e as NodeJS.ErrnoException).code;
    return {
      problem: 'missing',
      file: path,
      message: code === 'ENOENT' ? `Accuracy report not found: ${path}` : `${path}: ${(e as Error).message}`,
    };
  }
}

interface Entry<T> {
  key: string;
  value: Promise<T>;
}

/** Caches loaded files by (path, size, mtime); `get` re-stats every time, so changes on disk are seen. */
export class FileCache {
  private readonly npz = new Map<string, Entry<NpzState>>();
  private readonly reports = new Map<string, Entry<ReportState | undefined>>();
  private readonly side = new Map<string, Entry<SideState>>();
  private static readonly MAX = 64;

  private async statKey(path: string): Promise<string> {
    try {
      const st = await stat(path);
      return `${st.size}:${st.mtimeMs}:${st.ino}`;
    } catch (e) {
      return `error:${(e as NodeJS.ErrnoException).code ?? 'unknown'}`;
    }
  }

  private async cached<T>(map: Map<string, Entry<T>>, id: string, path: string, load: () => Promise<T>): Promise<T> {
    const key = await this.statKey(path);
    const hit = map.get(id);
    if (hit && hit.key === key) return hit.value;
    const value = load();
    map.delete(id);
    map.set(id, { key, value });
    if (map.size > FileCache.MAX) map.delete(map.keys().next().value as string);
    return value;
  }

  getNpz(path: string): Promise<NpzState> {
    return this.cached(this.npz, path, path, () => loadNpzIndex(path));
  }

  getReport(path: string, named: boolean): Promise<ReportState | undefined> {
    return this.cached(this.reports, `${path}\0${named}`, path, () => loadReport(path, named));
  }

  getSide(path: string, key: SideKey): Promise<SideState> {
    return this.cached(this.side, `${path}\0${key}`, path, () => loadSideFile(path, key));
  }

  /** Drops what is cached for a path (e.g. on a file-watcher event). */
  invalidate(path: string): void {
    this.npz.delete(path);
    for (const k of this.side.keys()) if (k.startsWith(`${path}\0`)) this.side.delete(k);
    for (const k of this.reports.keys()) if (k.startsWith(`${path}\0`)) this.reports.delete(k);
  }
}
