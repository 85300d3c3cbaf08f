// The one place that picks the forward-pass implementation: the native forward (native/forward.ts), which runs
// packed weights on int8-quantized activations (per weight group) and falls back to the TypeScript reference
// (native/forward-reference.ts) by itself when the addon is absent. --backend and --threads go to it.
import { createModel, linear } from '../../../native/forward';
import type { ForwardModel, LinearWeight, ModelConfig, ModelWeights, RunOptions } from '../../../native/forward-types';
import { RunError } from './config';

type Backend = 'auto' | 'cpu' | 'gpu';

/** The engine's own errors (bad backend, threads) become RunErrors: one line, exit code 1. */
function asRunError(e: unknown): never {
  if (e instanceof RunError) throw e;
  throw new RunError((e as Error).message);
}

export function createForward(config: ModelConfig, weights: ModelWeights, opts: RunOptions): ForwardModel {
  try {
    return createModel(config, weights, opts);
  } catch (e) {
    return asRunError(e);
  }
}

/** y = x · Ŵᵀ: [n, rows] float32. */
export function linearForward(
  w: LinearWeight,
  x: Float32Array,
  n: number,
  opts: { threads?: number; backend?: Backend } = {},
): Float32Array {
  try {
    return linear(w, x, n, opts);
  } catch (e) {
    return asRunError(e);
  }
}
