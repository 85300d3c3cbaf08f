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
