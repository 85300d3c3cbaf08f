// The inspector's dequantized view of a kquant conversion (--format kquant): pages of a kquant weight's q member equal
// the engine's dequantization of its four members (native/kquant.ts, which docs/FORMAT.md's numpy formula matches
// bit for bit), the members' roles name the weight, and the tensor view carries the dequantized statistics.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { kdequantize } from '../../../native/kquant';
import { convertModel } from '../../../server/src/convert/pipeline';
import { kquantMemberNames, type Manifest } from '../../../server/src/formats/manifest';
import { openNpzFile } from '../../../server/src/formats/npz';
import { InspectorSession } from '../../../server/src/inspect/session';
import { readManifest, readNpzWeight } from '../../../server/src/run/load';

const MODEL = join(__dirname, '../../fixtures/tiny-llama');

for (const bits of [2, 4] as const) {
  test(`inspector: dequantized view of a ${bits}-bit kquant weight equals the engine's`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'apl-kq-view-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const r = await convertModel({ source: MODEL, bits, format: 'kquant', outDir: dir, name: 'tiny' }, () => {});
    const m: Manifest = readManifest(r.manifest);
    const e = m.weights.find((w) => w.name === 'model.layers.0.mlp.down_proj.weight')!;
    assert.equal(e.quantization.type, 'kquant');
    const npz = await openNpzFile(r.npz);
    const w = await readNpzWeight(npz, e, r.npz);
    assert.equal(w.kind, 'kquant');
    const want = kdequantize(w as Parameters<typeof kdequantize>[0]);
    const { rows, cols } = w;
    const s = await InspectorSession.open(r.npz);
    try {
      const names = kquantMemberNames(e.name, bits);
      const page = await s.page(names.q, 'dequant', 0, rows, 0, cols);
      assert.deepEqual(page.values, Array.from(want));
      const cut = await s.page(names.q, 'dequant', 3, 2, 5, 30);
      const wantCut: number[] = [];
      for (let y = 3; y < 5; y++) for (let x = 5; x < 35; x++) wantCut.push(want[y * cols + x]);
      assert.deepEqual(cut.values, wantCut, 'a page inside the grid');
      const tv = await s.tensor(names.q);
      assert.ok(tv.dequant, 'the tensor view has a dequantized part');
      assert.equal(tv.dequant.stats.min, Math.min(...want));
      assert.equal(tv.dequant.stats.max, Math.max(...want));
      const roles = new Map((await s.members()).map((x) => [x.name, x.role]));
      for (const [k, part] of [
        ['q', 'q'],
        ['q_codes', 'q_codes'],
        ['q_d', 'q_d'],
        ['q_dmin', 'q_dmin'],
      ] as const) {
        assert.equal(roles.get(names[k])?.part, part, k);
        assert.equal(roles.get(names[k])?.weight, e.name, k);
      }
    } finally {
      await s.close();
    }
  });
}
