// The accuracy report reader: the converter's report JSON edited field by field (and as raw text), read by the
// one reader (normalizeReport, looksLikeReport) as the report webview and the language server use it, by the
// language server's file loader (loadReport) and by the report panel's host (inspect/host loadReport).
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { loadReport as hostLoadReport } from '../../../server/src/inspect/host';
import { loadReport } from '../../../server/src/manifest/files';
import { looksLikeReport, normalizeReport } from '../../../server/src/report';
import { tempDir } from '../../helpers/tmp';
import { reportText } from '../lib/fixtures';
import { applyJsonOps, applyTextOps, jsonOp, textOp } from '../lib/mutate';
import { acceptedOrRefused, Finding, type Target } from '../lib/target';

const SEED = JSON.parse(reportText());
const input: fc.Arbitrary<string> = fc.oneof(
  fc.array(jsonOp, { minLength: 1, maxLength: 6 }).map((ops) => JSON.stringify(applyJsonOps(SEED, ops)) ?? ''),
  fc.array(textOp, { minLength: 1, maxLength: 6 }).map((ops) => applyTextOps(reportText(), ops)),
);

let dir = '';
export const target: Target<string> = {
  name: 'report',
  describe: 'the accuracy report reader: normalizeReport, looksLikeReport, the server loadReport and the panel host',
  arbitrary: () => input,
  async setup() {
    dir = tempDir('apl-fuzz-report-');
  },
  async teardown() {
    rmSync(dir, { recursive: true, force: true });
  },
  async check(text) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {}
    if (parsed !== undefined) {
      looksLikeReport(parsed);
      const r = normalizeReport(parsed);
      if (!Array.isArray(r.weights) || typeof r.model !== 'string')
        throw new Finding('normalizeReport gave a malformed model');
      JSON.stringify(r);
    }
    const file = join(dir, 'tiny_accuracy_q4.json');
    writeFileSync(file, text);
    const state = await loadReport(file, true);
    if (state && 'problem' in state && /[\r\n]/.test(state.message))
      throw new Finding(`report problem is not one line: ${state.message}`);
    await acceptedOrRefused(() => hostLoadReport(file), [Error], file);
  },
  serialize: (x) => JSON.stringify(x),
};
