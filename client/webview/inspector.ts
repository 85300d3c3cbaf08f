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
} from '../../server/src/protocol';
import { formatBytes, formatNumber, formatPercent } from '../../server/src/shared/format';
import './_elements';
import { h, histogramSvg, resolveColour, rgbOf, vscodeApi } from './_dom';
import { pending, setPagePoster, ValueGrid } from './_grid';

interface State {
  selected?: string;
  filter?: string;
}
const vscode = vscodeApi<State>();
const post = (m: InspectorToHost) => vscode.postMessage(m);
setPagePoster(post);
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
  const figures = t.codes
    ? h(
        'section',
        { class: 'codes', 'data-testid': 'codes' },
        h(
          'h3',
          {},
          `Codes (unpacked from the stored bytes: 0 … ${2 ** t.codes.bits - 1}, ${t.codes.rows} × ${t.codes.cols})`,
        ),
        h(
          'div',
          { class: 'panels' },
          h('div', {}, statsList(t.codes.stats, 'stats')),
          h('div', {}, histogramSvg(t.codes.histogram, fmt)),
          t.codes.preview ? h('div', {}, previewCanvas(t.codes.preview)) : null,
        ),
      )
    : t.text
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
        );
  const parts: (Node | null)[] = [
    h('h2', {}, t.name, h('span', { class: 'meta' }, ` ${t.dtype} ${shapeText(t.shape)}`)),
  ];
  const dq = t.dequant;
  let dqGrid: ValueGrid | null = null;
  let errGrid: ValueGrid | null = null;
  let codesGrid: ValueGrid | null = null;
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
    codesGrid = t.codes ? new ValueGrid(t.name, 'codes', dq.rows, dq.cols, 'uint8') : null;
    if (dq.source.available) errGrid = new ValueGrid(t.name, 'error', dq.rows, dq.cols, 'float32');
  }
  parts.push(figures); // a quantized weight: its dequantized values first, then its codes
  const raw = new ValueGrid(t.name, 'raw', t.rows, t.cols, t.text ? 'text' : t.dtype);
  let current = dqGrid ?? raw;
  const gridHost = h('div', { class: 'grid-host' }, current.el);
  const tabs = dqGrid
    ? h(
        'div',
        { class: 'tabs', role: 'tablist' },
        h(
          'button',
          { type: 'button', class: 'active', 'data-view': 'dequant', onclick: (e) => switchTo(e, dqGrid!) },
          'Dequantized values',
        ),
        codesGrid
          ? h('button', { type: 'button', 'data-view': 'codes', onclick: (e) => switchTo(e, codesGrid!) }, 'Codes')
          : null,
        h('button', { type: 'button', 'data-view': 'raw', onclick: (e) => switchTo(e, raw) }, 'Stored bytes'),
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
    const what = {
      raw: 'Values',
      codes: 'Codes',
      dequant: 'Dequantized values',
      error: 'Error (dequantized − source)',
    }[g.view];
    valuesTitle.textContent = `${what} (${g.rows} × ${g.cols})`;
    tabs!.querySelectorAll('button').forEach((b) => {
      b.classList.toggle('active', b === e.currentTarget);
    });
    gridHost.replaceChildren(g.el);
    g.render();
  }
  const valuesTitle = h(
    'h3',
    {},
    current === raw ? `Values (${t.rows} × ${t.cols})` : `Dequantized values (${current.rows} × ${current.cols})`,
  );
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
  current.render();
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
