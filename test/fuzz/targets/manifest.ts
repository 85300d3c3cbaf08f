// The manifest through the language server's features: diagnostics (schema + NPZ and report cross-checks), hover,
// completion, definition, symbols, folding, code actions, summary and code lenses, on the fixture manifest edited
// field by field (JSON values replaced with hostile ones, keys deleted, arrays wrapped or grown) and then by
// keystrokes. Every feature must answer (never throw) within the time limit, with ranges inside the document.
import fc from 'fast-check';
import type { Range } from 'vscode-languageserver-types';
import {
  codeActions,
  codeLenses,
  completion,
  definition,
  documentSymbols,
  foldingRanges,
  hover,
  parseManifest,
  summarize,
  validateDoc,
} from '../../../server/src/manifest';
import { loadNpzIndex } from '../../../server/src/manifest/files';
import type { NpzState } from '../../../server/src/manifest/npz-index';
import { MANIFEST_PATH, manifestText, NPZ_PATH, REPORT_PATH, reportText } from '../lib/fixtures';
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

let npz: NpzState | undefined;
const report = JSON.parse(reportText());

function checkRange(r: Range, lines: number, what: string): void {
  const ok = (p: { line: number; character: number }) =>
    Number.isInteger(p.line) && Number.isInteger(p.character) && p.line >= 0 && p.character >= 0 && p.line < lines + 1;
  if (!ok(r.start) || !ok(r.end)) throw new Finding(`${what} range outside the document: ${JSON.stringify(r)}`);
}

/** Every feature of the language server on one text. */
export async function allFeatures(x: ManifestInput): Promise<void> {
  const doc = parseManifest(x.text);
  const lines = x.text.split(/\r\n|\r|\n/).length;
  const diagnostics = validateDoc(doc, { manifestPath: MANIFEST_PATH, npz, report });
  for (const d of diagnostics) {
    checkRange(d.range, lines, `diagnostic ${d.code}`);
    if (typeof d.message !== 'string' || !d.message) throw new Finding(`diagnostic ${d.code} without a message`);
  }
  const uri = 'file:///fuzz/tiny_manifest_q4.json';
  for (const a of codeActions(doc, diagnostics, { uri, npz })) {
    for (const edits of Object.values(a.edit?.changes ?? {}))
      for (const e of edits) checkRange(e.range, lines, 'code action edit');
  }
  for (const o of x.offsets) {
    const offset = o % (x.text.length + 1);
    const h = hover(doc, offset, { npz, report: undefined });
    if (h?.range) checkRange(h.range, lines, 'hover');
    completion(doc, offset, { npz });
    definition(doc, offset, { npzUri: 'file:///fuzz/x.npz', reportUri: 'file:///fuzz/r.json' });
  }
  for (const s of documentSymbols(doc)) checkRange(s.range, lines, 'symbol');
  foldingRanges(doc);
  codeLenses(summarize(doc, {}), { npzUri: 'file:///fuzz/x.npz' });
}

export const target: Target<ManifestInput> = {
  name: 'manifest',
  describe: 'the manifest through diagnostics, hover, completion, definition, symbols, code actions and lenses',
  async setup() {
    npz = await loadNpzIndex(NPZ_PATH);
    void REPORT_PATH;
  },
  arbitrary: () => manifestInput,
  check: allFeatures,
  serialize: (x) => JSON.stringify(x),
};
