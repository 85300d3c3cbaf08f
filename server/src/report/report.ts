// The accuracy report the converter writes (`<name>_accuracy_q<bits>.json`, beside the manifest): its shape, the
// guide's tolerances and the verdict rule. Per weight, the engine's error metrics and the relative error of a
// quantized matrix product on fixed random inputs; pass/fail against the per-bit-width tolerance, per weight, per
// layer and overall. Tolerances are what the user asked for; nothing here loosens them. Readers go through
// read.ts, which accepts any JSON and keeps what is well-typed.
import type { BitWidth, RoundingMode } from '../formats/manifest';

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
  pass: boolean;
  summary: { weights: number; passed: number; failed: number; kept_float: number; worst: string | null };
  weights: WeightReport[];
  layers: LayerReport[];
}

/** A weight passes when both its weight error and its output error are within its bit width's tolerance. */
export function judge(relError: number, outputRelError: number, tolerance: number): boolean {
  return (
    Number.isFinite(relError) && Number.isFinite(outputRelError) && relError <= tolerance && outputRelError <= tolerance
  );
}
