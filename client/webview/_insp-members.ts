// The inspector's member table: a quantized archive grouped by weight (its q, scales and zero point — or codes and
// super-block scales — under one row naming the weight), other members in the file's order. The table scrolls and
// can be resized taller by its handle; the filter matches member and weight names.

import { formatBytes } from '../../server/src/common/format';
import type { InspectorMember } from '../../server/src/protocol';
import { h } from './_dom';
import { shapeText } from './_insp-figures';

export interface MembersView {
  file: string;
  kind: string;
  fileBytes: number;
  manifest: string | null;
  members: InspectorMember[];
  selected?: string;
  filter?: string;
  onSelect(name: string): void;
  onFilter(text: string): void;
}

type Entry = { group: string; parts: InspectorMember[] } | InspectorMember;

/** Members in file order, those of one quantized weight gathered where its first member stands. */
export function groupMembers(members: InspectorMember[]): Entry[] {
  const out: Entry[] = [];
  const groups = new Map<string, { group: string; parts: InspectorMember[] }>();
  for (const m of members) {
    const w = m.role && m.role.part !== 'float' ? m.role.weight : undefined;
    if (!w) {
      out.push(m);
      continue;
    }
    let g = groups.get(w);
    if (!g) {
      g = { group: w, parts: [] };
      groups.set(w, g);
      out.push(g);
    }
    g.parts.push(m);
  }
  // A weight with a single member reads better as a plain row.
  return out.map((e) => ('group' in e && e.parts.length === 1 ? e.parts[0] : e));
}

const PART_ORDER = ['q', 'q_codes', 'q_scales', 'q_d', 'q_zero_point', 'q_dmin', 'float'];

function memberRow(m: InspectorMember, selected: string | undefined, inGroup: boolean) {
  const role = m.role ? (inGroup ? m.role.part : `${m.role.part} of ${m.role.weight}`) : '';
  return h(
    'tr',
    {
      'data-name': m.name,
      class: [m.name === selected ? 'selected' : '', m.error ? 'bad' : '', inGroup ? 'part' : '']
        .filter(Boolean)
        .join(' '),
      tabindex: 0,
      title: m.error ?? '',
    },
    h('td', {}, m.name),
    h('td', {}, m.dtype),
    h('td', { class: 'num' }, m.error ? '—' : shapeText(m.shape)),
    h('td', { class: 'num' }, formatBytes(m.bytes)),
    h('td', { class: 'num' }, formatBytes(m.storedBytes)),
    h('td', {}, m.shard ?? (m.compressed ? 'deflated' : 'stored')),
    h('td', {}, m.error ? `error: ${m.error}` : role),
  );
}

function groupRow(g: { group: string; parts: InspectorMember[] }) {
  const q = g.parts.find((p) => p.role?.part === 'q') ?? g.parts[0];
  const r = q.role!;
  const bytes = g.parts.reduce((a, p) => a + p.bytes, 0);
  const stored = g.parts.reduce((a, p) => a + p.storedBytes, 0);
  return h(
    'tr',
    // Picking the weight's row selects its q member (data-select; data-name stays one row per member).
    { class: 'group', 'data-weight': g.group, 'data-select': q.name, tabindex: 0 },
    h('td', {}, g.group),
    h('td', {}, `${r.bits}-bit${r.groupSize ? `, groups of ${r.groupSize}` : ''}`),
    h('td', { class: 'num' }, `${g.parts.length} members`),
    h('td', { class: 'num' }, formatBytes(bytes)),
    h('td', { class: 'num' }, formatBytes(stored)),
    h('td', {}, ''),
    h('td', {}, 'quantized weight'),
  );
}

/** Draws the header, filter and table into `el`. */
export function renderMembers(el: HTMLElement, v: MembersView) {
  const filter = h('vscode-textfield', {
    type: 'search',
    id: 'filter',
    placeholder: 'Filter members',
    value: v.filter ?? '',
    'aria-label': 'Filter members',
  });
  const tbody = h('tbody');
  const total = v.members.reduce((a, m) => a + m.bytes, 0);
  const entries = groupMembers(v.members);
  const grouped = entries.some((e) => 'group' in e);
  const render = () => {
    const q = filter.value.trim().toLowerCase();
    const hit = (m: InspectorMember) =>
      !q || m.name.toLowerCase().includes(q) || !!m.role?.weight.toLowerCase().includes(q);
    const rows: HTMLElement[] = [];
    for (const e of entries) {
      if (!('group' in e)) {
        if (hit(e)) rows.push(memberRow(e, v.selected, false));
        continue;
      }
      const parts = e.parts.filter(hit);
      if (!parts.length) continue;
      rows.push(groupRow(e));
      parts.sort((a, b) => PART_ORDER.indexOf(a.role!.part) - PART_ORDER.indexOf(b.role!.part));
      for (const p of parts) rows.push(memberRow(p, v.selected, true));
    }
    tbody.replaceChildren(...rows);
  };
  filter.addEventListener('input', () => {
    v.onFilter(filter.value);
    render();
  });
  const pick = (e: Event) => {
    const tr = (e.target as Element).closest('tr');
    const name = tr?.getAttribute('data-name') ?? tr?.getAttribute('data-select');
    if (name) v.onSelect(name);
  };
  tbody.addEventListener('click', pick);
  tbody.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') pick(e);
  });
  render();
  const n = v.members.length;
  const scroll = h(
    'div',
    { class: 'table-scroll', 'data-testid': 'members-scroll' },
    h(
      'table',
      { class: grouped ? 'members-table grouped' : 'members-table', 'data-testid': 'members' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', {}, grouped ? 'Weight / member' : 'Name'),
          h('th', {}, 'dtype'),
          h('th', { class: 'num' }, 'Shape'),
          h('th', { class: 'num' }, 'Size'),
          h('th', { class: 'num' }, 'Stored'),
          h('th', {}, v.kind === 'safetensors' ? 'File' : 'Storage'),
          h('th', {}, v.kind === 'safetensors' ? '' : 'Manifest'),
        ),
      ),
      tbody,
    ),
  );
  // Tall enough for every row up to most of the view; the handle at its corner makes it taller or shorter.
  scroll.style.height = `min(${(n + 1.5) * 24 + 8}px, 60vh)`;
  el.replaceChildren(
    h(
      'header',
      {},
      h('h1', {}, v.file.split(/[\\/]/).pop() ?? v.file),
      h(
        'p',
        { class: 'meta', 'data-testid': 'meta' },
        `${v.kind.toUpperCase()} · ${formatBytes(v.fileBytes)} on disk · ${n} ${v.kind === 'safetensors' ? 'tensor' : 'member'}${n === 1 ? '' : 's'} · ${formatBytes(total)} of array data`,
        v.manifest ? ` · manifest: ${v.manifest.split(/[\\/]/).pop()}` : '',
      ),
    ),
    h('div', { class: 'toolbar' }, filter),
    scroll,
  );
}
