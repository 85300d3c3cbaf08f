// Hover, completion, outline, folding, code lens, quick fixes and definition as pure functions on the fixture.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { TextDocument } from 'vscode-languageserver-textdocument';
import type { CompletionItem, Hover, MarkupContent, TextEdit } from 'vscode-languageserver-types';
import { codeActions } from '../../../server/src/manifest/code-actions';
import { codeLenses } from '../../../server/src/manifest/code-lens';
import { DiagnosticCodes as C } from '../../../server/src/manifest/codes';
import { completion } from '../../../server/src/manifest/completion';
import { definition } from '../../../server/src/manifest/definition';
import { parseManifest } from '../../../server/src/manifest/document';
import { loadNpzIndex, loadReport } from '../../../server/src/manifest/files';
import { hover } from '../../../server/src/manifest/hover';
import type { NpzState } from '../../../server/src/manifest/npz-index';
import type { ReportState } from '../../../server/src/manifest/report';
import { summarize } from '../../../server/src/manifest/summary';
import { documentSymbols, foldingRanges } from '../../../server/src/manifest/symbols';
import { validateManifest } from '../../../server/src/manifest/validate';
import { CommandIds } from '../../../server/src/protocol';
import { manifestText, mutate, NPZ_PATH, offsetOf, only, REPORT_PATH } from './helpers';

let npz: NpzState;
let report: ReportState | undefined;
before(async () => {
  npz = await loadNpzIndex(NPZ_PATH);
  report = await loadReport(REPORT_PATH, true);
});
const md = (h: Hover | null) => (h?.contents as MarkupContent | undefined)?.value ?? '';
const Q0 = 'model.layers.0.self_attn.q_proj.weight';
const URI = 'file:///m/tiny_manifest_q4.json';

function apply(text: string, edits: TextEdit[]): string {
  return TextDocument.applyEdits(TextDocument.create(URI, 'apl-manifest', 1, text), edits);
}

describe('hover', () => {
  it('anywhere inside a weight: the card with shape, bits, group size, sizes and the report verdict', () => {
    const text = manifestText();
    const doc = parseManifest(text);
    const at = offsetOf(text, '"asymmetric"', `"name": "${Q0}"`) + 2; // inside quantization.method's value
    const h = md(hover(doc, at, { npz, report }));
    assert.match(h, new RegExp(Q0.replace(/\./g, '\\.')));
    assert.match(h, /\[16, 16\] — 256 parameters/);
    assert.match(h, /groupwise_int, 4 bits, asymmetric, group size 8/);
    // 16 rows × 8 packed bytes = 128 B; scales + zeros: 2 × 16 × 2 groups × 2 B = 128 B.
    assert.match(h, /128 B \+ 128 B scales and zero points = \*\*256 B\*\*/);
    assert.match(h, /vs float16 \| 512 B → 2\.00× smaller/);
    assert.match(h, /vs float32 \| 1\.00 KiB → 4\.00× smaller/);
    assert.match(h, /relative error [\d.]+ %.*\*\*PASS\*\*/);
  });
  it('the report verdict FAIL shows when the report says so', async () => {
    const text = manifestText();
    const doc = parseManifest(text);
    const r = (await loadReport(REPORT_PATH, true)) as Exclude<ReportState, { problem: string }>;
    r.weights.get(Q0)!.pass = false;
    const h = md(hover(doc, offsetOf(text, `"${Q0}"`) + 3, { npz, report: r }));
    assert.match(h, /\*\*FAIL\*\*/);
  });
  it('on a key: the schema description', () => {
    const text = manifestText();
    const h = md(hover(parseManifest(text), offsetOf(text, '"group_size"') + 2));
    assert.match(h, /Elements per group along the last axis/);
  });
  it('outside anything describable: null', () => {
    const text = manifestText();
    assert.equal(hover(parseManifest(text), offsetOf(text, '"tiny"') + 1), null);
  });
});

describe('completion', () => {
  const labels = (items: CompletionItem[]) => items.map((i) => i.label);
  it('keys from the schema, minus those present', () => {
    const text = mutate((m) => {
      delete m.weights[2].layer;
    }).replace(`"name": "${Q0}",`, `"name": "${Q0}",\n      "",`);
    const at = offsetOf(text, '"",', `"name": "${Q0}"`) + 1;
    const items = completion(parseManifest(text), at);
    assert.ok(labels(items).includes('layer'));
    assert.ok(labels(items).includes('accuracy'));
    assert.ok(!labels(items).includes('shape'));
    assert.ok(!labels(items).includes('name'));
  });
  it('enum values for quantization.type', () => {
    const text = manifestText();
    const at = offsetOf(text, '"groupwise_int"', `"name": "${Q0}"`) + 1;
    assert.deepEqual(labels(completion(parseManifest(text), at)), [
      '"perrow_int"',
      '"groupwise_int"',
      '"kquant"',
      '"none"',
    ]);
  });
  it("NPZ member names for q_scales, the weight's own first", () => {
    const text = manifestText();
    const at = offsetOf(text, '"model_layers_0_self_attn_q_proj_weight_q4_scales.npy"') + 1;
    const items = completion(parseManifest(text), at, { npz });
    assert.equal(items.length, 53);
    const best = [...items].sort((a, b) => (a.sortText! < b.sortText! ? -1 : 1))[0];
    assert.equal(best.label, 'model_layers_0_self_attn_q_proj_weight_q4_scales.npy');
    assert.ok(best.textEdit && 'range' in best.textEdit);
  });
});

describe('outline and folding', () => {
  it('weights grouped by layer, embeddings and head outside the layers', () => {
    const syms = documentSymbols(parseManifest(manifestText()));
    assert.deepEqual(
      syms.map((s) => s.name),
      ['format_version', 'model', 'weights', 'metadata'],
    );
    const weights = syms[2].children!;
    assert.deepEqual(
      weights.map((s) => s.name),
      ['model.embed_tokens.weight', 'layer 0', 'layer 1', 'model.norm.weight', 'lm_head.weight'],
    );
    assert.equal(weights[1].children!.length, 9);
    assert.equal(weights[1].children![1].name, Q0);
    assert.equal(weights[1].children![1].detail, 'q4 [16, 16]');
  });
  it('folding ranges for multi-line objects and arrays, closing line visible', () => {
    const text = manifestText();
    const ranges = foldingRanges(parseManifest(text));
    const lines = text.split('\n').length;
    assert.equal(ranges[0].startLine, 0);
    assert.equal(ranges[0].endLine, lines - 3); // the root's closing brace is on the last line of text
    assert.ok(ranges.length > 100);
  });
});

describe('code lens and summary', () => {
  it('weights, size, bits per weight, verdict and the two commands with file URIs', () => {
    const doc = parseManifest(manifestText());
    const s = summarize(doc, { npz, report });
    assert.equal(s.weights, 21); // embeddings, 2 layers × 9, norm, head
    assert.equal(s.quantized, 16);
    assert.equal(s.verdict, 'pass');
    // The one computation (shared/format.ts): the NPZ's bytes × 8 over the entries' parameters (issue 15).
    const params = (JSON.parse(manifestText()).weights as { shape: number[] }[]).reduce(
      (n, w) => n + w.shape.reduce((a, b) => a * b, 1),
      0,
    );
    assert.equal(s.bitsPerWeight, (8 * (npz as { size: number }).size) / params);
    const lenses = codeLenses(s, { npzUri: 'file:///m/x.npz', reportUri: 'file:///m/r.json' });
    assert.ok(lenses.every((l) => l.range.start.line === 0));
    assert.match(lenses[0].command!.title, /^21 weights \(16 quantized\)/);
    const cmds = lenses.map((l) => [l.command!.command, l.command!.arguments?.[0]]);
    assert.deepEqual(cmds[0], [CommandIds.inspectNpz, 'file:///m/x.npz']);
    assert.ok(cmds.some(([c, a]) => c === CommandIds.openAccuracyReport && a === 'file:///m/r.json'));
    assert.ok(
      cmds.some(([c, a]) => c === CommandIds.tryModel && a === 'file:///m/x.npz'),
      'the playground lens',
    );
    // The report has no end_to_end section yet: the lens offers to add one.
    const evaluate = lenses.find((l) => l.command?.command === CommandIds.evaluateModel);
    assert.equal(evaluate?.command?.title, 'Evaluate end to end');
    assert.deepEqual(evaluate?.command?.arguments, ['file:///m/x.npz']);
  });
  it('without a report the verdict is unknown and no report command is offered', () => {
    const s = summarize(parseManifest(manifestText()), { npz });
    assert.equal(s.verdict, 'unknown');
    const lenses = codeLenses(s, { npzUri: 'file:///m/x.npz' });
    assert.ok(!lenses.some((l) => l.command?.command === CommandIds.openAccuracyReport));
    assert.ok(!lenses.some((l) => l.command?.command === CommandIds.evaluateModel), 'nowhere to store the figures');
  });
});

describe('quick fixes', () => {
  it('bit_width vs quantization.bits: both directions, and the fix clears the diagnostic', () => {
    const text = mutate((m) => {
      m.weights[2].bit_width = 8;
    });
    const ds = only(validateManifest(text, { npz }), C.bitsMismatch);
    const actions = codeActions(parseManifest(text), ds, { uri: URI, npz });
    assert.deepEqual(
      actions.map((a) => a.title),
      ['Set bit_width to 4', 'Set quantization.bits to 8'],
    );
    const fixed = apply(text, actions[0].edit!.changes![URI]);
    assert.deepEqual(validateManifest(fixed, { npz }), []);
    const other = apply(text, actions[1].edit!.changes![URI]);
    assert.ok(!validateManifest(other, { npz }).some((d) => d.code === C.bitsMismatch));
  });
  it('a misspelled member: the nearest existing name', () => {
    const text = mutate((m) => {
      m.weights[2].q_scales = 'model_layers_0_self_attn_q_proj_weight_q4_scale.npy';
    });
    const ds = only(validateManifest(text, { npz }), C.memberMissing);
    const actions = codeActions(parseManifest(text), ds, { uri: URI, npz });
    assert.equal(actions[0].title, 'Change to "model_layers_0_self_attn_q_proj_weight_q4_scales.npy"');
    assert.equal(actions[0].isPreferred, true);
    assert.deepEqual(validateManifest(apply(text, actions[0].edit!.changes![URI]), { npz }), []);
  });
  it('an invalid bit_width: no fix proposes it as quantization.bits (issue 15)', () => {
    const text = mutate((m) => {
      m.weights[2].bit_width = 3;
    });
    const ds = only(validateManifest(text, { npz }), C.bitsMismatch);
    const titles = codeActions(parseManifest(text), ds, { uri: URI, npz }).map((a) => a.title);
    assert.ok(!titles.includes('Set quantization.bits to 3'), titles.join(', '));
    assert.ok(ds.length > 0, 'a bits mismatch');
    assert.ok(titles.includes('Set bit_width to 4'), titles.join(', '));
  });
  it('a renamed member: the member nothing refers to any more is offered (issue 15)', () => {
    const text = mutate((m) => {
      m.weights[2].q_scales = 'renamed.npy';
    });
    const ds = only(validateManifest(text, { npz }), C.memberMissing);
    const actions = codeActions(parseManifest(text), ds, { uri: URI, npz });
    const want = 'Change to "model_layers_0_self_attn_q_proj_weight_q4_scales.npy"';
    const a = actions.find((x) => x.title === want);
    assert.ok(a, actions.map((x) => x.title).join(', '));
    assert.deepEqual(validateManifest(apply(text, a.edit!.changes![URI]), { npz }), []);
  });
  it('a missing required field: inserted with a default derived from the weight', () => {
    const text = mutate((m) => {
      delete m.weights[2].q_zero_point;
      delete m.weights[2].source;
    });
    const ds = only(validateManifest(text, { npz }), C.schema);
    assert.equal(ds.length, 2);
    const actions = codeActions(parseManifest(text), ds, { uri: URI, npz });
    assert.equal(actions.length, 2);
    let fixed = apply(text, actions[0].edit!.changes![URI]);
    fixed = apply(
      fixed,
      codeActions(parseManifest(fixed), only(validateManifest(fixed, { npz }), C.schema), { uri: URI, npz })[0].edit!
        .changes![URI],
    );
    assert.deepEqual(validateManifest(fixed, { npz }), []);
    assert.match(fixed, /"q_zero_point": "model_layers_0_self_attn_q_proj_weight_q4_zero_point\.npy"/);
  });
  it('groupwise_int without group_size: inserts the manifest default group size', () => {
    const text = mutate((m) => {
      delete m.weights[2].quantization.group_size;
    });
    const ds = only(validateManifest(text, { npz }), C.quantizationMismatch);
    assert.equal(ds.length, 1);
    const [a] = codeActions(parseManifest(text), ds, { uri: URI, npz });
    assert.equal(a.title, 'Add missing property "group_size"');
    assert.deepEqual(validateManifest(apply(text, a.edit!.changes![URI]), { npz }), []);
  });
  it('a missing top-level block is inserted into the root object', () => {
    const text = mutate((m) => {
      delete m.format_version;
    });
    const ds = only(validateManifest(text), C.schema);
    const [a] = codeActions(parseManifest(text), ds, { uri: URI });
    assert.match(apply(text, a.edit!.changes![URI]), /"format_version": "2"/);
    assert.deepEqual(validateManifest(apply(text, a.edit!.changes![URI]), { npz }), []);
  });
});

describe('definition', () => {
  it('from a member name or metadata.npz to the NPZ; from accuracy_report to the report', () => {
    const text = manifestText();
    const doc = parseManifest(text);
    const opts = { npzUri: 'file:///m/x.npz', reportUri: 'file:///m/r.json' };
    assert.equal(
      definition(doc, offsetOf(text, '"model_layers_0_self_attn_q_proj_weight_q4.npy"') + 2, opts)?.uri,
      opts.npzUri,
    );
    assert.equal(definition(doc, offsetOf(text, '"tiny_quantized_q4.npz"') + 2, opts)?.uri, opts.npzUri);
    assert.equal(definition(doc, offsetOf(text, '"tiny_accuracy_q4.json"') + 2, opts)?.uri, opts.reportUri);
    assert.equal(definition(doc, offsetOf(text, `"${Q0}"`) + 2, opts), null);
  });
});
