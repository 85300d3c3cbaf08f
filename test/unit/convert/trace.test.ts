// APL_CONVERT_TRACE (server/src/convert/trace.ts): a conversion in a child process writes its timeline, every
// quantized tensor's read, kernel and write spans in the order they ran (a chunk's read ends before its kernel
// starts, its kernel before its write), the report last; an unwritable trace file does not fail the conversion.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { root, tempDir, tinyModel } from './helpers';

function convert(out: string, trace: string) {
  return spawnSync(
    process.execPath,
    ['--import', 'tsx', join(root, 'server/src/cli.ts'), 'convert', tinyModel, '--bits', '4', '--out', out],
    { cwd: root, env: { ...process.env, APL_CLI_MAIN: '1', APL_CONVERT_TRACE: trace }, encoding: 'utf8' },
  );
}

interface Span {
  s: string;
  t0: number;
  t1: number;
  n?: string;
}

test('APL_CONVERT_TRACE: each tensor read, quantized and written in that order; the report last', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'trace.json');
  const r = convert(join(dir, 'out'), file);
  assert.equal(r.status, 0, r.stderr);
  const { spans, end } = JSON.parse(readFileSync(file, 'utf8')) as { spans: Span[]; end: number };
  const report = JSON.parse(readFileSync(join(dir, 'out', 'tiny-llama_accuracy_q4.json'), 'utf8')) as {
    weights: { name: string }[];
  };
  const names = report.weights.map((w) => w.name);
  assert.ok(names.length > 0);
  for (const n of names) {
    const of = (s: string) => spans.filter((x) => x.s === s && x.n === n);
    const [read, kernel, write] = [of('read'), of('kernel'), of('write')];
    assert.ok(read.length > 0 && kernel.length === read.length && write.length > 0, `${n}: spans of every stage`);
    for (let i = 0; i < read.length; i++) {
      assert.ok(read[i].t1 <= kernel[i].t0, `${n}: chunk ${i} read before its kernel`);
      assert.ok(kernel[i].t1 <= write[i].t0, `${n}: chunk ${i} quantized before it is written`);
    }
  }
  for (const x of spans) assert.ok(x.t0 <= x.t1 && x.t1 <= end, `${x.s} ${x.n ?? ''} within the run`);
  const last = spans.reduce((a, b) => (b.t1 > a.t1 ? b : a));
  assert.equal(last.s, 'report');
  assert.equal(spans.find((x) => x.s === 'start')?.t0, 0, 'the start counts from the process start');
});

test('APL_CONVERT_TRACE naming a folder that does not exist loses the trace, not the conversion', (t) => {
  const dir = tempDir(t);
  const r = convert(join(dir, 'out'), join(dir, 'no', 'such', 'trace.json'));
  assert.equal(r.status, 0, r.stderr);
  assert.ok(existsSync(join(dir, 'out', 'tiny-llama_quantized_q4.npz')));
});
