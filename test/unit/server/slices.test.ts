// Parsing and validation in slices (server/src/lsp/slices.ts, validation.ts, document-cache.ts ready()): a request
// that arrives during a long validation is answered before the validation ends; a version superseded mid-validation
// never publishes; the diagnostics equal a plain validation; one parse per version is shared. Ordering is asserted,
// never wall time: the tests run with slices of one step (sliceMs 0), so a validation takes thousands of turns.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { Diagnostic } from 'vscode-languageserver-types';
import { DocumentCache, type OpenDocument } from '../../../server/src/lsp/document-cache';
import { nextTurn, SlicedTask } from '../../../server/src/lsp/slices';
import { Validator } from '../../../server/src/lsp/validation';
import { FileCache, getLanguageService, type ManifestLanguageService } from '../../../server/src/manifest';

const FIX = join(__dirname, '../../fixtures/manifests');

let dir: string;
let uri: string;
let big: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'apl-slices-'));
  for (const f of ['tiny_quantized_q4.npz', 'tiny_accuracy_q4.json']) copyFileSync(join(FIX, f), join(dir, f));
  // The fixture's weights forty times over (840 weights, about 600 KB, over a thousand diagnostics).
  const m = JSON.parse(readFileSync(join(FIX, 'tiny_manifest_q4.json'), 'utf8'));
  const base = [...m.weights];
  for (let k = 1; k < 40; k++) for (const w of base) m.weights.push({ ...w, name: `${w.name}.copy${k}` });
  big = `${JSON.stringify(m, null, 2)}\n`;
  const path = join(dir, 'tiny_manifest_q4.json');
  writeFileSync(path, big);
  uri = pathToFileURL(path).href;
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A fresh validation of `text` beside the fixture files (what the server must publish). */
async function expected(service: ManifestLanguageService, text: string): Promise<Diagnostic[]> {
  const st = { doc: service.parseManifest(text), path: join(dir, 'tiny_manifest_q4.json') };
  await service.loadFiles(st);
  return service.doValidation(st);
}

function setup(sliceMs = 0) {
  const open = new Map<string, OpenDocument>();
  const files = new FileCache();
  const service = getLanguageService({ files });
  let parses = 0;
  const counting: ManifestLanguageService = {
    ...service,
    parseSteps: (t) => {
      parses++;
      return service.parseSteps(t);
    },
  };
  const states = new DocumentCache(counting, (u) => open.get(u), sliceMs);
  const events: string[] = [];
  const published: { version: number; diagnostics: Diagnostic[] }[] = [];
  const validator = new Validator({
    service: counting,
    states,
    open: (u) => open.get(u),
    loadFiles: async (st) => {
      await service.loadFiles(st);
    },
    publish: (_u, version, diagnostics) => {
      events.push(`publish ${version}`);
      published.push({ version, diagnostics });
    },
    sliceMs,
  });
  return { open, service, states, validator, events, published, parses: () => parses };
}

describe('validation in slices', () => {
  it('answers a request that arrives during a long validation before the validation ends', async () => {
    const { open, service, states, validator, events, published } = setup();
    open.set(uri, { version: 1, getText: () => big });
    assert.ok(await states.ready(uri), 'parsed (in slices)');
    const validation = validator.validate(uri);
    for (let i = 0; i < 50; i++) await nextTurn();
    assert.ok(validator.running(uri), 'the validation is under way after 50 turns');
    const pos = { line: big.slice(0, big.indexOf('"bit_width"', 200_000)).split('\n').length - 1, character: 8 };
    const hover = (async () => {
      const st = await states.ready(uri);
      assert.ok(st);
      const h = service.doHover(st, pos);
      events.push('hover');
      return h;
    })();
    const h = await hover;
    assert.ok(h && JSON.stringify(h).includes('bit'), 'the hover has its answer');
    assert.deepEqual(events, ['hover'], 'answered while the validation had not published yet');
    assert.ok(validator.running(uri), 'the validation was still under way when the hover was answered');
    await validation;
    assert.deepEqual(events, ['hover', 'publish 1']);
    assert.equal(published[0].diagnostics.length, 1001, 'the diagnostic limit plus its note');
    assert.deepStrictEqual(published[0].diagnostics, await expected(service, big));
  });

  it('a request during the parse shares the parse; one parse per version', async () => {
    const { open, states, validator, parses, published } = setup();
    open.set(uri, { version: 1, getText: () => big });
    const validation = validator.validate(uri);
    await nextTurn();
    const a = states.ready(uri);
    const b = states.ready(uri);
    const [sa, sb] = await Promise.all([a, b]);
    assert.ok(sa && sa === sb);
    await validation;
    assert.equal(parses(), 1);
    assert.equal(published.length, 1);
    assert.equal(states.get(uri), sa, 'the synchronous get finds the same state');
  });

  it('a version superseded mid-validation never publishes; the newer one does, with fresh diagnostics', async () => {
    const { open, service, validator, published } = setup();
    open.set(uri, { version: 1, getText: () => big });
    const v1 = validator.validate(uri);
    for (let i = 0; i < 200; i++) await nextTurn();
    assert.ok(validator.running(uri));
    // An edit: a broken version 2 (a stray comma in the middle), then its own run, as the debouncer would start.
    const at = big.indexOf('"shape"', 300_000);
    const text2 = `${big.slice(0, at)},${big.slice(at)}`;
    open.set(uri, { version: 2, getText: () => text2 });
    const v2 = validator.validate(uri);
    await Promise.all([v1, v2]);
    assert.deepEqual(
      published.map((p) => p.version),
      [2],
    );
    assert.deepStrictEqual(published[0].diagnostics, await expected(service, text2));
    assert.ok(published[0].diagnostics.some((d) => d.code === 'apl.syntax'));
  });

  it('a newer run of the same version supersedes an older one; a closed document publishes nothing', async () => {
    const { open, states, validator, published } = setup();
    open.set(uri, { version: 1, getText: () => big });
    const first = validator.validate(uri);
    for (let i = 0; i < 100; i++) await nextTurn();
    const second = validator.validate(uri); // e.g. the NPZ changed on disk
    await Promise.all([first, second]);
    assert.deepEqual(
      published.map((p) => p.version),
      [1],
    );
    const third = validator.validate(uri);
    for (let i = 0; i < 100; i++) await nextTurn();
    open.delete(uri);
    states.delete(uri);
    validator.cancel(uri);
    await third;
    assert.equal(published.length, 1);
    assert.equal(validator.running(uri), false);
  });

  it('with the default slices the result is the same', async () => {
    const { open, service, validator, published } = setup(4);
    open.set(uri, { version: 7, getText: () => big });
    await validator.validate(uri);
    assert.deepStrictEqual(published[0].diagnostics, await expected(service, big));
  });
});

describe('SlicedTask', () => {
  function* counter(n: number, seen: number[]) {
    for (let i = 0; i < n; i++) {
      seen.push(i);
      yield;
    }
    return n;
  }

  it('runs one slice per turn, pauses when no waiter wants it, resumes where it stopped, finishes at once', async () => {
    const seen: number[] = [];
    const task = new SlicedTask(counter(1000, seen), 0);
    let want = true;
    const first = task.wait(() => want);
    await nextTurn();
    await nextTurn();
    const progressed = seen.length;
    assert.ok(progressed >= 1 && progressed <= 3, `one step per turn: ${progressed}`);
    want = false;
    assert.equal(await first, undefined, 'given up');
    const stopped = seen.length;
    for (let i = 0; i < 10; i++) await nextTurn();
    assert.equal(seen.length, stopped, 'paused: nobody waits');
    const second = task.wait();
    await nextTurn();
    assert.ok(seen.length > stopped, 'resumed');
    assert.equal(seen[stopped], stopped, 'where it stopped');
    assert.equal(task.finish(), 1000);
    assert.deepEqual(await second, { value: 1000 });
    assert.equal(seen.length, 1000);
    assert.deepEqual(await task.wait(), { value: 1000 });
  });
});
