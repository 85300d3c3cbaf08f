// The forward pass on packed weights (what `apl-quant run` uses, through server/src/run/engine.ts) against the float
// reference forward on the same weights dequantized (docs/FORMAT.md's formula, written out in the test). Tolerance:
// ‖logits_packed − logits_dequantized‖₂ / ‖logits_dequantized‖₂ ≤ PACKED_VS_DEQUANTIZED (5e-2, helpers.ts): the native
// forward quantizes activations to int8 per weight group (the TypeScript reference fallback needs none: it
// dequantizes the same values); one matmul is held to the exact rounding bound in cli.test.ts. And the
// quantized model against the float checkpoint: error shrinks as bits grow.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createReferenceModel } from '../../../native/forward-reference';
import { createForward } from '../../../server/src/run/engine';
import { loadModel } from '../../../server/src/run/load';
import { checkpointModel, convertTiny, dequantizeAll, goldenPrompt, PACKED_VS_DEQUANTIZED, relError } from './helpers';

for (const name of ['tiny-llama', 'tiny-gemma'] as const) {
  test(`${name}: packed forward = float forward on dequantized weights; error vs float shrinks with bits`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'apl-run-q-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const ids = goldenPrompt(name);
    const float = await checkpointModel(name);
    const ref = createReferenceModel(float.config, float.weights, { contextLength: 64 }).forward(ids, 0, true);
    const errs: number[] = [];
    for (const bits of [2, 4, 8] as const) {
      const m = await loadModel(await convertTiny(name, bits, dir, 'groupwise'));
      assert.equal(m.weights.layers[0].q.kind, 'packed');
      const packed = createForward(m.config, m.weights, { contextLength: 64 }).forward(ids, 0, true);
      const deq = createReferenceModel(m.config, dequantizeAll(m.weights), { contextLength: 64 }).forward(ids, 0, true);
      const rel = relError(packed, deq);
      assert.ok(rel <= PACKED_VS_DEQUANTIZED, `${bits}-bit: packed vs dequantized ${rel}`);
      errs.push(relError(packed, ref));
    }
    assert.ok(errs[0] > errs[1] && errs[1] > errs[2], `error vs float should shrink with bits: ${errs}`);
    assert.ok(errs[2] < 0.05, `8-bit logits vs float: ${errs[2]}`);
  });
}
