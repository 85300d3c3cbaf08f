// The report webview's end-to-end section (convert --eval): perplexity float vs quantized, the same-top rate, the
// KLD figures and their distribution (a histogram over log-spaced bins), against the thresholds the verdict used;
// and the panel's "what these numbers mean". Browser side; the data comes from the one reader (report/read.ts).

import { formatNumber, formatPercent, formatSeconds } from '../../server/src/common/format';
import type { EndToEndModel, ReportModel } from '../../server/src/report/read';
import { chartSvg, h, s, yAxisLabel } from './_dom';

const item = (k: string, v: string | Node) => [h('dt', {}, k), h('dd', {}, v)];
const verdict = (pass: boolean | null) =>
  h(
    'span',
    { class: pass === null ? 'badge unknown' : pass ? 'badge pass' : 'badge fail' },
    pass === null ? '—' : pass ? 'pass' : 'FAIL',
  );

/** Superscript exponents for the histogram's decade labels (1e-3 → 10⁻³). */
function decade(v: number): string {
  const e = Math.round(Math.log10(v));
  const sup: Record<string, string> = {
    '-': '⁻',
    0: '⁰',
    1: '¹',
    2: '²',
    3: '³',
    4: '⁴',
    5: '⁵',
    6: '⁶',
    7: '⁷',
    8: '⁸',
    9: '⁹',
  };
  return e === 0 ? '1' : e === 1 ? '10' : `10${[...String(e)].map((c) => sup[c] ?? c).join('')}`;
}

/** Per-token KLD counts over log-spaced bins; the empty bins at both ends trimmed; the mean marked. */
function histogram(e: EndToEndModel) {
  const hist = e.histogram;
  if (!hist) return h('p', { class: 'empty' }, 'No KLD distribution in this report.');
  let lo = hist.counts.findIndex((c) => c > 0);
  let hi = hist.counts.length - 1 - [...hist.counts].reverse().findIndex((c) => c > 0);
  if (lo < 0) {
    lo = 0;
    hi = hist.counts.length - 1;
  }
  // At least two decades shown, whole bins.
  lo = Math.max(0, lo - 1);
  hi = Math.min(hist.counts.length - 1, Math.max(hi + 1, lo + 7));
  const bins = hist.counts.slice(lo, hi + 1);
  const extra = (hist.below ? 1 : 0) + (hist.above ? 1 : 0);
  const bw = 22;
  const H = 140;
  const left = 48;
  // Room above the bars for the mean and threshold labels.
  const top = 34;
  const n = bins.length + extra;
  const W = left + n * bw + 10;
  const max = Math.max(1, ...bins, hist.below, hist.above);
  const y = (c: number) => top + H - (c / max) * H;
  const svg = chartSvg(W, H + top + 40, 'per-token KLD distribution', {
    class: 'chart kld-histogram',
    'data-testid': 'kld-histogram',
  });
  svg.append(
    yAxisLabel(top, H, 'tokens'),
    s('text', { class: 'label tick', x: left - 4, y: top + 4, 'text-anchor': 'end' }, String(max)),
    s('text', { class: 'label tick', x: left - 4, y: top + H + 4, 'text-anchor': 'end' }, '0'),
  );
  let x = left;
  const bar = (count: number, title: string, cls = 'bar') => {
    svg.append(
      s(
        'rect',
        { class: cls, x: x + 1, y: y(count), width: bw - 2, height: Math.max(count ? 1 : 0, y(0) - y(count)) },
        s('title', {}, title),
      ),
    );
    x += bw;
  };
  if (hist.below) bar(hist.below, `${hist.below} tokens with KLD below ${formatNumber(hist.edges[0])}`, 'bar outside');
  bins.forEach((c, i) => {
    const a = hist.edges[lo + i];
    const b = hist.edges[lo + i + 1];
    const x0 = x;
    bar(c, `${c} tokens with ${formatNumber(a)} ≤ KLD < ${formatNumber(b)}`);
    if (Math.abs(Math.log10(a) - Math.round(Math.log10(a))) < 1e-6) {
      svg.append(
        s('line', { class: 'grid', x1: x0, x2: x0, y1: top + H, y2: top + H + 4 }),
        s('text', { class: 'label tick', x: x0, y: top + H + 16, 'text-anchor': 'middle' }, decade(a)),
      );
    }
  });
  if (hist.above)
    bar(
      hist.above,
      `${hist.above} tokens with KLD of ${formatNumber(hist.edges.at(-1) ?? null)} or more`,
      'bar outside',
    );
  // The mean and its threshold, where they fall on the log axis.
  const xOf = (v: number) => {
    const e0 = hist.edges[lo];
    const per = 1 / Math.log10(hist.edges[1] / hist.edges[0]);
    return left + (hist.below ? bw : 0) + Math.log10(v / e0) * per * bw;
  };
  const mark = (v: number | null | undefined, cls: string, label: string, dy: number) => {
    if (v === null || v === undefined || !(v > 0)) return;
    const xv = xOf(v);
    if (xv < left || xv > x) return;
    svg.append(
      s('line', { class: cls, x1: xv, x2: xv, y1: top - 30 + dy, y2: top + H }),
      s('text', { class: `label ${cls}-label`, x: xv + 3, y: top - 30 + dy, 'text-anchor': 'start' }, label),
    );
  };
  mark(e.kld_mean, 'mean', `mean ${formatNumber(e.kld_mean, 3)}`, 10);
  mark(e.thresholds?.kld_mean, 'tolerance', `threshold ${formatNumber(e.thresholds?.kld_mean ?? null, 3)}`, 24);
  svg.append(s('text', { class: 'label', x: left, y: H + top + 34 }, 'KLD per token (nats, log scale)'));
  return h('div', { class: 'chart-scroll' }, svg);
}

/** The end-to-end section: figures, verdict against the thresholds, the KLD histogram; or how to get it. */
export function endToEndSection(r: ReportModel) {
  const e = r.end_to_end;
  const title = h('h2', {}, 'End to end (quantized vs float model)');
  if (!e) {
    return h(
      'section',
      { 'data-testid': 'end-to-end' },
      title,
      h(
        'p',
        { class: 'empty', 'data-testid': 'end-to-end-missing' },
        'No end-to-end figures in this report. For this conversion, run APL: Evaluate Model… (or apl-quant eval <manifest> --text FILE --update-report) to run the quantized model beside the float one over a text and add mean KLD, same-top rate and perplexity here; convert with --eval (or the setting apl.convert.eval) to have them every time.',
      ),
    );
  }
  if (e.error) {
    return h(
      'section',
      { 'data-testid': 'end-to-end' },
      title,
      h(
        'p',
        { class: 'advice', role: 'note', 'data-testid': 'end-to-end-error' },
        `The end-to-end check failed to run: ${e.error}. The verdict rests on the weights alone.`,
      ),
    );
  }
  const t = e.thresholds;
  const ratio = e.ppl_ratio === null ? '' : ` (ratio ${e.ppl_ratio.toFixed(4)})`;
  const items = [
    item(
      'Verdict',
      h('span', {}, verdict(e.pass), t ? ` mean KLD ≤ ${t.kld_mean} and same top ≥ ${formatPercent(t.same_top)}` : ''),
    ),
    item('Perplexity', `${formatNumber(e.ppl)} quantized vs ${formatNumber(e.ppl_float)} float${ratio}`),
    item(
      'Same top token',
      `${formatPercent(e.same_top)}${e.same_top_se === null ? '' : ` ± ${formatPercent(e.same_top_se)}`}`,
    ),
    item(
      'KLD (nats)',
      `mean ${formatNumber(e.kld_mean, 3)}${e.kld_se === null ? '' : ` ± ${formatNumber(e.kld_se, 2)}`}, median ${formatNumber(e.kld_median, 3)}, 90 % ${formatNumber(e.kld_p90, 3)}, 99 % ${formatNumber(e.kld_p99, 3)}, 99.9 % ${formatNumber(e.kld_p999, 3)}, max ${formatNumber(e.kld_max, 3)}`,
    ),
    item('Δp (right token)', `mean ${formatPercent(e.dp_mean)}, RMS ${formatPercent(e.rms_dp)}`),
    item(
      'Measured on',
      `${e.tokens_scored ?? '—'} tokens of ${e.text ?? 'the text'} (ctx ${e.ctx ?? '—'}, ${e.chunks ?? '—'} chunks, second half of each scored) in ${formatSeconds(e.seconds)}`,
    ),
  ].flat();
  return h(
    'section',
    { 'data-testid': 'end-to-end' },
    title,
    h('dl', { 'data-testid': 'end-to-end-figures' }, ...items),
    h('h3', {}, 'KLD per token'),
    histogram(e),
  );
}

/** "What these numbers mean": the metrics and the verdict's rule, with this report's tolerances. */
export function explanation(r: ReportModel) {
  const tols = Object.entries(r.tolerances)
    .map(([b, t]) => `${formatPercent(t)} at ${b} bits`)
    .join(', ');
  const p = (...c: (string | Node)[]) => h('p', {}, ...c);
  const b = (x: string) => h('b', {}, x);
  return h(
    'details',
    { class: 'explain', 'data-testid': 'explain' },
    h('summary', {}, 'What these numbers mean'),
    p(
      b('Relative error'),
      ' ‖W − Ŵ‖ / ‖W‖: the size of the rounding error of a weight matrix against the matrix itself (0 % is exact).',
    ),
    p(
      b('Output relative error'),
      ' ‖x·Ŵᵀ − x·Wᵀ‖ / ‖x·Wᵀ‖ for fixed random inputs x: the same, measured on what the layer computes.',
    ),
    p(
      b('SNR'),
      ' 10·log₁₀(‖W‖² / ‖W − Ŵ‖²) in dB (higher is better); ',
      b('cosine'),
      ' the angle between W and Ŵ (1 is exact); ',
      b('max |err|'),
      ' the largest single element error.',
    ),
    p(
      b('The rule'),
      ` a weight passes when both its relative error and its output relative error are within the tolerance of its bit width (${tols || 'the report names none'}). ` +
        'The report passes when every weight does and, when it has end-to-end figures, those are within their thresholds too.',
    ),
    p(
      b('End to end'),
      ' the quantized model and the float one read the same text in chunks (llama.cpp\u2019s protocol: BOS first, the second half of each chunk scored). ',
      b('KLD'),
      ' is how far the quantized next-token distribution is from the float one, per token (0 is identical); ',
      b('same top'),
      ' the share of tokens where both rank the same token first; ',
      b('perplexity'),
      ' how surprised each model is by the real text (its ratio near 1 means the quantized model predicts as well).',
    ),
    p(
      b('Filter'),
      ' words all match: a name part, fail or pass, bits:4, layer:3, err>8.35 (percent, as the table shows; err>8.35% too; a value under 1 without % is read as a fraction, so err>0.1 is 10 %).',
    ),
  );
}
