import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { inspectorHost, loadReport } from '../../../server/src/inspect/host';
import { InspectorSession } from '../../../server/src/inspect/session';
import type { HostToInspector } from '../../../server/src/protocol';
import { tempDir } from '../../helpers/tmp';

test('loadReport finds the manifest that names the report, else one with the same stem', async () => {
  const dir = tempDir('apl-host-');
  const report = join(dir, 'm_accuracy_q4.json');
  writeFileSync(report, JSON.stringify({ model: 'm', weights: [] }));
  let msg = await loadReport(report);
  assert.equal(msg.type, 'report');
  assert.equal(msg.title, 'Accuracy: m');
  assert.equal(msg.file, report);
  assert.equal(msg.manifest, null);
  writeFileSync(join(dir, 'm_manifest_q4.json'), JSON.stringify({ metadata: { npz: 'm_quantized_q4.npz' } }));
  writeFileSync(join(dir, 'm_manifest_q8.json'), JSON.stringify({ metadata: { npz: 'm_quantized_q8.npz' } }));
  msg = await loadReport(report);
  assert.equal(msg.manifest, join(dir, 'm_manifest_q4.json'), 'same stem and bits');
  assert.equal(msg.npz, join(dir, 'm_quantized_q4.npz'));
  writeFileSync(
    join(dir, 'other_manifest.json'),
    JSON.stringify({ metadata: { npz: 'x.npz', accuracy_report: 'm_accuracy_q4.json' } }),
  );
  msg = await loadReport(report);
  assert.equal(msg.manifest, join(dir, 'other_manifest.json'), 'the one naming the report wins');
});

test('loadReport errors name the file', async () => {
  const dir = tempDir('apl-host-');
  await assert.rejects(loadReport(join(dir, 'missing.json')), /missing\.json: no such file/);
  writeFileSync(join(dir, 'bad.json'), '{ "model": ');
  await assert.rejects(loadReport(join(dir, 'bad.json')), /bad\.json: not valid JSON/);
  await assert.rejects(loadReport(dir), /: is a directory$/);
  // A FIFO is refused from its open descriptor, at once (a read would wait for a writer forever).
  if (process.platform !== 'win32') {
    const fifo = join(dir, 'fifo.json');
    execFileSync('mkfifo', [fifo]);
    await assert.rejects(loadReport(fifo), /fifo\.json: not a regular file \(a pipe, socket or device\)$/);
  }
});

test('inspectorHost answers every request once, errors included', async () => {
  const s = await InspectorSession.open(join(__dirname, 'fixtures', 'numpy_stored.npz'));
  const sent: HostToInspector[] = [];
  const host = inspectorHost(s, (m) => sent.push(m));
  try {
    await host({ type: 'ready' });
    assert.equal(sent[0].type, 'members');
    assert.equal(sent[0].type === 'members' && sent[0].members.length, 8);
    await host({ type: 'selectTensor', name: 'weight.npy' });
    assert.equal(sent[1].type === 'tensor' && sent[1].tensor.stats.count, 60);
    await host({ type: 'selectTensor', name: 'nope' });
    assert.deepEqual(sent[2].type === 'error' && [sent[2].name, /nope/.test(sent[2].message)], ['nope', true]);
    await host({
      type: 'page',
      requestId: 7,
      name: 'weight.npy',
      view: 'raw',
      row: 0,
      rowCount: 1,
      col: 0,
      colCount: 2,
    });
    assert.deepEqual(sent[3].type === 'page' && [sent[3].requestId, sent[3].values.length], [7, 2]);
    await host({
      type: 'page',
      requestId: 8,
      name: 'weight.npy',
      view: 'dequant',
      row: 0,
      rowCount: 1,
      col: 0,
      colCount: 2,
    });
    assert.equal(sent[4].type === 'error' && sent[4].requestId, 8);
    await host({ type: 'rendered', what: 'members', names: [] });
    assert.equal(sent.length, 5, 'nothing to answer');
  } finally {
    await s.close();
  }
});

// Found by the fuzzer (test/fuzz, target report): the report panel's error for a non-JSON report carried the
// parser's multi-line excerpt.
test('fuzz regression: loadReport refuses a non-JSON report with a one-line error', async () => {
  const file = join(tempDir('apl-fuzzreg-'), 'tiny_accuracy_q4.json');
  writeFileSync(file, ':{\n  "model": "tiny",\n  "weights": []\n}\n');
  await assert.rejects(loadReport(file), (e: Error) => {
    assert.match(e.message, /not valid JSON/);
    assert.doesNotMatch(e.message, /[\r\n]/);
    return true;
  });
});
