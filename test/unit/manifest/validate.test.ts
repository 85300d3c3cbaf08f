// validateManifest: codes and ranges for each kind of problem, on the numpy-written fixture and its mutations.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { DiagnosticCodes as C } from '../../../server/src/manifest/codes';
import { loadNpzIndex, loadReport } from '../../../server/src/manifest/files';
import type { NpzState } from '../../../server/src/manifest/npz-index';
import type { ReportState } from '../../../server/src/manifest/report';
import { validateManifest } from '../../../server/src/manifest/validate';
import { tempDir } from '../../helpers/tmp';
import { codes, indexFor, MANIFEST_PATH, manifestText, mutate, NPZ_PATH, only, REPORT_PATH, rangeOf } from './helpers';

let npz: NpzState;
let report: ReportState | undefined;
before(async () => {
  npz = await loadNpzIndex(NPZ_PATH);
  report = await loadReport(REPORT_PATH, true);
});
const check = (text: string) => validateManifest(text, { manifestPath: MANIFEST_PATH, npz, report });
const Q0 = 'model.layers.0.self_attn.q_proj.weight';

describe('validateManifest on the fixture', () => {
  it('the real NPZ loads and the fixture has no problems', () => {
    assert.ok(!('problem' in npz), JSON.stringify(npz));
    assert.equal((npz as { members: Map<string, unknown> }).members.size, 53);
    assert.deepEqual(check(manifestText()), []);
  });
  it('the in-memory index agrees with the real one', () => {
    assert.deepEqual(validateManifest(manifestText(), { npz: indexFor(manifestText()) }), []);
  });
});

describe('syntax and schema', () => {
  it('a syntax error is apl.syntax at the bad token', () => {
    const text = manifestText().replace('"format_version": "2",', '"format_version": "2" oops,');
    const ds = only(check(text), C.syntax);
    assert.ok(ds.length >= 1);
    assert.deepEqual(ds[0].range.start, rangeOf(text, 'oops').start);
  });
  it('comments and trailing commas are errors (manifests are plain JSON)', () => {
    const text = manifestText().replace('"format_version": "2",', '"format_version": "2", // c\n');
    assert.ok(codes(check(text)).includes(C.syntax));
  });
  it('a missing property is reported on the key of the object that lacks it', () => {
    const text = mutate((m) => delete m.weights[2].quantization.method);
    const ds = only(check(text), C.schema);
    assert.equal(ds.length, 1);
    assert.deepEqual(ds[0].range, rangeOf(text, '"quantization"', `"name": "${Q0}"`));
    assert.deepEqual((ds[0].data as { property: string }).property, 'method');
  });
  it('a missing property of an array item is reported on its opening brace', () => {
    const text = mutate((m) => delete m.weights[1].source);
    const ds = only(check(text), C.schema);
    assert.equal(ds.length, 1);
    // The brace sits on the line just before the weight's name.
    assert.equal(
      ds[0].range.start.line,
      rangeOf(text, '"name": "model.layers.0.input_layernorm.weight"').start.line - 1,
    );
    assert.equal(ds[0].range.end.character - ds[0].range.start.character, 1);
  });
  it('an unknown property is reported on its key, a wrong value on the value', () => {
    const text = mutate((m) => {
      m.weights[3].extra_field = 1;
      m.weights[3].quantization.type = 'perrow';
      m.model.num_layers = 'two';
    });
    const ds = only(check(text), C.schema);
    assert.deepEqual(
      ds.map((d) => d.range).sort((a, b) => a.start.line - b.start.line),
      [rangeOf(text, '"two"'), rangeOf(text, '"perrow"'), rangeOf(text, '"extra_field"')],
    );
  });
});

describe('cross-checks with the NPZ', () => {
  it('bit_width vs quantization.bits: apl.bits-mismatch on bit_width', () => {
    const text = mutate((m) => {
      m.weights[2].bit_width = 8;
    });
    const ds = only(check(text), C.bitsMismatch);
    assert.equal(ds.length, 1);
    assert.deepEqual(ds[0].range, rangeOf(text, '8', `"name": "${Q0}"`));
    assert.deepEqual(ds[0].data, { kind: 'bits', weight: 2, bitWidth: 8, bits: 4 });
  });
  it('a member the NPZ lacks: apl.member-missing on the name', () => {
    const text = mutate((m) => {
      m.weights[2].q = 'model_layers_0_self_attn_q_proj_weight_q4x.npy';
    });
    const ds = only(check(text), C.memberMissing);
    assert.equal(ds.length, 1);
    assert.deepEqual(ds[0].range, rangeOf(text, '"model_layers_0_self_attn_q_proj_weight_q4x.npy"'));
    assert.ok(codes(check(text)).includes(C.memberUnreferenced));
  });
  it('members accept names with or without .npy', () => {
    const text = mutate((m) => {
      m.weights[2].q = m.weights[2].q.replace('.npy', '');
    });
    assert.deepEqual(check(text), []);
  });
  it('a group size that does not match the scales: apl.shape-mismatch on q_scales and q_zero_point', () => {
    const text = mutate((m) => {
      m.weights[2].quantization.group_size = 4;
    });
    const ds = only(check(text), C.shapeMismatch);
    assert.deepEqual(
      ds.map((d) => d.range),
      [
        rangeOf(text, '"model_layers_0_self_attn_q_proj_weight_q4_scales.npy"'),
        rangeOf(text, '"model_layers_0_self_attn_q_proj_weight_q4_zero_point.npy"'),
      ],
    );
  });
  it('a shape that does not match q: apl.shape-mismatch on q', () => {
    const text = mutate((m) => {
      m.weights[2].shape = [16, 24];
    });
    const ds = only(check(text), C.shapeMismatch);
    assert.ok(
      ds.some(
        (d) => d.range.start.line === rangeOf(text, '"model_layers_0_self_attn_q_proj_weight_q4.npy"').start.line,
      ),
    );
  });
  it('a scale dtype that disagrees: apl.dtype-mismatch', () => {
    const text = mutate((m) => {
      m.weights[2].quantization.scale_dtype = 'float32';
    });
    assert.equal(only(check(text), C.dtypeMismatch).length, 2);
  });
  it('a float weight whose bits say 32 but whose member is float16: apl.dtype-mismatch', () => {
    const text = mutate((m) => {
      m.weights[1].bit_width = 32;
      m.weights[1].quantization.bits = 32;
    });
    const ds = only(check(text), C.dtypeMismatch);
    assert.equal(ds.length, 1);
    assert.deepEqual(ds[0].range, rangeOf(text, '"model_layers_0_input_layernorm_weight.npy"'));
  });
  it('duplicate names: apl.duplicate-name on the second', () => {
    const text = mutate((m) => {
      m.weights[3].name = Q0;
    });
    const ds = only(check(text), C.duplicateName);
    assert.equal(ds.length, 1);
    const first = rangeOf(text, `"${Q0}"`);
    assert.ok(ds[0].range.start.line > first.start.line);
  });
  it('a changed member (CRC-32): apl.npz-changed', () => {
    const text = mutate((m) => {
      m.weights[2].checksums.q = '00000000';
    });
    const ds = only(check(text), C.npzChanged);
    assert.equal(ds.length, 1);
    assert.deepEqual(ds[0].range, rangeOf(text, '"model_layers_0_self_attn_q_proj_weight_q4.npy"'));
  });
  it('the model block against the weights: apl.model-mismatch', () => {
    const text = mutate((m) => {
      m.model.hidden_dim = 32;
      m.model.num_layers = 3;
      m.model.num_kv_heads = 4;
    });
    const ds = only(check(text), C.modelMismatch);
    assert.deepEqual(
      ds.map((d) => d.range),
      [rangeOf(text, '32', '"hidden_dim"'), rangeOf(text, '3', '"num_layers"'), rangeOf(text, '4', '"num_kv_heads"')],
    );
    assert.equal(ds[1].severity, 2);
  });
  it('a layer beyond num_layers is an error on the weight', () => {
    const text = mutate((m) => {
      m.weights[2].layer = 5;
    });
    const ds = only(check(text), C.modelMismatch);
    assert.ok(
      ds.some((d) => d.severity === 1 && d.range.start.line === rangeOf(text, '5', `"name": "${Q0}"`).start.line),
    );
  });
  it('layer == num_layers is already outside (layers count from 0)', () => {
    const text = mutate((m) => {
      assert.equal(m.model.num_layers, 2);
      m.weights[2].layer = 2;
    });
    const ds = only(check(text), C.modelMismatch).filter((d) => /is outside model\.num_layers/.test(String(d.message)));
    assert.deepEqual(
      ds.map((d) => [d.severity, d.message, d.range.start.line]),
      [[1, 'Layer 2 is outside model.num_layers 2', rangeOf(text, '2', `"name": "${Q0}"`).start.line]],
    );
    // The last real layer (num_layers − 1) is inside.
    const last = mutate((m) => {
      m.weights[2].layer = 1;
    });
    assert.deepEqual(
      only(check(last), C.modelMismatch).filter((d) => /is outside/.test(String(d.message))),
      [],
    );
  });
  describe('layers with no weights: a warning on num_layers that lists them as ranges', () => {
    /** The fixture with its 18 per-layer weights relabelled to `present` (cyclically) and num_layers = n. */
    const missingMessage = (present: number[], n: number) => {
      const text = mutate((m) => {
        m.model.num_layers = n;
        for (let k = 0; k < 18; k++) m.weights[1 + k].layer = present[k % present.length];
      });
      const ds = only(check(text), C.modelMismatch).filter((d) => /have no weights/.test(String(d.message)));
      assert.ok(ds.length <= 1);
      if (ds.length) {
        assert.equal(ds[0].severity, 2);
        assert.deepEqual(ds[0].range, rangeOf(text, String(n), '"num_layers"'));
      }
      return ds.length ? String(ds[0].message) : undefined;
    };
    it('one run, runs and single layers', () => {
      assert.equal(missingMessage([0, 1], 5), 'model.num_layers is 5 but 3 layer(s) have no weights (2–4)');
      assert.equal(missingMessage([0, 2, 5], 7), 'model.num_layers is 7 but 4 layer(s) have no weights (1, 3–4, 6)');
      assert.equal(missingMessage([0, 1], 2), undefined);
    });
    it('eight parts are listed whole; more end in …', () => {
      const evens = (k: number) => Array.from({ length: k }, (_, i) => 2 * i);
      assert.equal(
        missingMessage(evens(8), 16),
        'model.num_layers is 16 but 8 layer(s) have no weights (1, 3, 5, 7, 9, 11, 13, 15)',
      );
      assert.equal(
        missingMessage(evens(10), 40),
        'model.num_layers is 40 but 30 layer(s) have no weights (1, 3, 5, 7, 9, 11, 13, 15, …)',
      );
    });
    it('counts at most 1000 missing layers', () => {
      assert.equal(missingMessage([0, 1], 5000), 'model.num_layers is 5000 but 1000 layer(s) have no weights (2–1001)');
    });
    it('no per-layer weights, or no model block: no layer diagnostics and no crash', () => {
      const noLayers = mutate((m) => {
        m.weights = [m.weights[0], m.weights[19], m.weights[20]];
      });
      assert.deepEqual(
        only(check(noLayers), C.modelMismatch).filter((d) => /layer/i.test(String(d.message))),
        [],
      );
      const noModel = mutate((m) => {
        delete m.model;
      });
      assert.deepEqual(only(check(noModel), C.modelMismatch), []);
    });
    it('a layer known only from its name is flagged on the name', () => {
      const text = mutate((m) => {
        m.model.num_layers = 1;
        delete m.weights[10].layer;
      });
      const ds = only(check(text), C.modelMismatch).filter((d) => /Layer 1 is outside/.test(String(d.message)));
      assert.deepEqual(
        ds.map((d) => d.range),
        [rangeOf(text, '"model.layers.1.input_layernorm.weight"')],
      );
    });
  });
  it('num_kv_heads is checked against k_proj/q_proj only when both head counts are numbers', () => {
    for (const key of ['num_heads', 'num_kv_heads']) {
      const text = mutate((m) => {
        delete m.model[key];
      });
      assert.deepEqual(
        only(check(text), C.modelMismatch).filter((d) => /num_kv_heads/.test(String(d.message))),
        [],
        key,
      );
    }
  });
  it('quantization fields that contradict each other: apl.quantization-mismatch', () => {
    const text = mutate((m) => {
      m.weights[2].quantization.method = 'sign';
      delete m.weights[3].quantization.group_size;
      m.weights[1].q_scales = 'x.npy';
    });
    const ds = only(check(text), C.quantizationMismatch);
    assert.equal(ds.length, 3);
  });
  it('a missing NPZ: apl.npz-missing on metadata.npz', async () => {
    const text = manifestText();
    const missing = await loadNpzIndex(`${NPZ_PATH}.nope`);
    const ds = validateManifest(text, { npz: missing });
    assert.deepEqual(codes(ds), [C.npzMissing]);
    assert.deepEqual(ds[0].range, rangeOf(text, '"tiny_quantized_q4.npz"'));
  });
  it('an unreadable NPZ: apl.npz-unreadable', async () => {
    const text = manifestText();
    const bad = await loadNpzIndex(REPORT_PATH); // a JSON file is not a zip
    assert.ok('problem' in bad && bad.problem === 'unreadable');
    assert.deepEqual(codes(validateManifest(text, { npz: bad })), [C.npzUnreadable]);
  });
  it('a named report that is missing: apl.report-missing', async () => {
    const r = await loadReport(`${REPORT_PATH}.nope`, true);
    assert.deepEqual(codes(validateManifest(manifestText(), { npz, report: r })), [C.reportMissing]);
  });
});

// Found by the fuzzer (test/fuzz, target report): a report that is not JSON gave a problem whose message carried
// the JSON parser's excerpt of the file, line breaks included. Diagnostics and CLI lines need it on one line.
describe('fuzz regression: report loader', () => {
  it('a report that is not JSON gives a one-line problem', async () => {
    const { writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const file = join(tempDir('apl-fuzzreg-'), 'tiny_accuracy_q4.json');
    writeFileSync(file, ':{\n  "model": "tiny",\n  "weights": []\n}\n');
    const r = await loadReport(file, true);
    assert.ok(r && 'problem' in r);
    assert.match(r.message, /not JSON/);
    assert.doesNotMatch(r.message, /[\r\n]/);
  });
});
