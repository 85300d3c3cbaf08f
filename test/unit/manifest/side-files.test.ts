// The files `apl-quant run` reads beside a manifest (metadata.tokenizer, tokenizer_config, generation_config),
// checked by the language service as run checks them: a missing, unparsable or misshapen file, or a tokenizer with
// more ids than model.vocab_size, is an apl.side-file error on the metadata key that names it, in the editor and in
// `apl-quant validate`; a repaired file is re-read (the cache keys on size and mtime).
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { convertModel } from '../../../server/src/convert/pipeline';
import { getLanguageService, type ManifestState } from '../../../server/src/manifest';
import { DiagnosticCodes as C } from '../../../server/src/manifest/codes';
import { FileCache, loadSideFile } from '../../../server/src/manifest/files';
import { tempDir } from '../../helpers/tmp';
import { rangeOf } from './helpers';

const root = join(__dirname, '../../..');
let work = '';
let manifest = '';
let meta: Record<string, string> = {};
before(async () => {
  work = tempDir('apl-side-');
  manifest = (
    await convertModel(
      { source: join(root, 'test/fixtures/tiny-llama'), bits: 4, name: 'tiny', outDir: work },
      () => {},
    )
  ).manifest;
  meta = JSON.parse(readFileSync(manifest, 'utf8')).metadata;
});
after(() => rmSync(work, { recursive: true, force: true }));

const files = new FileCache();
const service = getLanguageService({ files });

async function diagnostics() {
  const text = readFileSync(manifest, 'utf8');
  const st: ManifestState = { doc: service.parseManifest(text), path: manifest };
  const watched = await service.loadFiles(st);
  const ds = service
    .doValidation(st)
    .filter((d) => d.code === C.sideFile)
    .map((d) => ({ ...d, message: String(d.message) }));
  return { text, st, watched, ds };
}

/** Rewrites a side file with `edit` applied to its JSON (or with `raw` text); returns a restore function. */
function rewrite(key: string, edit: ((j: Record<string, unknown>) => void) | string): () => void {
  const p = join(work, meta[key]);
  const before = readFileSync(p);
  if (typeof edit === 'string') writeFileSync(p, edit);
  else {
    const j = JSON.parse(before.toString('utf8'));
    edit(j);
    writeFileSync(p, JSON.stringify(j));
  }
  return () => writeFileSync(p, before);
}

test('a converted folder has sound side files, and they are watched', async () => {
  const { ds, watched } = await diagnostics();
  assert.deepEqual(ds, []);
  for (const key of ['tokenizer', 'tokenizer_config', 'generation_config']) {
    assert.ok(meta[key], key);
    assert.ok(watched.includes(join(work, meta[key])), `${key} is watched`);
  }
});

test('each kind of problem is apl.side-file on the key that names the file', async () => {
  const cases: [string, ((j: Record<string, unknown>) => void) | string, RegExp][] = [
    ['tokenizer', (j) => ((j.model as Record<string, unknown>).merges = 'x'), /: model\.merges is "x", not a list$/],
    ['tokenizer', '{"model": ', /: not JSON \(/],
    ['tokenizer_config', (j) => (j.chat_template = 5), /: chat_template is 5, not a string or a list/],
    ['tokenizer_config', '[]', /: the tokenizer config is a list, not an object$/],
    ['generation_config', '[1]', /: the generation config is not a JSON object$/],
    [
      'tokenizer',
      (j) => (j.added_tokens as unknown[]).push({ id: 4000, content: '<x>' }),
      /: the tokenizer defines 4001 ids but model\.vocab_size is \d+: apl-quant run refuses it$/,
    ],
  ];
  for (const [key, edit, re] of cases) {
    const restore = rewrite(key, edit);
    try {
      const { text, ds } = await diagnostics();
      assert.equal(ds.length, 1, `${key}: ${JSON.stringify(ds)}`);
      assert.equal(ds[0].severity, 1);
      assert.ok(ds[0].message.startsWith(join(work, meta[key])), ds[0].message);
      assert.match(ds[0].message, re);
      assert.deepEqual(ds[0].range, rangeOf(text, JSON.stringify(meta[key])), key);
    } finally {
      restore();
    }
    assert.deepEqual((await diagnostics()).ds, [], `${key} repaired: re-read`);
  }
});

test('a missing side file, and one that is not a regular file', async () => {
  const p = join(work, meta.tokenizer_config);
  const keep = readFileSync(p);
  rmSync(p);
  try {
    const { ds } = await diagnostics();
    assert.equal(ds.length, 1);
    assert.match(ds[0].message, /^tokenizer_config file not found: /);
  } finally {
    writeFileSync(p, keep);
  }
  const dir = await loadSideFile(work, 'tokenizer');
  assert.ok('problem' in dir && /: is a directory$/.test(dir.message));
});

test('go to definition from metadata.tokenizer and its neighbours opens the file', async () => {
  const { text, st } = await diagnostics();
  for (const key of ['tokenizer', 'tokenizer_config', 'generation_config']) {
    const at = rangeOf(text, JSON.stringify(meta[key])).start;
    const loc = service.findDefinition(st, { line: at.line, character: at.character + 2 });
    assert.equal(loc?.uri, pathToFileURL(join(work, meta[key])).href, key);
  }
});

test('hover on metadata.tokenizer and its neighbours: what the file holds, or its problem', async () => {
  const { text, st } = await diagnostics();
  const hoverAt = (key: string) => {
    const at = rangeOf(text, JSON.stringify(meta[key])).start;
    const h = service.doHover(st, { line: at.line, character: at.character + 2 });
    return (h?.contents as { value: string } | undefined)?.value ?? '';
  };
  const tok = JSON.parse(readFileSync(join(work, meta.tokenizer), 'utf8'));
  const ids =
    Math.max(
      ...Object.values(tok.model.vocab as Record<string, number>),
      ...tok.added_tokens.map((t: { id: number }) => t.id),
    ) + 1;
  assert.match(
    hoverAt('tokenizer'),
    new RegExp(`^\\*\\*.*${meta.tokenizer}\\*\\*\\n\\n${tok.model.type} model: ${ids.toLocaleString('en-US')} ids \\(`),
  );
  // The fixture's config has no chat template; its generation config three settings (the _ key is left out).
  assert.match(hoverAt('tokenizer_config'), /\n\nno chat template \(--chat is refused\) · BOS `<s>` · EOS `<\/s>`$/);
  assert.match(hoverAt('generation_config'), /\n\nbos_token_id 1 · eos_token_id 2 · max_length 256$/);
  const restore = rewrite('tokenizer', (j) => ((j.model as Record<string, unknown>).merges = 'x'));
  try {
    const again = await diagnostics();
    const at = rangeOf(again.text, JSON.stringify(meta.tokenizer)).start;
    const h = service.doHover(again.st, { line: at.line, character: at.character + 2 });
    assert.match((h?.contents as { value: string } | undefined)?.value ?? '', /model\.merges is "x", not a list$/);
  } finally {
    restore();
  }
});
