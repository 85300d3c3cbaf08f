// The manifest's code lens and hover mention the report's end-to-end figures (convert --eval, issue 12) and the
// verdict's basis; a report without them says how to get them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { codeLenses } from '../../../server/src/manifest/code-lens';
import { parseManifest } from '../../../server/src/manifest/document';
import { hover } from '../../../server/src/manifest/hover';
import { toLoadedReport } from '../../../server/src/manifest/report';
import { summarize } from '../../../server/src/manifest/summary';

const text = JSON.stringify({
  weights: [],
  metadata: { npz: 'x.npz', accuracy_report: 'r.json', accuracy_pass: true },
});
const doc = parseManifest(text);
const e2e = {
  ppl: 316.733,
  ppl_float: 316.52,
  ppl_ratio: 1.00067,
  kld_mean: 0.000111,
  same_top: 0.9811,
  ctx: 256,
  chunks: 60,
  pass: true,
};
const base = {
  weights: [{ name: 'a', bits: 4, rel_error: 0.08, pass: true }],
  pass: true,
  verdict_basis: 'per weight: 1 of 1 … — pass',
};

const lensTitles = (report: unknown) =>
  codeLenses(summarize(doc, { report: toLoadedReport(report) }), { reportUri: 'file:///r.json' }).map(
    (l) => l.command?.title ?? '',
  );
const hoverAt = (report: unknown, key: string) => {
  const off = text.indexOf(`"${key}":`) + key.length + 4;
  const h = hover(doc, off, { report: toLoadedReport(report) });
  return h ? (h.contents as { value: string }).value : '';
};

test('code lens: the verdict with the end-to-end figures, or that there are none', () => {
  assert.ok(
    lensTitles({ ...base, end_to_end: e2e }).includes('✓ accuracy: pass · end to end: KLD 0.000111, same top 98.11 %'),
  );
  assert.ok(
    lensTitles({ ...base, end_to_end: { ...e2e, pass: false }, pass: false }).includes(
      '✗ accuracy: FAIL · end to end: KLD 0.000111, same top 98.11 % (over threshold)',
    ),
  );
  assert.ok(lensTitles(base).includes('✓ accuracy: pass · no end-to-end check'));
  assert.ok(
    lensTitles({ ...base, end_to_end: { error: 'x.txt: no such file' } }).includes(
      '✓ accuracy: pass · end-to-end check failed to run',
    ),
  );
});

test('hover on metadata.accuracy_report: verdict, basis and the end-to-end table', () => {
  const md = hoverAt({ ...base, end_to_end: e2e }, 'accuracy_report');
  assert.match(md, /^\*\*Accuracy: PASS\*\*/);
  assert.match(md, /Based on per weight: 1 of 1 … — pass\./);
  assert.match(md, /\| mean KLD \| 0\.000111 \|/);
  assert.match(md, /\| same top \| 98\.11 % \|/);
  assert.match(md, /\| perplexity \| 316\.73 quantized vs 316\.52 float \(ratio 1\.0007\) \|/);
  assert.match(md, /\| measured \| ctx 256, 60 chunks — pass \|/);
  assert.match(
    hoverAt(base, 'accuracy_pass'),
    /No end-to-end figures: \*\*APL: Evaluate Model…\*\* \(`apl-quant eval … --update-report`\) or `apl-quant convert … --eval` adds them/,
  );
});
