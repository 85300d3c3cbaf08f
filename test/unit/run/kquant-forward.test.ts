// The forward pass on a kquant conversion (--format kquant): run/load.ts reads its weights as the third kind, and the
// forward (server/src/run/engine.ts: the native kernels, int8 activations) stays within the int8-activation tolerance
// of the reference forward on the same weights dequantized by the engine (native/kquant.ts), as packed weights do;
// error against the float model shrinks from 2 to 4 bits.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { inferInfo } from '../../../native/forward';
import { createReferenceModel } from '../../../native/forward-reference';
import { createForward } from '../../../server/src/run/engine';
import { loadModel } from '../../../server/src/run/load';
import { checkpointModel, convertTiny, dequantizeAll, goldenPrompt, PACKED_VS_DEQUANTIZED, relError } from './helpers';

test('tiny-llama --format kquant: forward = reference forward on the dequantized weights', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'apl-run-kq-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const name = 'tiny-llama';
  const ids = goldenPrompt(name);
  const float = await checkpointModel(name);
  const ref = createReferenceModel(float.config, float.weights, { contextLength: 64 }).forward(ids, 0, true);
  const errs: number[] = [];
  for (const bits of [2, 4] as const) {
    const m = await loadModel(await convertTiny(name, bits, dir, 'kquant'));
    assert.equal(m.weights.layers[0].q.kind, 'kquant');
    assert.equal(m.weights.embed.kind, 'packed', '8-bit embeddings stay groupwise');
    const fwd = createForward(m.config, m.weights, { contextLength: 64 });
    if (inferInfo()) assert.match(fwd.backend, /^cpu-/, 'kquant weights run on the native kernels');
    const out = fwd.forward(ids, 0, true);
    const deq = createReferenceModel(m.config, dequantizeAll(m.weights), { contextLength: 64 }).forward(ids, 0, true);
    const rel = relError(out, deq);
    assert.ok(rel <= PACKED_VS_DEQUANTIZED, `${bits}-bit kquant: forward vs dequantized ${rel}`);
    assert.ok(rel > 0 || !inferInfo(), 'the native forward quantizes activations (not the float reference)');
    errs.push(relError(out, ref));
  }
  assert.ok(errs[0] > errs[1], `error vs float should shrink from 2 to 4 bits: ${errs}`);
});
