// The comparison section: pick another member of the file (or the same tensor in another file, through the host's
// file dialog), then see the difference b − a: max |d|, RMS, relative error ‖a − b‖/‖a‖, cosine, SNR, its
// histogram and heat map, and a grid of its values.

import { formatNumber, formatPercent } from '../../server/src/common/format';
import type { InspectorComparison, InspectorMember, InspectorToHost } from '../../server/src/protocol';
import { h } from './_dom';
import { ValueGrid } from './_grid';
import { figurePanels, shapeText } from './_insp-figures';

const base = (p: string) => p.split(/[\\/]/).pop() ?? p;

/** The picker row: a member list and a button for another file. */
export function comparePicker(name: string, members: InspectorMember[], post: (m: InspectorToHost) => void) {
  const sel = h(
    'select',
    { 'data-testid': 'compare-with', 'aria-label': 'Compare with member' },
    h('option', { value: '' }, 'Compare with…'),
    ...members.filter((m) => m.name !== name && !m.error).map((m) => h('option', { value: m.name }, m.name)),
  );
  sel.addEventListener('change', () => {
    if (sel.value) post({ type: 'compare', a: name, b: { name: sel.value } });
  });
  const other = h(
    'button',
    { type: 'button', 'data-testid': 'compare-file', onclick: () => post({ type: 'pickCompareFile', name }) },
    'Same tensor in another file…',
  );
  return h('div', { class: 'toolbar compare-picker' }, sel, other);
}

/** The comparison's figures and difference grid. */
export function comparisonView(c: InspectorComparison) {
  const label = (o: InspectorComparison['a']) => `${o.name}${o.file ? ` (${base(o.file)})` : ''}`;
  const item = (k: string, v: string) => [h('dt', {}, k), h('dd', {}, v)];
  const figures = h(
    'dl',
    { class: 'stats', 'data-testid': 'compare-figures' },
    ...[
      item('max |d|', formatNumber(c.maxAbs)),
      item('RMS', formatNumber(c.rms)),
      item('Relative error', formatPercent(Number.isFinite(c.relError) ? c.relError : null)),
      item('Cosine', Number.isFinite(c.cosine) ? c.cosine.toFixed(6) : '—'),
      item('SNR', Number.isFinite(c.snrDb) ? `${c.snrDb.toFixed(2)} dB` : '∞'),
      item('Values', c.count.toLocaleString('en-US') + (c.sampled ? ' (sampled)' : '')),
    ].flat(),
  );
  const grid = new ValueGrid(c.a.name, 'diff', c.rows, c.cols, 'float64', {
    compare: { name: c.b.name, ...(c.b.file ? { file: c.b.file } : {}) },
  });
  const el = h(
    'div',
    { class: 'comparison', 'data-testid': 'comparison' },
    h('h3', {}, `Difference d = ${label(c.b)} − ${label(c.a)} ${shapeText(c.a.shape)}, ${c.a.dtype} vs ${c.b.dtype}`),
    h('div', { class: 'panels' }, h('div', {}, figures)),
    figurePanels(c.diff, 'compare-stats', { what: 'mean |d|' }),
    h('h3', {}, `Difference values (${c.rows} × ${c.cols})`),
    grid.el,
  );
  return { el, grid };
}
