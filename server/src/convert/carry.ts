// What convert carries beside the NPZ so the output folder alone runs the model (no network, no source checkpoint):
//  - the config values the forward pass needs, added to the manifest's model block (runConfigFields);
//  - the tokenizer (tokenizer.json, tokenizer_config.json with its chat template) and generation_config.json, copied
//    as `<name>_tokenizer_q<bits>.json`, `<name>_tokenizer_config_q<bits>.json`, `<name>_generation_config_q<bits>.json`
//    and named in the manifest's metadata (`tokenizer`, `tokenizer_config`, `generation_config`).
// The side files are read once when the conversion is planned (a regular file under the size limit, so a FIFO or a
// directory named tokenizer.json cannot stall or fail the conversion later) and checked as `apl-quant run` checks them
// (formats/side-file.ts): a problem is a warning, not a failure, since the weights convert the same. The bytes read
// are what is staged under a temporary name with the rest of the outputs, and renamed just before the manifest.
import { existsSync, readdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { ModelInfo } from '../formats/manifest';
import { checkSideBytes, MAX_SIDE_BYTES, sideReadProblem } from '../formats/side-file';
import { readRegularFileSync } from '../formats/source';
import { tokenizerIdCount } from '../formats/tokenizer-json';
import { ioError } from './errors';
import { removeStale } from './outputs';

/** The manifest model block's fields for running the model (docs/FORMAT.md), from a parsed config.json. */
export type RunConfigFields = Pick<
  ModelInfo,
  | 'head_dim'
  | 'rms_norm_eps'
  | 'rope_theta'
  | 'rope_scaling'
  | 'sliding_window'
  | 'hidden_act'
  | 'bos_token_id'
  | 'eos_token_id'
>;

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const int = (v: unknown): number | undefined => (Number.isInteger(v) && (v as number) >= 0 ? (v as number) : undefined);

/**
 * Reads the forward pass's values from config.json, filling what it leaves out with the defaults transformers'
 * config classes use for the family (rms_norm_eps 1e-6, rope_theta 10000, mistral's sliding_window 4096, gemma's
 * tanh GELU, head_dim = hidden / heads).
 */
export function runConfigFields(config: unknown, family: string): RunConfigFields {
  const c = (config && typeof config === 'object' ? config : {}) as Record<string, unknown>;
  const out: RunConfigFields = {};
  const hidden = int(c.hidden_size);
  const heads = int(c.num_attention_heads);
  const hd = int(c.head_dim) ?? (hidden && heads ? hidden / heads : undefined);
  if (hd !== undefined && Number.isInteger(hd)) out.head_dim = hd;
  out.rms_norm_eps = num(c.rms_norm_eps) ?? 1e-6;
  out.rope_theta = num(c.rope_theta) ?? 10000;
  const rs = c.rope_scaling;
  if (rs && typeof rs === 'object' && !Array.isArray(rs)) out.rope_scaling = rs as Record<string, unknown>;
  if (family === 'mistral') {
    out.sliding_window = c.sliding_window === null ? null : (int(c.sliding_window) ?? 4096);
  } else if (int(c.sliding_window) !== undefined && c.use_sliding_window !== false) {
    out.sliding_window = int(c.sliding_window)!;
  }
  const act =
    family === 'gemma'
      ? 'gelu_pytorch_tanh'
      : typeof c.hidden_act === 'string'
        ? c.hidden_act
        : typeof c.hidden_activation === 'string'
          ? c.hidden_activation
          : 'silu';
  out.hidden_act = act;
  const bos = int(c.bos_token_id);
  if (bos !== undefined) out.bos_token_id = bos;
  const eos = c.eos_token_id;
  if (int(eos) !== undefined) out.eos_token_id = eos as number;
  else if (Array.isArray(eos) && eos.length && eos.every((e) => int(e) !== undefined)) out.eos_token_id = eos;
  return out;
}

/** The files convert copies from the checkpoint folder, and the metadata key naming each copy. */
export const CARRIED = [
  { file: 'tokenizer.json', key: 'tokenizer', suffix: 'tokenizer' },
  { file: 'tokenizer_config.json', key: 'tokenizer_config', suffix: 'tokenizer_config' },
  { file: 'generation_config.json', key: 'generation_config', suffix: 'generation_config' },
] as const;
export type CarriedKey = (typeof CARRIED)[number]['key'];

/** `<name>_<suffix>_q<bits>.json`. */
export function carriedName(name: string, suffix: string, bits: number): string {
  return `${name}_${suffix}_q${bits}.json`;
}

export interface Carry {
  /** Final base names of the side files, for removeStale's stems. */
  stems: string[];
  /** Metadata entries (key → file name relative to the manifest) for the files carried. */
  metadata: Partial<Record<CarriedKey, string>>;
  /**
   * What is wrong with the checkpoint's side files, a sentence each naming the file: one that cannot be read is not
   * carried; one that `apl-quant run` would refuse is carried as it is (fixed in place, it runs).
   */
  warnings: string[];
  /** Writes the side files' bytes to their temporary names (once, right after planning; abort removes them). */
  stage(): void;
  /** Renames the staged files into place (call just before the manifest's rename). */
  commit(): void;
  /** Removes staged temporaries (after a failure). */
  abort(): void;
}

/**
 * Plans the side files of one conversion: `srcDir` the checkpoint folder, `outDir`/`name`/`bits` the outputs,
 * `vocabSize` the model's (config.json), against which the tokenizer's ids are checked.
 */
export function planCarry(srcDir: string, outDir: string, name: string, bits: number, vocabSize?: number): Carry {
  const present = new Set(existsSync(srcDir) ? readdirSync(srcDir) : []);
  // `.<stem>.tmp-<pid>` files of side files left by a killed run (its pid gone).
  removeStale(
    outDir,
    CARRIED.map((c) => carriedName(name, c.suffix, bits)),
    /^\.(.+)\.tmp-(\d+)$/,
  );
  const warnings: string[] = [];
  const runRefuses = 'apl-quant run will refuse it until it is fixed beside the manifest';
  const items = CARRIED.filter((c) => present.has(c.file)).flatMap((c) => {
    const src = join(srcDir, c.file);
    let bytes: Buffer;
    try {
      bytes = readRegularFileSync(src, MAX_SIDE_BYTES);
    } catch (e) {
      warnings.push(`${src}: ${sideReadProblem(e)}: not carried beside the output`);
      return [];
    }
    const content = checkSideBytes(c.key, bytes);
    if (content.problem !== undefined) {
      warnings.push(`${src}: ${content.problem}: carried as it is, but ${runRefuses}`);
    } else if (c.key === 'tokenizer' && vocabSize !== undefined) {
      const ids = tokenizerIdCount(content.value);
      if (ids > vocabSize) {
        warnings.push(
          `${src}: the tokenizer defines ${ids} ids but the model's vocabulary (vocab_size in config.json) has ${vocabSize}: carried as it is, but ${runRefuses}`,
        );
      }
    }
    const final = join(outDir, carriedName(name, c.suffix, bits));
    return [{ ...c, bytes, final, tmp: join(outDir, `.${basename(final)}.tmp-${process.pid}`) }];
  });
  const staged: string[] = [];
  return {
    stems: CARRIED.map((c) => carriedName(name, c.suffix, bits)),
    metadata: Object.fromEntries(items.map((i) => [i.key, basename(i.final)])),
    warnings,
    stage() {
      try {
        for (const i of items) {
          staged.push(i.tmp);
          writeFileSync(i.tmp, i.bytes);
          i.bytes = Buffer.alloc(0); // written: not held any longer
        }
      } catch (e) {
        throw ioError(e, `writing ${outDir}`);
      }
    },
    commit() {
      try {
        for (const i of items) renameSync(i.tmp, i.final);
      } catch (e) {
        throw ioError(e, `renaming into ${outDir}`);
      }
      staged.length = 0;
    },
    abort() {
      for (const f of staged) {
        try {
          unlinkSync(f);
        } catch {}
      }
      staged.length = 0;
    },
  };
}
