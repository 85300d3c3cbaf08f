// The float model with each chunk's scored logits cached, so its pass runs once for every quantized model compared
// with it (test/unit/eval/brown.test.ts, scripts/kquant-vs-groupwise.ts). evaluateTokens ignores what the first-half
// call returns (it only fills the KV cache), so that call is deferred until the second half misses the cache.
import type { LogitsModel } from '../../server/src/eval/evaluate';

export function cachedLogits(m: LogitsModel, vocab: number): LogitsModel {
  const cache = new Map<string, Float32Array>();
  let pending: number[] = [];
  return {
    reset: () => {
      pending = [];
    },
    forward(toks, pos, all) {
      if (!all) {
        pending = Array.from(toks);
        return new Float32Array(vocab);
      }
      const key = `${pending.join(',')}|${pos}|${Array.from(toks).join(',')}`;
      let out = cache.get(key);
      if (!out) {
        m.reset();
        m.forward(pending, 0, false);
        out = m.forward(toks, pos, true).slice();
        cache.set(key, out);
      }
      return out;
    },
  };
}
