// The contract between the converter and the language server: what `apl-quant convert` writes for the bundled tiny
// model validates cleanly (schema, NPZ cross-checks, report), at every bit width, and its report feeds the hovers.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { MarkupContent } from 'vscode-languageserver-types';
import { parseManifest } from '../../../server/src/manifest/document';
import { FileCache, manifestFiles } from '../../../server/src/manifest/files';
import { hover } from '../../../server/src/manifest/hover';
import { summarize } from '../../../server/src/manifest/summary';
import { validateDoc } from '../../../server/src/manifest/validate';

const ROOT = join(__dirname, '../../..');
const MODEL = join(ROOT, 'test/fixtures/tiny-llama');
let out: string;

before(() => {
  out = mkdtempSync(join(tmpdir(), 'apl-contract-'));
});
after(() => rmSync(out, { recursive: true, force: true }));

describe('converter output through the language server checks', { skip: !existsSync(MODEL) && 'no tiny model' }, () => {
  for (const [bits, extra] of [
    [4, []],
    [1, []],
    [8, ['--group-size', 'row', '--symmetric']],
  ] as const) {
    it(`${bits} bits ${extra.join(' ')}: no errors or warnings, verdict from the report`, async () => {
      const dir = join(out, `q${bits}`);
      const r = spawnSync(
        process.execPath,
        [
          '--import',
          'tsx',
          join(ROOT, 'server/src/cli.ts'),
          'convert',
          MODEL,
          '--bits',
          String(bits),
          ...extra,
          '--out',
          dir,
        ],
        { cwd: ROOT, encoding: 'utf8', timeout: 120_000 },
      );
      assert.equal(r.status, 0, r.stderr);
      const manifestPath = join(dir, `tiny-llama_manifest_q${bits}.json`);
      const text = readFileSync(manifestPath, 'utf8');
      const doc = parseManifest(text);
      const files = manifestFiles(doc, manifestPath);
      const cache = new FileCache();
      const npz = await cache.getNpz(files.npzPath!);
      const report = await cache.getReport(files.reportPath!, files.reportNamed);
      assert.ok(!('problem' in npz), JSON.stringify(npz));
      assert.ok(report && !('problem' in report), JSON.stringify(report));
      const ds = validateDoc(doc, { manifestPath, npz, report });
      assert.deepEqual(
        ds.filter((d) => d.severity === 1 || d.severity === 2),
        [],
      );
      const s = summarize(doc, { npz, report });
      assert.notEqual(s.verdict, 'unknown');
      const name = 'model.layers.0.self_attn.q_proj.weight';
      const h = hover(doc, text.indexOf(`"${name}"`) + 2, { npz, report });
      assert.ok(h);
      assert.match((h.contents as MarkupContent).value, /relative error .*\*\*(PASS|FAIL)\*\*/);
    });
  }
});
