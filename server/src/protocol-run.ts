// The run, eval and playground half of the protocol (split from protocol.ts, which re-exports it: import from
// protocol.ts as before). `apl-quant run/eval --json` events, the end-to-end figures, the playground's messages.
import type { WebviewRendered } from './protocol';

// ---------------------------------------------------------------------------------------------------------
// Running a model: `apl-quant run … --json` prints one of these per line on stdout (the playground reads them).
// Declared here once; server/src/cli/run.ts writes them.

export type RunStopReason = 'eos' | 'max_tokens' | 'context' | 'interrupted';

export type RunEvent =
  /** The prompt's token ids (after the chat template, when --chat). */
  | { type: 'prompt'; ids: number[] }
  /** One generated token and the text it adds (may be empty while a multi-byte character is incomplete). */
  | { type: 'token'; id: number; text: string }
  | {
      type: 'done';
      prompt_tokens: number;
      generated_tokens: number;
      prefill_tokens_per_s: number;
      decode_tokens_per_s: number;
      peak_rss_bytes: number;
      /** Why generation stopped. */
      stop: RunStopReason;
      /** What ran the forward pass (e.g. ts-reference, cpu-avx2). */
      backend: string;
    }
  /** A failure after the run started (bad input is also reported as one line on stderr, exit code 1). */
  | { type: 'error'; message: string };

// ---------------------------------------------------------------------------------------------------------
// `apl-quant eval --json-progress`: one of these per line on stdout (the command "APL: Evaluate Model…" reads them).

export type EvalEvent =
  /** A chunk of the text has been scored by both models. */
  | { type: 'progress'; done: number; total: number }
  /** The figures; `report` is the accuracy report they were stored in (--update-report), else null. */
  | { type: 'result'; result: EvalResult; report: string | null; pass: boolean | null };

// ---------------------------------------------------------------------------------------------------------
// End-to-end accuracy: `apl-quant eval --json` prints one EvalResult; the accuracy report stores the same object
// as its `end_to_end` section. Probabilities and rates are fractions (0..1), `_se` are standard errors of the mean.

/** The statistics of a quantized model against its float base over the scored tokens (llama.cpp's protocol). */
export interface EvalSummary {
  tokens_scored: number;
  /** Perplexity of the quantized model and of the float base, with standard errors. */
  ppl: number;
  ppl_se: number;
  ppl_float: number;
  ppl_float_se: number;
  /** ppl / ppl_float, and its logarithm (mean NLL difference over paired tokens) with its standard error. */
  ppl_ratio: number;
  ln_ppl_ratio: number;
  ln_ppl_ratio_se: number;
  /** KL divergence (nats) of the quantized distribution from the float one, per token. */
  kld_mean: number;
  kld_se: number;
  kld_median: number;
  kld_p90: number;
  kld_p99: number;
  kld_p999: number;
  kld_max: number;
  /** Δp = p_quant(right token) − p_float(right token): mean and root mean square. */
  dp_mean: number;
  dp_se: number;
  rms_dp: number;
  /** Share of tokens where both models rank the same token first. */
  same_top: number;
  same_top_se: number;
  /** Per-token KLD counted in log-spaced bins (see KldHistogram). */
  kld_histogram: KldHistogram;
}

/**
 * Per-token KLD (nats) in log-spaced bins: counts[i] tokens have edges[i] ≤ KLD < edges[i+1]; `below` counts those
 * under edges[0] (zero included), `above` those at or over the last edge.
 */
export interface KldHistogram {
  edges: number[];
  counts: number[];
  below: number;
  above: number;
}

export interface EvalResult extends EvalSummary {
  /** The manifest evaluated, its bits (from the manifest's quantization) and the float source it was compared to. */
  manifest: string;
  bits: number | null;
  source: string;
  /** The text: its path, sha256 of its bytes, and its length in tokens (BOS included). */
  text: string;
  text_sha256: string;
  text_tokens: number;
  /** Context per chunk, chunks evaluated and full chunks the text holds; the second half of each chunk is scored. */
  ctx: number;
  chunks: number;
  chunks_available: number;
  /** What ran each model ('ts-reference', 'cpu-avx2', …). */
  backend: string;
  backend_float: string;
  seconds: number;
}

// ---------------------------------------------------------------------------------------------------------
// Playground webview ("APL: Try Model…"). Generation runs in child processes (`apl-quant run … --json`), never in
// the extension host; the host forwards their RunEvents. `side` tells the quantized model from the float source.

export type PlaygroundSide = 'quantized' | 'float';
export interface PlaygroundRequest {
  prompt: string;
  /** 0 is greedy. */
  temperature: number;
  maxTokens: number;
  /** Render the model's chat template around the prompt (`--chat`), with an optional system message. */
  chat: boolean;
  system?: string;
  /** Run the same prompt through the float source checkpoint beside the quantized model. */
  compare: boolean;
}
export type PlaygroundToHost =
  | { type: 'ready' }
  | ({ type: 'generate' } & PlaygroundRequest)
  | { type: 'stop' }
  | WebviewRendered;
export type HostToPlayground =
  | {
      type: 'init';
      title: string;
      manifest: string;
      /** The source checkpoint is at hand: the float model can run beside the quantized one. */
      floatAvailable: boolean;
      /** The model has a chat template (chat mode possible). */
      chatTemplate: boolean;
      /** Given to the command (`apl.tryModel(uri, { prompt, … })`): fill the form and generate at once. */
      request?: Partial<PlaygroundRequest> & { prompt: string };
    }
  | { type: 'started'; side: PlaygroundSide }
  | { type: 'event'; side: PlaygroundSide; event: RunEvent }
  /** The child process ended; `error` is its last stderr line when it failed. */
  | { type: 'exit'; side: PlaygroundSide; code: number | null; error?: string }
  | { type: 'error'; message: string };
