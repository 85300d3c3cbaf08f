// Accuracy report webview (browser side): summary, relative-error chart against the tolerance line, a
// layer × projection heat map, and a sortable, filterable table. The host posts the report JSON; the data shaping
// is server/src/report/read.ts (the one report reader, pure) and server/src/common/report-view.ts (pure,
// unit-tested).

import { failureAdvice } from '../../server/src/common/advice';
import {
  formatBitsPerWeight,
  formatBytes,
  formatNumber,
  formatPercent,
  formatSeconds,
} from '../../server/src/common/format';
import { filterWeights, layerHeatMap, SORT_KEYS, type SortKey, sortWeights } from '../../server/src/common/report-view';
import type { HostToReport, ReportToHost, ReportWebviewState } from '../../server/src/protocol';
import { normalizeReport, type ReportModel, type ReportWeight } from '../../server/src/report/read';
import './_elements';
import { chartSvg, h, heat, s, vscodeApi, yAxisLabel } from './_dom';
import { endToEndSection, explanation } from './report-e2e';

const vscode = vscodeApi<ReportWebviewState>();
const post = (m: ReportToHost) => vscode.postMessage(m);
let state: ReportWebviewState = vscode.getState() ?? {};
const saveState = (patch: Partial<ReportWebviewState>) => {
  state = { ...state, ...patch };
  vscode.setState(state);
};

const root = document.getElementById('root')!;

const COLUMNS: { key: SortKey; label: string; num: boolean; fmt: (w: ReportWeight) => string }[] = [
  { key: 'name', label: 'Weight', num: false, fmt: (w) => w.name },
  { key: 'bits', label: 'Bits', num: true, fmt: (w) => (w.bits === null ? '—' : String(w.bits)) },
  { key: 'rel_error', label: 'Rel. error', num: true, fmt: (w) => formatPercent(w.rel_error) },
  { key: 'snr_db', label: 'SNR (dB)', num: true, fmt: (w) => (w.snr_db === null ? '—' : w.snr_db.toFixed(2)) },
  { key: 'cosine', label: 'Cosine', num: true, fmt: (w) => (w.cosine === null ? '—' : w.cosine.toFixed(5)) },
  { key: 'max_abs_error', label: 'Max |err|', num: true, fmt: (w) => formatNumber(w.max_abs_error) },
  { key: 'output_rel_error', label: 'Output rel. err.', num: true, fmt: (w) => formatPercent(w.output_rel_error) },
  { key: 'pass', label: 'Verdict', num: false, fmt: (w) => (w.pass === null ? '—' : w.pass ? 'pass' : 'FAIL') },
];

function verdictBadge(pass: boolean | null) {
  const cls = pass === null ? 'badge unknown' : pass ? 'badge pass' : 'badge fail';
  return h('span', { class: cls, 'data-testid': 'verdict' }, pass === null ? 'no verdict' : pass ? 'PASS' : 'FAIL');
}

function summary(r: ReportModel, extra: { manifest?: string | null; npz?: string | null }) {
  const passed = r.weights.filter((w) => w.pass === true).length;
  const judged = r.weights.filter((w) => w.pass !== null).length;
  const ratio = r.source_bytes && r.output_bytes ? ` (${(r.source_bytes / r.output_bytes).toFixed(2)}× smaller)` : '';
  const item = (k: string, v: string | Node) => [h('dt', {}, k), h('dd', {}, v)];
  const usedBits = new Set([r.bits, r.embeddings_bits, ...r.weights.map((w) => w.bits)]);
  const items = [
    item('Model', r.model + (r.source && r.source !== r.model ? ` — ${r.source}` : '')),
    r.revision ? item('Revision', r.revision) : [],
    item('Bits', r.bits === null ? '—' : String(r.bits)),
    item('Group size', r.group_size === null ? '—' : String(r.group_size)),
    r.mode ? item('Mode', r.mode) : [],
    item(
      'Size',
      r.source_bytes === null && r.output_bytes === null
        ? '—'
        : `${formatBytes(r.source_bytes)} → ${formatBytes(r.output_bytes)}${ratio}`,
    ),
    item('Bits per weight', formatBitsPerWeight(r.bits_per_weight)),
    item('Time', formatSeconds(r.seconds)),
    item('Backend', r.backend ?? '—'),
    item(
      'Tolerance',
      Object.keys(r.tolerances).length
        ? Object.entries(r.tolerances)
            .filter(([b]) => usedBits.has(Number(b)))
            .map(([b, t]) => `${formatPercent(t)} at ${b} bits`)
            .join(', ')
        : formatPercent(r.tolerance),
    ),
    r.embeddings_bits !== null ? item('Embeddings / head', `${r.embeddings_bits} bits`) : [],
    r.params !== null ? item('Parameters', r.params.toLocaleString('en-US')) : [],
    item('Verdict', h('span', {}, verdictBadge(r.pass), ` ${passed} of ${judged} weights within tolerance`)),
    item(
      'Based on',
      h(
        'span',
        { 'data-testid': 'verdict-basis' },
        r.verdict_basis ??
          (r.end_to_end ? 'the weights and the end-to-end figures' : 'the per-weight errors against the tolerance'),
      ),
    ),
    r.tool_version ? item('Tool version', r.tool_version) : [],
  ].flat();
  const buttons = h(
    'div',
    { class: 'actions' },
    extra.manifest
      ? h('vscode-button', { id: 'open-manifest', onclick: () => post({ type: 'openManifest' }) }, 'Open Manifest')
      : null,
    extra.npz
      ? h('vscode-button', { id: 'open-npz', secondary: true, onclick: () => post({ type: 'openNpz' }) }, 'Inspect NPZ')
      : null,
    // The end-to-end check needs the model (manifest and NPZ) and stores its figures in this report.
    extra.manifest && extra.npz
      ? h(
          'vscode-button',
          { id: 'evaluate', secondary: true, onclick: () => post({ type: 'evaluate' }) },
          r.end_to_end && !r.end_to_end.error ? 'Re-evaluate End to End' : 'Evaluate End to End',
        )
      : null,
  );
  return h('section', { class: 'summary' }, h('dl', { 'data-testid': 'summary' }, ...items), buttons);
}

/** Bars of relative error per weight (natural name order), the tolerance as a dashed line. */
function errorChart(r: ReportModel) {
  const weights = sortWeights(
    r.weights.filter((w) => w.rel_error !== null),
    'name',
  );
  if (!weights.length) return h('p', { class: 'empty' }, 'No per-weight errors in this report.');
  const bw = weights.length > 200 ? 4 : weights.length > 60 ? 8 : weights.length > 20 ? 16 : 24;
  const H = 180;
  const left = 48;
  const top = 10;
  const W = Math.max(360, left + weights.length * bw + 10);
  const tols = weights.map((w) => w.tolerance);
  const raw = Math.max(...tols.map((t) => t ?? 0), ...weights.map((w) => w.rel_error!)) * 1.1 || 1;
  // Round ticks (1, 2 or 5 × 10^k percent), the axis top a whole number of them.
  const step = niceStep(raw / 4);
  const top1 = Math.ceil(raw / step - 1e-9) * step;
  const y = (v: number) => top + H - (v / top1) * H;
  const svg = chartSvg(W, H + top + 24, 'relative error per weight');
  for (let k = 0; k * step <= top1 + 1e-12; k++) {
    const v = k * step;
    svg.append(s('line', { class: 'grid', x1: left, x2: W, y1: y(v), y2: y(v) }));
    svg.append(
      s(
        'text',
        { class: 'label tick', x: left - 4, y: y(v) + 4, 'text-anchor': 'end' },
        `${Number((v * 100).toPrecision(6))}%`,
      ),
    );
  }
  svg.append(yAxisLabel(top, H, 'relative error'));
  weights.forEach((w, i) => {
    const over = w.tolerance !== null ? w.rel_error! > w.tolerance : w.pass === false;
    svg.append(
      s(
        'rect',
        {
          class: over ? 'bar over' : 'bar',
          x: left + i * bw + 1,
          y: y(w.rel_error!),
          width: bw - 2,
          height: Math.max(0.5, y(0) - y(w.rel_error!)),
          'data-name': w.name,
        },
        s('title', {}, `${w.name}: ${formatPercent(w.rel_error)} (tolerance ${formatPercent(w.tolerance)})`),
      ),
    );
  });
  // The tolerance line: a step path when weights are judged against different tolerances (e.g. 8-bit embeddings).
  let d = '';
  weights.forEach((w, i) => {
    if (w.tolerance === null) return;
    const x0 = left + i * bw;
    const prev = i > 0 ? weights[i - 1].tolerance : null;
    d += prev === w.tolerance ? ` H ${x0 + bw}` : ` M ${x0} ${y(w.tolerance)} H ${x0 + bw}`;
  });
  if (d) {
    svg.append(s('path', { class: 'tolerance', d: d.trim(), fill: 'none' }));
    const t = r.tolerance ?? tols.find((x) => x !== null)!;
    svg.append(
      s(
        'text',
        { class: 'label tolerance-label', x: left + weights.length * bw, y: y(t) - 4, 'text-anchor': 'end' },
        `tolerance ${formatPercent(t)}`,
      ),
    );
  }
  svg.append(
    s(
      'text',
      { class: 'label', x: left, y: H + top + 18 },
      `weights (${weights.length}, by name) — click a bar to show it in the table`,
    ),
  );
  svg.addEventListener('click', onPick);
  return h('div', { class: 'chart-scroll' }, svg);
}

/** A round tick step (1, 2 or 5 × 10^k) at least `v`. */
function niceStep(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  const m = v / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

/** Shows one weight in the table (set by weightTable): the chart's bars and the heat map's cells call it. */
let focusWeight: (name: string) => void = () => {};
const onPick = (e: Event) => {
  const name = (e.target as Element).closest('[data-name]')?.getAttribute('data-name');
  if (name) focusWeight(name);
};

function heatMap(r: ReportModel) {
  const hm = layerHeatMap(r.weights);
  if (!hm) return h('p', { class: 'empty' }, 'No layer × projection weights in this report.');
  const scale = Math.max(hm.max, r.tolerance ?? 0) || 1;
  const byName = new Map(r.weights.map((w) => [w.name, w]));
  const table = h(
    'table',
    { class: 'heatmap', 'data-testid': 'heatmap' },
    h(
      'thead',
      {},
      h('tr', {}, h('th', {}, 'Layer'), ...hm.projections.map((p) => h('th', {}, p.replace(/_proj$/, '')))),
    ),
  );
  const body = h('tbody');
  hm.layers.forEach((layer, i) => {
    const tr = h('tr', {}, h('th', {}, String(layer)));
    hm.projections.forEach((_, j) => {
      const v = hm.cells[i][j];
      const td = h(
        'td',
        {
          title: hm.names[i][j] ? `${hm.names[i][j]}: ${formatPercent(v)}` : '',
          'data-name': hm.names[i][j] ?? undefined,
        },
        v === null ? '' : (v * 100).toFixed(1),
      );
      if (v !== null) {
        // Colour by the share of the weight's tolerance used: blue below it, red over it.
        const w = byName.get(hm.names[i][j] ?? '');
        const tol = w?.tolerance ?? null;
        const over = w ? (tol !== null ? v > tol : w.pass === false) : false;
        const share = tol ? v / tol : v / scale;
        td.style.backgroundColor = over
          ? heat(Math.min(1, 0.55 + (share - 1) * 0.9))
          : heat(0.1 + 0.5 * Math.min(1, share), '--vscode-charts-blue');
        if (over) td.classList.add('over');
      }
      tr.append(td);
    });
    body.append(tr);
  });
  table.append(body);
  table.addEventListener('click', onPick);
  return h('div', { class: 'heatmap-scroll' }, table);
}

function weightTable(r: ReportModel) {
  const sort =
    state.sort && SORT_KEYS.includes(state.sort.key as SortKey) ? state.sort : { key: 'name', descending: false };
  const filter = h('vscode-textfield', {
    type: 'search',
    id: 'filter',
    placeholder: 'Filter: name, fail, bits:4, layer:3, err>8.35 (%)',
    value: state.filter ?? '',
    'aria-label': 'Filter weights',
  });
  const count = h('span', { class: 'count', 'data-testid': 'count' });
  const headRow = h('tr');
  const tbody = h('tbody');
  const render = () => {
    const rows = sortWeights(filterWeights(r.weights, filter.value), sort.key as SortKey, sort.descending);
    count.textContent = `${rows.length} of ${r.weights.length} weights`;
    headRow.replaceChildren(
      ...COLUMNS.map((c) => {
        const active = c.key === sort.key;
        return h(
          'th',
          {
            class: `${c.num ? 'num' : ''} sortable${active ? ' active' : ''}`,
            'aria-sort': active ? (sort.descending ? 'descending' : 'ascending') : 'none',
            'data-key': c.key,
            tabindex: 0,
            onclick: () => {
              if (sort.key === c.key) sort.descending = !sort.descending;
              else Object.assign(sort, { key: c.key, descending: c.num && c.key !== 'bits' });
              saveState({ sort: { ...sort } });
              render();
            },
          },
          c.label,
          active ? (sort.descending ? ' ▼' : ' ▲') : '',
        );
      }),
    );
    tbody.replaceChildren(
      ...rows.map((w) =>
        h(
          'tr',
          { class: w.pass === false ? 'fail' : '', 'data-name': w.name },
          ...COLUMNS.map((c) => h('td', { class: c.num ? 'num' : '' }, c.fmt(w))),
        ),
      ),
    );
  };
  filter.addEventListener('input', () => {
    saveState({ filter: filter.value });
    render();
  });
  tbody.addEventListener('dblclick', (e) => {
    const tr = (e.target as Element).closest('tr');
    const name = tr?.getAttribute('data-name');
    if (name) post({ type: 'revealWeight', name });
  });
  render();
  const table = h('table', { class: 'weights', 'data-testid': 'weights' }, h('thead', {}, headRow), tbody);
  focusWeight = (name) => {
    filter.value = name;
    saveState({ filter: name });
    render();
    table.scrollIntoView({ block: 'nearest' });
  };
  return h('section', {}, h('div', { class: 'toolbar' }, filter, count), table);
}

/** A failed verdict: what to try instead (server/src/common/advice.ts). */
function adviceFor(r: ReportModel) {
  const a = failureAdvice(r);
  return a ? h('p', { class: 'advice', role: 'note', 'data-testid': 'advice' }, a) : '';
}

function show(msg: Extract<HostToReport, { type: 'report' }>) {
  const r = normalizeReport(msg.report);
  saveState({ file: msg.file });
  document.title = msg.title;
  root.replaceChildren(
    h('h1', {}, `Accuracy report: ${r.model} `, verdictBadge(r.pass)),
    summary(r, msg),
    adviceFor(r),
    r.warnings.length ? h('ul', { class: 'warnings' }, ...r.warnings.map((w) => h('li', {}, w))) : '',
    explanation(r),
    endToEndSection(r),
    h('h2', {}, 'Relative error per weight'),
    errorChart(r),
    h('h2', {}, 'Layer × projection (relative error, %; colour: share of the tolerance)'),
    heatMap(r),
    h('h2', {}, 'Weights'),
    weightTable(r),
  );
  root.setAttribute('data-state', 'ready');
  post({
    type: 'rendered',
    what: 'report',
    names: Array.from(
      root.querySelectorAll('[data-testid="weights"] tbody tr'),
      (tr) => tr.getAttribute('data-name') ?? '',
    ),
    detail: root.querySelector('h1 [data-testid="verdict"]')?.textContent ?? '',
  });
}

window.addEventListener('message', (e: MessageEvent<HostToReport>) => {
  const msg = e.data;
  if (msg?.type === 'report') show(msg);
  else if (msg?.type === 'error') {
    root.replaceChildren(h('p', { class: 'error', role: 'alert' }, msg.message));
    root.setAttribute('data-state', 'error');
    post({ type: 'rendered', what: 'error', names: [], detail: msg.message });
  }
});
post({ type: 'ready' });
