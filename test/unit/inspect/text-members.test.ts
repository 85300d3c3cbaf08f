// String and bytes members shown as text, object members listed and refused (never unpickled), and none of them
// hiding the numeric members beside them.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { InspectorSession, OBJECT_REFUSAL } from '../../../server/src/inspect/session';
import { decodeText } from '../../../server/src/inspect/values';
import { requireNumpy, runPython } from '../../helpers/numpy';

const dir = mkdtempSync(join(tmpdir(), 'apl-insp-text-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('decodeText: UTF-32 in either byte order, bytes with escapes, trailing NULs dropped', () => {
  const le = Buffer.alloc(16);
  for (const [i, cp] of [0x61, 0x1f600, 0x62].entries()) le.writeUInt32LE(cp, 4 * i);
  assert.equal(decodeText(le, true, true), 'a😀b');
  const be = Buffer.alloc(8);
  be.writeUInt32BE(0xe9, 0);
  assert.equal(decodeText(be, true, false), 'é');
  assert.equal(decodeText(Buffer.from([0x61, 0x00, 0xff, 0x62, 0, 0]), false), 'a\\x00\\xffb');
});

for (const compressed of [false, true]) {
  test(`a <U5 member is shown as text, an object member is refused by reason (${compressed ? 'deflated' : 'stored'})`, async (t) => {
    if (!requireNumpy(t)) return;
    const file = join(dir, `mixed-${compressed}.npz`);
    runPython(
      `f = np.savez_compressed if sys.argv[2] == '1' else np.savez
f(sys.argv[1], names=np.array([['alpha', 'beta'], ['γδ', '']]), raw=np.array([b'ab', b'c\\x00d']),
  objs=np.array([{'a': 1}, None], dtype=object), big=np.array(['xy'], dtype='>U2'),
  w=np.arange(6, dtype=np.float32).reshape(2, 3))`,
      [file, compressed ? '1' : '0'],
    );
    const s = await InspectorSession.open(file);
    try {
      const by = Object.fromEntries((await s.members()).map((m) => [m.name, m]));
      assert.deepEqual(Object.keys(by).sort(), ['big.npy', 'names.npy', 'objs.npy', 'raw.npy', 'w.npy']);
      assert.equal(by['names.npy'].dtype, '<U5');
      assert.equal(by['names.npy'].error, undefined);
      assert.deepEqual(by['names.npy'].shape, [2, 2]);
      assert.equal(by['objs.npy'].error, OBJECT_REFUSAL);
      assert.equal(by['w.npy'].dtype, 'float32');

      const names = await s.tensor('names.npy');
      assert.equal(names.text, true);
      assert.deepEqual([names.rows, names.cols, names.stats.count], [2, 2, 4]);
      assert.deepEqual((await s.page('names.npy', 'raw', 0, 2, 0, 2)).values, ['alpha', 'beta', 'γδ', '']);
      assert.deepEqual((await s.page('raw.npy', 'raw', 0, 2, 0, 1)).values, ['ab', 'c\\x00d']);
      assert.deepEqual((await s.page('big.npy', 'raw', 0, 1, 0, 1)).values, ['xy']);
      await assert.rejects(s.tensor('objs.npy'), /never|not shown/);
      await assert.rejects(s.page('objs.npy', 'raw', 0, 1, 0, 1), /pickled/);
      assert.equal((await s.tensor('w.npy')).stats.max, 5);
    } finally {
      await s.close();
    }
  });
}
