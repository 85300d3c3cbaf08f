// End-to-end accuracy on the shipped trained model (test/fixtures/brown-tiny, scripts/train-tiny-model.py): the
// float model against the torch perplexity committed beside it, against itself, and the 8/4/2/1-bit conversions.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { convertModel } from '../../../server/src/convert/pipeline';
import { evaluateTokens, type LogitsModel } from '../../../server/src/eval/evaluate';
import type { EvalSummary } from '../../../server/src/protocol';
import { createForward } from '../../../server/src/run/engine';
import { loadModel } from '../../../server/src/run/load';
import { cachedLogits } from '../../helpers/cached-logits';

const root = join(__dirname, '../../..');
const fixture = join(root, 'test/fixtures/brown-tiny');
const ref = JSON.parse(readFileSync(join(fixture, 'reference-ppl.json'), 'utf8'));
const CTX: number = ref.ctx;
/** Chunks evaluated here (the committed reference has every chunk's NLL, so any prefix compares). */
const CHUNKS = 4;

let work = '';
let tokens: number[] = [];
let bos = 1;
let vocab = 0;
let floatModel: LogitsModel;
const results = new Map<number, EvalSummary>();

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'apl-eval-'));
  const r = await convertModel({ source: fixture, bits: 8, name: 'brown', outDir: work }, () => {});
  const q8 = await loadModel(r.manifest);
  const f = await loadModel(r.manifest, { float: true });
  assert.ok(q8.tokenizer);
  tokens = q8.tokenizer.encode(readFileSync(join(fixture, 'heldout.txt'), 'utf8'), true);
  bos = q8.config.bosTokenId ?? 1;
  vocab = q8.config.vocabSize;
  floatModel = cachedLogits(createForward(f.config, f.weights, { contextLength: CTX }), vocab);
});

after(() => rmSync(work, { recursive: true, force: true }));

test('the float model: perplexity matches the torch reference to 0.1 %, and against itself KLD 0, ratio 1', async () => {
  assert.deepEqual(tokens, JSON.parse(readFileSync(join(fixture, 'heldout.ids.json'), 'utf8')).ids);
  const r = await evaluateTokens(floatModel, floatModel, tokens, { ctx: CTX, maxChunks: CHUNKS, bosId: bos, vocab });
  const nll = ref.chunk_nll_sum.slice(0, CHUNKS).reduce((a: number, b: number) => a + b, 0);
  const torchPpl = Math.exp(nll / (CHUNKS * (CTX / 2 - 1)));
  assert.equal(r.summary.tokens_scored, CHUNKS * (CTX / 2 - 1));
  assert.ok(Math.abs(r.summary.ppl_float / torchPpl - 1) < 1e-3, `${r.summary.ppl_float} vs torch ${torchPpl}`);
  assert.equal(r.summary.kld_mean, 0);
  assert.equal(r.summary.kld_max, 0);
  assert.equal(r.summary.ppl_ratio, 1);
  assert.equal(r.summary.same_top, 1);
});

for (const bits of [8, 4, 2, 1] as const) {
  test(`${bits}-bit conversion against the float model`, async () => {
    const r = await convertModel({ source: fixture, bits, name: `brown${bits}`, outDir: work }, () => {});
    const q = await loadModel(r.manifest);
    const qm = createForward(q.config, q.weights, { contextLength: CTX });
    try {
      const s = (await evaluateTokens(qm, floatModel, tokens, { ctx: CTX, maxChunks: CHUNKS, bosId: bos, vocab }))
        .summary;
      results.set(bits, s);
      process.stdout.write(
        `# ${bits} bits: ppl ${s.ppl.toFixed(3)} (float ${s.ppl_float.toFixed(3)}) kld ${s.kld_mean.toExponential(3)} same top ${(100 * s.same_top).toFixed(2)} % rms dp ${(100 * s.rms_dp).toFixed(2)} %\n`,
      );
      if (bits === 8) {
        assert.ok(s.kld_mean <= 0.001, `8-bit KLD ${s.kld_mean}`);
        assert.ok(s.same_top >= 0.98, `8-bit same top ${s.same_top}`);
      } else {
        const prev = results.get(bits === 4 ? 8 : bits === 2 ? 4 : 2);
        assert.ok(prev, 'the wider conversion ran first');
        assert.ok(s.kld_mean > prev.kld_mean, `KLD at ${bits} bits ${s.kld_mean} is not above ${prev.kld_mean}`);
      }
    } finally {
      qm.dispose();
    }
  });
}
