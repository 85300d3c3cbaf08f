// The manifest's passes as steps (server/src/manifest/tree.ts, steps.ts) against what they replace or wrap: the tree
// built in steps equals jsonc-parser's parseTree (nodes, key order, errors) on random inputs and on random edits of a
// real manifest; a parse run in slices gives the same document as parseManifest; a large document takes many steps.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type Node, type ParseError, parseTree } from 'jsonc-parser';
import {
  LineIndex,
  nodeValue,
  parseManifest,
  parseManifestSteps,
  warmSteps,
} from '../../../server/src/manifest/document';
import { drain, type Steps } from '../../../server/src/manifest/steps';
import { nodeValueSteps, parseTreeSteps } from '../../../server/src/manifest/tree';
import { validateDoc, validateDocSteps } from '../../../server/src/manifest/validate';
import { rng } from '../../helpers/random';

const MANIFEST = readFileSync(join(__dirname, '../../fixtures/manifests/tiny_manifest_q4.json'), 'utf8');
const OPTIONS = { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false };

/** Runs steps to the end, counting them. */
function count<T>(steps: Steps<T>): { value: T; steps: number } {
  let n = 0;
  for (;;) {
    const r = steps.next();
    if (r.done) return { value: r.value, steps: n };
    n++;
  }
}

function sameTree(text: string): void {
  const want: ParseError[] = [];
  const got: ParseError[] = [];
  const expected = parseTree(text, want, OPTIONS);
  const actual = drain(parseTreeSteps(text, got));
  assert.deepStrictEqual(got, want, `errors of ${JSON.stringify(text.slice(0, 200))}`);
  assert.deepStrictEqual(actual, expected, `tree of ${JSON.stringify(text.slice(0, 200))}`);
  // Key order too (JSON.stringify without the parent cycles).
  const flat = (n: Node | undefined) => JSON.stringify(n, (k, v) => (k === 'parent' ? undefined : v));
  assert.equal(flat(actual), flat(expected));
}

const ATOMS = ['{', '}', '[', ']', '"', ',', ':', '\n', ' ', '4', '-1', '1e9', '01', '1.', 'null', 'tru', 'true'];
const MORE = [
  '"a"',
  '"\\u12"',
  '"\\x"',
  '"\u0001"',
  '/*',
  '*/',
  '//',
  '\\',
  '\ufeff',
  '\r',
  '\t',
  '-',
  'NaN',
  '"k": 1',
];

describe('parseTreeSteps', () => {
  it('equals parseTree on random token soups', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...ATOMS, ...MORE), { maxLength: 60 }), (parts) => sameTree(parts.join(''))),
      { numRuns: 2000, seed: 16 },
    );
  });

  it('equals parseTree on random strings', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...'{}[]",:0123 \n\\/*-.etrunlfa'), maxLength: 80 }), sameTree),
      { numRuns: 2000, seed: 17 },
    );
  });

  it('equals parseTree on random edits of a real manifest (and on the manifest itself, valid or not)', () => {
    const r = rng(16);
    let text = MANIFEST;
    sameTree(text);
    sameTree('');
    for (let i = 0; i < 300; i++) {
      const at = Math.floor(r() * (text.length + 1));
      const del = r() < 0.5 ? 0 : Math.floor(r() * (r() < 0.9 ? 4 : 200));
      const ins = r() < 0.8 ? [...ATOMS, ...MORE][Math.floor(r() * (ATOMS.length + MORE.length))] : '';
      text = text.slice(0, at) + ins + text.slice(at + del);
      if (i % 10 === 0) sameTree(text);
    }
  });

  it('the value of a broken document is what JSON.parse gives for the same text without the error', () => {
    const cases: [string, string][] = [
      ['{"__proto__": {"x": 1}, "a": [1, {"b": 2}],}', '{"__proto__": {"x": 1}, "a": [1, {"b": 2}]}'],
      ['{"a": 1, "b": 2, "a": 3,}', '{"a": 1, "b": 2, "a": 3}'],
      ['[{"1": 1, "0": 0, "k": null},]', '[{"1": 1, "0": 0, "k": null}]'],
    ];
    for (const [broken, valid] of cases) {
      const doc = parseManifest(broken);
      assert.ok(doc.syntax.length > 0, broken);
      assert.deepStrictEqual(doc.value, JSON.parse(valid));
      assert.deepEqual(Object.keys(doc.value as object), Object.keys(JSON.parse(valid)));
    }
    const proto = parseManifest(cases[0][0]).value as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(proto), Object.prototype);
    assert.ok(Object.hasOwn(proto, '__proto__'));
    assert.equal(({} as Record<string, unknown>).x, undefined, 'no prototype polluted');
  });

  it('takes many steps on a large document, and nodeValueSteps gives nodeValue', () => {
    const m = JSON.parse(MANIFEST);
    for (let k = 1; k < 20; k++)
      for (const w of m.weights.slice(0, 21)) m.weights.push({ ...w, name: `${w.name}.${k}` });
    const text = JSON.stringify(m, null, 2);
    const { value: root, steps } = count(parseTreeSteps(text, []));
    assert.ok(steps > 50, `${steps} steps`);
    assert.ok(root);
    const v = count(nodeValueSteps(root));
    assert.ok(v.steps >= 4, `${v.steps} steps`);
    assert.deepStrictEqual(v.value, m);
    assert.deepStrictEqual(nodeValue(root), m);
  });
});

describe('parseManifestSteps and validation in steps', () => {
  it('give what parseManifest and validateDoc give, for valid and broken text', () => {
    const r = rng(3);
    let text = MANIFEST;
    for (let i = 0; i < 40; i++) {
      const { value: doc, steps } = count(parseManifestSteps(text));
      const plain = parseManifest(text);
      assert.deepStrictEqual(doc.value, plain.value);
      assert.deepStrictEqual(doc.syntax, plain.syntax);
      assert.equal(doc.unparsable, plain.unparsable);
      if (plain.syntax.length) assert.ok(steps > 0, 'a broken document is parsed in steps');
      drain(warmSteps(doc));
      assert.deepStrictEqual(doc.root, plain.root);
      assert.deepStrictEqual(doc.lines, new LineIndex(text));
      assert.deepStrictEqual(drain(validateDocSteps(doc)), validateDoc(plain));
      const at = Math.floor(r() * text.length);
      text = text.slice(0, at) + ATOMS[Math.floor(r() * ATOMS.length)] + text.slice(at + Math.floor(r() * 3));
    }
  });

  it('a tree built in steps by one caller is finished, not rebuilt, by another', () => {
    const doc = parseManifest(MANIFEST);
    const steps = warmSteps(doc);
    steps.next();
    steps.next();
    const root = doc.root; // finishes the build under way
    assert.ok(root);
    drain(steps);
    assert.equal(doc.root, root);
  });
});
