// Every name that crosses a process or webview boundary lives here, once: custom LSP requests and
// notifications, the converter's progress events (`apl-quant convert --json-progress`), and webview messages.
// Both sides import these types; nobody spells a method name as a string literal elsewhere.

// ---------------------------------------------------------------------------------------------------------
// Converter progress: one JSON object per line on stdout with --json-progress.

export type ConvertStage = 'resolve' | 'download' | 'quantize' | 'write' | 'validate' | 'done';

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
}

/** Command ids the language server's code lenses and links refer to; the client registers them. */
export const CommandIds = {
  convertModel: 'apl.convertModel',
  setHfToken: 'apl.setHuggingFaceToken',
  clearHfToken: 'apl.clearHuggingFaceToken',
  openAccuracyReport: 'apl.openAccuracyReport',
  inspectNpz: 'apl.inspectNpz',
  selectBackend: 'apl.selectBackend',
  showOutput: 'apl.showOutput',
} as const;
export type CommandId = (typeof CommandIds)[keyof typeof CommandIds];

// ---------------------------------------------------------------------------------------------------------
// Webview messages (extension host ⇄ webview). Filled in by the UI: report and inspector.

export type ReportToHost = { type: 'ready' } | { type: 'openManifest' };
export type HostToReport = { type: 'report'; report: unknown; title: string };

export type InspectorToHost =
  | { type: 'ready' }
  | { type: 'selectTensor'; name: string }
  | { type: 'page'; name: string; offset: number; count: number; requestId: number };
export type HostToInspector =
  | { type: 'members'; file: string; members: unknown[] }
  | { type: 'tensor'; name: string; stats: unknown; histogram: unknown; preview: unknown }
  | { type: 'page'; requestId: number; name: string; offset: number; values: number[] }
  | { type: 'error'; message: string };
