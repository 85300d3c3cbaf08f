import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CliError } from '../../../server/src/cli/common';
import { run } from '../../../server/src/cli/inspect';
import { f32ToBf16Bytes } from '../../../server/src/formats/dtypes';
import { inspectFile } from '../../../server/src/formats/inspect';
import { writeSafetensors } from '../../../server/src/formats/safetensors';
import { StatsAccumulator } from '../../../server/src/formats/stats';
import { requireNumpy, runPython } from '../../helpers/numpy';

const dir = mkdtempSync(join(tmpdir(), 'apl-inspect-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  try {
    const code = await run(args, { out: (s) => (out += s) });
    return { code, out, err: '' };
  } catch (e) {
    assert.ok(e instanceof CliError, String(e));
    // what the dispatcher (server/src/cli.ts) prints
    return { code: e.exitCode, out, err: `apl-quant inspect: ${e.message}\n` };
  }
}

const close = (a: number | null, b: number, rel = 1e-6) =>
  assert.ok(a !== null && Math.abs(a - b) <= rel * Math.max(1, Math.abs(b)), `${a} ≉ ${b}`);

test('StatsAccumulator over chunks matches a direct computation, counts NaN/Inf apart', () => {
  const v = Float64Array.from({ length: 10_001 }, (_, i) => 1e6 + Math.sin(i) * 3);
  const acc = new StatsAccumulator();
  for (let o = 0; o < v.length; o += 997) acc.addValues(v.subarray(o, o + 997));
  acc.addValues(Float64Array.of(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY));
  const r = acc.result();
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
  assert.equal(r.count, v.length);
  close(r.mean, mean, 1e-12);
  close(r.std, std, 1e-9);
  assert.equal(r.min, Math.min(...v));
  assert.equal(r.max, Math.max(...v));
  assert.equal(r.nan, 1);
  assert.equal(r.inf, 2);
  const empty = new StatsAccumulator().result();
  assert.deepEqual([empty.min, empty.mean, empty.std], [null, null, null]);
});

test('inspect --json --stats agrees with numpy for npz, npy and safetensors', async (t) => {
  if (!requireNumpy(t)) return;
  const npz = join(dir, 'mix.npz');
  const npy = join(dir, 'be.npy');
  const ref = JSON.parse(
    runPython(
      `
rng = np.random.default_rng(1)
arrs = {
  'f32': rng.standard_normal((64, 33)).astype(np.float32),
  'f16': (rng.standard_normal(1000) * 10).astype(np.float16),
  'i64': rng.integers(-10**12, 10**12, 500),
  'u8': rng.integers(0, 255, (7, 7), dtype=np.uint8),
  'bools': rng.random(99) > 0.5,
  'nanny': np.array([1.5, np.nan, -np.inf, 2.5], np.float32),
  'nested/name': np.zeros((0, 3), np.int32),
}
np.savez_compressed(sys.argv[1], **arrs)
be = np.arange(-50, 50, dtype='>f8') / 7
np.save(sys.argv[2], be)
out = {}
for k, a in list(arrs.items()) + [('be', be)]:
    f = a.astype(np.float64)
    fin = f[np.isfinite(f)]
    out[k] = dict(dtype=a.dtype.name, shape=list(a.shape), bytes=a.nbytes, nan=int(np.isnan(f).sum()), inf=int(np.isinf(f).sum()),
                  min=float(fin.min()) if fin.size else None, max=float(fin.max()) if fin.size else None,
                  mean=float(fin.mean()) if fin.size else None, std=float(fin.std()) if fin.size else None)
print(json.dumps(out))
`,
      [npz, npy],
    ),
  );
  const check = (
    name: string,
    got: { dtype: string; shape: number[]; bytes: number; stats?: Record<string, number | null> | null },
  ) => {
    const r = ref[name];
    assert.equal(got.dtype, r.dtype, name);
    assert.deepEqual(got.shape, r.shape, name);
    assert.equal(got.bytes, r.bytes, name);
    const s = got.stats!;
    assert.equal(s.nan, r.nan, name);
    assert.equal(s.inf, r.inf, name);
    for (const k of ['min', 'max', 'mean', 'std']) {
      if (r[k] === null) assert.equal(s[k], null, `${name}.${k}`);
      else close(s[k] as number, r[k], 1e-9);
    }
  };
  const res = await cli([npz, '--stats', '--json']);
  assert.equal(res.code, 0, res.err);
  const j = JSON.parse(res.out);
  assert.equal(j.format, 'npz');
  assert.equal(j.file, npz);
  assert.deepEqual(
    j.tensors.map((x: { name: string }) => x.name),
    ['f32', 'f16', 'i64', 'u8', 'bools', 'nanny', 'nested/name'],
  );
  for (const x of j.tensors) check(x.name, x);
  const r2 = await cli([npy, '--json', '--stats']);
  const j2 = JSON.parse(r2.out);
  assert.equal(j2.format, 'npy');
  check('be', j2.tensors[0]);
  const plain = await cli([npz]);
  assert.equal(plain.code, 0);
  assert.match(plain.out, /^f32\s+float32\s+\[64, 33\]\s+8448$/m);
});

test('inspect on safetensors: bf16 named bfloat16, stats computed in chunks', async () => {
  const p = join(dir, 'm.safetensors');
  const vals = Array.from({ length: 3000 }, (_, i) => (i % 17) - 8);
  await writeSafetensors(p, [
    { name: 'w', dtype: 'BF16', shape: [30, 100], data: f32ToBf16Bytes(vals) },
    { name: 'q', dtype: 'F4', shape: [2, 2], data: new Uint8Array(2) },
  ]);
  const r = await inspectFile(p, { stats: true, chunkBytes: 1000 });
  assert.equal(r.format, 'safetensors');
  assert.equal(r.tensors[0].dtype, 'bfloat16');
  assert.equal(r.tensors[0].bytes, 6000);
  const mean = vals.reduce((a, b) => a + b, 0) / vals.length;
  close(r.tensors[0].stats!.mean, mean, 1e-12);
  assert.equal(r.tensors[0].stats!.min, -8);
  assert.equal(r.tensors[1].dtype, 'float4_e2m1fn');
  assert.equal(r.tensors[1].stats, null);
});

test('a bad file: exit 1 and one stderr line naming the file, no stack', async () => {
  const bad = join(dir, 'broken.npz');
  writeFileSync(bad, Buffer.from('PK\x03\x04 this is not really a zip file at all'));
  const missing = join(dir, 'missing.safetensors');
  const trunc = join(dir, 'trunc.safetensors');
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(1n << 40n);
  writeFileSync(trunc, b);
  for (const [f, re] of [
    [bad, /end-of-central-directory/],
    [missing, /no such file/],
    [trunc, /header length 1099511627776 exceeds/],
  ] as const) {
    const r = await cli([f, '--stats']);
    assert.equal(r.code, 1, f);
    assert.equal(r.out, '');
    const lines = r.err.trimEnd().split('\n');
    assert.equal(lines.length, 1, r.err);
    assert.ok(lines[0].startsWith(`apl-quant inspect: ${f}: `), lines[0]);
    assert.match(lines[0], re);
  }
  // and as a real process: exit status 1, no stack trace
  const p = spawnSync(process.execPath, ['--import', 'tsx', 'server/src/cli.ts', 'inspect', bad], {
    encoding: 'utf8',
    env: { ...process.env, APL_CLI_MAIN: '1' },
  });
  assert.equal(p.status, 1, p.stderr);
  assert.equal(p.stderr.trimEnd().split('\n').length, 1, p.stderr);
  assert.doesNotMatch(p.stderr, /\n\s+at /);
});

test('inspect lists string, bytes and object members beside the numbers, never refusing the archive', async (t) => {
  if (!requireNumpy(t)) return;
  const npz = join(dir, 'text.npz');
  runPython(
    `np.savez(sys.argv[1], names=np.array(['alpha', 'beta', 'gamma']), raw=np.array([b'ab', b'cdef']),
  objs=np.array([{'a': 1}, None], dtype=object), w=np.arange(6, dtype=np.float32).reshape(2, 3))`,
    [npz],
  );
  const r = await cli([npz, '--json', '--stats']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  const by = Object.fromEntries(j.tensors.map((x: { name: string }) => [x.name, x]));
  assert.deepEqual(Object.keys(by).sort(), ['names', 'objs', 'raw', 'w']);
  assert.equal(by.names.dtype, '<U5');
  assert.deepEqual(by.names.shape, [3]);
  assert.equal(by.names.bytes, 60);
  assert.equal(by.names.stats, null);
  assert.equal(by.raw.dtype, '|S4');
  assert.equal(by.objs.dtype, '|O');
  assert.equal(by.w.stats.max, 5);
  const table = await cli([npz]);
  assert.match(table.out, /names\s+<U5\s+\[3\]\s+60/);
});
