// The model block against the weights (manifest/checks.ts), the cases mutation testing found untested
// (`npm run mutate -- manifest-checks`): head_dim × num_heads against q_proj's rows, the exact messages and
// severities a user reads in the Problems panel, and the checks that must stay quiet when a field is absent.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { DiagnosticCodes as C } from '../../../server/src/manifest/codes';
import { loadNpzIndex } from '../../../server/src/manifest/files';
import type { NpzState } from '../../../server/src/manifest/npz-index';
import { validateManifest } from '../../../server/src/manifest/validate';
import { MANIFEST_PATH, mutate, NPZ_PATH, only, rangeOf } from './helpers';

let npz: NpzState;
before(async () => {
  npz = await loadNpzIndex(NPZ_PATH);
});
const mismatches = (text: string) =>
  only(validateManifest(text, { manifestPath: MANIFEST_PATH, npz }), C.modelMismatch).map((d) => ({
    message: String(d.message),
    severity: d.severity,
    range: d.range,
  }));

describe('head_dim against q_proj (the fixture: 4 heads, q_proj 16 rows)', () => {
  it('head_dim 4 agrees: no diagnostic', () => {
    assert.deepEqual(
      mismatches(
        mutate((m) => {
          m.model.head_dim = 4;
        }),
      ),
      [],
    );
  });
  it('head_dim 8 disagrees: an error on the head_dim value, naming both sides', () => {
    const text = mutate((m) => {
      m.model.head_dim = 8;
    });
    assert.deepEqual(mismatches(text), [
      {
        message: 'head_dim × num_heads = 8 × 4 disagrees with q_proj rows 16',
        severity: 1,
        range: rangeOf(text, '8', '"head_dim"'),
      },
    ]);
  });
  it('no head_dim check without num_heads, or with a head_dim that is not a number', () => {
    for (const f of [
      (m: { model: Record<string, unknown> }) => {
        m.model.head_dim = 8;
        delete m.model.num_heads;
      },
      (m: { model: Record<string, unknown> }) => {
        m.model.head_dim = '8';
      },
    ]) {
      assert.deepEqual(
        mismatches(mutate(f)).filter((d) => /head_dim/.test(d.message)),
        [],
      );
    }
  });
});

describe('num_kv_heads against k_proj / q_proj (k_proj 8 rows, q_proj 16)', () => {
  it('num_kv_heads 4 of 4 heads disagrees with 8/16: an error naming the ratio and the k_proj weight', () => {
    const text = mutate((m) => {
      m.model.num_kv_heads = 4;
    });
    const ds = mismatches(text);
    assert.equal(ds.length, 1);
    assert.equal(ds[0].severity, 1);
    assert.match(
      ds[0].message,
      /^num_kv_heads \/ num_heads = 4\/4 disagrees with k_proj rows \/ q_proj rows = 8\/16 \(weights\[\d+\]\)$/,
    );
    assert.deepEqual(ds[0].range, rangeOf(text, '4', '"num_kv_heads"'));
  });
  it('num_kv_heads 2 of 4 heads agrees with 8/16, and so does 1 of 2', () => {
    assert.deepEqual(mismatches(mutate(() => {})), []);
    assert.deepEqual(
      mismatches(
        mutate((m) => {
          m.model.num_heads = 2;
          m.model.num_kv_heads = 1;
        }),
      ).filter((d) => /num_kv_heads/.test(d.message)),
      [],
    );
  });
});

// Survivors of `npm run mutate -- manifest-checks`: the guards that keep a check quiet when one side is absent.
describe('the model checks stay quiet when one side is missing', () => {
  const dropWeights = (re: RegExp, model: Record<string, unknown> = {}) =>
    mutate((m) => {
      m.weights = m.weights.filter((w: { name: string }) => !re.test(w.name));
      Object.assign(m.model, model);
    });
  it('no k_proj weights: no num_kv_heads check', () => {
    assert.deepEqual(
      mismatches(dropWeights(/k_proj/, { num_kv_heads: 4 })).filter((d) => /num_kv_heads/.test(d.message)),
      [],
    );
  });
  it('no q_proj weights: neither the num_kv_heads nor the head_dim check', () => {
    assert.deepEqual(
      mismatches(dropWeights(/q_proj/, { num_kv_heads: 4, head_dim: 8 })).filter((d) =>
        /num_kv_heads|head_dim/.test(d.message),
      ),
      [],
    );
  });
  it('num_layers as a string ("1"): the schema says so; no layer is called outside it', () => {
    const text = mutate((m) => {
      m.model.num_layers = '1';
    });
    assert.deepEqual(mismatches(text), []);
    assert.ok(only(validateManifest(text, { manifestPath: MANIFEST_PATH, npz }), C.schema).length >= 1);
  });
});
