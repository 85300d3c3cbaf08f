import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Manifest } from '../../../server/src/formats/manifest';
import { findManifestFor, memberRole, quantizedWeight } from '../../../server/src/inspect/dequant';
import { tempDir } from '../../helpers/tmp';

// How a packed weight dequantizes (low bits first, (q − zero) · scale per group) is the engine's: see
// test/unit/native/api.test.ts; the inspector's pages of it are tested in session.test.ts.

const fixtures = join(__dirname, 'fixtures');

test('findManifestFor finds the manifest that names the archive, and skips others', async () => {
  const found = await findManifestFor(join(fixtures, 'tiny_quantized_q4.npz'));
  assert.ok(found);
  assert.match(found.path, /tiny_manifest_q4\.json$/);
  assert.equal(await findManifestFor(join(fixtures, 'numpy_stored.npz')), null);
  const dir = tempDir('apl-manifest-');
  writeFileSync(join(dir, 'a_manifest_q4.json'), '{ not json');
  writeFileSync(join(dir, 'b_manifest_q4.json'), JSON.stringify({ weights: [], metadata: { npz: 'other.npz' } }));
  assert.equal(await findManifestFor(join(dir, 'x.npz')), null);
  assert.equal(await findManifestFor(join(dir, 'missing', 'x.npz')), null);
});

test('memberRole and quantizedWeight read the manifest', async () => {
  const m = JSON.parse(await readFile(join(fixtures, 'tiny_manifest_q4.json'), 'utf8')) as Manifest;
  assert.deepEqual(memberRole(m, 'layers_0_q_proj_weight_q4.npy'), {
    weight: 'layers.0.q_proj.weight',
    part: 'q',
    bits: 4,
    groupSize: 4,
  });
  assert.equal(memberRole(m, 'layers_0_q_proj_weight_q4_scales')?.part, 'q_scales');
  assert.equal(memberRole(m, 'norm_weight.npy')?.part, 'float');
  assert.equal(memberRole(m, 'nothing.npy'), undefined);
  const qw = quantizedWeight(m, 'layers_0_q_proj_weight_q4');
  assert.deepEqual(qw && [qw.rows, qw.cols, qw.bits, qw.groupSize], [6, 10, 4, 4]);
  assert.equal(quantizedWeight(m, 'norm_weight.npy'), undefined);
});
