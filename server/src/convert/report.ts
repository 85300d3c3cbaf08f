// The accuracy report (the guide's step 5): per weight, the engine's error metrics and the relative error of a
// quantized matrix product on fixed random inputs; pass/fail against the per-bit-width tolerance, per weight, per
// layer and overall. Tolerances are what the user asked for; nothing here loosens them.
import type { BitWidth, RoundingMode } from '../formats/manifest';
import { ConvertError } from './errors';

export type Tolerances = Record<BitWidth, number>;

/** The guide's tolerances: relative error allowed per bit width. */
export const DEFAULT_TOLERANCES: Readonly<Tolerances> = Object.freeze({ 1: 0.5, 2: 0.2, 4: 0.1, 8: 0.02 });

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

/** Per-weight sums that let layers aggregate exactly: ‖W‖² with the weight's own relative error. */
export interface WeightSums {
  refSq: number;
}

export function layerAggregates(
  weights: readonly WeightReport[],
  sums: ReadonlyMap<string, WeightSums>,
): LayerReport[] {
  const by = new Map<number, WeightReport[]>();
  for (const w of weights) {
    if (w.layer === null) continue;
    const list = by.get(w.layer) ?? [];
    list.push(w);
    by.set(w.layer, list);
  }
  return [...by.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([layer, ws]) => {
      let ref = 0;
      let err = 0;
      for (const w of ws) {
        const r = sums.get(w.name)?.refSq ?? 0;
        ref += r;
        err += r * w.rel_error * w.rel_error;
      }
      return {
        layer,
        weights: ws.length,
        params: ws.reduce((a, w) => a + w.params, 0),
        rel_error: ref > 0 ? Math.sqrt(err / ref) : 0,
        max_rel_error: Math.max(...ws.map((w) => w.rel_error)),
        max_output_rel_error: Math.max(...ws.map((w) => w.output_rel_error)),
        pass: ws.every((w) => w.pass),
      };
    });
}

/** A weight passes when both its weight error and its output error are within its bit width's tolerance. */
export function judge(relError: number, outputRelError: number, tolerance: number): boolean {
  return (
    Number.isFinite(relError) && Number.isFinite(outputRelError) && relError <= tolerance && outputRelError <= tolerance
  );
}

const pct = (v: number) => `${(v * 100).toFixed(2)}%`;

/** The human summary printed at the end of a CLI run (no --json-progress). */
export function formatSummary(r: AccuracyReport, paths: { npz: string; manifest: string; report: string }): string {
  const rows: string[][] = [['weight', 'bits', 'rel err', 'out err', 'SNR dB', 'tol', '']];
  for (const w of r.weights) {
    rows.push([
      w.name,
      String(w.bits),
      pct(w.rel_error),
      pct(w.output_rel_error),
      w.snr_db.toFixed(1),
      pct(w.tolerance),
      w.pass ? 'ok' : 'FAIL',
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const lines = rows.map((row) =>
    row.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '),
  );
  lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  const mb = (b: number) => `${(b / 1e6).toFixed(2)} MB`;
  lines.push(
    '',
    `model ${r.model} (${r.source}${r.revision ? ` @ ${r.revision.slice(0, 12)}` : ''}), ${r.bits} bits, group ${r.group_size}, ${r.mode}, backend ${r.backend}`,
    `size ${mb(r.sizes.source_bytes)} → ${mb(r.sizes.output_bytes)} (${r.sizes.bits_per_weight.toFixed(2)} bits/weight, ${(r.sizes.source_bytes / Math.max(1, r.sizes.output_bytes)).toFixed(2)}x smaller) in ${r.seconds.toFixed(2)} s`,
    `accuracy: ${r.summary.passed}/${r.summary.weights} weights within tolerance${r.summary.kept_float ? `, ${r.summary.kept_float} tensors kept as float` : ''} → ${r.pass ? 'PASS' : `FAIL (worst: ${r.summary.worst})`}`,
    `wrote ${paths.npz}`,
    `      ${paths.manifest}`,
    `      ${paths.report}`,
  );
  return lines.join('\n');
}
