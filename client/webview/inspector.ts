// NPZ inspector webview (browser side): member table, then for the selected tensor its statistics, histogram,
// a heat-map preview (downsampled on the host) and a virtualised grid of values that asks the host for pages of
// 64 × 16 values as they scroll into view; a quantized member with a manifest beside it also shows its
// dequantized values and the converter's recorded error.

import type {
  HostToInspector,
  InspectorMember,
  InspectorPreview,
  InspectorStats,
  InspectorTensor,
  InspectorToHost,
  InspectorView,
} from '../../server/src/protocol';
import { formatCell } from '../../server/src/shared/cells';
import { formatBytes, formatNumber, formatPercent } from '../../server/src/shared/format';
import './_elements';
import { h, histogramSvg, resolveColour, rgbOf, vscodeApi } from './_dom';

interface State {
  selected?: string;
  filter?: string;
}
const vscode = vscodeApi<State>();
const post = (m: InspectorToHost) => vscode.postMessage(m);
let state: State = vscode.getState() ?? {};
const saveState = (patch: Partial<State>) => {
  state = { ...state, ...patch };
  vscode.setState(state);
};

const root = document.getElementById('root')!;
const membersEl = h('section', { class: 'members' });
const detailEl = h('section', { class: 'detail', 'data-testid': 'detail' });
let members: InspectorMember[] = [];

const shapeText = (shape: number[]) => `(${shape.join(', ')}${shape.length === 1 ? ',' : ''})`;

function statsList(st: InspectorStats, testid: string) {
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
function previewCanvas(p: InspectorPreview) {
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
    h(
      'figcaption',
      {},
      `mean |value| in ${p.rows} × ${p.cols} blocks (${formatNumber(p.min)} … ${formatNumber(p.max)})`,
    ),
  );
}

// ------------------------------------------------------------------------------------------------------------
// Virtualised value grid

const RH = 22; // row height, px
const CW = 96; // column width, px
const RHW = 72; // row-header width, px
const BR = 64; // page rows
const BC = 16; // page cols
const MAX_PX = 8_000_000; // keep the scroll spacer under browsers' element-size limits

let nextRequest = 1;
const pending = new Map<number, (values: (number | string)[]) => void>();

class ValueGrid {
  readonly el: HTMLDivElement;
  private readonly spacer: HTMLDivElement;
  private readonly layer: HTMLDivElement;
  private readonly blocks = new Map<string, (number | string)[] | 'pending'>();
  private frame = 0;

  constructor(
    private readonly name: string,
    readonly view: InspectorView,
    readonly rows: number,
    readonly cols: number,
    /** The dtype the values were stored in (how many digits they hold); 'text' for strings. */
    private readonly dtype: string,
  ) {
    this.spacer = h('div', { class: 'grid-spacer' });
    this.layer = h('div', { class: 'grid-layer' });
    this.el = h('div', { class: 'grid', tabindex: 0, 'data-testid': `grid-${view}` }, this.spacer, this.layer);
    this.spacer.style.width = `${RHW + cols * CW}px`;
    this.spacer.style.height = `${Math.min(MAX_PX, (rows + 1) * RH)}px`;
    this.el.addEventListener('scroll', () => this.schedule());
    new ResizeObserver(() => this.schedule()).observe(this.el);
  }

  /** Scrolls so that cell (r, c) is in view (at the top left when the grid can scroll that far). */
  goTo(r: number, c: number) {
    const row = Math.max(0, Math.min(this.rows - 1, r));
    const col = Math.max(0, Math.min(this.cols - 1, c));
    const full = (this.rows + 1) * RH;
    if (full <= MAX_PX) this.el.scrollTop = row * RH;
    else {
      const visible = Math.ceil(this.el.clientHeight / RH);
      this.el.scrollTop = Math.ceil((row / Math.max(1, this.rows - visible)) * (MAX_PX - this.el.clientHeight));
    }
    this.el.scrollLeft = col * CW;
    this.render();
  }

  private schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  /** First visible row; proportional when the spacer had to be capped. */
  private firstRow(visible: number): number {
    const full = (this.rows + 1) * RH;
    if (full <= MAX_PX) return Math.floor(this.el.scrollTop / RH);
    const range = MAX_PX - this.el.clientHeight;
    return Math.floor((this.el.scrollTop / Math.max(1, range)) * Math.max(0, this.rows - visible));
  }

  private value(r: number, c: number): number | string | undefined {
    const key = `${Math.floor(r / BR)}:${Math.floor(c / BC)}`;
    const b = this.blocks.get(key);
    if (b === undefined) {
      this.request(Math.floor(r / BR), Math.floor(c / BC));
      return undefined;
    }
    if (b === 'pending') return undefined;
    if (!b.length) return '⚠'; // the host could not read this page
    const row0 = Math.floor(r / BR) * BR;
    const col0 = Math.floor(c / BC) * BC;
    const w = Math.min(BC, this.cols - col0);
    return b[(r - row0) * w + (c - col0)];
  }

  private request(br: number, bc: number) {
    const key = `${br}:${bc}`;
    this.blocks.set(key, 'pending');
    const requestId = nextRequest++;
    pending.set(requestId, (values) => {
      this.blocks.set(key, values);
      this.schedule();
    });
    post({
      type: 'page',
      requestId,
      name: this.name,
      view: this.view,
      row: br * BR,
      rowCount: BR,
      col: bc * BC,
      colCount: BC,
    });
  }

  render() {
    const vh = this.el.clientHeight || 320;
    const vw = this.el.clientWidth || 640;
    const visRows = Math.ceil(vh / RH);
    const r0 = Math.min(this.firstRow(visRows), Math.max(0, this.rows - 1));
    const r1 = Math.min(this.rows, r0 + visRows);
    const c0 = Math.floor(this.el.scrollLeft / CW);
    const c1 = Math.min(this.cols, c0 + Math.ceil((vw - RHW) / CW) + 1);
    const top = this.el.scrollTop;
    const left = this.el.scrollLeft;
    const cells: HTMLElement[] = [];
    const place = (el: HTMLElement, x: number, y: number, w: number) => {
      el.style.transform = `translate(${x}px, ${y}px)`;
      el.style.width = `${w}px`;
      cells.push(el);
    };
    for (let c = c0; c < c1; c++)
      place(h('div', { class: 'cell head' }, String(c)), left + RHW + (c - c0) * CW, top, CW);
    for (let r = r0; r < r1; r++) {
      const y = top + (r - r0 + 1) * RH;
      place(h('div', { class: 'cell rowhead' }, String(r)), left, y, RHW);
      for (let c = c0; c < c1; c++) {
        const v = this.value(r, c);
        const text =
          v === undefined
            ? '…'
            : typeof v === 'string'
              ? this.dtype === 'text'
                ? v
                : formatCell(Number(v))
              : formatCell(v, this.dtype);
        place(
          h(
            'div',
            {
              class: v === undefined ? 'cell loading' : this.dtype === 'text' ? 'cell text' : 'cell',
              title: `[${r}, ${c}]`,
              ...(v === undefined ? {} : { 'data-value': String(v), 'aria-label': `[${r}, ${c}] = ${v}` }),
            },
            text,
          ),
          left + RHW + (c - c0) * CW,
          y,
          CW,
        );
      }
    }
    place(h('div', { class: 'cell corner' }, ''), left, top, RHW);
    this.layer.replaceChildren(...cells);
    this.el.setAttribute('data-rows', `${r0}-${r1}`);
  }
}

// ------------------------------------------------------------------------------------------------------------

function renderMembers(file: string, kind: string, fileBytes: number, manifest: string | null) {
  const filter = h('vscode-textfield', {
    type: 'search',
    id: 'filter',
    placeholder: 'Filter members',
    value: state.filter ?? '',
    'aria-label': 'Filter members',
  });
  const tbody = h('tbody');
  const total = members.reduce((a, m) => a + m.bytes, 0);
  const render = () => {
    const q = filter.value.trim().toLowerCase();
    tbody.replaceChildren(
      ...members
        .filter((m) => !q || m.name.toLowerCase().includes(q) || m.role?.weight.toLowerCase().includes(q))
        .map((m) => {
          const tr = h(
            'tr',
            {
              'data-name': m.name,
              class: [m.name === state.selected ? 'selected' : '', m.error ? 'bad' : ''].join(' ').trim(),
              tabindex: 0,
              title: m.error ?? '',
            },
            h('td', {}, m.name),
            h('td', {}, m.dtype),
            h('td', { class: 'num' }, m.error ? '—' : shapeText(m.shape)),
            h('td', { class: 'num' }, formatBytes(m.bytes)),
            h('td', { class: 'num' }, formatBytes(m.storedBytes)),
            h('td', {}, m.compressed ? 'deflated' : 'stored'),
            h('td', {}, m.error ? `error: ${m.error}` : m.role ? `${m.role.part} of ${m.role.weight}` : ''),
          );
          return tr;
        }),
    );
  };
  filter.addEventListener('input', () => {
    saveState({ filter: filter.value });
    render();
  });
  tbody.addEventListener('click', (e) => {
    const name = (e.target as Element).closest('tr')?.getAttribute('data-name');
    if (name) select(name);
  });
  tbody.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter') return;
    const name = (e.target as Element).closest('tr')?.getAttribute('data-name');
    if (name) select(name);
  });
  render();
  membersEl.replaceChildren(
    h(
      'header',
      {},
      h('h1', {}, file.split(/[\\/]/).pop() ?? file),
      h(
        'p',
        { class: 'meta', 'data-testid': 'meta' },
        `${kind.toUpperCase()} · ${formatBytes(fileBytes)} on disk · ${members.length} member${members.length === 1 ? '' : 's'} · ${formatBytes(total)} of array data`,
        manifest ? ` · manifest: ${manifest.split(/[\\/]/).pop()}` : '',
      ),
    ),
    h('div', { class: 'toolbar' }, filter),
    h(
      'div',
      { class: 'table-scroll' },
      h(
        'table',
        { class: 'members-table', 'data-testid': 'members' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', {}, 'Name'),
            h('th', {}, 'dtype'),
            h('th', { class: 'num' }, 'Shape'),
            h('th', { class: 'num' }, 'Size'),
            h('th', { class: 'num' }, 'Stored'),
            h('th', {}, 'Storage'),
            h('th', {}, 'Manifest'),
          ),
        ),
        tbody,
      ),
    ),
  );
}

const shownNames = (el: Element, sel: string) =>
  Array.from(el.querySelectorAll(sel), (tr) => tr.getAttribute('data-name') ?? '');

function select(name: string) {
  saveState({ selected: name });
  membersEl.querySelectorAll('tbody tr').forEach((tr) => {
    tr.classList.toggle('selected', tr.getAttribute('data-name') === name);
  });
  detailEl.replaceChildren(h('p', { class: 'loading' }, `Reading ${name}…`));
  detailEl.setAttribute('data-state', 'loading');
  post({ type: 'selectTensor', name });
}

function renderTensor(t: InspectorTensor) {
  if (t.name !== state.selected) return;
  const fmt = (v: number) => formatNumber(v);
  const parts: (Node | null)[] = [
    h('h2', {}, t.name, h('span', { class: 'meta' }, ` ${t.dtype} ${shapeText(t.shape)}`)),
    t.text
      ? h(
          'p',
          { class: 'meta', 'data-testid': 'stats' },
          `${t.stats.count.toLocaleString('en-US')} ${t.dtype.includes('S') ? 'byte strings' : 'strings'}: shown as text, no statistics`,
        )
      : h(
          'div',
          { class: 'panels' },
          h('div', {}, h('h3', {}, 'Statistics'), statsList(t.stats, 'stats')),
          h('div', {}, h('h3', {}, 'Histogram'), histogramSvg(t.histogram, fmt)),
          t.preview ? h('div', {}, h('h3', {}, 'Preview'), previewCanvas(t.preview)) : null,
        ),
  ];
  const dq = t.dequant;
  let dqGrid: ValueGrid | null = null;
  let errGrid: ValueGrid | null = null;
  if (dq) {
    const acc = dq.accuracy;
    const accText = acc
      ? [
          acc.rel_error !== undefined ? `relative error ${(acc.rel_error * 100).toFixed(2)} %` : '',
          acc.snr_db !== undefined ? `SNR ${acc.snr_db.toFixed(2)} dB` : '',
          acc.cosine !== undefined ? `cosine ${acc.cosine.toFixed(5)}` : '',
          acc.max_abs_error !== undefined ? `max |err| ${formatNumber(acc.max_abs_error)}` : '',
          acc.pass === undefined ? '' : acc.pass ? 'pass' : 'FAIL',
        ]
          .filter(Boolean)
          .join(' · ')
      : 'no accuracy recorded in the manifest';
    parts.push(
      h(
        'section',
        { class: 'dequant', 'data-testid': 'dequant' },
        h('h3', {}, `Dequantized ${dq.weight} (${dq.bits}-bit, groups of ${dq.groupSize}, ${dq.rows} × ${dq.cols})`),
        h('p', { class: 'accuracy', 'data-testid': 'accuracy' }, `Recorded by the converter: ${accText}`),
        h(
          'p',
          { class: 'accuracy', 'data-testid': 'measured' },
          dq.source.available
            ? `Measured against the source weights${dq.stats.sampled ? ' (on the sample)' : ''}: relative error ${formatPercent(dq.source.relError ?? null)} · max |err| ${formatNumber(dq.source.maxAbsError ?? null)} — ${dq.source.detail}`
            : `Source weights not available: ${dq.source.detail}`,
        ),
        h(
          'div',
          { class: 'panels' },
          h('div', {}, statsList(dq.stats, 'dequant-stats')),
          h('div', {}, histogramSvg(dq.histogram, fmt)),
          dq.preview ? h('div', {}, previewCanvas(dq.preview)) : null,
        ),
      ),
    );
    dqGrid = new ValueGrid(t.name, 'dequant', dq.rows, dq.cols, 'float32');
    if (dq.source.available) errGrid = new ValueGrid(t.name, 'error', dq.rows, dq.cols, 'float32');
  }
  const raw = new ValueGrid(t.name, 'raw', t.rows, t.cols, t.text ? 'text' : t.dtype);
  const gridHost = h('div', { class: 'grid-host' }, raw.el);
  const tabs = dqGrid
    ? h(
        'div',
        { class: 'tabs', role: 'tablist' },
        h(
          'button',
          { type: 'button', class: 'active', 'data-view': 'raw', onclick: (e) => switchTo(e, raw) },
          'Stored values',
        ),
        h(
          'button',
          { type: 'button', 'data-view': 'dequant', onclick: (e) => switchTo(e, dqGrid!) },
          'Dequantized values',
        ),
        errGrid
          ? h(
              'button',
              { type: 'button', 'data-view': 'error', onclick: (e) => switchTo(e, errGrid!) },
              'Error (dequantized − source)',
            )
          : null,
      )
    : null;
  function switchTo(e: Event, g: ValueGrid) {
    current = g;
    const what = { raw: 'Values', dequant: 'Dequantized values', error: 'Error (dequantized − source)' }[g.view];
    valuesTitle.textContent = `${what} (${g.rows} × ${g.cols})`;
    tabs!.querySelectorAll('button').forEach((b) => {
      b.classList.toggle('active', b === e.currentTarget);
    });
    gridHost.replaceChildren(g.el);
    g.render();
  }
  let current = raw;
  const valuesTitle = h('h3', {}, `Values (${t.rows} × ${t.cols})`);
  const goto = h('vscode-textfield', {
    id: 'goto',
    placeholder: 'Go to row, column',
    'aria-label': 'Go to row, column',
  });
  goto.addEventListener('keydown', (e) => {
    if ((e as KeyboardEvent).key !== 'Enter') return;
    const m = /^\s*(\d+)\s*(?:[,\s]\s*(\d+))?\s*$/.exec(goto.value);
    if (m) current.goTo(Number(m[1]), Number(m[2] ?? 0));
  });
  parts.push(valuesTitle, h('div', { class: 'toolbar' }, tabs, goto), gridHost);
  detailEl.replaceChildren(...parts.filter((p): p is Node => p !== null));
  detailEl.setAttribute('data-state', 'ready');
  raw.render();
  post({
    type: 'rendered',
    what: 'tensor',
    names: [t.name],
    detail: detailEl.querySelector('[data-testid="stats"]')?.textContent ?? '',
  });
}

window.addEventListener('message', (e: MessageEvent<HostToInspector>) => {
  const msg = e.data;
  switch (msg?.type) {
    case 'members':
      members = msg.members;
      renderMembers(msg.file, msg.kind, msg.fileBytes, msg.manifest);
      root.setAttribute('data-state', 'ready');
      post({ type: 'rendered', what: 'members', names: shownNames(membersEl, 'tbody tr') });
      if (state.selected && members.some((m) => m.name === state.selected)) select(state.selected);
      else if (members.length === 1 && !members[0].error) select(members[0].name);
      break;
    case 'tensor':
      renderTensor(msg.tensor);
      break;
    case 'page': {
      const done = pending.get(msg.requestId);
      pending.delete(msg.requestId);
      done?.(msg.values);
      break;
    }
    case 'error':
      if (msg.requestId !== undefined) {
        const done = pending.get(msg.requestId);
        pending.delete(msg.requestId);
        done?.([]);
      } else if (msg.name) {
        detailEl.replaceChildren(h('p', { class: 'error', role: 'alert' }, msg.message));
        detailEl.setAttribute('data-state', 'error');
      } else {
        root.replaceChildren(h('p', { class: 'error', role: 'alert' }, msg.message));
        root.setAttribute('data-state', 'error');
        post({ type: 'rendered', what: 'error', names: [], detail: msg.message });
      }
      break;
  }
});

root.replaceChildren(membersEl, detailEl);
post({ type: 'ready' });
