// The one place a conversion's file names are built and parsed (server/src/convert/names.ts), and the error-code
// contract that decides the float32-scales fallback.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { isScaleOverflow, SCALE_OVERFLOW_CODE } from '../../../server/src/convert/errors';
import {
  isOutputManifestName,
  manifestMatchesReport,
  outputName,
  outputPaths,
  parseOutputName,
  reportBesideManifest,
} from '../../../server/src/convert/names';

test('output names: built, parsed back, siblings found', () => {
  assert.deepEqual(outputPaths('/o', 'tiny', 4), {
    npz: join('/o', 'tiny_quantized_q4.npz'),
    manifest: join('/o', 'tiny_manifest_q4.json'),
    report: join('/o', 'tiny_accuracy_q4.json'),
  });
  for (const kind of ['npz', 'manifest', 'report'] as const) {
    assert.deepEqual(parseOutputName(`/x/${outputName('my_model', kind, 8)}`), { name: 'my_model', kind, bits: '8' });
  }
  assert.equal(parseOutputName('tiny_quantized_q4.json'), undefined, 'kind and extension must agree');
  assert.equal(parseOutputName('tiny_manifest.json'), undefined);
  assert.ok(isOutputManifestName('a_manifest_q2.json'));
  assert.ok(!isOutputManifestName('a_accuracy_q2.json'));
  assert.equal(reportBesideManifest('/d/a_manifest_q2.json'), join('/d', 'a_accuracy_q2.json'));
  assert.equal(reportBesideManifest('/d/manifest.json'), undefined);
});

test('a report finds its manifest by stem and bit width', () => {
  assert.ok(manifestMatchesReport('tiny_manifest_q4.json', 'tiny_accuracy_q4.json'));
  assert.ok(!manifestMatchesReport('tiny_manifest_q8.json', 'tiny_accuracy_q4.json'));
  assert.ok(!manifestMatchesReport('other_manifest_q4.json', 'tiny_accuracy_q4.json'));
  assert.ok(manifestMatchesReport('tiny_manifest_q8.json', 'tiny_report.json'), 'no bits in the report: any');
});

test('scale overflow: the error code decides; the old engine message still counts', () => {
  assert.ok(isScaleOverflow(Object.assign(new Error('anything'), { code: SCALE_OVERFLOW_CODE })));
  assert.ok(
    isScaleOverflow(new Error("w: the group at index 3 has values too large for f16 scales; use scaleDtype 'f32'")),
  );
  assert.ok(!isScaleOverflow(Object.assign(new Error('NaN at index 3'), { code: 'ERR_APL_INVALID' })));
  assert.ok(!isScaleOverflow(undefined));
});
