// The one place that picks the forward-pass implementation. Today the TypeScript reference
// (native/forward-reference.ts); when native/forward.ts (the native forward) lands, switch these two imports to its
// createModel / linear: it falls back to the reference by itself when the addon is absent.
import { createReferenceModel as createModel, referenceLinear } from '../../../native/forward-reference';
import type { ForwardModel, LinearWeight, ModelConfig, ModelWeights, RunOptions } from '../../../native/forward-types';

export function createForward(config: ModelConfig, weights: ModelWeights, opts: RunOptions): ForwardModel {
  return createModel(config, weights, opts);
}

/** y = x · Ŵᵀ: [n, rows] float32. */
export function linearForward(
  w: LinearWeight,
  x: Float32Array,
  n: number,
  _opts: { threads?: number; backend?: 'auto' | 'cpu' | 'gpu' } = {},
): Float32Array {
  return referenceLinear(w, x, n);
}
