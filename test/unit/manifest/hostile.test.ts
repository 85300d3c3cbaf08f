// Hostile documents: a 10 MB manifest, JSON nested 10,000 deep, wrong types everywhere, binary garbage. Each gives
// diagnostics, never throws, and finishes in bounded time (a generous hang guard, not a speed test).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DiagnosticCodes as C, MAX_DIAGNOSTICS } from '../../../server/src/manifest/codes';
import { completion } from '../../../server/src/manifest/completion';
import { parseManifest } from '../../../server/src/manifest/document';
import { hover } from '../../../server/src/manifest/hover';
import { documentSymbols, foldingRanges } from '../../../server/src/manifest/symbols';
import { validateManifest } from '../../../server/src/manifest/validate';
import { indexFor, manifestText } from './helpers';

// A hang guard, not a speed test. It bounds the CPU time the process spends (user + system), not wall time: on a
// busy machine (mutation runs, helpers' builds) the wall time of the same work grew past a minute (88 s seen) while
// the work did not; a runaway loop still trips the bound.
const BOUND_MS = 60_000;

function timed<T>(f: () => T): { value: T; ms: number } {
  const t0 = process.cpuUsage();
  const value = f();
  const d = process.cpuUsage(t0);
  return { value, ms: (d.user + d.system) / 1000 };
}

/** Every feature on the text must survive. */
function everything(text: string) {
  const doc = parseManifest(text);
  const mid = Math.floor(text.length / 2);
  hover(doc, mid);
  completion(doc, mid);
  documentSymbols(doc);
  foldingRanges(doc);
  return validateManifest(text, { npz: indexFor(manifestText()) });
}

describe('hostile documents', () => {
  it('a 10 MB manifest of weights with wrong types everywhere: capped diagnostics', () => {
    const w = JSON.stringify({
      name: 7,
      shape: 'x',
      bit_width: '4',
      q: null,
      q_scales: 3,
      q_zero_point: [],
      quantization: 'q',
    });
    const parts: string[] = [];
    let size = 0;
    while (size < 10 * 1024 * 1024) {
      parts.push(w);
      size += w.length + 1;
    }
    const text = `{"format_version": 2, "model": [], "weights": [${parts.join(',')}], "metadata": 1}`;
    const { value, ms } = timed(() => everything(text));
    assert.ok(ms < BOUND_MS, `${ms} ms`);
    assert.equal(value.length, MAX_DIAGNOSTICS + 1);
    const allowed: string[] = [C.schema, C.syntax, C.memberUnreferenced];
    assert.ok(value.every((d) => allowed.includes(String(d.code))));
  });
  it('a valid 10 MB manifest (many weights) validates without errors', () => {
    const m = JSON.parse(manifestText());
    const base = m.weights;
    const perCopy = JSON.stringify(base, null, 1).length;
    const copies = Math.ceil((12 * 1024 * 1024) / perCopy);
    const weights = [];
    for (let i = 0; i < copies; i++)
      for (const w of base) weights.push({ ...w, name: `${w.name}#${i}`, checksums: undefined });
    m.weights = weights;
    m.model.num_layers = 2;
    const text = JSON.stringify(m, null, 1);
    assert.ok(text.length >= 10 * 1024 * 1024);
    const { value, ms } = timed(() => validateManifest(text));
    assert.ok(ms < BOUND_MS, `${ms} ms`);
    assert.ok(!value.some((d) => d.severity === 1), JSON.stringify(value.slice(0, 3)));
  });
  for (const [label, open, close] of [
    ['arrays', '[', ']'],
    ['objects', '{"a":', '}'],
  ] as const) {
    it(`JSON ${label} nested 10,000 deep: one apl.syntax, no stack overflow`, () => {
      const text = open.repeat(10_000) + close.repeat(10_000);
      const { value, ms } = timed(() => everything(text));
      assert.ok(ms < BOUND_MS);
      assert.deepEqual(
        value.map((d) => d.code),
        [C.syntax],
      );
      assert.match(String(value[0].message), /deeper than/);
    });
  }
  it('deep nesting inside an otherwise valid manifest', () => {
    const text = manifestText().replace('"family": "llama"', `"family": ${'['.repeat(5000)}${']'.repeat(5000)}`);
    const ds = everything(text);
    assert.deepEqual(
      ds.map((d) => d.code),
      [C.syntax],
    );
  });
  it('binary garbage: syntax diagnostics, capped', () => {
    let seed = 12345;
    const bytes = Buffer.alloc(1 << 20);
    for (let i = 0; i < bytes.length; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      bytes[i] = seed >>> 24;
    }
    const text = bytes.toString('latin1');
    const { value, ms } = timed(() => everything(text));
    assert.ok(ms < BOUND_MS);
    assert.ok(value.length >= 1 && value.length <= 102);
    assert.ok(value.every((d) => d.code === C.syntax));
  });
  it('odd top-level values and an empty document', () => {
    for (const text of ['', '   ', 'null', '42', '"x"', '[]', '{}', '{"weights": {}}', '{"__proto__": {"x": 1}}']) {
      const ds = everything(text);
      assert.ok(ds.length >= 1, text);
      assert.ok(ds.every((d) => d.range.start.line >= 0));
    }
  });
  it('type confusion inside weights does not reach the cross-checks as a crash', () => {
    const text = manifestText()
      .replace('"shape": [\n        16,\n        16\n      ]', '"shape": {"0": 16}')
      .replace('"group_size": 8', '"group_size": -1')
      .replace('"quantization": {\n        "type": "none"', '"quantization": {\n        "type": {"none": 1}');
    const ds = everything(text);
    assert.ok(ds.some((d) => d.code === C.schema));
  });
});
