// What a conversion is asked to do (ConvertOptions), checked and with every default filled in (Settings).
import { resolve } from 'node:path';
import { type Backend, DEFAULT_GROUP_SIZE, DEFAULT_MODE } from '../../../native/index';
import pkg from '../../../package.json';
import {
  BIT_WIDTHS_TEXT,
  type BitWidth,
  isBitWidth,
  QUANT_FORMATS,
  type QuantFormat,
  type RoundingMode,
} from '../formats/manifest';
import type { HubOptions } from '../hub';
import { DEFAULT_TOLERANCES, type Tolerances } from '../report';
import { ConvertError } from './errors';

export const TOOL_VERSION: string = pkg.version;

/**
 * Points a test can stop at, awaited where named (a seam for fault tests: a kill, a full disk). An error thrown
 * fails the run as one of its own would; nothing here is called unless a caller passes it.
 */
export interface ConvertHooks {
  /** After tensor `index` (0-based, in plan order) is written and its progress reported. */
  afterTensor?: (index: number, signal?: AbortSignal) => void | Promise<void>;
  /** After the temporary outputs are complete, just before they are renamed into place. */
  beforeCommit?: (signal?: AbortSignal) => void | Promise<void>;
}

export interface ConvertOptions {
  /** An alias (tinyllama, mistral-7b, ...), a Hub repo id (owner/name) or a local folder in the HF layout. */
  source: string;
  bits: BitWidth;
  /** Elements per group along a row, or 'row' (one group per row). Default 64. */
  groupSize?: number | 'row';
  /** Default false (asymmetric: a free zero point per group). */
  symmetric?: boolean;
  /** Default: the engine's DEFAULT_MODE ('optimized'). */
  mode?: RoundingMode;
  /** Bits for embed_tokens and lm_head. Default 8. */
  embeddingsBits?: BitWidth;
  /**
   * The quantization layout (`--format`): 'kquant' (two-level scales, 2 and 4 bits only; 8-bit embeddings stay
   * groupwise) or 'groupwise' (float16 scale and zero point per group). Absent: see defaultFormat. docs/FORMAT.md.
   */
  format?: QuantFormat;
  /** dtype of scales and zero points. Default f16 (a tensor whose scales overflow float16 switches to f32 by itself). */
  scaleDtype?: 'f16' | 'f32';
  /** Output folder. Default `models`. */
  outDir?: string;
  /** Output name stem. Default: the alias, or a slug of the repo id / folder name. */
  name?: string;
  backend?: Backend;
  threads?: number;
  revision?: string;
  token?: string;
  /** Replace an existing result. */
  force?: boolean;
  /** No network: the Hub cache only. */
  offline?: boolean;
  tolerance?: Partial<Tolerances>;
  /** Extra Hub options (endpoint, cacheDir, fetch) for tests and the extension. */
  hub?: Pick<HubOptions, 'endpoint' | 'cacheDir' | 'fetch' | 'retries' | 'retryDelayMs'>;
  /** Largest slice of one tensor (source bytes) handled at once. Default 32 MiB. */
  chunkBytes?: number;
  /** Rows of random input for the quantized matrix product check. Default 4. */
  evalInputs?: number;
  /**
   * `--eval`: after the conversion, compare the quantized model with the float source over a text and add the
   * figures to the report's `end_to_end` section (convert/eval-stage.ts). `text` defaults to the source folder's
   * heldout.txt; ctx and chunks to a quick check (256 tokens, 16 chunks).
   */
  eval?: { text?: string; ctx?: number; chunks?: number };
  /** Test seam: see ConvertHooks. */
  hooks?: ConvertHooks;
}

/**
 * The default `--format` where it applies (2 and 4 bits, no groupwise-only flag): kquant had the lower end-to-end
 * KLD at the same size on the trained model (README "Choosing --format", scripts/kquant-vs-groupwise.ts).
 */
export const DEFAULT_FORMAT: QuantFormat = 'kquant';

/**
 * The format used when `--format` is absent: DEFAULT_FORMAT, except groupwise at 1 and 8 bits (kquant has no such
 * widths) and when --group-size, --symmetric or --scale-dtype f32 asks for the groupwise layout.
 */
export function defaultFormat(o: Pick<ConvertOptions, 'bits' | 'groupSize' | 'symmetric' | 'scaleDtype'>): QuantFormat {
  if (DEFAULT_FORMAT !== 'kquant') return DEFAULT_FORMAT;
  const groupwiseOnly = o.groupSize !== undefined || o.symmetric === true || o.scaleDtype === 'f32';
  return (o.bits === 2 || o.bits === 4) && !groupwiseOnly ? 'kquant' : 'groupwise';
}

/** ConvertOptions checked, defaults applied. */
export interface Settings {
  bits: BitWidth;
  groupSize: number | 'row';
  mode: RoundingMode;
  symmetric: boolean;
  embeddingsBits: BitWidth;
  format: QuantFormat;
  scaleDtype: 'f16' | 'f32';
  tolerance: Tolerances;
  chunkBytes: number;
  nEval: number;
  /** Absolute. */
  outDir: string;
}

/** Checks the options a run cannot start without; throws an invalid-input ConvertError naming the flag. */
export function settingsFrom(o: ConvertOptions): Settings {
  const groupSize = o.groupSize ?? DEFAULT_GROUP_SIZE;
  const embeddingsBits = o.embeddingsBits ?? 8;
  if (!isBitWidth(o.bits)) throw new ConvertError('invalid-input', `--bits must be ${BIT_WIDTHS_TEXT} (got ${o.bits})`);
  if (!isBitWidth(embeddingsBits)) {
    throw new ConvertError('invalid-input', `--embeddings-bits must be ${BIT_WIDTHS_TEXT} (got ${embeddingsBits})`);
  }
  if (groupSize !== 'row' && !(Number.isInteger(groupSize) && groupSize >= 1)) {
    throw new ConvertError('invalid-input', `--group-size must be a positive integer or 'row' (got ${groupSize})`);
  }
  const format = o.format ?? defaultFormat(o);
  if (!QUANT_FORMATS.includes(format)) {
    throw new ConvertError('invalid-input', `--format must be ${QUANT_FORMATS.join(' or ')} (got ${format})`);
  }
  if (format === 'kquant' && o.bits !== 2 && o.bits !== 4) {
    throw new ConvertError('invalid-input', `--format kquant needs --bits 2 or 4 (got ${o.bits})`);
  }
  if (format === 'kquant' && (o.groupSize !== undefined || o.symmetric || o.scaleDtype === 'f32')) {
    throw new ConvertError(
      'invalid-input',
      '--format kquant has fixed groups and float16 super-scales: --group-size, --symmetric and --scale-dtype do not apply',
    );
  }
  return {
    bits: o.bits,
    format,
    groupSize,
    mode: o.mode ?? DEFAULT_MODE,
    symmetric: o.symmetric ?? false,
    embeddingsBits,
    scaleDtype: o.scaleDtype ?? 'f16',
    tolerance: { ...DEFAULT_TOLERANCES, ...o.tolerance },
    chunkBytes: Math.max(1, o.chunkBytes ?? 32 * 1024 * 1024),
    nEval: Math.max(1, Math.floor(o.evalInputs ?? 4)),
    outDir: resolve(o.outDir ?? 'models'),
  };
}

/** Parses `4=0.1,8=0.02` (or repeated flags joined by commas) on top of the defaults. */
export function parseTolerances(spec: string | undefined, base: Tolerances = { ...DEFAULT_TOLERANCES }): Tolerances {
  const out = { ...base };
  if (!spec) return out;
  for (const part of spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^([1248])\s*=\s*([0-9]*\.?[0-9]+(?:e-?\d+)?)(%?)$/i.exec(part);
    if (!m)
      throw new ConvertError('invalid-input', `--tolerance: expected BITS=VALUE (e.g. 4=0.1 or 4=10%), got '${part}'`);
    const v = Number(m[2]) / (m[3] ? 100 : 1);
    if (!(v > 0)) throw new ConvertError('invalid-input', `--tolerance: ${part} must be positive`);
    out[Number(m[1]) as BitWidth] = v;
  }
  return out;
}
