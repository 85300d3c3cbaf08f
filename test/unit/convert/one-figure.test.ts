// Issue 15: one bits-per-weight figure and one unit system for a conversion. The converter's report, the CLI
// summary line, the task terminal and the manifest's code lens all show the same numbers.
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { test } from 'node:test';
import { describeEvent } from '../../../client/src/convert/progress';
import { formatBitsPerWeight, formatBytes } from '../../../server/src/common/format';
import { convertModel } from '../../../server/src/convert/pipeline';
import { getLanguageService } from '../../../server/src/manifest';
import type { ConvertEvent } from '../../../server/src/protocol';
import type { AccuracyReport } from '../../../server/src/report';
import { formatSummary } from '../../../server/src/report/summary';
import { tempDir, tinyModel } from './helpers';

test('report, CLI summary, task terminal and code lens: the same bits per weight and sizes', async (t) => {
  const out = tempDir(t);
  const events: ConvertEvent[] = [];
  const r = await convertModel({ source: tinyModel, bits: 4, name: 'tiny', outDir: out }, (e) => events.push(e));
  const report = JSON.parse(readFileSync(r.report, 'utf8')) as AccuracyReport;
  const bpw = formatBitsPerWeight(report.sizes.bits_per_weight);
  assert.equal(report.sizes.output_bytes, statSync(r.npz).size);
  assert.equal(bpw, formatBitsPerWeight((statSync(r.npz).size * 8) / report.sizes.params));

  const summary = formatSummary(report, r);
  assert.ok(summary.includes(`${formatBytes(report.sizes.source_bytes)} → ${formatBytes(report.sizes.output_bytes)}`));
  assert.ok(summary.includes(`(${bpw} bits/weight`), summary);

  const result = events.find((e) => e.type === 'result');
  assert.ok(result);
  const line = describeEvent(result) ?? '';
  assert.ok(line.includes(`${formatBytes(report.sizes.source_bytes)} → ${formatBytes(report.sizes.output_bytes)}`));
  assert.ok(line.includes(`(${bpw} bits/weight)`), line);

  const service = getLanguageService();
  const state = { doc: service.parseManifest(readFileSync(r.manifest, 'utf8')), path: r.manifest };
  await service.loadFiles(state);
  const lens = service.getCodeLenses(state)[0].command?.title ?? '';
  assert.ok(lens.includes(`${bpw} bits/weight`), `${lens} vs ${bpw}`);
  assert.ok(lens.includes(formatBytes(report.sizes.output_bytes)), lens);
});
