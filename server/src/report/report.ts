// The accuracy report the converter writes (`<name>_accuracy_q<bits>.json`, beside the manifest): its shape, the
// guide's tolerances and the verdict rule. Per weight, the engine's error metrics and the relative error of a
// quantized matrix product on fixed random inputs; pass/fail against the per-bit-width tolerance, per weight, per
// layer and overall. Tolerances are what the user asked for; nothing here loosens them. Readers go through
// read.ts, which accepts any JSON and keeps what is well-typed.
import type { BitWidth, RoundingMode } from '../formats/manifest';
import type { EvalSummary } from '../protocol';

export type Tolerances = Record<BitWidth, number>;

/** The guide's tolerances: relative error allowed per bit width. */
export const DEFAULT_TOLERANCES: Readonly<Tolerances> = Object.freeze({ 1: 0.5, 2: 0.2, 4: 0.1, 8: 0.02 });

export interface WeightReport {
  name: string;
  bits: BitWidth;
  group_size: number;
  shape: number[];
  params: number;
  layer: number | null;
  rel_error: number;
  snr_db: number;
  cosine: number;
  max_abs_error: number;
  output_rel_error: number;
  tolerance: number;
  pass: boolean;
}

export interface LayerReport {
  layer: number;
  weights: number;
  params: number;
  /** ‖W−Ŵ‖/‖W‖ over all of the layer's quantized weights together. */
  rel_error: number;
  max_rel_error: number;
  max_output_rel_error: number;
  pass: boolean;
}

export interface AccuracyReport {
  model: string;
  source: string;
  revision: string | null;
  bits: BitWidth;
  group_size: number | 'row';
  symmetric: boolean;
  mode: RoundingMode;
  embeddings_bits: BitWidth;
  tool_version: string;
  backend: string;
  seconds: number;
  sizes: { source_bytes: number; output_bytes: number; bits_per_weight: number; params: number };
  tolerance: Tolerances;
  /** How output_rel_error was measured: x (inputs × cols, fixed seed) · Ŵᵀ with the engine's qmatmul vs x · Wᵀ. */
  /** Rows of x: `inputs`, raised to reach `min_outputs` products for small weights, at most `max_inputs`. */
  evaluation: { inputs: number; min_outputs: number; max_inputs: number; rows: string; seed: number; metric: string };
  /** The overall verdict: every weight within tolerance and, when end_to_end has figures, those within theirs. */
  pass: boolean;
  /** What `pass` rests on, in words, with the thresholds used (see verdictBasis). */
  verdict_basis: string;
  summary: { weights: number; passed: number; failed: number; kept_float: number; worst: string | null };
  /** `convert --eval`: the quantized model against its float source over a text (see EndToEndReport). */
  end_to_end?: EndToEndReport | EndToEndFailure;
  weights: WeightReport[];
  layers: LayerReport[];
}

/** A weight passes when both its weight error and its output error are within its bit width's tolerance. */
export function judge(relError: number, outputRelError: number, tolerance: number): boolean {
  return (
    Number.isFinite(relError) && Number.isFinite(outputRelError) && relError <= tolerance && outputRelError <= tolerance
  );
}

// ---------------------------------------------------------------------------------------------------------
// End to end (`convert --eval`): llama.cpp's KLD protocol over a text, the figures `apl-quant eval --json` prints.

/** What end-to-end figures must reach at a bit width: mean KLD at most, same-top rate at least. */
export interface EndToEndThresholds {
  kld_mean: number;
  same_top: number;
}

/**
 * The end-to-end thresholds per bit width (docs/REPORT.md explains them): a few times the mean KLD llama.cpp
 * publishes for Llama-2-7B at about that many bits (q8_0 0.00037, q4_K_M 0.0127, q2_K 0.109), and a same-top rate
 * a few points under its figures (98.85 %, 94.67 %, 85.6 %), since a small model's flatter distributions and a
 * plain group-wise format cost more. 1 bit has no published reference; its threshold only catches a broken model.
 */
export const E2E_THRESHOLDS: Readonly<Record<BitWidth, EndToEndThresholds>> = Object.freeze({
  8: { kld_mean: 0.005, same_top: 0.97 },
  4: { kld_mean: 0.05, same_top: 0.9 },
  2: { kld_mean: 0.3, same_top: 0.75 },
  1: { kld_mean: 1, same_top: 0.5 },
});

/** The end_to_end section: EvalSummary's figures (kld_histogram included) and how they were measured. */
export interface EndToEndReport extends EvalSummary {
  /** Tokens per chunk, chunks evaluated, full chunks the text holds (the second half of each chunk is scored). */
  ctx: number;
  chunks: number;
  chunks_available: number;
  /** The text: its file name, the sha256 of its bytes, its length in tokens (BOS included). */
  text: { name: string; sha256: string; tokens: number };
  /** What ran the quantized and the float model. */
  backend: string;
  backend_float: string;
  seconds: number;
  thresholds: EndToEndThresholds;
  pass: boolean;
}

/** The end-to-end check was asked for but could not run: its one-line error. The conversion itself stands. */
export interface EndToEndFailure {
  error: string;
}

export function isEndToEndFailure(e: EndToEndReport | EndToEndFailure | undefined): e is EndToEndFailure {
  return e !== undefined && typeof (e as EndToEndFailure).error === 'string';
}

/** End-to-end figures against their thresholds. */
export function judgeEndToEnd(e: Pick<EvalSummary, 'kld_mean' | 'same_top'>, t: EndToEndThresholds): boolean {
  return (
    Number.isFinite(e.kld_mean) && Number.isFinite(e.same_top) && e.kld_mean <= t.kld_mean && e.same_top >= t.same_top
  );
}

const pctText = (x: number) => `${Number((x * 100).toPrecision(4))} %`;

/**
 * The verdict's basis in words: the per-weight rule with the tolerances used, then the end-to-end figures against
 * their thresholds (or why there are none).
 */
export function verdictBasis(
  r: Pick<AccuracyReport, 'summary' | 'tolerance' | 'weights' | 'bits' | 'embeddings_bits'> & {
    end_to_end?: EndToEndReport | EndToEndFailure;
  },
): string {
  const used = [...new Set([r.bits, ...r.weights.map((w) => w.bits)])].sort((a, b) => b - a);
  const tols = used.map((b) => `${pctText(r.tolerance[b])} at ${b} bits`).join(', ');
  const s = r.summary;
  const weights = `per weight: ${s.passed} of ${s.weights} weights have relative error and output error within tolerance (${tols}) — ${s.failed ? 'FAIL' : 'pass'}`;
  const e = r.end_to_end;
  if (!e) return `${weights}; no end-to-end check (convert --eval adds one)`;
  if (isEndToEndFailure(e))
    return `${weights}; the end-to-end check failed to run (${e.error}), so the verdict rests on the weights alone`;
  const t = e.thresholds;
  return (
    `${weights}; end to end (${e.tokens_scored} tokens of ${e.text.name}, ctx ${e.ctx}, ${e.chunks} chunks): ` +
    `mean KLD ${e.kld_mean.toPrecision(3)} (threshold ≤ ${t.kld_mean}) and same top ${pctText(e.same_top)} ` +
    `(threshold ≥ ${pctText(t.same_top)}) — ${e.pass ? 'pass' : 'FAIL'}`
  );
}
