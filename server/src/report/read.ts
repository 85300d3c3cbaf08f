// The one reader of accuracy reports: whatever JSON a converter (this one, an older one, a hand edit) wrote, turned
// into a ReportModel with every field optional (null when absent or of the wrong type) and never a throw. The
// language server (hovers, code lens, verdicts), the inspector and the report webview all read reports through it.
// Pure: no Node or DOM APIs, so the browser bundle imports it too.

export interface ReportWeight {
  name: string;
  bits: number | null;
  rel_error: number | null;
  snr_db: number | null;
  cosine: number | null;
  max_abs_error: number | null;
  output_rel_error: number | null;
  pass: boolean | null;
  /** The tolerance this weight was judged against (its own, else the report's for its bit width). */
  tolerance: number | null;
  group_size: number | null;
  params: number | null;
  /** The report's layer, else parsed from the name; projection parsed from the name (q_proj, gate_proj, ...). */
  layer: number | null;
  projection: string | null;
}

/** The report's end_to_end section (convert --eval), every figure null when absent or of the wrong type. */
export interface EndToEndModel {
  ppl: number | null;
  ppl_float: number | null;
  ppl_ratio: number | null;
  kld_mean: number | null;
  kld_se: number | null;
  kld_median: number | null;
  kld_p90: number | null;
  kld_p99: number | null;
  kld_p999: number | null;
  kld_max: number | null;
  same_top: number | null;
  same_top_se: number | null;
  dp_mean: number | null;
  rms_dp: number | null;
  tokens_scored: number | null;
  ctx: number | null;
  chunks: number | null;
  text: string | null;
  text_sha256: string | null;
  seconds: number | null;
  /** Log-spaced bins of per-token KLD; null when absent or malformed. */
  histogram: { edges: number[]; counts: number[]; below: number; above: number } | null;
  thresholds: { kld_mean: number; same_top: number } | null;
  pass: boolean | null;
  /** The evaluation was asked for and failed: its one-line error (the figures are then all null). */
  error: string | null;
}

export interface ReportModel {
  model: string;
  source: string | null;
  revision: string | null;
  bits: number | null;
  group_size: number | string | null;
  mode: string | null;
  tool_version: string | null;
  backend: string | null;
  seconds: number | null;
  source_bytes: number | null;
  output_bytes: number | null;
  bits_per_weight: number | null;
  /** Tolerance at the report's bit width; `tolerances` holds the whole table (bits → relative error). */
  tolerance: number | null;
  tolerances: Record<string, number>;
  embeddings_bits: number | null;
  symmetric: boolean | null;
  params: number | null;
  /** The report's verdict; when absent, derived from the weights (null when nothing says). */
  pass: boolean | null;
  /** The report's own verdict as written (null when it has none): what the language server trusts. */
  verdict: boolean | null;
  /** What the verdict rests on, as the converter wrote it (null in older reports). */
  verdict_basis: string | null;
  /** End-to-end figures (convert --eval); null when the report has none. */
  end_to_end: EndToEndModel | null;
  weights: ReportWeight[];
  /** Problems found while reading the report (wrong types, missing weights), shown in the page. */
  warnings: string[];
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);
const bool = (v: unknown): boolean | null => (typeof v === 'boolean' ? v : null);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const LAYER_RE = /(?:^|[._])(?:layers?|h|blocks?)[._](\d+)(?:[._]|$)/;
const PROJ_RE =
  /(?:^|[._])([a-z0-9]+_proj|c_attn|c_proj|c_fc|dense(?:_h_to_4h|_4h_to_h)?|query_key_value|fc\d|w\d)(?:[._]|$)/;

/** Transformer layer index and projection name read from a tensor name, when it has them. */
export function parseWeightName(name: string): { layer: number | null; projection: string | null } {
  const l = LAYER_RE.exec(name);
  const p = PROJ_RE.exec(name);
  return { layer: l ? Number(l[1]) : null, projection: p ? p[1] : null };
}

const numArray = (v: unknown): number[] | null =>
  Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x)) ? (v as number[]) : null;

function readHistogram(v: unknown): EndToEndModel['histogram'] {
  if (!isObject(v)) return null;
  const edges = numArray(v.edges);
  const counts = numArray(v.counts);
  if (!edges || !counts || edges.length !== counts.length + 1 || !counts.length) return null;
  return { edges, counts, below: num(v.below) ?? 0, above: num(v.above) ?? 0 };
}

/** The end_to_end section, leniently; null when there is none. */
export function readEndToEnd(v: unknown, warnings: string[] = []): EndToEndModel | null {
  if (v === undefined || v === null) return null;
  if (!isObject(v)) {
    warnings.push('end_to_end is not an object; ignored.');
    return null;
  }
  const text = isObject(v.text) ? v.text : {};
  const t = isObject(v.thresholds) ? v.thresholds : {};
  const tk = num(t.kld_mean);
  const ts = num(t.same_top);
  return {
    ppl: num(v.ppl),
    ppl_float: num(v.ppl_float),
    ppl_ratio: num(v.ppl_ratio),
    kld_mean: num(v.kld_mean),
    kld_se: num(v.kld_se),
    kld_median: num(v.kld_median),
    kld_p90: num(v.kld_p90),
    kld_p99: num(v.kld_p99),
    kld_p999: num(v.kld_p999),
    kld_max: num(v.kld_max),
    same_top: num(v.same_top),
    same_top_se: num(v.same_top_se),
    dp_mean: num(v.dp_mean),
    rms_dp: num(v.rms_dp),
    tokens_scored: num(v.tokens_scored),
    ctx: num(v.ctx),
    chunks: num(v.chunks),
    text: str(text.name) ?? str(v.text),
    text_sha256: str(text.sha256) ?? str(v.text_sha256),
    seconds: num(v.seconds),
    histogram: readHistogram(v.kld_histogram),
    thresholds: tk !== null && ts !== null ? { kld_mean: tk, same_top: ts } : null,
    pass: bool(v.pass),
    error: str(v.error),
  };
}

/** Reads whatever the converter wrote into a ReportModel; never throws. */
export function normalizeReport(raw: unknown): ReportModel {
  const warnings: string[] = [];
  const r = isObject(raw) ? raw : {};
  if (!isObject(raw)) warnings.push('The report is not a JSON object.');
  const sizes = isObject(r.sizes) ? r.sizes : {};
  // `tolerance` is either one number or a table by bit width ({ "4": 0.1, "8": 0.02 }).
  const tolerances: Record<string, number> = {};
  if (isObject(r.tolerance)) {
    for (const [k, v] of Object.entries(r.tolerance)) if (num(v) !== null) tolerances[k] = v as number;
  }
  const bits = num(r.bits);
  const tolerance = num(r.tolerance) ?? (bits !== null ? (tolerances[String(bits)] ?? null) : null);
  const weights: ReportWeight[] = [];
  if (Array.isArray(r.weights)) {
    r.weights.forEach((w, i) => {
      if (!isObject(w) || typeof w.name !== 'string') {
        warnings.push(`weights[${i}] has no name; skipped.`);
        return;
      }
      const parsed = parseWeightName(w.name);
      weights.push({
        name: w.name,
        bits: num(w.bits),
        rel_error: num(w.rel_error),
        snr_db: num(w.snr_db),
        cosine: num(w.cosine),
        max_abs_error: num(w.max_abs_error),
        output_rel_error: num(w.output_rel_error),
        pass: bool(w.pass),
        tolerance: num(w.tolerance) ?? (num(w.bits) !== null ? tolerances[String(w.bits)] : undefined) ?? tolerance,
        group_size: num(w.group_size),
        params: num(w.params),
        ...parsed,
        layer: num(w.layer) ?? parsed.layer,
      });
    });
  } else if (isObject(raw)) {
    warnings.push('The report lists no weights.');
  }
  const verdict = bool(r.pass);
  let pass = verdict;
  if (pass === null && weights.some((w) => w.pass !== null)) pass = weights.every((w) => w.pass !== false);
  const groupSize = num(r.group_size) ?? str(r.group_size);
  return {
    model: str(r.model) ?? 'unknown model',
    source: str(r.source),
    revision: str(r.revision),
    bits,
    group_size: groupSize,
    mode: str(r.mode),
    tool_version: str(r.tool_version),
    backend: str(r.backend),
    seconds: num(r.seconds),
    source_bytes: num(sizes.source_bytes) ?? num(r.source_bytes),
    output_bytes: num(sizes.output_bytes) ?? num(r.output_bytes),
    bits_per_weight: num(sizes.bits_per_weight) ?? num(r.bits_per_weight),
    tolerance,
    tolerances,
    embeddings_bits: num(r.embeddings_bits),
    symmetric: bool(r.symmetric),
    params: num(sizes.params) ?? num(r.params),
    pass,
    verdict,
    verdict_basis: str(r.verdict_basis),
    end_to_end: readEndToEnd(r.end_to_end, warnings),
    weights,
    warnings,
  };
}

/** True when `raw` is an object with a `weights` array: the least a file must have to count as a report. */
export function looksLikeReport(raw: unknown): boolean {
  return isObject(raw) && Array.isArray(raw.weights);
}

/** A report tab's title: the model and its bit width ("Accuracy: tiny-llama q4"), so two reports tell apart. */
export function reportTitle(r: Pick<ReportModel, 'model' | 'bits'>): string {
  return `Accuracy: ${r.model}${r.bits === null ? '' : ` q${r.bits}`}`;
}
