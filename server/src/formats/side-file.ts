// The files convert keeps beside the manifest so the output folder alone runs the model: tokenizer.json,
// tokenizer_config.json (with the chat template) and generation_config.json. One check of such a file's bytes, shared
// by convert (before it carries a checkpoint's copy) and the language server (diagnostics and hover): parsed as JSON,
// then its shape checked as `apl-quant run` checks it (formats/tokenizer-json.ts).
import { FormatError } from './errors';
import { tokenizerConfigProblem, tokenizerJsonProblem } from './tokenizer-json';

/** The manifest metadata keys naming the side files. */
export const SIDE_KEYS = ['tokenizer', 'tokenizer_config', 'generation_config'] as const;
export type SideKey = (typeof SIDE_KEYS)[number];

/** A side file larger than this is not read (real tokenizer.json files are 1–35 MB). */
export const MAX_SIDE_BYTES = 128 * 1024 * 1024;

/** What a side file's bytes hold: the parsed JSON, or why run would refuse it (one sentence, no file name). */
export type SideContent = { value: unknown; problem?: undefined } | { value?: undefined; problem: string };

/** Parses and checks the bytes of a side file of kind `key`. */
export function checkSideBytes(key: SideKey, bytes: Uint8Array): SideContent {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (e) {
    return { problem: `not JSON (${(e as Error).message})` };
  }
  const problem =
    key === 'tokenizer'
      ? tokenizerJsonProblem(value)
      : key === 'tokenizer_config'
        ? tokenizerConfigProblem(value)
        : value && typeof value === 'object' && !Array.isArray(value)
          ? undefined
          : 'the generation config is not a JSON object';
  return problem ? { problem } : { value };
}

/** A read failure of a side file as a sentence without the file name (FormatError's `problem`, else the message). */
export function sideReadProblem(e: unknown): string {
  return e instanceof FormatError ? e.problem : ((e as Error)?.message ?? String(e));
}
