// A GPU that faults mid-run (the CUDA emulation's APL_CUDA_EMU_FAULT: the next launch of the named kernel fails
// as on an illegal address, and the context stays corrupted for the rest of the process, as a device's does):
// 'auto' goes on on the CPU everywhere after it (a model moves mid-run and gives the CPU's logits, new models and
// quantization run on the CPU with the reason), and 'gpu' is an error naming the fault. Its own file: the fault
// lasts until the process ends. Elsewhere (no GPU, or a real one) it says that it is skipped.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createModel, gpuUnavailable, inferInfo } from '../../../native/forward';
import * as eng from '../../../native/index';
import { captureStderr } from '../../helpers/stderr';
import { config, f32Weight, weights as tinyModel } from './forward-model';
import { f32Tensor, fallsBackToCpu } from './gpu-fallback';

const why = inferInfo() ? gpuUnavailable() : 'the native addon is not built';
const emulated = !why && /^emulated GPU/.test(eng.engineInfo().gpu.name ?? '');
const skip = emulated ? false : `skipped: needs the CUDA emulation's fault injection (${why || 'a real GPU'})`;
if (skip) process.stdout.write(`# gpu-fault: ${skip}\n`);

describe('a GPU that faults mid-run', { skip }, () => {
  it("'auto' goes on on the CPU after the fault; 'gpu' is an error naming it", async () => {
    delete process.env.APL_QUIET_NATIVE;
    const c = config('llama');
    const w = await tinyModel(c, f32Weight);
    const prompt = [3, 17, 42, 5, 60, 0, 11, 29, 8];
    const cpu = createModel(c, w, { contextLength: 32, backend: 'cpu' });
    const want = [cpu.forward(prompt.slice(0, 4), 0, false), cpu.forward(prompt.slice(4), 4, true)];
    const wantNext = cpu.forward([7], prompt.length, false);
    cpu.dispose();

    const m = createModel(c, w, { contextLength: 32, backend: 'auto' });
    assert.match(m.backend, /^cuda:/);
    m.forward(prompt.slice(0, 4), 0, false);
    process.env.APL_CUDA_EMU_FAULT = 'k_rmsnorm'; // the next forward's first norm faults
    const { value: got, err } = captureStderr(() => m.forward(prompt.slice(4), 4, true));
    assert.match(m.backend, /^cpu-/);
    assert.match(
      err,
      /^apl-quant: the GPU forward failed \(CUDA: an illegal memory access was encountered\); running on the CPU from here \(4 cached positions recomputed\)\n$/,
    );
    assert.deepEqual(got, want[1]);
    assert.deepEqual(m.forward([7], prompt.length, false), wantNext);
    m.dispose();

    // the context stays lost: a new model on 'auto' runs on the CPU and says why; 'gpu' refuses
    const { value: m2, err: err2 } = captureStderr(() => createModel(c, w, { contextLength: 32, backend: 'auto' }));
    assert.match(m2.backend, /^cpu-/);
    assert.match(err2, /an illegal memory access was encountered.*running on the CPU\n$/);
    assert.deepEqual(m2.forward(prompt.slice(0, 4), 0, false), want[0]);
    m2.dispose();
    assert.throws(
      () => createModel(c, w, { contextLength: 32, backend: 'gpu' }),
      (e: Error) => /an illegal memory access was encountered/.test(e.message) && !e.message.includes('\n'),
    );

    // quantization: 'auto' on the CPU with the same bytes and the reason, 'gpu' an error
    await fallsBackToCpu(f32Tensor(64, 256, 5), /illegal memory access/);
  });
});
