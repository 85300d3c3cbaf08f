// The command line on the GPU: `apl-quant convert --backend gpu` writes the same NPZ bytes and the same accuracy
// figures as `--backend cpu`, names the GPU in the report, and `apl-quant run --backend gpu` on the result
// generates and dumps logits within the GPU forward's bound of the CPU's (groupwise and kquant weights: the same int8
// linears; float16 and float32 KV caches both). Runs where a GPU is usable: a real one, or the CUDA emulation
// (`npm run test:cuda-emu` runs this file with APL_ADDON pointing at the addon built on it). Elsewhere it says
// "skipped: no usable GPU (reason)".
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gpuUnavailable, inferInfo } from '../../../native/forward';
import { type CliRun, spawnTs } from '../../helpers/cli';
import { readNpyF32, relError } from '../run/helpers';

const root = join(__dirname, '../../..');
const why = inferInfo() ? gpuUnavailable() : 'the native addon is not built';
if (why) process.stdout.write(`# cli-gpu: GPU tests skipped: no usable GPU (${why})\n`);

function cli(args: string[]): Promise<CliRun> {
  return spawnTs(
    [join(root, 'server/src/cli.ts'), ...args],
    { ...process.env, APL_CLI_MAIN: '1' },
    `apl-quant ${args.join(' ')}`,
  );
}

describe('the command line on the GPU', { skip: why ? `skipped: no usable GPU (${why})` : false }, () => {
  const work = mkdtempSync(join(tmpdir(), 'apl-cli-gpu-'));
  after(() => rmSync(work, { recursive: true, force: true }));
  const src = join(root, 'test/fixtures/tiny-llama');

  it('convert --backend gpu = --backend cpu: the same NPZ bytes and accuracy figures; the report names the GPU', async () => {
    const out: Record<string, string> = {};
    for (const b of ['gpu', 'cpu']) {
      out[b] = join(work, `conv-${b}`);
      for (const format of ['kquant', 'groupwise']) {
        const r = await cli([
          'convert',
          src,
          '--bits',
          '4',
          '--format',
          format,
          '--backend',
          b,
          '--out',
          out[b],
          '--force',
        ]);
        assert.equal(r.status, 0, r.stderr);
        const npz = readdirSync(out[b]).find((f) => f.endsWith('.npz'))!;
        const bytes = readFileSync(join(out[b], npz));
        const report = JSON.parse(
          readFileSync(join(out[b], npz.replace('_quantized_', '_accuracy_').replace('.npz', '.json')), 'utf8'),
        );
        out[`${b}-${format}`] = bytes.toString('base64');
        // every figure to the last digit but the cosine (float64 sums in another order: 5e-16 apart)
        out[`${b}-${format}-report`] = JSON.stringify(
          report.weights.map((w: Record<string, number>) => [
            w.name,
            w.rel_error,
            w.snr_db,
            w.max_abs_error,
            w.output_rel_error,
            w.pass,
            w.cosine.toFixed(12),
          ]),
        );
        if (b === 'gpu') assert.match(report.backend, /^cuda:/, `${format}: report backend ${report.backend}`);
      }
    }
    for (const format of ['kquant', 'groupwise']) {
      assert.ok(out[`gpu-${format}`] === out[`cpu-${format}`], `${format}: the GPU's NPZ differs from the CPU's`);
      assert.equal(out[`gpu-${format}-report`], out[`cpu-${format}-report`], `${format}: the accuracy figures differ`);
    }
  });

  for (const format of ['groupwise', 'kquant'])
    it(`run --backend gpu on ${format} weights generates and its logits are within 2e-3 of the CPU scalar model, both KV caches`, async () => {
      const dir = join(work, `run-${format}`);
      const c = await cli(['convert', src, '--bits', '4', '--format', format, '--out', dir, '--force']);
      assert.equal(c.status, 0, c.stderr);
      const manifest = join(dir, readdirSync(dir).find((f) => f.includes('_manifest_'))!);
      const g = await cli([
        'run',
        manifest,
        '--prompt-tokens',
        '1,2,3,4',
        '--max-tokens',
        '3',
        '--backend',
        'gpu',
        '--json',
      ]);
      assert.equal(g.status, 0, g.stderr);
      const done = JSON.parse(g.stdout.trim().split('\n').at(-1)!);
      assert.equal(done.type, 'done');
      assert.equal(done.generated_tokens, 3);
      assert.match(done.backend, /^cuda:/);
      for (const kv of ['f16', 'f32']) {
        const dump = (b: string) => join(work, `${format}-${b}-${kv}.npy`);
        const args = (b: string) => [
          'run',
          manifest,
          '--prompt-tokens',
          '1,2,3,4,5,6,7,8,9',
          '--max-tokens',
          '0',
          '--backend',
          b,
          '--kv',
          kv,
          '--dump-logits',
          dump(b),
        ];
        const rg = await cli(args('gpu'));
        assert.equal(rg.status, 0, rg.stderr);
        const rc = await spawnTs(
          [join(root, 'server/src/cli.ts'), ...args('cpu')],
          { ...process.env, APL_CLI_MAIN: '1', APL_FORCE_SCALAR: '1' },
          'apl-quant run (scalar)',
        );
        assert.equal(rc.status, 0, rc.stderr);
        const a = await readNpyF32(dump('gpu'));
        const b = await readNpyF32(dump('cpu'));
        assert.deepEqual(a.shape, b.shape);
        const e = relError(a.data, b.data);
        assert.ok(e <= 2e-3, `${format}, --kv ${kv}: GPU logits ${e} from the CPU's`);
      }
    });
});
