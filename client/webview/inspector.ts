// Tensor inspector webview (browser side): member table (_insp-members.ts), then for the selected tensor its
// statistics, histogram, a heat-map preview (downsampled on the host) and a virtualised grid of values that asks the
// host for pages as they scroll into view (_grid.ts); an N-d tensor is also shown by 2-D slice (_insp-slice.ts); a
// quantized member with a manifest beside it shows its dequantized values, the converter's recorded error and the
// measured error's figures; any tensor can be compared with another (_insp-compare.ts).

import { formatNumber, formatPercent } from '../../server/src/common/format';
import type {
  HostToInspector,
  InspectorMember,
  InspectorSlice,
  InspectorTensor,
  InspectorToHost,
} from '../../server/src/protocol';
import './_elements';
import { h, vscodeApi } from './_dom';
import { pending, setPagePoster, ValueGrid } from './_grid';
import { comparePicker, comparisonView } from './_insp-compare';
import { figurePanels, shapeText } from './_insp-figures';
import { renderMembers } from './_insp-members';
import { defaultSlice, sliceControls, sliceText } from './_insp-slice';

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
/** Where the selected tensor's slice figures and comparison go, and the slice they show. */
let sliceFigures: HTMLElement | null = null;
let currentSlice: InspectorSlice | null = null;
let compareResult: HTMLElement | null = null;

const shownNames = (el: Element, sel: string) =>
  Array.from(el.querySelectorAll(sel), (tr) => tr.getAttribute('data-name') ?? '');

function select(name: string) {
  saveState({ selected: name });
  membersEl.querySelectorAll('tbody tr').forEach((tr) => {
    tr.classList.toggle('selected', !tr.classList.contains('group') && tr.getAttribute('data-name') === name);
  });
  membersEl.querySelector(`tbody tr.selected`)?.scrollIntoView({ block: 'nearest' });
  detailEl.replaceChildren(h('p', { class: 'loading' }, `Reading ${name}…`));
  detailEl.setAttribute('data-state', 'loading');
  sliceFigures = null;
  compareResult = null;
  post({ type: 'selectTensor', name });
}

function accuracyText(acc: NonNullable<InspectorTensor['dequant']>['accuracy']) {
  if (!acc) return 'no accuracy recorded in the manifest';
  return [
    acc.rel_error !== undefined ? `relative error ${(acc.rel_error * 100).toFixed(2)} %` : '',
    acc.snr_db !== undefined ? `SNR ${acc.snr_db.toFixed(2)} dB` : '',
    acc.cosine !== undefined ? `cosine ${acc.cosine.toFixed(5)}` : '',
    acc.max_abs_error !== undefined ? `max |err| ${formatNumber(acc.max_abs_error)}` : '',
    acc.pass === undefined ? '' : acc.pass ? 'pass' : 'FAIL',
  ]
    .filter(Boolean)
    .join(' · ');
}

function renderTensor(t: InspectorTensor) {
  if (t.name !== state.selected) return;
  const figures = t.codes
    ? h(
        'section',
        { class: 'codes', 'data-testid': 'codes' },
        h(
          'h3',
          {},
          `Codes (unpacked from the stored bytes: 0 … ${2 ** t.codes.bits - 1}, ${t.codes.rows} × ${t.codes.cols})`,
        ),
        figurePanels(t.codes, 'stats'),
      )
    : t.text
      ? h(
          'p',
          { class: 'meta', 'data-testid': 'stats' },
          `${t.stats.count.toLocaleString('en-US')} ${t.dtype.includes('S') ? 'byte strings' : 'strings'}: shown as text, no statistics`,
        )
      : figurePanels(t, 'stats', { titled: true });
  const parts: (Node | null)[] = [
    h('h2', {}, t.name, h('span', { class: 'meta' }, ` ${t.dtype} ${shapeText(t.shape)}`)),
  ];
  const dq = t.dequant;
  let dqGrid: ValueGrid | null = null;
  let errGrid: ValueGrid | null = null;
  let codesGrid: ValueGrid | null = null;
  if (dq) {
    const err = dq.source.error;
    parts.push(
      h(
        'section',
        { class: 'dequant', 'data-testid': 'dequant' },
        h('h3', {}, `Dequantized ${dq.weight} (${dq.bits}-bit, groups of ${dq.groupSize}, ${dq.rows} × ${dq.cols})`),
        h(
          'p',
          { class: 'accuracy', 'data-testid': 'accuracy' },
          `Recorded by the converter: ${accuracyText(dq.accuracy)}`,
        ),
        h(
          'p',
          { class: 'accuracy', 'data-testid': 'measured' },
          dq.source.available
            ? `Measured against the source weights${dq.stats.sampled ? ' (on the sample)' : ''}: relative error ${formatPercent(dq.source.relError ?? null)} · max |err| ${formatNumber(dq.source.maxAbsError ?? null)} — ${dq.source.detail}`
            : `Source weights not available: ${dq.source.detail}`,
        ),
        figurePanels(dq, 'dequant-stats'),
        err
          ? h(
              'div',
              { class: 'error-figures', 'data-testid': 'error-figures' },
              h('h4', {}, 'Error (dequantized − source)'),
              figurePanels(err, 'error-stats', { what: 'mean |error|' }),
            )
          : null,
      ),
    );
    dqGrid = new ValueGrid(t.name, 'dequant', dq.rows, dq.cols, 'float32');
    codesGrid = t.codes ? new ValueGrid(t.name, 'codes', dq.rows, dq.cols, 'uint8') : null;
    if (dq.source.available) errGrid = new ValueGrid(t.name, 'error', dq.rows, dq.cols, 'float32');
  }
  parts.push(figures); // a quantized weight: its dequantized values first, then its codes
  const nd = !t.text && !dq && t.shape.length >= 3;
  // An N-d tensor pages its first slice, never its flattened rows.
  const s0 = nd ? defaultSlice(t.shape) : null;
  let raw = s0
    ? new ValueGrid(t.name, 'raw', t.shape[s0.rowAxis], t.shape[s0.colAxis], t.dtype, { slice: s0 })
    : new ValueGrid(t.name, 'raw', t.rows, t.cols, t.text ? 'text' : t.dtype);
  currentSlice = s0;
  let current = dqGrid ?? raw;
  const gridHost = h('div', { class: 'grid-host' }, current.el);
  const what = {
    raw: 'Values',
    codes: 'Codes',
    dequant: 'Dequantized values',
    error: 'Error (dequantized − source)',
    diff: 'Difference',
  };
  const valuesTitle = h('h3', {});
  const setTitle = () => {
    valuesTitle.textContent = `${what[current.view]}${current === raw && currentSlice ? ` of slice ${sliceText(currentSlice)}` : ''} (${current.rows} × ${current.cols})`;
  };
  if (nd) {
    // An N-d tensor: its values by 2-D slice, the slice's own figures beside the whole tensor's.
    const showSlice = (s: InspectorSlice) => {
      currentSlice = s;
      raw = new ValueGrid(t.name, 'raw', t.shape[s.rowAxis], t.shape[s.colAxis], t.dtype, { slice: s });
      current = raw;
      gridHost.replaceChildren(raw.el);
      setTitle();
      raw.render();
      sliceFigures?.replaceChildren(h('p', { class: 'loading' }, `Reading slice ${sliceText(s)}…`));
      sliceFigures?.setAttribute('data-state', 'loading');
      post({ type: 'slice', name: t.name, slice: s });
    };
    sliceFigures = h('div', { 'data-testid': 'slice-figures', 'data-state': 'loading' });
    parts.push(
      h(
        'section',
        { class: 'slice', 'data-testid': 'slice' },
        h('h3', {}, `Slice (${t.shape.length}-d: two axes on screen, an index for the others)`),
        sliceControls(t.shape, s0!, showSlice),
        sliceFigures,
      ),
    );
    post({ type: 'slice', name: t.name, slice: s0! });
  }
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
    setTitle();
    tabs!.querySelectorAll('button').forEach((b) => {
      b.classList.toggle('active', b === e.currentTarget);
    });
    gridHost.replaceChildren(g.el);
    g.render();
  }
  setTitle();
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
  if (!t.text) {
    compareResult = h('div', { 'data-testid': 'compare-result' });
    parts.push(
      h(
        'section',
        { class: 'compare', 'data-testid': 'compare' },
        h('h3', {}, 'Compare'),
        comparePicker(t.name, members, post),
        compareResult,
      ),
    );
  }
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

const sameSlice = (a: InspectorSlice | null, b: InspectorSlice) =>
  !!a && a.rowAxis === b.rowAxis && a.colAxis === b.colAxis && a.index.every((v, k) => v === b.index[k]);

window.addEventListener('message', (e: MessageEvent<HostToInspector>) => {
  const msg = e.data;
  switch (msg?.type) {
    case 'members':
      members = msg.members;
      renderMembers(membersEl, {
        ...msg,
        selected: state.selected,
        filter: state.filter,
        onSelect: select,
        onFilter: (filter) => saveState({ filter }),
      });
      root.replaceChildren(membersEl, detailEl);
      root.setAttribute('data-state', 'ready');
      post({ type: 'rendered', what: 'members', names: shownNames(membersEl, 'tbody tr:not(.group)') });
      if (state.selected && members.some((m) => m.name === state.selected)) select(state.selected);
      else if (members.length === 1 && !members[0].error) select(members[0].name);
      else {
        detailEl.replaceChildren();
        detailEl.removeAttribute('data-state');
      }
      break;
    case 'select':
      if (members.some((m) => m.name === msg.name)) select(msg.name);
      break;
    case 'tensor':
      renderTensor(msg.tensor);
      break;
    case 'slice':
      if (msg.name !== state.selected || !sliceFigures || !sameSlice(currentSlice, msg.slice)) break;
      sliceFigures.replaceChildren(
        h('p', { class: 'meta' }, `Slice ${sliceText(msg.slice)}: ${msg.rows} × ${msg.cols}`),
        figurePanels(msg, 'slice-stats'),
      );
      sliceFigures.setAttribute('data-state', 'ready');
      post({
        type: 'rendered',
        what: 'slice',
        names: [msg.name],
        detail: `${sliceText(msg.slice)} ${sliceFigures.querySelector('[data-testid="slice-stats"]')?.textContent ?? ''}`,
      });
      break;
    case 'comparison': {
      const c = msg.comparison;
      if (c.a.name !== state.selected || !compareResult) break;
      const v = comparisonView(c);
      compareResult.replaceChildren(v.el);
      compareResult.setAttribute('data-state', 'ready');
      v.grid.render();
      post({
        type: 'rendered',
        what: 'comparison',
        names: [c.a.name, c.b.name],
        detail: compareResult.querySelector('[data-testid="compare-figures"]')?.textContent ?? '',
      });
      break;
    }
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
      } else if (msg.what === 'compare' && compareResult) {
        compareResult.replaceChildren(
          h('p', { class: 'error', role: 'alert', 'data-testid': 'compare-error' }, msg.message),
        );
        compareResult.setAttribute('data-state', 'error');
        post({ type: 'rendered', what: 'error', names: [msg.name ?? ''], detail: msg.message });
      } else if (msg.what === 'slice' && sliceFigures) {
        sliceFigures.replaceChildren(h('p', { class: 'error', role: 'alert' }, msg.message));
        sliceFigures.setAttribute('data-state', 'error');
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
