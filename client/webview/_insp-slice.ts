// Slice controls for an N-d tensor: which axis runs down the grid, which across, and an index slider for every
// other axis. Each change asks the host for the slice's figures and pages only the slice's values.
import type { InspectorSlice } from '../../server/src/protocol';
import { h } from './_dom';

export function defaultSlice(shape: number[]): InspectorSlice {
  return { rowAxis: shape.length - 2, colAxis: shape.length - 1, index: shape.map(() => 0) };
}

/** The slice in numpy's notation, e.g. `[2, :, :]`. */
export function sliceText(s: InspectorSlice): string {
  return `[${s.index.map((i, k) => (k === s.rowAxis || k === s.colAxis ? ':' : String(i))).join(', ')}]`;
}

export function sliceControls(shape: number[], initial: InspectorSlice, onChange: (s: InspectorSlice) => void) {
  let cur: InspectorSlice = { ...initial, index: [...initial.index] };
  const el = h('div', { class: 'slice-controls', 'data-testid': 'slice-controls' });
  const axisSelect = (id: string, label: string, value: number) => {
    const sel = h('select', { 'data-testid': id, 'aria-label': label });
    shape.forEach((n, k) => {
      sel.append(h('option', { value: String(k), ...(k === value ? { selected: '' } : {}) }, `axis ${k} (${n})`));
    });
    return sel;
  };
  const draw = () => {
    const rows = axisSelect('slice-rows', 'Rows axis', cur.rowAxis);
    const cols = axisSelect('slice-cols', 'Columns axis', cur.colAxis);
    const pickAxes = () => {
      let r = Number(rows.value);
      let c = Number(cols.value);
      if (r === c) {
        // Picking the other picker's axis swaps the two.
        if (r === cur.rowAxis) r = cur.colAxis;
        else c = cur.rowAxis;
      }
      cur = { ...cur, rowAxis: r, colAxis: c };
      draw();
      onChange(cur);
    };
    rows.addEventListener('change', pickAxes);
    cols.addEventListener('change', pickAxes);
    const text = h('span', { class: 'meta', 'data-testid': 'slice-text' }, ` slice ${sliceText(cur)}`);
    const sliders = shape.flatMap((n, k) => {
      if (k === cur.rowAxis || k === cur.colAxis) return [];
      const label = h('span', { class: 'slice-index', 'data-testid': `slice-index-label-${k}` }, `${cur.index[k]}`);
      const range = h('input', {
        type: 'range',
        min: 0,
        max: n - 1,
        step: 1,
        value: String(cur.index[k]),
        'data-testid': `slice-index-${k}`,
        'aria-label': `Index on axis ${k}`,
      });
      range.addEventListener('input', () => {
        label.textContent = range.value;
      });
      range.addEventListener('change', () => {
        cur = { ...cur, index: cur.index.map((v, j) => (j === k ? Number(range.value) : v)) };
        text.textContent = ` slice ${sliceText(cur)}`;
        onChange(cur);
      });
      return [h('label', { class: 'slider' }, `axis ${k} (0 … ${n - 1}) `, range, ' ', label)];
    });
    el.replaceChildren(h('label', {}, 'Rows: ', rows), h('label', {}, 'Columns: ', cols), ...sliders, text);
  };
  draw();
  return el;
}
