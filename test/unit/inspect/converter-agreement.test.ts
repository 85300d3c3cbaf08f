// The inspector against the converter's real output (apl-quant convert of the tiny Llama fixture): every
// quantized member is recognised from the manifest, and the error the inspector measures from the source
// checkpoint equals the error the converter recorded, weight by weight.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { InspectorSession } from '../../../server/src/inspect/session';
import { tempDir } from '../../helpers/tmp';

const root = join(__dirname, '..', '..', '..');
const fixture = join(root, 'test', 'fixtures', 'tiny-llama');

test('measured error equals the converter’s recorded error for every quantized weight', {
  skip: !existsSync(fixture) && 'no tiny-llama fixture',
}, async () => {
  const out = tempDir('apl-agree-conv-');
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      join(root, 'server', 'src', 'cli.ts'),
      'convert',
      fixture,
      '--bits',
      '4',
      '--out',
      out,
      '--name',
      'tiny',
    ],
    { cwd: root, encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  const s = await InspectorSession.open(join(out, 'tiny_quantized_q4.npz'));
  try {
    assert.ok(s.manifest, 'the manifest beside the archive is found');
    const members = await s.members();
    assert.deepEqual(
      members.filter((m) => m.error),
      [],
    );
    const quantized = members.filter((m) => m.role?.part === 'q');
    assert.ok(quantized.length >= 14, `${quantized.length} quantized weights`);
    for (const m of quantized) {
      const t = await s.tensor(m.name);
      const dq = t.dequant!;
      assert.ok(dq.source.available, dq.source.detail);
      const recorded = dq.accuracy?.rel_error;
      assert.equal(typeof recorded, 'number');
      assert.ok(
        Math.abs(dq.source.relError! - recorded!) <= 1e-6 * recorded! + 1e-9,
        `${m.name}: ${dq.source.relError} vs ${recorded}`,
      );
      // The error view's figures: the same sample, so its largest |error| is the measured max |err|.
      const e = dq.source.error!;
      assert.equal(e.stats.count, dq.stats.count);
      const maxAbs = Math.max(Math.abs(e.stats.min), Math.abs(e.stats.max));
      assert.ok(Math.abs(maxAbs - dq.source.maxAbsError!) <= 1e-6 * maxAbs, `${m.name}: ${maxAbs}`);
      assert.equal(
        e.histogram.counts.reduce((a, b) => a + b, 0),
        e.stats.count - e.stats.nan - e.stats.inf,
      );
      assert.ok(e.preview && e.preview.values.length > 0);
      const page = await s.page(m.name, 'error', 0, 2, 0, 8);
      assert.ok(page.values.every((v) => typeof v === 'number' && Math.abs(v) <= dq.source.maxAbsError! + 1e-12));
    }
  } finally {
    await s.close();
  }
});
