// The accuracy report as the webview shows it: the layer × projection heat map, and the table's sorting and
// filtering, over the weights the one report reader gives (server/src/report/read.ts). Pure: no Node or DOM APIs,
// so the browser bundle (client/webview/report.ts) imports it and unit tests run it under node.
import type { ReportWeight } from '../report/read';

export interface HeatMap {
  layers: number[];
  projections: string[];
  /** cells[i][j]: relative error of layers[i] × projections[j], null where the report has no such weight. */
  cells: (number | null)[][];
  /** Weight name per cell, for tooltips and selection. */
  names: (string | null)[][];
  max: number;
}

const PROJ_ORDER = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

/** Layer × projection grid of relative errors; null when no weight names a layer and a projection. */
export function layerHeatMap(weights: readonly ReportWeight[]): HeatMap | null {
  const layers = new Set<number>();
  const projs = new Set<string>();
  for (const w of weights) {
    if (w.layer === null || w.projection === null) continue;
    layers.add(w.layer);
    projs.add(w.projection);
  }
  if (!layers.size) return null;
  const layerList = [...layers].sort((a, b) => a - b);
  const rank = (p: string) => {
    const i = PROJ_ORDER.indexOf(p);
    return i < 0 ? PROJ_ORDER.length : i;
  };
  const projList = [...projs].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const cells = layerList.map(() => projList.map((): number | null => null));
  const names = layerList.map(() => projList.map((): string | null => null));
  let max = 0;
  for (const w of weights) {
    if (w.layer === null || w.projection === null) continue;
    const i = layerList.indexOf(w.layer);
    const j = projList.indexOf(w.projection);
    names[i][j] = w.name;
    if (w.rel_error !== null) {
      cells[i][j] = w.rel_error;
      if (w.rel_error > max) max = w.rel_error;
    }
  }
  return { layers: layerList, projections: projList, cells, names, max };
}

export type SortKey =
  | 'name'
  | 'bits'
  | 'rel_error'
  | 'snr_db'
  | 'cosine'
  | 'max_abs_error'
  | 'output_rel_error'
  | 'pass';
export const SORT_KEYS: readonly SortKey[] = [
  'name',
  'bits',
  'rel_error',
  'snr_db',
  'cosine',
  'max_abs_error',
  'output_rel_error',
  'pass',
];

/** Natural order for names (layer 2 before layer 10); missing numbers always last, whatever the direction. */
export function sortWeights(weights: readonly ReportWeight[], key: SortKey, descending = false): ReportWeight[] {
  const dir = descending ? -1 : 1;
  const collator = new Intl.Collator('en', { numeric: true });
  return [...weights].sort((a, b) => {
    if (key === 'name') return dir * collator.compare(a.name, b.name);
    const va = key === 'pass' ? (a.pass === null ? null : Number(a.pass)) : a[key];
    const vb = key === 'pass' ? (b.pass === null ? null : Number(b.pass)) : b[key];
    if (va === null && vb === null) return collator.compare(a.name, b.name);
    if (va === null) return 1;
    if (vb === null) return -1;
    return dir * (va - vb) || collator.compare(a.name, b.name);
  });
}

/**
 * An `err>` / `err<` threshold as a fraction. Percent as the table shows it (`8.35`, `8.35%`); a value under 1
 * without `%` keeps its old meaning, a fraction (`0.1` is 10 %), since a relative error of 1 % or more is written
 * ≥ 1 in percent and a threshold under 1 % can say so with `%`. null when not a number.
 */
export function errThreshold(value: string): number | null {
  const m = /^([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)(%?)$/.exec(value);
  if (!m) return null;
  const x = Number(m[1]);
  if (!Number.isFinite(x)) return null;
  return m[2] || x >= 1 ? x / 100 : x;
}

/**
 * Filter text: words that must all match. A plain word matches the name (case-insensitive); `fail` / `pass`
 * match the verdict; `bits:4` the bit width; `layer:3` the layer; `err>8.35` / `err<5%` the relative error in
 * percent (`err>0.1`, under 1 without %, is the older fraction form: 10 %; see errThreshold).
 */
export function filterWeights(weights: readonly ReportWeight[], query: string): ReportWeight[] {
  const terms = query.trim().toLowerCase().split(/\s+/).filter(Boolean);
  if (!terms.length) return [...weights];
  const tests = terms.map((t): ((w: ReportWeight) => boolean) => {
    if (t === 'fail' || t === 'failed') return (w) => w.pass === false;
    if (t === 'pass' || t === 'passed') return (w) => w.pass === true;
    let m = /^bits[:=](\d+)$/.exec(t);
    if (m) {
      const b = Number(m[1]);
      return (w) => w.bits === b;
    }
    m = /^layer[:=](\d+)$/.exec(t);
    if (m) {
      const l = Number(m[1]);
      return (w) => w.layer === l;
    }
    m = /^err([<>])(.+)$/.exec(t);
    const x = m ? errThreshold(m[2]) : null;
    if (m && x !== null) {
      return m[1] === '>'
        ? (w) => w.rel_error !== null && w.rel_error > x
        : (w) => w.rel_error !== null && w.rel_error < x;
    }
    return (w) => w.name.toLowerCase().includes(t);
  });
  return weights.filter((w) => tests.every((f) => f(w)));
}
