// The language server's parts without a connection: the language service over a manifest on disk, the document
// cache (one parse per version) and the debouncer (one run per key per turn or per quiet period, errors reported).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, mock } from 'node:test';
import { pathToFileURL } from 'node:url';
import { DiagnosticSeverity } from 'vscode-languageserver-types';
import { Debouncer } from '../../../server/src/lsp/debouncer';
import { DocumentCache, uriToPath } from '../../../server/src/lsp/document-cache';
import { DiagnosticCodes, getLanguageService, type ManifestState } from '../../../server/src/manifest';

const FIX = join(__dirname, '../../fixtures/manifests');
const MANIFEST = join(FIX, 'tiny_manifest_q4.json');

describe('manifest language service', () => {
  it('loads the NPZ and report beside a manifest, validates and summarises it', async () => {
    const service = getLanguageService();
    const st: ManifestState = { doc: service.parseManifest(readFileSync(MANIFEST, 'utf8')), path: MANIFEST };
    const read = await service.loadFiles(st);
    assert.deepEqual(read.sort(), [join(FIX, 'tiny_accuracy_q4.json'), join(FIX, 'tiny_quantized_q4.npz')]);
    assert.deepEqual(
      service.doValidation(st).filter((d) => d.severity === DiagnosticSeverity.Error),
      [],
    );
    const s = service.getSummary(st);
    assert.equal(s.weights, 21);
    assert.equal(s.verdict, 'pass');
    const lenses = service.getCodeLenses(st);
    assert.ok(lenses.some((l) => l.command?.arguments?.[0] === pathToFileURL(join(FIX, 'tiny_quantized_q4.npz')).href));
  });

  it('without a path (untitled) reads no files and still validates against the schema', async () => {
    const service = getLanguageService();
    const st: ManifestState = { doc: service.parseManifest('{"format_version": "2"}') };
    assert.deepEqual(await service.loadFiles(st), []);
    assert.equal(st.files, undefined);
    assert.ok(service.doValidation(st).some((d) => d.code === DiagnosticCodes.schema));
  });
});

describe('document cache', () => {
  it('parses once per version and keeps the files loaded for the previous version', () => {
    let parses = 0;
    const service = getLanguageService();
    const counting = {
      ...service,
      parseManifest: (t: string) => {
        parses++;
        return service.parseManifest(t);
      },
    };
    const open = new Map<string, { version: number; getText(): string }>();
    const cache = new DocumentCache(counting, (u) => open.get(u));
    const uri = pathToFileURL(MANIFEST).href;
    assert.equal(cache.get(uri), undefined, 'not open');
    open.set(uri, { version: 1, getText: () => '{}' });
    const a = cache.get(uri);
    assert.ok(a);
    assert.equal(a.path, MANIFEST);
    assert.equal(cache.get(uri), a);
    assert.equal(parses, 1);
    a.files = { npzPath: '/x.npz', reportNamed: false };
    open.set(uri, { version: 2, getText: () => '{ }' });
    assert.equal(cache.isCurrent(uri, a), false);
    const b = cache.get(uri);
    assert.ok(b && b !== a);
    assert.equal(parses, 2);
    assert.deepEqual(b.files, a.files);
    assert.equal(cache.isCurrent(uri, b), true);
    cache.delete(uri);
    assert.deepEqual([...cache.uris()], []);
  });

  it('uriToPath: file URIs only', () => {
    assert.equal(uriToPath(pathToFileURL(MANIFEST).href), MANIFEST);
    assert.equal(uriToPath('untitled:Untitled-1'), undefined);
  });
});

describe('debouncer', () => {
  it('runs each key once per turn, skips a cancelled key and reports a failing run', async () => {
    const runs: string[] = [];
    const errors: string[] = [];
    const d = new Debouncer(
      async (k) => {
        runs.push(k);
        if (k === 'bad') throw new Error('boom');
      },
      (k, e) => errors.push(`${k}: ${(e as Error).message}`),
    );
    for (const k of ['a', 'b', 'a', 'bad', 'c']) d.schedule(k);
    d.cancel('c');
    assert.deepEqual(runs, [], 'nothing runs synchronously');
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(runs, ['a', 'b', 'bad']);
    assert.deepEqual(errors, ['bad: boom']);
    d.schedule('a');
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(runs, ['a', 'b', 'bad', 'a']);
  });

  // Regression (test/fuzz/lsp-load.ts): the connection hands over one message per turn of the event loop, so a burst
  // of 20 didChange notifications validated all 20 versions of a 470 KB manifest and a hover sent after the burst
  // waited seconds behind them. With a quiet period the burst is validated once, and steady typing still gets
  // diagnostics at least once per maxWait.
  it('with a quiet period: a burst spread over many turns runs once; steady scheduling runs once per maxWait', () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    try {
      const runs: number[] = [];
      const d = new Debouncer(
        async () => {
          runs.push(Date.now());
        },
        () => {},
        200,
        1000,
      );
      for (let i = 0; i < 20; i++) {
        d.schedule('doc');
        mock.timers.tick(10); // one message every 10 ms: never quiet for 200 ms
      }
      assert.deepEqual(runs, [], 'nothing runs while the edits keep coming');
      mock.timers.tick(200);
      assert.equal(runs.length, 1, 'the burst is validated once, 200 ms after its last edit');
      for (let i = 0; i < 250; i++) {
        d.schedule('doc');
        mock.timers.tick(10); // 2.5 s of steady typing
      }
      assert.ok(runs.length >= 3 && runs.length <= 4, `steady typing still validates once per second: ${runs}`);
    } finally {
      mock.timers.reset();
    }
  });
});
