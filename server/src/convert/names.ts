// A conversion's file names, built and parsed here and nowhere else: in the output folder,
//   <name>_quantized_q<bits>.npz   <name>_manifest_q<bits>.json   <name>_accuracy_q<bits>.json
// and the lookups from one of them to its siblings (the language server, the inspector and the report view use these).
import { basename, dirname, extname, join, resolve } from 'node:path';

export type OutputKind = 'npz' | 'manifest' | 'report';

export interface OutputPaths {
  npz: string;
  manifest: string;
  report: string;
}

const WORD: Record<OutputKind, string> = { npz: 'quantized', manifest: 'manifest', report: 'accuracy' };
const EXT: Record<OutputKind, string> = { npz: 'npz', manifest: 'json', report: 'json' };
const KIND_OF: Record<string, OutputKind> = { quantized: 'npz', manifest: 'manifest', accuracy: 'report' };
const OUTPUT_RE = /^(.*)_(quantized|manifest|accuracy)_q(\d+)\.(npz|json)$/;

/** `<name>_<quantized|manifest|accuracy>_q<bits>.<npz|json>`; bits as a number or as the digits written. */
export function outputName(name: string, kind: OutputKind, bits: number | string): string {
  return `${name}_${WORD[kind]}_q${bits}.${EXT[kind]}`;
}

/** The three outputs of converting `name` at `bits` into `outDir`. */
export function outputPaths(outDir: string, name: string, bits: number): OutputPaths {
  return {
    npz: join(outDir, outputName(name, 'npz', bits)),
    manifest: join(outDir, outputName(name, 'manifest', bits)),
    report: join(outDir, outputName(name, 'report', bits)),
  };
}

/** Reads a file name the converter writes back into its parts (bits: the digits as written); else undefined. */
export function parseOutputName(file: string): { name: string; kind: OutputKind; bits: string } | undefined {
  const m = OUTPUT_RE.exec(basename(file));
  if (!m) return undefined;
  const kind = KIND_OF[m[2]];
  if (EXT[kind] !== m[4]) return undefined;
  return { name: m[1], kind, bits: m[3] };
}

/** True for `<name>_manifest_q<bits>.json`. */
export function isOutputManifestName(file: string): boolean {
  return parseOutputName(file)?.kind === 'manifest';
}

/**
 * The manifest a command given a converter output acts on: a `.npz` must be `<name>_quantized_q<bits>.npz` and means
 * the manifest beside it; any other path is taken as the manifest itself.
 */
export function manifestOfOutput(path: string): string {
  if (extname(path) !== '.npz') return path;
  const o = parseOutputName(basename(path));
  if (o?.kind !== 'npz')
    throw new Error(`${path}: not a converter output (<name>_quantized_q<bits>.npz); open its manifest`);
  return join(dirname(path), outputName(o.name, 'manifest', o.bits));
}

/**
 * The lock of a conversion's outputs: `.<manifest name>.apl-lock` beside the manifest, holding the pid of the process
 * that writes them (a conversion, or `eval --update-report`; formats/pid-lock.ts).
 */
export function outputsLockPath(manifestPath: string): string {
  return join(dirname(manifestPath), `.${basename(manifestPath)}.apl-lock`);
}

/**
 * The accuracy report of a manifest: the one its metadata.accuracy_report names (relative to the manifest's folder),
 * else `<name>_accuracy_q<bits>.json` beside `<name>_manifest_q<bits>.json`; undefined when neither applies.
 */
export function reportOfManifest(manifestPath: string, metadata: Record<string, unknown>): string | undefined {
  const named = metadata.accuracy_report;
  if (typeof named === 'string' && named) return resolve(dirname(manifestPath), named);
  return reportBesideManifest(manifestPath);
}

/** `<dir>/<name>_accuracy_q<bits>.json` for `<dir>/<name>_manifest_q<bits>.json`; undefined for other names. */
export function reportBesideManifest(manifestPath: string): string | undefined {
  const p = parseOutputName(manifestPath);
  if (p?.kind !== 'manifest') return undefined;
  return join(dirname(manifestPath), outputName(p.name, 'report', p.bits));
}

/**
 * Whether a manifest file name belongs to a report file name by their stems: the report's name without its
 * `_accuracy`/`_report` ending and `_q<bits>` starts the manifest's, with the same `_q<bits>` when the report has one.
 * A loose match for reports not named by a manifest's metadata.accuracy_report (renamed or hand-made ones).
 */
export function manifestMatchesReport(manifestFile: string, reportFile: string): boolean {
  const base = basename(reportFile);
  const stem = base.replace(/_(accuracy|report)(_report)?(_q\d+)?\.json$/, '');
  const bits = /_q(\d+)\.json$/.exec(base)?.[1];
  const n = basename(manifestFile);
  return n.startsWith(stem) && (!bits || n.endsWith(`_q${bits}.json`));
}
