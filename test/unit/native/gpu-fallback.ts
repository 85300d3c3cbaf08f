// The check both GPU failure tests make (gpu-memory: a tensor larger than the device; gpu-fault: a lost context):
// quantize and kquantize of one float32 tensor under 'auto' run on the CPU with the CPU's bytes and say why in their
// backend, and under 'gpu' fail with the same reason.
import assert from 'node:assert/strict';
import * as eng from '../../../native/index';
import { KQ_PRESETS, kquantize } from '../../../native/kquant';
import { bytesOf, gaussian } from './data';

/** The tensor's options for both calls (returned for a test's further calls on the same data). */
export function f32Tensor(rows: number, cols: number, seed: number) {
  const data = bytesOf(gaussian(rows * cols, seed, 0.05));
  const o = { data, dtype: 'f32' as const, rows, cols, bits: 4 as const, groupSize: 64, symmetric: false };
  return {
    data,
    opts: { ...o, mode: 'optimized' as const, scaleDtype: 'f16' as const },
    k: { ...KQ_PRESETS[4], data, dtype: 'f32' as const, rows, cols },
  };
}

export async function fallsBackToCpu(t: ReturnType<typeof f32Tensor>, reason: RegExp): Promise<void> {
  const cpu = await eng.quantize({ ...t.opts, backend: 'cpu' });
  const auto = await eng.quantize({ ...t.opts, backend: 'auto' });
  assert.match(auto.backend, new RegExp(`GPU not used: .*${reason.source}`));
  assert.deepEqual(Buffer.from(auto.q), Buffer.from(cpu.q));
  await assert.rejects(eng.quantize({ ...t.opts, backend: 'gpu' }), reason);
  const kcpu = await kquantize({ ...t.k, backend: 'cpu' });
  const kauto = await kquantize({ ...t.k, backend: 'auto' });
  assert.match(kauto.backend, new RegExp(`GPU not used: .*${reason.source}`));
  assert.deepEqual(Buffer.from(kauto.q), Buffer.from(kcpu.q));
  assert.deepEqual(Buffer.from(kauto.codes), Buffer.from(kcpu.codes));
  await assert.rejects(kquantize({ ...t.k, backend: 'gpu' }), reason);
}
