// Picks the next token from logits: greedy (argmax, the lowest id on ties) at temperature 0, else softmax(logits / T)
// cut to the smallest set of most likely tokens whose probabilities sum to at least top_p, sampled with a seeded PRNG
// (mulberry32), so a seed reproduces a run.

import { mulberry32 } from '../common/random';

export interface SamplerOptions {
  temperature: number;
  topP: number;
  seed: number;
}

export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/** The probabilities sampling draws from (for tests): index → p over the kept top-p set, others 0. */
export function samplingDistribution(logits: ArrayLike<number>, temperature: number, topP: number): Float64Array {
  const n = logits.length;
  const p = new Float64Array(n);
  if (temperature <= 0) {
    p[argmax(logits)] = 1;
    return p;
  }
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < n; i++) {
    p[i] = Math.exp((logits[i] - max) / temperature);
    sum += p[i];
  }
  for (let i = 0; i < n; i++) p[i] /= sum;
  if (topP < 1) {
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => p[b] - p[a] || a - b);
    let cum = 0;
    let k = 0;
    while (k < n && cum < topP) cum += p[order[k++]];
    for (let j = k; j < n; j++) p[order[j]] = 0;
    for (let i = 0; i < n; i++) p[i] /= cum;
  }
  return p;
}

export function createSampler(o: SamplerOptions): (logits: ArrayLike<number>) => number {
  if (!(o.temperature >= 0)) throw new RangeError('temperature must be ≥ 0');
  if (!(o.topP > 0 && o.topP <= 1)) throw new RangeError('top_p must be in (0, 1]');
  const rand = mulberry32(o.seed);
  return (logits) => {
    if (o.temperature <= 0) return argmax(logits);
    const p = samplingDistribution(logits, o.temperature, o.topP);
    const u = rand();
    let cum = 0;
    let last = 0;
    for (let i = 0; i < p.length; i++) {
      if (p[i] === 0) continue;
      last = i;
      cum += p[i];
      if (u < cum) return i;
    }
    return last;
  };
}
