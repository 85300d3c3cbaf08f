// The manifest through the language server's features: diagnostics (schema + NPZ and report cross-checks), hover,
// completion, definition, symbols, folding, code actions, summary and code lenses, on the fixture manifest edited
// field by field (JSON values replaced with hostile ones, keys deleted, arrays wrapped or grown) and then by
// keystrokes. Every feature must answer (never throw) within the time limit, with ranges inside the document.
import fc from 'fast-check';
import type { Position, Range } from 'vscode-languageserver-types';
import { FileCache, getLanguageService, type ManifestState } from '../../../server/src/manifest';
import { MANIFEST_PATH, manifestText } from '../lib/fixtures';
import { applyJsonOps, applyTextOps, jsonOp, textOp } from '../lib/mutate';
import { Finding, type Target } from '../lib/target';

export interface ManifestInput {
  text: string;
  offsets: number[];
}

const SEED = JSON.parse(manifestText());
export const manifestInput: fc.Arbitrary<ManifestInput> = fc.record({
  text: fc.oneof(
    fc
      .tuple(
        fc.array(jsonOp, { minLength: 1, maxLength: 5 }),
        fc.constantFrom(0, 1, 2),
        fc.array(textOp, { maxLength: 2 }),
      )
      .map(([ops, indent, keys]) => applyTextOps(JSON.stringify(applyJsonOps(SEED, ops), null, indent) ?? '', keys)),
    fc.array(textOp, { minLength: 1, maxLength: 8 }).map((ops) => applyTextOps(manifestText(), ops)),
  ),
  offsets: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }),
});

const service = getLanguageService({ files: new FileCache() });

function checkRange(r: Range, lines: number, what: string): void {
  const ok = (p: { line: number; character: number }) =>
    Number.isInteger(p.line) && Number.isInteger(p.character) && p.line >= 0 && p.character >= 0 && p.line < lines + 1;
  if (!ok(r.start) || !ok(r.end)) throw new Finding(`${what} range outside the document: ${JSON.stringify(r)}`);
}

/** Every feature of the language service on one text, as the server calls them (positions from the client). */
export async function allFeatures(x: ManifestInput): Promise<void> {
  const st: ManifestState = { doc: service.parseManifest(x.text), path: MANIFEST_PATH };
  await service.loadFiles(st);
  const lines = x.text.split(/\r\n|\r|\n/).length;
  const diagnostics = service.doValidation(st);
  st.diagnostics = diagnostics;
  for (const d of diagnostics) {
    checkRange(d.range, lines, `diagnostic ${d.code}`);
    if (typeof d.message !== 'string' || !d.message) throw new Finding(`diagnostic ${d.code} without a message`);
  }
  const uri = 'file:///fuzz/tiny_manifest_q4.json';
  for (const a of service.getCodeActions(st, uri, diagnostics)) {
    for (const edits of Object.values(a.edit?.changes ?? {}))
      for (const e of edits) checkRange(e.range, lines, 'code action edit');
  }
  for (const o of x.offsets) {
    // Positions as a client sends them: mostly inside the text, sometimes past a line's end or the last line.
    const p: Position =
      o % 5 === 0 ? { line: o % (lines + 3), character: o % 997 } : st.doc.lines.positionAt(o % (x.text.length + 1));
    const h = service.doHover(st, p);
    if (h?.range) checkRange(h.range, lines, 'hover');
    service.doComplete(st, p);
    service.findDefinition(st, p);
  }
  for (const s of service.findDocumentSymbols(st)) checkRange(s.range, lines, 'symbol');
  service.getFoldingRanges(st);
  service.getCodeLenses(st);
  JSON.stringify(service.getSummary(st));
}

export const target: Target<ManifestInput> = {
  name: 'manifest',
  describe:
    'the manifest through getLanguageService: diagnostics, hover, completion, definition, symbols, code actions and lenses',
  arbitrary: () => manifestInput,
  check: allFeatures,
  serialize: (x) => JSON.stringify(x),
};
