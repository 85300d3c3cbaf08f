// Pure helpers for the Convert Model command: the request the quick picks build, the CLI arguments it becomes,
// and the size estimates the picks show. No `vscode` import: unit-tested under plain node.
import {
  BIT_WIDTHS_TEXT,
  type BitWidth,
  groupsPerRow,
  isBitWidth,
  matrixView,
  packedRowBytes,
  QUANT_FORMATS,
  type QuantFormat,
  type RoundingMode,
} from '../../../server/src/formats/manifest';
import { BACKENDS, type Backend } from '../../../server/src/protocol';
import { DEFAULT_TOLERANCES, type Tolerances } from '../../../server/src/report/report';

export { BACKENDS, type Backend };

/** What one conversion needs. Also the options object `apl.convertModel` accepts (tests skip the quick picks). */
export interface ConvertRequest {
  /** An alias (`tinyllama`), a Hub repo id (`owner/name`) or an absolute local folder. */
  model: string;
  bits: BitWidth;
  /** Elements per group along a row, or 'row' for one group per row. */
  groupSize: number | 'row';
  symmetric: boolean;
  /** `--format`: 'groupwise' when absent; 'kquant' (2 and 4 bits) ignores groupSize and symmetric. */
  format?: QuantFormat;
  backend: Backend;
  /** Absolute output folder. */
  outDir: string;
  force?: boolean;
  revision?: string;
  /** The CLI's --mode, --embeddings-bits and --tolerance (absent: the CLI's defaults). */
  mode?: RoundingMode;
  embeddingsBits?: BitWidth;
  tolerance?: string;
  /** `--eval`: the end-to-end check after converting; `evalText` its `--eval-text` (absent: the model's heldout.txt). */
  eval?: boolean;
  evalText?: string;
}

/** The remembered choices (globalState) and the `apl.*` defaults share this shape. */
export interface ConvertDefaults {
  bits: BitWidth;
  groupSize: number | 'row';
  symmetric: boolean;
  format?: QuantFormat;
  backend: Backend;
  outDir?: string;
  lastModel?: string;
  mode?: RoundingMode;
  embeddingsBits?: BitWidth;
  tolerance?: string;
  eval?: boolean;
  evalText?: string;
}

/**
 * The defaults the picks start from: a setting the user wrote (`explicit`) wins over the value remembered from the
 * last run, which wins over a setting's default (issue 15: apl.convert.bits 1 lost to the 8 of a failed run).
 */
export function mergeDefaults(
  settings: ConvertDefaults,
  explicit: ReadonlySet<keyof ConvertDefaults>,
  last: Partial<ConvertDefaults>,
): ConvertDefaults {
  const out: ConvertDefaults = { ...settings };
  for (const [k, v] of Object.entries(last) as [keyof ConvertDefaults, unknown][]) {
    if (v === undefined || explicit.has(k) || k === 'backend') continue;
    (out as unknown as Record<string, unknown>)[k] = v;
  }
  return out;
}

/**
 * The format the picks start from: `apl.convert.format`, except that a group size or symmetric setting the user
 * wrote (without writing the format too) asks for groupwise, as `--group-size`/`--symmetric` do on the CLI.
 */
export function settingsFormat(format: QuantFormat, explicit: ReadonlySet<keyof ConvertDefaults>): QuantFormat {
  if (explicit.has('format')) return format;
  return explicit.has('groupSize') || explicit.has('symmetric') ? 'groupwise' : format;
}

export { isBitWidth };

/**
 * The request fields the defaults give (the explorer's and a partial request's starting point, and the picks'
 * result): an empty tolerance is left out, the end-to-end check only when on. No format: each caller decides it.
 */
export function requestFields(d: ConvertDefaults) {
  return {
    bits: d.bits,
    groupSize: d.groupSize,
    symmetric: d.symmetric,
    backend: d.backend,
    outDir: d.outDir,
    mode: d.mode,
    embeddingsBits: d.embeddingsBits,
    tolerance: d.tolerance || undefined,
    ...(d.eval ? { eval: true, evalText: d.evalText } : {}),
  };
}

/**
 * The `format` a request carries: kquant where the defaults ask for it and the bits allow it (2 and 4), otherwise
 * none, which `cliArgs` turns into the groupwise flags.
 */
export function requestFormat(format: QuantFormat | undefined, bits: number | undefined): { format?: 'kquant' } {
  return format === 'kquant' && (bits === 2 || bits === 4) ? { format: 'kquant' } : {};
}

/**
 * A request from an options object (tests, other extensions) over the defaults. The object's own fields win; the
 * defaults' format (`apl.convert.format`) applies only where the object names no format and asks for no
 * groupwise-only field (groupSize, symmetric), as the CLI decides between `--format` and `--group-size`.
 */
export function requestFromOptions(d: ConvertDefaults, given: Partial<ConvertRequest>): Partial<ConvertRequest> {
  const groupwise = given.groupSize !== undefined || given.symmetric !== undefined;
  return {
    ...requestFields(d),
    ...(groupwise ? {} : requestFormat(d.format, given.bits ?? d.bits)),
    ...given,
  };
}

/** Checks an options object handed to the command (from a test or another extension); returns the problem. */
export function checkRequest(r: Partial<ConvertRequest>): string | undefined {
  if (typeof r.model !== 'string' || !r.model.trim()) return 'model: expected an alias, a repo id or a folder';
  if (!isBitWidth(r.bits)) return `bits: expected ${BIT_WIDTHS_TEXT}, got ${String(r.bits)}`;
  if (r.groupSize !== 'row' && !(Number.isInteger(r.groupSize) && (r.groupSize as number) > 0)) {
    return `groupSize: expected a positive integer or 'row', got ${String(r.groupSize)}`;
  }
  if (typeof r.symmetric !== 'boolean') return 'symmetric: expected true or false';
  if (r.format !== undefined && !QUANT_FORMATS.includes(r.format)) return `format: expected groupwise or kquant`;
  if (r.format === 'kquant' && r.bits !== 2 && r.bits !== 4) return 'format kquant: bits must be 2 or 4';
  if (!BACKENDS.includes(r.backend as Backend)) return `backend: expected auto, cpu or gpu, got ${String(r.backend)}`;
  if (typeof r.outDir !== 'string' || !r.outDir) return 'outDir: expected a folder';
  return undefined;
}

/** The `apl-quant` arguments for a request (after the CLI script path). */
export function cliArgs(r: ConvertRequest): string[] {
  const a = ['convert', r.model, '--bits', String(r.bits)];
  if (r.format === 'kquant') a.push('--format', 'kquant');
  else a.push('--group-size', String(r.groupSize), r.symmetric ? '--symmetric' : '--asymmetric');
  a.push('--backend', r.backend, '--out', r.outDir, '--json-progress');
  if (r.mode) a.push('--mode', r.mode);
  if (r.embeddingsBits) a.push('--embeddings-bits', String(r.embeddingsBits));
  if (r.tolerance?.trim()) a.push('--tolerance', r.tolerance.trim());
  if (r.revision) a.push('--revision', r.revision);
  if (r.force) a.push('--force');
  if (r.eval) {
    a.push('--eval');
    if (r.evalText?.trim()) a.push('--eval-text', r.evalText.trim());
  }
  return a;
}

/**
 * Estimated output bytes for `params` weights at `bits`: packed values plus a float16 scale and zero point per
 * group (32 bits per group). Embeddings and norms are ignored: this is the figure a quick pick shows ("≈").
 */
export function estimateOutputBytes(params: number, bits: BitWidth, groupSize: number | 'row', cols = 4096): number {
  const group = groupSize === 'row' ? cols : groupSize;
  return Math.round((params * bits) / 8 + (params / group) * 4);
}

/** Bytes an NPZ member costs beyond its data: the .npy header (128) and the ZIP local and central entries. */
const MEMBER_OVERHEAD = 128 + 30 + 46 + 2 * 64;

/**
 * Estimated NPZ bytes for a checkpoint whose tensors are known (a local folder's safetensors headers): the
 * converter's own plan (embeddings and head at `embeddingsBits`, 1-D tensors kept as float), packed values, f16
 * scales and zero points, kept tensors and the members' headers. undefined when the plan refuses a tensor.
 */
export function estimateFromTensors(
  tensors: readonly TensorInfoLike[],
  o: { bits: BitWidth; groupSize: number | 'row'; symmetric: boolean; embeddingsBits?: BitWidth },
): number {
  let bytes = 0;
  for (const t of tensors) {
    const { rows, cols } = matrixView(t.shape);
    if (t.shape.length >= 2 && FLOATS.has(t.dtype) && rows > 0 && cols > 0) {
      // server/src/convert/plan.ts: embeddings and head at embeddingsBits; packed values, f16 scale and zero point.
      const bits = EMBEDDING_OR_HEAD.test(t.name) ? (o.embeddingsBits ?? 8) : o.bits;
      const group = o.groupSize === 'row' ? cols : Math.min(o.groupSize, cols);
      bytes += rows * packedRowBytes(cols, bits) + 2 * rows * groupsPerRow(cols, group) * 2 + 3 * MEMBER_OVERHEAD;
    } else {
      // Kept as float (BF16 widened to float32, as numpy has no bfloat16).
      const size = t.dtype === 'F16' ? 2 : t.dtype === 'F64' || t.dtype === 'I64' ? 8 : 4;
      bytes += t.shape.reduce((a, b) => a * b, 1) * size + MEMBER_OVERHEAD;
    }
  }
  return Math.round(bytes);
}

const FLOATS = new Set(['F32', 'F16', 'BF16']);
const EMBEDDING_OR_HEAD = /(^|\.)(embed_tokens|lm_head|wte|embed_in|embed_out)(\.|$)/;

/** A tensor as a safetensors header lists it. */
export interface TensorInfoLike {
  name: string;
  dtype: string;
  shape: number[];
}

/** Parameters of a checkpoint downloaded as bf16/f16 (2 bytes a weight). */
export function paramsFromDownloadBytes(bytes: number): number {
  return bytes / 2;
}

/** A group-size setting value (number; 0 means per row) as the request's form. */
export function groupSizeFromSetting(v: unknown): number | 'row' {
  if (v === 'row' || v === 0) return 'row';
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : 64;
}

/** VS Code's variable for the first workspace folder, as users type it in settings. */
const WORKSPACE_VAR = ['$', '{workspaceFolder}'].join('');

/** `${workspaceFolder}` and `~` in the output-folder setting. */
export function expandFolder(setting: string, workspaceFolder: string | undefined, home: string): string | undefined {
  let s = setting.trim();
  if (!s) return workspaceFolder ? `${workspaceFolder}/models` : undefined;
  if (s.includes(WORKSPACE_VAR)) {
    if (!workspaceFolder) return undefined;
    s = s.split(WORKSPACE_VAR).join(workspaceFolder);
  }
  if (s === '~' || s.startsWith('~/')) s = home + s.slice(1);
  return s;
}

/** `${workspaceFolder}` in a tasks.json string field (VS Code substitutes variables only for shell and process tasks). */
export function expandWorkspaceFolder(s: string, workspaceFolder: string | undefined): string {
  return workspaceFolder ? s.split(WORKSPACE_VAR).join(workspaceFolder) : s;
}

/** The tolerance table a request's --tolerance spec gives (the guide's where it says nothing or is malformed). */
export function tolerancesOf(spec: string | undefined): Tolerances {
  const out: Tolerances = { ...DEFAULT_TOLERANCES };
  for (const part of (spec ?? '').split(',')) {
    const m = /^\s*([1248])\s*=\s*([0-9.]+)(%?)\s*$/.exec(part);
    const v = m ? Number(m[2]) / (m[3] ? 100 : 1) : Number.NaN;
    if (m && v > 0) out[Number(m[1]) as BitWidth] = v;
  }
  return out;
}
