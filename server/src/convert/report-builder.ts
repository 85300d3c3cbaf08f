// The accuracy report a conversion writes (the shape lives in server/src/report): the run's settings, sizes, how
// the output error was measured, the per-weight results, the per-layer aggregates and the overall verdict.

import { bitsPerWeight } from '../common/format';
import { type AccuracyReport, verdictBasis, type WeightReport } from '../report';
import { EVAL_MAX_INPUTS, EVAL_MIN_OUTPUTS, EVAL_SEED, layerAggregates, type WeightSums } from './accuracy';
import type { Settings } from './options';
import { TOOL_VERSION } from './options';
import type { Resolved } from './source';

export interface RunFacts {
  source: Resolved;
  settings: Settings;
  backend: string;
  seconds: number;
  sourceBytes: number;
  outputBytes: number;
  totalParams: number;
  /** Tensors stored as float. */
  keptFloat: number;
}

export function buildReport(
  f: RunFacts,
  weights: WeightReport[],
  sums: ReadonlyMap<string, WeightSums>,
): AccuracyReport {
  const s = f.settings;
  const failed = weights.filter((w) => !w.pass);
  const worst = weights.reduce<WeightReport | null>(
    (m, w) => (!m || w.rel_error / w.tolerance > m.rel_error / m.tolerance ? w : m),
    null,
  );
  const report: AccuracyReport = {
    model: f.source.name,
    source: f.source.source,
    revision: f.source.revision,
    bits: s.bits,
    group_size: s.groupSize,
    symmetric: s.symmetric,
    mode: s.mode,
    embeddings_bits: s.embeddingsBits,
    tool_version: TOOL_VERSION,
    backend: f.backend,
    seconds: f.seconds,
    sizes: {
      source_bytes: f.sourceBytes,
      output_bytes: f.outputBytes,
      bits_per_weight: bitsPerWeight(f.outputBytes, f.totalParams) ?? 0,
      params: f.totalParams,
    },
    tolerance: s.tolerance,
    evaluation: {
      inputs: s.nEval,
      min_outputs: EVAL_MIN_OUTPUTS,
      max_inputs: EVAL_MAX_INPUTS,
      rows: 'all rows when rows × inputs ≤ min_outputs, else an evenly spaced sample giving min_outputs products',
      seed: EVAL_SEED,
      metric: 'output_rel_error = ‖x·Ŵᵀ − x·Wᵀ‖ / ‖x·Wᵀ‖, x ~ N(0, 1) fixed; rel_error = ‖W − Ŵ‖ / ‖W‖',
    },
    pass: failed.length === 0,
    verdict_basis: '',
    summary: {
      weights: weights.length,
      passed: weights.length - failed.length,
      failed: failed.length,
      kept_float: f.keptFloat,
      worst: worst?.name ?? null,
    },
    weights,
    layers: layerAggregates(weights, sums),
  };
  report.verdict_basis = verdictBasis(report);
  return report;
}
