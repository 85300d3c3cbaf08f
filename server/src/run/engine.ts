// The one place that picks the forward-pass implementation. Today the TypeScript reference
// (native/forward-reference.ts); when native/forward.ts (the native forward) lands, switch the import below to its
// createModel / linear (it falls back to the reference by itself when the addon is absent, and handles --backend),
// and drop the ts-reference check in linearForward.
import { createReferenceModel as createModel, referenceLinear as linear } from '../../../native/forward-reference';
import type { ForwardModel, LinearWeight, ModelConfig, ModelWeights, RunOptions } from '../../../native/forward-types';
import { RunError } from './config';

type Backend = 'auto' | 'cpu' | 'gpu';

/** `--backend gpu` asks for CUDA; a backend that is not CUDA refuses rather than silently running on the CPU. */
function checkBackend(asked: Backend | undefined, running: string): void {
  if (asked === 'gpu' && !running.startsWith('cuda')) {
    throw new RunError(`--backend gpu: no GPU forward pass is available here (it would run on ${running})`);
  }
}

export function createForward(config: ModelConfig, weights: ModelWeights, opts: RunOptions): ForwardModel {
  const model = createModel(config, weights, opts);
  try {
    checkBackend(opts.backend, model.backend);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}

/** y = x · Ŵᵀ: [n, rows] float32. */
export function linearForward(
  w: LinearWeight,
  x: Float32Array,
  n: number,
  opts: { threads?: number; backend?: Backend } = {},
): Float32Array {
  checkBackend(opts.backend, 'ts-reference');
  return linear(w, x, n);
}
