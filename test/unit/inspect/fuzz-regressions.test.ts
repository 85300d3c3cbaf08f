// Found by the fuzzer (test/fuzz, target webview, 10-minute run): a selectTensor message whose name held a line
// break was answered with an error that echoed the name raw (inspect/reader.ts), so the error shown in the inspector spanned two lines.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { InspectorSession } from '../../../server/src/inspect/session';

test('an unknown member name with a line break is refused on one line, the break escaped', async () => {
  const s = await InspectorSession.open(join(__dirname, 'fixtures', 'numpy_stored.npz'));
  try {
    await assert.rejects(s.tensor('a\nb.npy'), (e: Error) => {
      assert.doesNotMatch(e.message, /[\r\n]/);
      assert.match(e.message, /numpy_stored\.npz: no member named a\\nb\.npy/);
      return true;
    });
    await assert.rejects(s.tensor('nope.npy'), /no member named nope\.npy$/);
  } finally {
    await s.close();
  }
});
