// Completion: keys from the schema (minus those present), enum values, and the NPZ's member names for q,
// q_scales and q_zero_point (the weight's own members first).
import { findNodeAtLocation, findNodeAtOffset, getLocation } from 'jsonc-parser';
import { type CompletionItem, CompletionItemKind, InsertTextFormat, type Range } from 'vscode-languageserver-types';
import { memberStem } from '../formats/manifest';
import { isObject, type ManifestDoc, type Node } from './document';
import { isNpzProblem, type NpzState } from './npz-index';
import { type JsonSchema, schemaAt } from './schema';

export interface CompletionOptions {
  npz?: NpzState;
}

function valueSnippet(s: JsonSchema | undefined): string {
  if (!s) return '$1';
  const t = Array.isArray(s.type) ? s.type[0] : s.type;
  if (s.enum || s.const !== undefined) {
    const v = s.default ?? s.const ?? s.enum?.[0];
    return typeof v === 'string' ? `"\${1:${v}}"` : `\${1:${JSON.stringify(v)}}`;
  }
  switch (t) {
    case 'string':
      return '"$1"';
    case 'object':
      return '{$1}';
    case 'array':
      return '[$1]';
    case 'boolean':
      return `$${'{'}1:false}`;
    case 'integer':
    case 'number':
      return `\${1:${s.default ?? 0}}`;
    default:
      return '$1';
  }
}

/** The literal under the cursor (string, number, ...) whose text a completion replaces. */
function literalAt(doc: ManifestDoc, offset: number): Node | undefined {
  if (!doc.root) return undefined;
  const n = findNodeAtOffset(doc.root, offset, true);
  if (!n || n.type === 'object' || n.type === 'array' || n.type === 'property') return undefined;
  return n;
}

export function completion(doc: ManifestDoc, offset: number, opts: CompletionOptions = {}): CompletionItem[] {
  if (doc.unparsable) return []; // getLocation recurses like the parser: never on too-deep text
  const loc = getLocation(doc.text, offset);
  const lit = literalAt(doc, offset);
  const replace: Range = lit
    ? doc.lines.range(lit.offset, lit.length)
    : { start: doc.lines.positionAt(offset), end: doc.lines.positionAt(offset) };
  const items: CompletionItem[] = [];
  if (loc.isAtPropertyKey) {
    const objPath = loc.path.slice(0, -1);
    const s = schemaAt(objPath);
    if (!s?.properties) return items;
    const obj = doc.root ? findNodeAtLocation(doc.root, objPath) : undefined;
    const present = new Set<string>();
    const typing = lit && typeof lit.value === 'string' ? lit.value : undefined;
    for (const p of obj?.type === 'object' ? (obj.children ?? []) : [])
      if (p.children?.[0]?.value !== typing) present.add(String(p.children?.[0]?.value));
    for (const [key, sub] of Object.entries(s.properties)) {
      if (present.has(key)) continue;
      const resolved = schemaAt([...objPath, key]);
      items.push({
        label: key,
        kind: CompletionItemKind.Property,
        documentation: resolved?.description ? { kind: 'markdown', value: resolved.description } : undefined,
        detail: s.required?.includes(key) ? 'required' : undefined,
        sortText: `${s.required?.includes(key) ? '0' : '1'}${key}`,
        insertTextFormat: InsertTextFormat.Snippet,
        textEdit: { range: replace, newText: `"${key}": ${valueSnippet(resolved ?? sub)}` },
        filterText: `"${key}"`,
      });
    }
    return items;
  }
  const path = loc.path;
  const field = path[path.length - 1];
  // NPZ member names.
  if (
    (field === 'q' || field === 'q_scales' || field === 'q_zero_point') &&
    path[0] === 'weights' &&
    opts.npz &&
    !isNpzProblem(opts.npz)
  ) {
    const w =
      isObject(doc.value) && Array.isArray(doc.value.weights) ? doc.value.weights[path[1] as number] : undefined;
    const stem = isObject(w) && typeof w.name === 'string' ? memberStem(w.name) : undefined;
    const suffix = field === 'q_scales' ? '_scales' : field === 'q_zero_point' ? '_zero_point' : '';
    for (const [key, info] of opts.npz.members) {
      const mine = stem !== undefined && key.startsWith(stem);
      const fits = field === 'q' ? !key.endsWith('_scales') && !key.endsWith('_zero_point') : key.endsWith(suffix);
      const name = `${key}.npy`;
      items.push({
        label: name,
        kind: CompletionItemKind.File,
        detail: `${info.dtype} [${info.shape.join(', ')}]`,
        sortText: `${mine && fits ? 0 : fits ? 1 : 2}${key}`,
        textEdit: { range: replace, newText: JSON.stringify(name) },
        filterText: JSON.stringify(name),
      });
    }
    return items;
  }
  const s = schemaAt(path);
  if (!s) return items;
  const values: unknown[] = s.enum ?? (s.const !== undefined ? [s.const] : []);
  const types = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [];
  if (!values.length && types.includes('boolean')) values.push(true, false);
  if (types.includes('null')) values.push(null);
  for (const v of values) {
    const text = JSON.stringify(v);
    items.push({
      label: text,
      kind: v === null || typeof v === 'boolean' ? CompletionItemKind.Value : CompletionItemKind.EnumMember,
      textEdit: { range: replace, newText: text },
      filterText: text,
      documentation: s.description,
    });
  }
  return items;
}
