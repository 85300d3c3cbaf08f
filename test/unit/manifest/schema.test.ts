// The schema, grammar and package.json contributions agree with the manifest types and with each other.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BIT_WIDTHS, MANIFEST_FORMAT_VERSION, memberNames } from '../../../server/src/formats/manifest';
import { manifestSchema, schemaAt } from '../../../server/src/manifest/schema';

const ROOT = join(__dirname, '../../..');
type S = Record<string, unknown>;

function allProperties(s: unknown, path = '', out: [string, S][] = []): [string, S][] {
  if (!s || typeof s !== 'object') return out;
  const o = s as S;
  if (o.properties) for (const [k, v] of Object.entries(o.properties as S)) out.push([`${path}/${k}`, v as S]);
  for (const [k, v] of Object.entries(o)) if (typeof v === 'object') allProperties(v, `${path}/${k}`, out);
  return out;
}

describe('manifest schema', () => {
  it('is JSON Schema 2020-12 and describes every property', () => {
    assert.equal((manifestSchema as unknown as S).$schema, 'https://json-schema.org/draft/2020-12/schema');
    const props = allProperties(manifestSchema);
    assert.ok(props.length > 50);
    for (const [path, p] of props) assert.equal(typeof p.description, 'string', `no description: ${path}`);
  });
  it('resolves a description for every property reached through $ref', () => {
    for (const path of [
      ['model'],
      ['weights', 0, 'quantization'],
      ['weights', 0, 'source'],
      ['metadata'],
      ['weights', 0, 'checksums', 'q'],
    ])
      assert.ok(schemaAt(path)?.description, path.join('.'));
  });
  it('agrees with server/src/formats/manifest.ts', () => {
    assert.equal(schemaAt(['format_version'])?.const, MANIFEST_FORMAT_VERSION);
    assert.deepEqual(schemaAt(['weights', 0, 'quantization', 'bits'])?.enum, [...BIT_WIDTHS, 16, 32]);
    assert.deepEqual(schemaAt(['weights', 0, 'quantization', 'type'])?.enum, [
      'perrow_int',
      'groupwise_int',
      'kquant',
      'none',
    ]);
    assert.deepEqual(schemaAt(['weights', 0, 'quantization', 'method'])?.enum, [
      'symmetric',
      'asymmetric',
      'sign',
      'none',
    ]);
    // The converter's member names satisfy the schema's member-name rules (non-empty, .npy).
    const names = memberNames('model.layers.0.mlp.up_proj.weight', 4);
    for (const f of ['q', 'q_scales', 'q_zero_point'] as const) assert.match(String(names[f]), /^[A-Za-z0-9_-]+\.npy$/);
  });
});

describe('grammar, language configuration and contributions', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  it('package.json contributes the language, its grammar and the schema', () => {
    const lang = pkg.contributes.languages.find((l: S) => l.id === 'apl-manifest');
    assert.deepEqual(lang.filenamePatterns, ['*_manifest_q*.json', '*.apl.json']);
    assert.ok(existsSync(join(ROOT, lang.configuration)));
    const g = pkg.contributes.grammars.find((x: S) => x.language === 'apl-manifest');
    assert.ok(existsSync(join(ROOT, g.path)));
    const grammar = JSON.parse(readFileSync(join(ROOT, g.path), 'utf8'));
    assert.equal(grammar.scopeName, g.scopeName);
    assert.ok(existsSync(join(ROOT, pkg.contributes.jsonValidation[0].url)));
  });
  it('the grammar compiles, knows every schema key, and scopes file references and bit widths', () => {
    const grammar = JSON.parse(readFileSync(join(ROOT, 'syntaxes/apl-manifest.tmLanguage.json'), 'utf8'));
    const res: string[] = [];
    const walk = (o: unknown) => {
      if (!o || typeof o !== 'object') return;
      for (const k of ['match', 'begin', 'end']) if (typeof (o as S)[k] === 'string') res.push((o as S)[k] as string);
      Object.values(o as S).forEach(walk);
    };
    walk(grammar);
    for (const r of res) new RegExp(r);
    const keyRe = new RegExp(grammar.repository.key.patterns[0].match);
    for (const [path] of allProperties(manifestSchema)) {
      const key = path.split('/').pop()!;
      assert.ok(keyRe.test(`"${key}":`), key);
    }
    const file = new RegExp(grammar.repository['file-reference'].match).exec('"q_scales": "w_q4_scales.npy",');
    assert.equal(file?.[3], '"w_q4_scales.npy"');
    assert.match(grammar.repository['file-reference'].captures['3'].name, /file-reference\.apl-manifest/);
    const bits = new RegExp(grammar.repository['bit-width'].match).exec('"bit_width": 4,');
    assert.equal(bits?.[3], '4');
    assert.equal(new RegExp(grammar.repository['bit-width'].match).exec('"bit_width": 3,'), null);
  });
});
