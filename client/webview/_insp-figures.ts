// The inspector's figures: a statistics list, a histogram and a heat map (downsampled on the host), side by side.

import { formatNumber } from '../../server/src/common/format';
import type { InspectorHistogram, InspectorPreview, InspectorStats } from '../../server/src/protocol';
import { h, histogramSvg, resolveColour, rgbOf } from './_dom';

export const shapeText = (shape: number[]) => `(${shape.join(', ')}${shape.length === 1 ? ',' : ''})`;

export function statsList(st: InspectorStats, testid: string) {
  const item = (k: string, v: string) => [h('dt', {}, k), h('dd', {}, v)];
  return h(
    'dl',
    { class: 'stats', 'data-testid': testid },
    ...[
      item('Count', st.count.toLocaleString('en-US') + (st.sampled ? ' (sampled)' : '')),
      item('Min', formatNumber(st.min)),
      item('Max', formatNumber(st.max)),
      item('Mean', formatNumber(st.mean)),
      item('Std', formatNumber(st.std)),
      st.nan ? item('NaN', String(st.nan)) : [],
      st.inf ? item('±Inf', String(st.inf)) : [],
    ].flat(),
  );
}

/** The preview grid drawn on a canvas, from the editor background to the theme's chart colour. */
export function previewCanvas(p: InspectorPreview, what = 'mean |value|') {
  const canvas = h('canvas', { class: 'preview', width: p.cols, height: p.rows, 'aria-label': 'heat map preview' });
  const ctx = canvas.getContext('2d');
  if (ctx) {
    const hi = rgbOf(resolveColour('var(--vscode-charts-blue, #3794ff)'));
    const lo = rgbOf(resolveColour('var(--vscode-editor-background, #1e1e1e)'));
    const img = ctx.createImageData(p.cols, p.rows);
    const span = p.max - p.min || 1;
    for (let i = 0; i < p.values.length; i++) {
      const t = (p.values[i] - p.min) / span;
      img.data[4 * i] = lo[0] + (hi[0] - lo[0]) * t;
      img.data[4 * i + 1] = lo[1] + (hi[1] - lo[1]) * t;
      img.data[4 * i + 2] = lo[2] + (hi[2] - lo[2]) * t;
      img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }
  return h(
    'figure',
    {},
    canvas,
    h('figcaption', {}, `${what} in ${p.rows} × ${p.cols} blocks (${formatNumber(p.min)} … ${formatNumber(p.max)})`),
  );
}

/** Statistics, histogram and heat map side by side (titles when `titled`). */
export function figurePanels(
  f: { stats: InspectorStats; histogram: InspectorHistogram; preview: InspectorPreview | null },
  testid: string,
  opts: { titled?: boolean; what?: string } = {},
) {
  const fmt = (v: number) => formatNumber(v);
  const t = (s: string) => (opts.titled ? h('h3', {}, s) : null);
  return h(
    'div',
    { class: 'panels' },
    h('div', {}, t('Statistics'), statsList(f.stats, testid)),
    h('div', { 'data-testid': `${testid}-histogram` }, t('Histogram'), histogramSvg(f.histogram, fmt)),
    f.preview
      ? h('div', { 'data-testid': `${testid}-heatmap` }, t('Preview'), previewCanvas(f.preview, opts.what))
      : null,
  );
}
