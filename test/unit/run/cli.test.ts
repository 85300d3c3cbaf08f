// apl-quant run and apl-quant matmul as child processes on tiny models converted in the test: --dump-logits against
// the reference forward, the --json event stream, greedy decoding, seeds, the chat template, matmul on .npy and text
// input against expectations computed here (no numpy), and one clear stderr line with a non-zero exit for bad input.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { inferInfo } from '../../../native/forward';
import { createReferenceModel } from '../../../native/forward-reference';
import { f32ToF16Bytes } from '../../../server/src/formats/dtypes';
import { writeNpyFile } from '../../../server/src/formats/npy';
import type { RunEvent } from '../../../server/src/protocol';
import { loadModel } from '../../../server/src/run/load';
import { argmax } from '../../../server/src/run/sampler';
import { type CliRun, spawnTs } from '../../helpers/cli';
import {
  convertTiny,
  dequantizeAll,
  dequantizedCopy,
  PACKED_VS_DEQUANTIZED,
  readNpyF32,
  relError,
  root,
} from './helpers';

type Run = Omit<CliRun, 'signal'>;

function cli(args: string[]): Promise<Run> {
  const env = { ...process.env, APL_CLI_MAIN: '1' };
  return spawnTs([join(root, 'server/src/cli.ts'), ...args], env, `apl-quant ${args.join(' ')}`);
}

/** A failure: the exit code and exactly one stderr line, matching `re`. */
function assertOneLineError(r: Run, re: RegExp, code = 1): void {
  assert.equal(r.status, code, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
  assert.match(lines[0], re);
}

const events = (r: Run) =>
  r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as RunEvent);

let dir = '';
let llama = '';
let mistral = '';
const PROMPT = [1, 45, 300, 17, 88, 129];
/** `run` on the 4-bit tiny llama with PROMPT as its token ids, then `args`. */
const runPrompt = (...args: string[]) => cli(['run', llama, '--prompt-tokens', PROMPT.join(','), ...args]);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'apl-run-cli-'));
  llama = await convertTiny('tiny-llama', 4, dir, 'groupwise');
  mistral = await convertTiny('tiny-mistral', 4, dir, 'groupwise');
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('run --prompt-tokens --dump-logits --max-tokens 0: logits of every prompt position, nothing generated', async () => {
  const out = join(dir, 'logits.npy');
  const r = await runPrompt('--max-tokens', '0', '--dump-logits', out);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /prompt: 6 tokens, [\d.]+ tokens\/s; decode: 0 tokens/);
  const got = await readNpyF32(out);
  assert.deepEqual(got.shape, [PROMPT.length, 512]);
  // The reference forward on the same weights, dequantized (tolerance: see quantized.test.ts).
  const m = await loadModel(llama);
  const w = m.weights;
  const deq = dequantizeAll(w);
  const want = createReferenceModel(m.config, deq, { contextLength: 64 }).forward(PROMPT, 0, true);
  assert.ok(relError(got.data, want) <= PACKED_VS_DEQUANTIZED, `rel ${relError(got.data, want)}`);
  // --float runs the source checkpoint: close to, but not the same as, the 4-bit logits.
  const outF = join(dir, 'logits-float.npy');
  const rf = await runPrompt('--float', '--max-tokens', '0', '--dump-logits', outF);
  assert.equal(rf.status, 0, rf.stderr);
  const rel = relError(got.data, (await readNpyF32(outF)).data);
  assert.ok(rel > 1e-4 && rel < 0.3, `4-bit vs float logits: ${rel}`);
});

test('run --kv f32 | f16 (default) and --ctx: the KV cache storage and size', async () => {
  const native = inferInfo() !== null;
  const dump = async (extra: string[]) => {
    const out = join(dir, `kv${extra.join('')}.npy`);
    const r = await runPrompt('--max-tokens', '0', '--dump-logits', out, ...extra);
    assert.equal(r.status, 0, r.stderr);
    return (await readNpyF32(out)).data;
  };
  const f16 = await dump([]);
  const f32 = await dump(['--kv', 'f32']);
  const rel = relError(f16, f32);
  // float16 K/V (native forward) move the logits by ~4e-4 with float weights (forward-golden.test.ts); with packed
  // weights the int8 activations of the next layers round some values the other way: measured 2.2e-2 here, the
  // size of the int8-activation error itself (PACKED_VS_DEQUANTIZED). The TypeScript reference keeps float32.
  if (native) assert.ok(rel > 0 && rel <= PACKED_VS_DEQUANTIZED, `f16 vs f32 KV: ${rel}`);
  else assert.equal(rel, 0);
  // --ctx 8: 6 prompt tokens leave room for 2 decode steps, then the run stops at the context
  const r = await runPrompt('--max-tokens', '9', '--temperature', '0', '--ctx', '8', '--json');
  assert.equal(r.status, 0, r.stderr);
  const done = events(r).at(-1) as Extract<RunEvent, { type: 'done' }>;
  assert.equal(done.stop, 'context');
  assert.equal(done.generated_tokens, 3);
  assertOneLineError(await runPrompt('--ctx', '4'), /6 tokens, longer than --ctx of 4/);
  assertOneLineError(await cli(['run', llama, '--prompt-tokens', '1', '--kv', 'f8']), /--kv must be f16 or f32/, 2);
});

test('run --json: prompt, token and done events; greedy tokens are the argmax of the reference forward', async () => {
  const r = await runPrompt('--max-tokens', '4', '--temperature', '0', '--json');
  assert.equal(r.status, 0, r.stderr);
  const ev = events(r);
  assert.deepEqual(ev[0], { type: 'prompt', ids: PROMPT });
  const tokens = ev.filter((e): e is Extract<RunEvent, { type: 'token' }> => e.type === 'token');
  const done = ev.at(-1) as Extract<RunEvent, { type: 'done' }>;
  assert.equal(done.type, 'done');
  assert.equal(ev.length, 2 + tokens.length);
  for (const t of tokens) {
    assert.ok(Number.isInteger(t.id) && t.id >= 0 && t.id < 512);
    assert.equal(typeof t.text, 'string');
  }
  assert.equal(done.prompt_tokens, PROMPT.length);
  assert.equal(done.generated_tokens, tokens.length);
  for (const k of ['prefill_tokens_per_s', 'decode_tokens_per_s', 'peak_rss_bytes'] as const) {
    assert.ok(typeof done[k] === 'number' && done[k] >= 0, k);
  }
  assert.ok(['eos', 'max_tokens'].includes(done.stop));
  const m = await loadModel(llama);
  const model = createReferenceModel(m.config, m.weights, { contextLength: 64 });
  const want: number[] = [];
  let logits = model.forward(PROMPT, 0, false);
  for (let i = 0; i < tokens.length; i++) {
    want.push(argmax(logits));
    logits = model.forward([want[i]], PROMPT.length + i, false);
  }
  assert.deepEqual(
    tokens.map((t) => t.id),
    want,
  );
});

test('run: a seed reproduces a sampled run; --prompt and --chat go through the tokenizer and chat template', async () => {
  const args = ['run', mistral, '--prompt', 'kalo mine ruta', '--max-tokens', '6', '--temperature', '1.5', '--json'];
  const a = await cli([...args, '--seed', '7']);
  const b = await cli([...args, '--seed', '7']);
  assert.equal(a.status, 0, a.stderr);
  assert.equal(a.stdout, b.stdout.replace(/"done".*/, a.stdout.match(/"done".*/)![0]));
  const m = await loadModel(mistral);
  assert.deepEqual((events(a)[0] as { ids: number[] }).ids, m.tokenizer!.encode('kalo mine ruta'));
  const c = await cli(['run', mistral, '--chat', '--prompt', 'kalo mine', '--max-tokens', '2', '--json']);
  assert.equal(c.status, 0, c.stderr);
  const ids = (events(c)[0] as { ids: number[] }).ids;
  assert.deepEqual(ids, m.tokenizer!.encodeChat([{ role: 'user', content: 'kalo mine' }]));
  assert.ok(ids.length >= 4);
  // Plain text mode streams the decoded text, then the speed line on stderr.
  const p = await cli(['run', mistral, '--prompt', 'kalo', '--max-tokens', '3', '--temperature', '0']);
  assert.equal(p.status, 0, p.stderr);
  assert.ok(p.stdout.trim().length > 0);
  assert.match(p.stderr, /decode: \d+ tokens, [\d.]+ tokens\/s/);
});

/** The native linear rounds x to int8 per weight group (dx = amax/127, |x − x̂| ≤ dx/2), so each output may move by at
 *  most Σ_g (amax_g / 254) · Σ_{c∈g} |Ŵ[r, c]| from the float product; asserts every output lies within that bound
 *  (plus float32 summation slack) of y computed here. */
function assertWithinActivationRounding(
  got: Float32Array,
  w: ReturnType<typeof dequantizedCopy>,
  x: Float32Array,
  n: number,
  groupSize: number,
): void {
  if (w.kind !== 'float') throw new Error('expected float');
  const W = new Float32Array(w.data.buffer, w.data.byteOffset, w.rows * w.cols);
  const want = expectMatmul(w, x, n);
  let worst = 0;
  for (let i = 0; i < n; i++)
    for (let r = 0; r < w.rows; r++) {
      let bound = 0;
      let mag = 0;
      for (let g = 0; g < w.cols; g += groupSize) {
        let amax = 0;
        let wsum = 0;
        for (let c = g; c < Math.min(g + groupSize, w.cols); c++) {
          amax = Math.max(amax, Math.abs(x[i * w.cols + c]));
          wsum += Math.abs(W[r * w.cols + c]);
          mag += Math.abs(x[i * w.cols + c] * W[r * w.cols + c]);
        }
        bound += (amax / 254) * wsum;
      }
      const err = Math.abs(got[i * w.rows + r] - want[i * w.rows + r]);
      assert.ok(err <= bound + 1e-5 * mag + 1e-6, `y[${i}, ${r}]: |error| ${err} > int8 activation bound ${bound}`);
      worst = Math.max(worst, err / (bound || 1));
    }
  // With the addon, the rounding is real and the bound is not vacuous: the error uses a fair share of it somewhere.
  if (inferInfo()) assert.ok(worst > 1e-3, `error/bound ${worst}`);
}

/** y = x · Ŵᵀ in float64 from the dequantized weight. */
function expectMatmul(w: ReturnType<typeof dequantizedCopy>, x: Float32Array, n: number): Float64Array {
  if (w.kind !== 'float') throw new Error('expected float');
  const W = new Float32Array(w.data.buffer, w.data.byteOffset, w.rows * w.cols);
  const y = new Float64Array(n * w.rows);
  for (let i = 0; i < n; i++)
    for (let r = 0; r < w.rows; r++) {
      let s = 0;
      for (let c = 0; c < w.cols; c++) s += x[i * w.cols + c] * W[r * w.cols + c];
      y[i * w.rows + r] = s;
    }
  return y;
}

test('matmul: .npy (float32 [n, in], float16 [in]) and text input, against y computed here', async () => {
  const name = 'model.layers.1.mlp.down_proj.weight';
  const m = await loadModel(llama);
  const packed = m.weights.layers[1].down;
  assert.equal(packed.kind, 'packed');
  const groupSize = packed.kind === 'packed' ? packed.groupSize : 0;
  const w = dequantizedCopy(packed);
  const cols = w.cols;
  const x = Float32Array.from({ length: 3 * cols }, (_, i) => Math.sin(i * 0.37) * 2);
  const xNpy = join(dir, 'x.npy');
  await writeNpyFile(xNpy, 'float32', [3, cols], x);
  const yNpy = join(dir, 'y.npy');
  const r = await cli(['matmul', llama, '--weight', name, '--input', xNpy, '--out', yNpy]);
  assert.equal(r.status, 0, r.stderr);
  const y = await readNpyF32(yNpy);
  assert.deepEqual(y.shape, [3, w.rows]);
  assertWithinActivationRounding(y.data, w, x, 3, groupSize);

  const x1 = x.subarray(0, cols);
  const h = join(dir, 'x16.npy');
  await writeNpyFile(h, 'float16', [cols], f32ToF16Bytes(x1));
  const r16 = await cli(['matmul', llama, '--weight', name, '--input', h, '--out', join(dir, 'y16.npy')]);
  assert.equal(r16.status, 0, r16.stderr);
  const y16 = await readNpyF32(join(dir, 'y16.npy'));
  assert.deepEqual(y16.shape, [w.rows]);
  const e16 = relError(y16.data, expectMatmul(w, x1, 1));
  assert.ok(e16 < 2e-2, `float16 input: rel ${e16}`); // x rounded to float16, then to int8 per group

  const txt = join(dir, 'x.txt');
  writeFileSync(txt, `${Array.from(x1, (v) => v.toPrecision(9)).join('\n')}\n`);
  const rt = await cli(['matmul', llama, '--weight', name, '--input', txt, '--out', join(dir, 'yt.npy')]);
  assert.equal(rt.status, 0, rt.stderr);
  assertWithinActivationRounding((await readNpyF32(join(dir, 'yt.npy'))).data, w, x1, 1, groupSize);
  const rs = await cli(['matmul', llama, '--weight', name, '--input', txt]);
  assert.equal(rs.status, 0, rs.stderr);
  assert.match(rs.stdout, new RegExp(`^y: float32 \\[${w.rows}\\], min `));
});

test('bad input: one line naming the problem, non-zero exit', async () => {
  const tokens = PROMPT.join(',');
  // NPZ missing: the manifest alone in another folder.
  const lone = join(dir, 'lone');
  rmSync(lone, { recursive: true, force: true });
  mkdirSync(lone);
  const loneManifest = join(lone, basename(llama));
  copyFileSync(llama, loneManifest);
  assertOneLineError(await cli(['run', loneManifest, '--prompt-tokens', tokens]), /NPZ .*is missing/);
  // A truncated NPZ beside it: the NPZ's path named once, then the problem.
  const npzName = JSON.parse(readFileSync(llama, 'utf8')).metadata.npz as string;
  const cut = join(lone, npzName);
  writeFileSync(cut, readFileSync(join(dirname(llama), npzName)).subarray(0, 300));
  const truncated = await cli(['run', loneManifest, '--prompt-tokens', tokens]);
  assertOneLineError(truncated, /no end-of-central-directory record; truncated\?/);
  assert.equal(truncated.stderr.split(cut).length - 1, 1, truncated.stderr);
  // A manifest that disagrees with its NPZ (a weight's shape edited).
  const edited = JSON.parse(readFileSync(llama, 'utf8'));
  edited.weights.find((w: { name: string }) => w.name === 'model.layers.0.self_attn.k_proj.weight').shape = [32, 128];
  const badShape = join(dir, 'badshape_manifest_q4.json');
  writeFileSync(badShape, JSON.stringify(edited));
  assertOneLineError(await cli(['run', badShape, '--prompt-tokens', tokens]), /k_proj.*manifest says/);
  // A family the forward pass does not know.
  const fam = JSON.parse(readFileSync(llama, 'utf8'));
  fam.model.family = 'gpt2';
  const badFamily = join(dir, 'gpt2_manifest_q4.json');
  writeFileSync(badFamily, JSON.stringify(fam));
  assertOneLineError(await cli(['run', badFamily, '--prompt-tokens', tokens]), /family 'gpt2' is not one the forward/);
  // A context longer than the model's (256).
  const long = Array.from({ length: 300 }, () => 5).join(',');
  assertOneLineError(
    await cli(['run', llama, '--prompt-tokens', long]),
    /300 tokens, longer than the model's context of 256/,
  );
  assertOneLineError(await cli(['run', llama, '--prompt-tokens', '1,512']), /token id 512 is outside the vocabulary/);
  assertOneLineError(await cli(['run', llama]), /no prompt/, 2);
  assertOneLineError(await cli(['run', join(dir, 'nope.json'), '--prompt', 'x']), /nope\.json: no such file/);
  if (process.platform !== 'win32') {
    // A FIFO as the manifest: refused at once (reading it would wait for a writer forever).
    const fifo = join(dir, 'fifo_manifest_q4.json');
    rmSync(fifo, { force: true });
    execFileSync('mkfifo', [fifo]);
    assertOneLineError(await cli(['run', fifo, '--prompt', 'x']), /fifo_manifest_q4\.json: not a regular file/);
  }
  // matmul: unknown weight, input of the wrong length, a 1-D weight.
  const x = join(dir, 'short.txt');
  writeFileSync(x, '1 2 3\n');
  assertOneLineError(
    await cli(['matmul', llama, '--weight', 'model.nope', '--input', x]),
    /unknown weight 'model\.nope'/,
  );
  assertOneLineError(
    await cli(['matmul', llama, '--weight', 'model.layers.0.mlp.up_proj.weight', '--input', x]),
    /input rows have 3 values, but the weight takes 128/,
  );
  assertOneLineError(
    await cli(['matmul', llama, '--weight', 'model.norm.weight', '--input', x]),
    /model\.norm\.weight has shape \[128\], not a matrix/,
  );
  // A non-finite input (NaN, or a text value past float32's range) is refused, not turned into zeros.
  const up = 'model.layers.0.mlp.up_proj.weight';
  const nanX = join(dir, 'nan.txt');
  writeFileSync(nanX, `${Array.from({ length: 128 }, (_, i) => (i === 5 ? 'NaN' : '1')).join(' ')}\n`);
  assertOneLineError(
    await cli(['matmul', llama, '--weight', up, '--input', nanX]),
    /nan\.txt: line 1: 'NaN' is not a number/,
  );
  const infX = join(dir, 'inf.txt');
  writeFileSync(infX, `${Array.from({ length: 128 }, (_, i) => (i === 7 ? '1e39' : '1')).join(' ')}\n`);
  assertOneLineError(
    await cli(['matmul', llama, '--weight', up, '--input', infX]),
    /inf\.txt: row 0, column 7 is Infinity; the input must be finite/,
  );
  const nanNpy = join(dir, 'nan.npy');
  await writeNpyFile(
    nanNpy,
    'float32',
    [128],
    Float32Array.from({ length: 128 }, (_, i) => (i === 3 ? Number.NaN : 1)),
  );
  assertOneLineError(
    await cli(['matmul', llama, '--weight', up, '--input', nanNpy]),
    /nan\.npy: element 3 is NaN; the input must be finite/,
  );
  // An output whose folder does not exist: a usage error before any work, not a failure naming a temporary file.
  const nowhere = join(dir, 'no-such-folder', 'y.npy');
  assertOneLineError(
    await cli(['matmul', llama, '--weight', up, '--input', x, '--out', nowhere]),
    /--out .*y\.npy: the folder .*no-such-folder does not exist/,
    2,
  );
  assertOneLineError(
    await cli(['run', llama, '--prompt-tokens', tokens, '--max-tokens', '0', '--dump-logits', nowhere]),
    /--dump-logits .*y\.npy: the folder .*no-such-folder does not exist/,
    2,
  );
});

test('run: Ctrl+C (SIGINT) stops generation cleanly with a done event, exit code 130', async () => {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(root, 'server/src/cli.ts'),
      'run',
      llama,
      '--prompt-tokens',
      PROMPT.join(','),
      '--max-tokens',
      '240',
      '--json',
    ],
    { cwd: root, env: { ...process.env, APL_CLI_MAIN: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let sent = false;
  child.stdout.on('data', (d) => {
    stdout += d;
    if (!sent && stdout.includes('"type":"token"')) {
      sent = true;
      child.kill('SIGINT');
    }
  });
  const status = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  assert.ok(sent, 'no token event arrived');
  assert.equal(status, 130);
  const ev = events({ status, stdout, stderr: '' });
  const done = ev.at(-1) as Extract<RunEvent, { type: 'done' }>;
  assert.equal(done.type, 'done');
  assert.equal(done.stop, 'interrupted');
  assert.ok(done.generated_tokens < 240);
  assert.equal(ev.filter((e) => e.type === 'token').length, done.generated_tokens);
});
