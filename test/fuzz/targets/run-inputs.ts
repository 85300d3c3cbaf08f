// What `apl-quant matmul`, `run` and `eval` read besides the model: matmul's --input (a .npy of float32/float16,
// mutated byte by byte, or a text file of numbers, edited), run's --prompt-tokens (parseRunArgs, then promptIds
// against the vocabulary) and eval's text (any UTF-8, broken UTF-8 included, tokenized with the tiny model's
// tokenizer, cut into chunks by planChunks / chunkTokens for any --ctx and --chunks), and the id count eval checks a
// tokenizer.json by (tokenizerIdCount on edited tokenizer files). Accepted inputs must be consistent: matmul's rows
// hold exactly the weight's in-features, prompt ids lie in the vocabulary, chunks hold ctx in-vocabulary ids.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { CliError } from '../../../server/src/cli/common';
import { tokenizerIdCount } from '../../../server/src/cli/eval';
import { readInput } from '../../../server/src/cli/matmul';
import { parseRunArgs, promptIds } from '../../../server/src/cli/run';
import { ChunkError, chunkTokens, planChunks } from '../../../server/src/eval/chunks';
import { encodeNpyHeader, type NpDtype } from '../../../server/src/formats/npy';
import { RunError } from '../../../server/src/run/config';
import type { LoadedModel } from '../../../server/src/run/load';
import { TextTokenizer } from '../../../server/src/run/tokenizer';
import { tempDir } from '../../helpers/tmp';
import { TINY_LLAMA } from '../lib/fixtures';
import { applyJsonOps, applyTextOps, hostileString, type JsonOp, jsonOp, mutatedBytes, textOp } from '../lib/mutate';
import { acceptedOrRefused, b64, Finding, type Target } from '../lib/target';

const npy = (dtype: NpDtype, shape: number[], data: Uint8Array) =>
  new Uint8Array(Buffer.concat([encodeNpyHeader({ dtype, shape }), data]));
const f32 = (xs: number[]) => new Uint8Array(Float32Array.from(xs).buffer);
const NPY_SEEDS = [
  npy('float32', [4], f32([1, -2, 0.5, 3])),
  npy('float32', [2, 4], f32([1, 2, 3, 4, 5, 6, 7, 8])),
  npy('float16', [4], new Uint8Array(Uint16Array.from([0x3c00, 0xc000, 0x3800, 0x4200]).buffer)),
  npy('float32', [1, 1, 4], f32([1, 2, 3, 4])),
  npy('int32', [4], new Uint8Array(16)),
];
const TEXT_SEEDS = ['1\n-2\n0.5\n3\n', '1 2 3 4\n5,6,7,8\n', '# x\n1e3 2 3 4 # row\n', '1 2 3\n4 5 6 7\n'];
const TOKENIZER = JSON.parse(readFileSync(join(TINY_LLAMA, 'tokenizer.json'), 'utf8'));
const TOK_CONFIG = JSON.parse(readFileSync(join(TINY_LLAMA, 'tokenizer_config.json'), 'utf8'));
const BROWN = "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election produced";

type Input =
  | { kind: 'npy'; bytes: Uint8Array; cols: number }
  | { kind: 'text'; text: string; cols: number }
  | { kind: 'tokens'; arg: string; vocab: number; chat: boolean }
  | { kind: 'eval'; text: Uint8Array; ctx: number; chunks?: number }
  | { kind: 'tokenizer'; ops: JsonOp[] };

const cols = fc.oneof(fc.constant(4), fc.integer({ min: 0, max: 9 }));
const input: fc.Arbitrary<Input> = fc.oneof(
  fc.record({ kind: fc.constant('npy' as const), bytes: mutatedBytes(NPY_SEEDS), cols }),
  fc.record({
    kind: fc.constant('text' as const),
    text: fc.oneof(
      fc
        .tuple(fc.constantFrom(...TEXT_SEEDS), fc.array(textOp, { maxLength: 4 }))
        .map(([t, ops]) => applyTextOps(t, ops)),
      fc.constantFrom('', '\n\n', 'NaN', 'Infinity', '1e999', '0x10', '1_000', '- 1', `${'1 '.repeat(3000)}\n`),
      hostileString,
    ),
    cols,
  }),
  fc.record({
    kind: fc.constant('tokens' as const),
    arg: fc.oneof(
      fc.array(fc.oneof(fc.nat({ max: 40 }), fc.nat()), { maxLength: 6 }).map((a) => a.join(',')),
      fc.constantFrom('', ',', '1,,2', ' 1 2 ', '-1', '1.5', '99999999999999999999999', '1e3', '0x1', '٣', '1,2,'),
      hostileString,
    ),
    vocab: fc.oneof(fc.constant(32), fc.nat({ max: 100 })),
    chat: fc.boolean(),
  }),
  fc.record(
    {
      kind: fc.constant('eval' as const),
      text: fc.oneof(
        fc.string({ maxLength: 300 }).map((s) => new Uint8Array(Buffer.from(s, 'utf8'))),
        fc.uint8Array({ maxLength: 300 }),
        fc
          .tuple(fc.nat({ max: 20 }), fc.array(textOp, { maxLength: 3 }))
          .map(([n, ops]) => new Uint8Array(Buffer.from(applyTextOps(BROWN.repeat(n), ops), 'utf8'))),
      ),
      ctx: fc.oneof(fc.constantFrom(4, 8, 16, 64), fc.integer({ min: -2, max: 70 }), fc.double()),
      chunks: fc.oneof(fc.constant(undefined), fc.integer({ min: -1, max: 5 }), fc.double()),
    },
    { requiredKeys: ['kind', 'text', 'ctx'] },
  ),
  fc.record({ kind: fc.constant('tokenizer' as const), ops: fc.array(jsonOp, { maxLength: 4 }) }),
);

let dir = '';
let tok: TextTokenizer;
const VOCAB = tokenizerIdCount(TOKENIZER);

function checkIds(ids: ArrayLike<number>, vocab: number, what: string): void {
  for (let i = 0; i < ids.length; i++) {
    const t = ids[i];
    if (!Number.isInteger(t) || t < 0 || t >= vocab)
      throw new Finding(`${what}: id ${t} at ${i} outside [0, ${vocab})`);
  }
}

export const target: Target<Input> = {
  name: 'run-inputs',
  describe:
    'matmul --input (.npy, text), run --prompt-tokens, eval text and chunks, tokenizerIdCount: readInput, ' +
    'parseRunArgs/promptIds, encode/planChunks/chunkTokens',
  arbitrary: () => input,
  async setup() {
    dir = tempDir('apl-fuzz-runin-');
    tok = new TextTokenizer(TOKENIZER, TOK_CONFIG);
  },
  async teardown() {
    rmSync(dir, { recursive: true, force: true });
  },
  async check(x) {
    if (x.kind === 'npy' || x.kind === 'text') {
      const file = join(dir, x.kind === 'npy' ? 'x.npy' : 'x.txt');
      writeFileSync(file, x.kind === 'npy' ? x.bytes : x.text);
      let got: Awaited<ReturnType<typeof readInput>> | undefined;
      await acceptedOrRefused(
        async () => {
          got = await readInput(file, x.cols);
        },
        [RunError],
        'x.',
      );
      if (got) {
        if (got.n < 1 || got.x.length !== got.n * x.cols)
          throw new Finding(`accepted ${got.n} rows of ${got.x.length} values for ${x.cols} in-features`);
        if (got.vector && got.n !== 1) throw new Finding(`a vector input with ${got.n} rows`);
      }
    } else if (x.kind === 'tokens') {
      const argv = ['m.json', '--prompt-tokens', x.arg, ...(x.chat ? ['--chat', '--prompt-tokens', x.arg] : [])];
      let a: ReturnType<typeof parseRunArgs> | undefined;
      await acceptedOrRefused(() => {
        a = parseRunArgs(argv);
      }, [CliError]);
      if (!a || a === 'help') return;
      const model = {
        config: { vocabSize: x.vocab },
        manifestPath: 'm.json',
        tokenizer: null,
      } as unknown as LoadedModel;
      let ids: number[] | undefined;
      const args = a;
      await acceptedOrRefused(() => {
        ids = promptIds(args, model);
      }, [RunError]);
      if (ids) checkIds(ids, x.vocab, '--prompt-tokens');
    } else if (x.kind === 'eval') {
      const text = Buffer.from(x.text).toString('utf8');
      const ids = tok.encode(text, true);
      checkIds(ids, VOCAB, 'encode');
      let plan: ReturnType<typeof planChunks> | undefined;
      await acceptedOrRefused(() => {
        plan = planChunks(ids.length, x.ctx, x.chunks);
      }, [ChunkError]);
      if (!plan) return;
      if (plan.chunks < 1 || plan.chunks * plan.ctx > ids.length || plan.tokensScored <= 0)
        throw new Finding(`plan ${JSON.stringify(plan)} for ${ids.length} tokens`);
      for (let c = 0; c < Math.min(plan.chunks, 3); c++) {
        const chunk = chunkTokens(ids, plan, c, 1);
        if (chunk.length !== plan.ctx || chunk[0] !== 1) throw new Finding(`chunk ${c}: ${chunk.length} ids`);
        checkIds(chunk, VOCAB, `chunk ${c}`);
      }
    } else {
      // eval loads the tokenizer (a refusal there is loadTokenizer's, tested by hf-config), then counts its ids.
      const json = applyJsonOps(TOKENIZER, x.ops);
      try {
        new TextTokenizer(json as object, TOK_CONFIG);
      } catch {
        return;
      }
      let n: number;
      try {
        n = tokenizerIdCount(json);
      } catch (e) {
        throw new Finding(`tokenizerIdCount threw on a tokenizer the tokenizer library loads: ${(e as Error).message}`);
      }
      if (!(n >= 0)) throw new Finding(`tokenizerIdCount gave ${n}`);
    }
  },
  serialize: (x) =>
    JSON.stringify(
      x.kind === 'npy' ? { ...x, bytes: b64(x.bytes) } : x.kind === 'eval' ? { ...x, text: b64(x.text) } : x,
    ),
};
