// Every name that crosses a process or webview boundary lives here, once: custom LSP requests and
// notifications, the converter's progress events (`apl-quant convert --json-progress`), and webview messages.
// Both sides import these types; nobody spells a method name as a string literal elsewhere.

// ---------------------------------------------------------------------------------------------------------
// Converter progress: one JSON object per line on stdout with --json-progress.

/** The engine a conversion asks for (CLI `--backend`, setting `apl.backend`); the type is the engine's own. */
import type { Backend } from '../../native/index';

export type { Backend };
export const BACKENDS = ['auto', 'cpu', 'gpu'] as const satisfies readonly Backend[];

export type ConvertStage = 'resolve' | 'download' | 'quantize' | 'write' | 'validate' | 'evaluate' | 'done';

export type ConvertEvent =
  | { type: 'start'; model: string; bits: number; out: string; backend: string; version: string }
  | { type: 'stage'; stage: ConvertStage; message?: string }
  | {
      type: 'progress';
      stage: ConvertStage;
      /** Tensor index (0-based) and count, when the stage works tensor by tensor. */
      tensor?: number;
      tensors?: number;
      name?: string;
      bytesDone: number;
      bytesTotal: number;
    }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; message: string }
  | {
      type: 'result';
      npz: string;
      manifest: string;
      report: string;
      pass: boolean;
      bitsPerWeight: number;
      outputBytes: number;
      sourceBytes: number;
      seconds: number;
    }
  | {
      type: 'error';
      /** Stable machine-readable kind, so the UI can offer the fix (e.g. set a token for `auth`). */
      code: ConvertErrorCode;
      message: string;
    };

export type ConvertErrorCode =
  | 'auth' // gated or private repo, missing or bad token
  | 'not-found' // repo, revision or file missing
  | 'unsupported' // architecture, dtype, pickle-only checkpoint
  | 'network'
  | 'exists' // output exists and --force not given
  | 'io' // disk full, unwritable folder
  | 'invalid-input' // malformed checkpoint
  | 'cancelled'
  | 'internal';

// ---------------------------------------------------------------------------------------------------------
// Custom LSP methods between the extension and the manifest language server.

export const LspMethods = {
  /** Server → client: the manifest summary behind the code lens (weights, size, verdict). */
  manifestSummary: 'apl/manifestSummary',
} as const;

export interface ManifestSummaryParams {
  uri: string;
}
export interface ManifestSummary {
  weights: number;
  quantized: number;
  totalBytes: number;
  bitsPerWeight: number | null;
  verdict: 'pass' | 'fail' | 'unknown';
  npz: string | null;
  report: string | null;
  /** The report's end-to-end figures (convert --eval), when it has them. */
  endToEnd?: EndToEndBrief | null;
}

/** The few end-to-end figures the code lens and hover show (from the report's `end_to_end`). */
export interface EndToEndBrief {
  kld_mean: number | null;
  same_top: number | null;
  ppl: number | null;
  ppl_float: number | null;
  ppl_ratio: number | null;
  ctx: number | null;
  chunks: number | null;
  pass: boolean | null;
  /** Why there are no figures: the evaluation failed (its one-line error). */
  error: string | null;
}

/**
 * A custom request typed once: its method, params and result. Plain data (no vscode-jsonrpc import), so this file
 * stays free of Node and editor modules; the server registers it with `onLspRequest` (server/src/server.ts) and a
 * client sends `sendRequest(r.method, params)` typed by `LspParams` / `LspResult`.
 */
export interface LspRequest<P, R> {
  readonly method: string;
  /** Type carrier only: never set at run time. */
  readonly types?: { params: P; result: R };
}
export type LspParams<T> = T extends LspRequest<infer P, unknown> ? P : never;
export type LspResult<T> = T extends LspRequest<unknown, infer R> ? R : never;

export const LspRequests = {
  /** The manifest summary behind the code lens; null when the document is not open. */
  manifestSummary: { method: LspMethods.manifestSummary } as LspRequest<ManifestSummaryParams, ManifestSummary | null>,
} as const;

/** Command ids the language server's code lenses and links refer to; the client registers them. */
export const CommandIds = {
  convertModel: 'apl.convertModel',
  setHfToken: 'apl.setHuggingFaceToken',
  clearHfToken: 'apl.clearHuggingFaceToken',
  openAccuracyReport: 'apl.openAccuracyReport',
  inspectNpz: 'apl.inspectNpz',
  selectBackend: 'apl.selectBackend',
  showOutput: 'apl.showOutput',
  tryModel: 'apl.tryModel',
  evaluateModel: 'apl.evaluateModel',
} as const;
export type CommandId = (typeof CommandIds)[keyof typeof CommandIds];

// ---------------------------------------------------------------------------------------------------------
// Webview messages (extension host ⇄ webview). Filled in by the UI: report and inspector.

/** Webview view types (VS Code `viewType`s) of the report panel and the inspector custom editor. */
export const WebviewViewTypes = {
  accuracyReport: 'apl.accuracyReport',
  npzInspector: 'apl.npzInspector',
  playground: 'apl.playground',
} as const;

/**
 * Sent by a webview after it has drawn something: what it shows, read back from its own DOM (the names in its
 * table rows). The host fires it as an event, so the real-VS-Code tests can check what the webview displays.
 */
export interface WebviewRendered {
  type: 'rendered';
  what: 'report' | 'members' | 'tensor' | 'error' | 'playground' | 'slice' | 'comparison';
  names: string[];
  /** The report's verdict text, the selected tensor, or the error shown. */
  detail?: string;
}

// Report panel. The report itself is the converter's JSON (`*_accuracy_q*.json`), sent as parsed; the webview
// normalises it (server/src/report/read.ts) and tolerates missing fields.
export type ReportToHost =
  | { type: 'ready' }
  | WebviewRendered
  | { type: 'openManifest' }
  | { type: 'openNpz' }
  /** "Evaluate End to End": run APL: Evaluate Model… on the manifest beside the report. */
  | { type: 'evaluate' }
  /** The user picked a weight in the table: reveal it in the manifest, when there is one. */
  | { type: 'revealWeight'; name: string };
export type HostToReport =
  | {
      type: 'report';
      report: unknown;
      title: string;
      /** The report file (fs path), kept in the panel state so the serializer can restore it. */
      file?: string;
      /** The manifest / archive beside it, when found: enables the buttons that open them. */
      manifest?: string | null;
      npz?: string | null;
    }
  | { type: 'error'; message: string };
/** The state the report webview keeps with `setState` (what the serializer receives after a reload). */
export interface ReportWebviewState {
  file?: string;
  sort?: { key: string; descending: boolean };
  filter?: string;
}

// NPZ inspector. Tensors are shown as a rows × cols matrix (rows = product of all but the last axis; a 1-D
// tensor is n × 1). Values travel in pages on request, never whole.
export interface InspectorMember {
  /** Member name as in the zip (e.g. `w_q4.npy`); the member of a `.npy` file is its base name. */
  name: string;
  dtype: string;
  shape: number[];
  elements: number;
  /** Bytes of the array data once inflated. */
  bytes: number;
  /** Bytes taken in the archive. */
  storedBytes: number;
  compressed: boolean;
  /** What this member is to the manifest beside the archive, when there is one. */
  role?: {
    weight: string;
    part: 'q' | 'q_scales' | 'q_zero_point' | 'q_codes' | 'q_d' | 'q_dmin' | 'float';
    bits: number;
    groupSize?: number;
  };
  /** Set when this member's header could not be read: the row is shown with the message. */
  error?: string;
  /** The shard file holding the tensor, in a sharded safetensors checkpoint. */
  shard?: string;
}
export interface InspectorHistogram {
  min: number;
  max: number;
  counts: number[];
}
export interface InspectorStats {
  count: number;
  min: number;
  max: number;
  mean: number;
  std: number;
  nan: number;
  inf: number;
  /** True when the figures come from an even sample of a tensor too large to read whole. */
  sampled: boolean;
}
export interface InspectorPreview {
  /** Downsampled grid (row-major), each cell the mean |value| of the block it covers. */
  rows: number;
  cols: number;
  values: number[];
  min: number;
  max: number;
}
export interface InspectorTensor {
  name: string;
  dtype: string;
  shape: number[];
  rows: number;
  cols: number;
  stats: InspectorStats;
  histogram: InspectorHistogram;
  preview: InspectorPreview | null;
  /** A string or bytes member: no statistics (only stats.count holds), its values are shown as text. */
  text?: boolean;
  /**
   * For the packed `q` member of a quantized weight: its unpacked integer codes (0 … 2^bits − 1), rows × cols of
   * the weight (the 'codes' view pages them), shown instead of the packed bytes' figures.
   */
  codes?: {
    bits: number;
    rows: number;
    cols: number;
    stats: InspectorStats;
    histogram: InspectorHistogram;
    preview: InspectorPreview | null;
  };
  /** For a quantized member described by the manifest beside the archive: the dequantized weight. */
  dequant?: {
    weight: string;
    bits: number;
    groupSize: number;
    rows: number;
    cols: number;
    stats: InspectorStats;
    histogram: InspectorHistogram;
    preview: InspectorPreview | null;
    /** The accuracy the converter recorded in the manifest (error against the float weights). */
    accuracy?: { rel_error?: number; snr_db?: number; cosine?: number; max_abs_error?: number; pass?: boolean };
    /**
     * The float weights from the source checkpoint the manifest names (a local folder, or the Hugging Face cache
     * snapshot of its repo and revision), when found: the error measured on the same sample, and the 'error' view.
     */
    source: {
      available: boolean;
      /** Where the weights were read from, or why they could not be. */
      detail: string;
      relError?: number;
      maxAbsError?: number;
      /** The error (dequantized − source) on the same sample: its statistics, histogram and heat map. */
      error?: { stats: InspectorStats; histogram: InspectorHistogram; preview: InspectorPreview | null };
    };
  };
}
/**
 * A 2-D slice of an N-d tensor: `rowAxis` down, `colAxis` across, every other axis k fixed at `index[k]` (the
 * entries at rowAxis and colAxis are ignored). Pages of a slice read only the elements they show.
 */
export interface InspectorSlice {
  rowAxis: number;
  colAxis: number;
  index: number[];
}
/** One side of a comparison: a member of the open file, or of another file (fs path). */
export interface InspectorOperand {
  name: string;
  file?: string;
}
/**
 * Two tensors of one shape compared value by value (a quantized member stands for its dequantized weight): the
 * difference d = b − a on the same sample of both, its statistics, histogram and heat map; relError ‖a − b‖/‖a‖,
 * cosine and SNR as the engine measures conversion accuracy (native compareMetrics, float32).
 */
export interface InspectorComparison {
  a: InspectorOperand & { dtype: string; shape: number[] };
  b: InspectorOperand & { dtype: string; shape: number[] };
  rows: number;
  cols: number;
  sampled: boolean;
  count: number;
  maxAbs: number;
  rms: number;
  relError: number;
  cosine: number;
  snrDb: number;
  diff: { stats: InspectorStats; histogram: InspectorHistogram; preview: InspectorPreview | null };
}
/**
 * raw: the stored values; codes: the unpacked integer codes of a q member; dequant: (q − zero) · scale; error:
 * dequantized − source float weights.
 */
export type InspectorView = 'raw' | 'codes' | 'dequant' | 'error' | 'diff';
export type InspectorKind = 'npz' | 'npy' | 'safetensors';
export type InspectorToHost =
  | { type: 'ready' }
  | WebviewRendered
  | { type: 'selectTensor'; name: string }
  /** Statistics, histogram and heat map of one 2-D slice of an N-d member (answered by a 'slice'). */
  | { type: 'slice'; name: string; slice: InspectorSlice }
  /** Compare member `a` of the open file with `b` (answered by a 'comparison'). */
  | { type: 'compare'; a: string; b: InspectorOperand }
  /** Ask the user for another file, then compare `name` with the same tensor there. */
  | { type: 'pickCompareFile'; name: string }
  | {
      type: 'page';
      requestId: number;
      name: string;
      /** 'diff': values of `compare` minus those of `name`, on the grid of both. */
      view: InspectorView;
      row: number;
      rowCount: number;
      col: number;
      colCount: number;
      /** Page the 2-D slice instead of the rows × cols grid (raw view). */
      slice?: InspectorSlice;
      compare?: InspectorOperand;
    };
export type HostToInspector =
  | {
      type: 'members';
      file: string;
      kind: InspectorKind;
      fileBytes: number;
      members: InspectorMember[];
      /** The manifest beside the archive that names it, when found. */
      manifest: string | null;
    }
  | { type: 'tensor'; tensor: InspectorTensor }
  | {
      type: 'slice';
      name: string;
      slice: InspectorSlice;
      rows: number;
      cols: number;
      stats: InspectorStats;
      histogram: InspectorHistogram;
      preview: InspectorPreview | null;
    }
  | { type: 'comparison'; comparison: InspectorComparison }
  /** Select this member (go to definition from a manifest). */
  | { type: 'select'; name: string }
  | {
      type: 'page';
      requestId: number;
      name: string;
      view: InspectorView;
      row: number;
      col: number;
      rowCount: number;
      colCount: number;
      /** Row-major rowCount × colCount; non-finite values as the strings 'NaN', 'Infinity', '-Infinity'. */
      values: (number | string)[];
    }
  /** `what`: 'compare' when a comparison failed (shown in the comparison section, not instead of the tensor). */
  | { type: 'error'; message: string; requestId?: number; name?: string; what?: 'compare' | 'slice' };

export type * from './protocol-run';
