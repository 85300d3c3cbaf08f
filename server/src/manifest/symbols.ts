// Outline (document symbols: model, weights grouped by layer, metadata) and folding ranges.
import { type DocumentSymbol, type FoldingRange, type Range, SymbolKind } from 'vscode-languageserver-types';
import { isObject, layerOf, type ManifestDoc, type Node, nodeRange, weightNodes } from './document';

function keyRange(doc: ManifestDoc, prop: Node): Range {
  const k = prop.children?.[0] ?? prop;
  return nodeRange(doc, k);
}

function enclosing(ranges: Range[]): Range {
  let start = ranges[0].start;
  let end = ranges[0].end;
  for (const r of ranges) {
    if (r.start.line < start.line || (r.start.line === start.line && r.start.character < start.character))
      start = r.start;
    if (r.end.line > end.line || (r.end.line === end.line && r.end.character > end.character)) end = r.end;
  }
  return { start, end };
}

function propertySymbols(doc: ManifestDoc, obj: Node | undefined): DocumentSymbol[] {
  if (obj?.type !== 'object') return [];
  const out: DocumentSymbol[] = [];
  for (const p of obj.children ?? []) {
    const [k, v] = p.children ?? [];
    if (!k) continue;
    const detail = v && v.type !== 'object' && v.type !== 'array' ? JSON.stringify(v.value) : undefined;
    out.push({
      name: String(k.value),
      kind: SymbolKind.Property,
      detail,
      range: nodeRange(doc, p),
      selectionRange: keyRange(doc, p),
    });
  }
  return out;
}

export function documentSymbols(doc: ManifestDoc): DocumentSymbol[] {
  const root = doc.root;
  if (root?.type !== 'object') return [];
  const value = isObject(doc.value) ? doc.value : {};
  const out: DocumentSymbol[] = [];
  for (const p of root.children ?? []) {
    const [k, v] = p.children ?? [];
    if (!k) continue;
    const key = String(k.value);
    const range = nodeRange(doc, p);
    const selectionRange = keyRange(doc, p);
    if (key === 'weights' && v?.type === 'array') {
      const weights = Array.isArray(value.weights) ? value.weights : [];
      const nodes = weightNodes(doc);
      const groups = new Map<number, DocumentSymbol[]>();
      const children: DocumentSymbol[] = [];
      nodes.forEach((n, i) => {
        const w = isObject(weights[i]) ? (weights[i] as Record<string, unknown>) : {};
        const q = isObject(w.quantization) ? w.quantization : {};
        const name = typeof w.name === 'string' && w.name ? w.name : `weights[${i}]`;
        const bits = typeof q.bits === 'number' ? q.bits : w.bit_width;
        const shape = Array.isArray(w.shape) ? `[${w.shape.join(', ')}]` : '';
        const nameNode = n.type === 'object' ? n.children?.find((c) => c.children?.[0]?.value === 'name') : undefined;
        const sym: DocumentSymbol = {
          name,
          detail: `${q.type === 'none' ? 'float' : `q${bits ?? '?'}`} ${shape}`.trim(),
          kind: SymbolKind.Field,
          range: nodeRange(doc, n),
          selectionRange: nameNode?.children?.[1] ? nodeRange(doc, nameNode.children[1]) : nodeRange(doc, n),
        };
        const layer = layerOf(w);
        if (layer === undefined) children.push(sym);
        else {
          const g = groups.get(layer);
          if (g) g.push(sym);
          else groups.set(layer, [sym]);
        }
      });
      const layerSyms: DocumentSymbol[] = [...groups.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([layer, syms]) => {
          const r = enclosing(syms.map((s) => s.range));
          return {
            name: `layer ${layer}`,
            detail: `${syms.length} weights`,
            kind: SymbolKind.Namespace,
            range: r,
            selectionRange: syms[0].selectionRange,
            children: syms,
          };
        });
      // Layers sit where their first weight is: embeddings before, the head after.
      const all = [...children, ...layerSyms].sort(
        (a, b) => a.range.start.line - b.range.start.line || a.range.start.character - b.range.start.character,
      );
      out.push({
        name: 'weights',
        detail: `${nodes.length}`,
        kind: SymbolKind.Array,
        range,
        selectionRange,
        children: all,
      });
    } else if (key === 'model' || key === 'metadata') {
      out.push({
        name: key,
        kind: key === 'model' ? SymbolKind.Module : SymbolKind.Object,
        range,
        selectionRange,
        children: propertySymbols(doc, v),
      });
    } else {
      const detail = v && v.type !== 'object' && v.type !== 'array' ? JSON.stringify(v.value) : undefined;
      out.push({
        name: key,
        kind: key === 'format_version' ? SymbolKind.File : SymbolKind.Property,
        detail,
        range,
        selectionRange,
      });
    }
  }
  return out;
}

/** Folding ranges for every object and array spanning lines (closing bracket stays visible). */
export function foldingRanges(doc: ManifestDoc, limit = 20000): FoldingRange[] {
  const out: FoldingRange[] = [];
  if (!doc.root) return out;
  const stack: Node[] = [doc.root];
  while (stack.length && out.length < limit) {
    const n = stack.pop()!;
    if (n.type === 'object' || n.type === 'array') {
      const start = doc.lines.positionAt(n.offset).line;
      const end = doc.lines.positionAt(n.offset + n.length).line;
      if (end - 1 > start) out.push({ startLine: start, endLine: end - 1 });
    }
    if (n.children) for (let i = n.children.length - 1; i >= 0; i--) stack.push(n.children[i]);
  }
  return out.sort((a, b) => a.startLine - b.startLine);
}
