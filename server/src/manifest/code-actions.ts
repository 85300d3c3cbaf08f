// Quick fixes for mechanical mistakes: bit_width vs quantization.bits, a misspelled member name (the nearest
// existing members), a missing required field (inserted with its default).
import type { CodeAction, Diagnostic, TextEdit } from 'vscode-languageserver-types';
import { isBitWidth, memberNames } from '../formats/manifest';
import type { BitsMismatchData, MemberMissingData } from './checks';
import { DiagnosticCodes } from './codes';
import { isObject, type ManifestDoc, nodeAt, nodeRange } from './document';
import { editDistance, isNpzProblem, memberKey, type NpzState, nearestMembers } from './npz-index';
import { defaultFor, type MissingPropertyData } from './schema';

export interface CodeActionOptions {
  uri: string;
  npz?: NpzState;
}

function fix(title: string, uri: string, d: Diagnostic, edits: TextEdit[], preferred = false): CodeAction {
  return {
    title,
    kind: 'quickfix',
    diagnostics: [d],
    isPreferred: preferred || undefined,
    edit: { changes: { [uri]: edits } },
  };
}

/** A sensible value for a missing property, using what the weight already says. */
function smartDefault(doc: ManifestDoc, path: (string | number)[], property: string): unknown {
  const v = doc.value;
  if (
    path[0] === 'weights' &&
    typeof path[1] === 'number' &&
    path.length === 2 &&
    isObject(v) &&
    Array.isArray(v.weights)
  ) {
    const w = v.weights[path[1]];
    if (isObject(w)) {
      const q = isObject(w.quantization) ? w.quantization : undefined;
      const bits = typeof q?.bits === 'number' ? q.bits : typeof w.bit_width === 'number' ? w.bit_width : undefined;
      const name = typeof w.name === 'string' ? w.name : undefined;
      if (property === 'bit_width' && bits !== undefined) return bits;
      if (property === 'source' && name) return { tensor: name, dtype: 'BF16' };
      if ((property === 'q' || property === 'q_scales' || property === 'q_zero_point') && name && bits !== undefined) {
        const names = memberNames(name, q?.type === 'none' || bits >= 16 ? null : bits);
        return names[property];
      }
    }
  }
  if (path.length === 0 && property === 'metadata') return { npz: '', created_by: 'apl-quant' };
  if (
    property === 'group_size' &&
    isObject(v) &&
    isObject(v.metadata) &&
    typeof v.metadata.default_group_size === 'number'
  )
    return v.metadata.default_group_size;
  return defaultFor([...path, property]);
}

function insertProperty(
  doc: ManifestDoc,
  path: (string | number)[],
  property: string,
  value: unknown,
): TextEdit | undefined {
  const obj = path.length ? nodeAt(doc, path) : doc.root;
  if (obj?.type !== 'object') return undefined;
  const text = `"${property}": ${JSON.stringify(value)}`;
  const props = obj.children ?? [];
  if (props.length === 0) {
    const pos = doc.lines.positionAt(obj.offset + 1);
    return { range: { start: pos, end: pos }, newText: text };
  }
  const last = props[props.length - 1];
  const lastStart = doc.lines.positionAt(last.offset);
  const objStart = doc.lines.positionAt(obj.offset);
  const end = doc.lines.positionAt(last.offset + last.length);
  if (lastStart.line === objStart.line) return { range: { start: end, end }, newText: `, ${text}` };
  const indent = doc.text.slice(doc.lines.lineStart(lastStart.line), last.offset);
  return { range: { start: end, end }, newText: `,\n${/^\s*$/.test(indent) ? indent : '  '}${text}` };
}

export function codeActions(doc: ManifestDoc, diagnostics: Diagnostic[], opts: CodeActionOptions): CodeAction[] {
  const out: CodeAction[] = [];
  for (const d of diagnostics) {
    const data = d.data as { kind?: string } | undefined;
    if (d.code === DiagnosticCodes.bitsMismatch && data?.kind === 'bits') {
      const b = data as BitsMismatchData;
      const bw = nodeAt(doc, ['weights', b.weight, 'bit_width']);
      const qb = nodeAt(doc, ['weights', b.weight, 'quantization', 'bits']);
      if (bw)
        out.push(
          fix(
            `Set bit_width to ${b.bits}`,
            opts.uri,
            d,
            [{ range: nodeRange(doc, bw), newText: String(b.bits) }],
            true,
          ),
        );
      // Only a value the format accepts: never "Set quantization.bits to 3".
      if (qb && isBitWidth(b.bitWidth))
        out.push(
          fix(`Set quantization.bits to ${b.bitWidth}`, opts.uri, d, [
            { range: nodeRange(doc, qb), newText: String(b.bitWidth) },
          ]),
        );
    } else if (
      d.code === DiagnosticCodes.memberMissing &&
      data?.kind === 'member' &&
      opts.npz &&
      !isNpzProblem(opts.npz)
    ) {
      const m = data as MemberMissingData;
      const node = nodeAt(doc, ['weights', m.weight, m.field]);
      if (!node) continue;
      // The nearest names, then the members nothing refers to (a renamed member), nearest first.
      const near = nearestMembers(opts.npz, m.member);
      const withNpy = m.member.endsWith('.npy');
      const key = memberKey(m.member);
      const unref = (m.unreferenced ?? [])
        .map((k) => ({ k, d: editDistance(key, k, 1 << 16) }))
        .sort((a, b) => a.d - b.d)
        .map((u) => (withNpy ? `${u.k}.npy` : u.k))
        .filter((n) => !near.includes(n))
        .slice(0, 3);
      [...near, ...unref].forEach((name, i) => {
        out.push(
          fix(
            `Change to "${name}"`,
            opts.uri,
            d,
            [{ range: nodeRange(doc, node), newText: JSON.stringify(name) }],
            i === 0,
          ),
        );
      });
    } else if (
      (d.code === DiagnosticCodes.schema || d.code === DiagnosticCodes.quantizationMismatch) &&
      data?.kind === 'missing'
    ) {
      const m = data as MissingPropertyData;
      const edit = insertProperty(doc, m.path, m.property, smartDefault(doc, m.path, m.property));
      if (edit) out.push(fix(`Add missing property "${m.property}"`, opts.uri, d, [edit], true));
    }
  }
  return out;
}
