// End-to-end accuracy statistics of a quantized model against its float base, per scored token (llama.cpp's
// `llama-perplexity --kl-divergence`): KLD = Σ p_base · (log p_base − log p_q), same top = argmax(q) == argmax(base),
// Δp = p_q(right token) − p_base(right token); plus both perplexities. Log-softmax runs in float64 on the float32
// logits. Only running sums and one float64 per token (its KLD, for the percentiles) are kept, so memory grows by
// 8 bytes per scored token, never with the vocabulary.
import type { EvalSummary, KldHistogram } from '../protocol';

export type { EvalSummary, KldHistogram };

/** The KLD histogram's bins: 4 per decade from 1e-6 to 100 nats (32 bins). */
export const KLD_HIST_LO = 1e-6;
export const KLD_HIST_PER_DECADE = 4;
export const KLD_HIST_DECADES = 8;

/** Counts per-token KLDs into log-spaced bins (KLD_HIST_*): see KldHistogram. */
export function kldHistogram(klds: ArrayLike<number>): KldHistogram {
  const n = KLD_HIST_PER_DECADE * KLD_HIST_DECADES;
  const edges = Array.from({ length: n + 1 }, (_, i) =>
    Number((KLD_HIST_LO * 10 ** (i / KLD_HIST_PER_DECADE)).toPrecision(6)),
  );
  const counts = new Array<number>(n).fill(0);
  let below = 0;
  let above = 0;
  for (let i = 0; i < klds.length; i++) {
    const k = klds[i];
    if (k >= edges[n]) {
      above++;
      continue;
    }
    if (!(k >= edges[0])) {
      below++;
      continue;
    }
    let b = Math.floor(Math.log10(k / KLD_HIST_LO) * KLD_HIST_PER_DECADE);
    b = Math.min(Math.max(b, 0), n - 1);
    // Rounding of the logarithm: keep edges[b] ≤ k < edges[b + 1].
    while (b > 0 && k < edges[b]) b--;
    while (b < n - 1 && k >= edges[b + 1]) b++;
    counts[b]++;
  }
  return { edges, counts, below, above };
}

/** The per-token figures. */
export interface TokenScore {
  nllBase: number;
  nllQuant: number;
  kld: number;
  sameTop: boolean;
  /** p_q(right) − p_base(right). */
  dp: number;
}

/** log Σ exp(x) of a row, in float64. */
function logSumExp(x: ArrayLike<number>, off: number, n: number): { lse: number; argmax: number } {
  let max = Number.NEGATIVE_INFINITY;
  let argmax = 0;
  for (let i = 0; i < n; i++) {
    const v = x[off + i];
    if (v > max) {
      max = v;
      argmax = i;
    }
  }
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.exp(x[off + i] - max);
  return { lse: max + Math.log(s), argmax };
}

/**
 * Scores one position: `base` and `quant` hold logits (row `row` of rows of `vocab` values), `target` the token that
 * follows. A non-finite logit makes the figures NaN rather than silently wrong.
 */
export function scoreToken(
  base: ArrayLike<number>,
  quant: ArrayLike<number>,
  target: number,
  vocab: number,
  row = 0,
): TokenScore {
  if (!Number.isInteger(target) || target < 0 || target >= vocab) {
    throw new RangeError(`target token ${target} is outside the vocabulary of ${vocab}`);
  }
  const off = row * vocab;
  const b = logSumExp(base, off, vocab);
  const q = logSumExp(quant, off, vocab);
  let kld = 0;
  for (let i = 0; i < vocab; i++) {
    const lb = base[off + i] - b.lse;
    const lq = quant[off + i] - q.lse;
    kld += Math.exp(lb) * (lb - lq);
  }
  const lbT = base[off + target] - b.lse;
  const lqT = quant[off + target] - q.lse;
  return { nllBase: -lbT, nllQuant: -lqT, kld, sameTop: b.argmax === q.argmax, dp: Math.exp(lqT) - Math.exp(lbT) };
}

/** Linear interpolation between closest ranks (numpy's default) of an ascending array; p in [0, 1]. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const x = Math.min(Math.max(p, 0), 1) * (n - 1);
  const lo = Math.floor(x);
  const hi = Math.min(lo + 1, n - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (x - lo);
}

/** Mean and standard error of the mean from Σx, Σx², n (llama.cpp's formula: sqrt((Σx²/n − mean²) / (n − 1))). */
function meanSe(sum: number, sum2: number, n: number): [number, number] {
  if (n === 0) return [Number.NaN, Number.NaN];
  const mean = sum / n;
  const v = sum2 / n - mean * mean;
  return [mean, n > 1 ? Math.sqrt(Math.max(v, 0) / (n - 1)) : 0];
}

/** Running sums over scored tokens. */
export class EvalAccumulator {
  private n = 0;
  private nllB = 0;
  private nllB2 = 0;
  private nllQ = 0;
  private nllQ2 = 0;
  private dl = 0;
  private dl2 = 0;
  private kldSum = 0;
  private kldSum2 = 0;
  private dpSum = 0;
  private dpSum2 = 0;
  private same = 0;
  private klds = new Float64Array(1024);

  get count(): number {
    return this.n;
  }

  add(s: TokenScore): void {
    if (this.n === this.klds.length) {
      const grown = new Float64Array(this.klds.length * 2);
      grown.set(this.klds);
      this.klds = grown;
    }
    this.klds[this.n++] = s.kld;
    this.nllB += s.nllBase;
    this.nllB2 += s.nllBase * s.nllBase;
    this.nllQ += s.nllQuant;
    this.nllQ2 += s.nllQuant * s.nllQuant;
    const d = s.nllQuant - s.nllBase;
    this.dl += d;
    this.dl2 += d * d;
    this.kldSum += s.kld;
    this.kldSum2 += s.kld * s.kld;
    this.dpSum += s.dp;
    this.dpSum2 += s.dp * s.dp;
    if (s.sameTop) this.same++;
  }

  /** Scores and adds one position (see scoreToken). */
  addRow(base: ArrayLike<number>, quant: ArrayLike<number>, target: number, vocab: number, row = 0): TokenScore {
    const s = scoreToken(base, quant, target, vocab, row);
    this.add(s);
    return s;
  }

  summary(): EvalSummary {
    const n = this.n;
    const [nllQ, nllQSe] = meanSe(this.nllQ, this.nllQ2, n);
    const [nllB, nllBSe] = meanSe(this.nllB, this.nllB2, n);
    const [lnRatio, lnRatioSe] = meanSe(this.dl, this.dl2, n);
    const [kldMean, kldSe] = meanSe(this.kldSum, this.kldSum2, n);
    const [dpMean, dpSe] = meanSe(this.dpSum, this.dpSum2, n);
    const sorted = this.klds.slice(0, n).sort();
    const same = n ? this.same / n : Number.NaN;
    const ppl = Math.exp(nllQ);
    const pplFloat = Math.exp(nllB);
    return {
      tokens_scored: n,
      ppl,
      ppl_se: ppl * nllQSe,
      ppl_float: pplFloat,
      ppl_float_se: pplFloat * nllBSe,
      ppl_ratio: Math.exp(lnRatio),
      ln_ppl_ratio: lnRatio,
      ln_ppl_ratio_se: lnRatioSe,
      kld_mean: kldMean,
      kld_se: kldSe,
      kld_median: percentile(sorted, 0.5),
      kld_p90: percentile(sorted, 0.9),
      kld_p99: percentile(sorted, 0.99),
      kld_p999: percentile(sorted, 0.999),
      kld_max: n ? sorted[n - 1] : Number.NaN,
      dp_mean: dpMean,
      dp_se: dpSe,
      rms_dp: n ? Math.sqrt(this.dpSum2 / n) : Number.NaN,
      same_top: same,
      same_top_se: n > 1 ? Math.sqrt((same * (1 - same)) / (n - 1)) : 0,
      kld_histogram: kldHistogram(sorted),
    };
  }
}
