// `apl-quant convert --format kquant` on the bundled tiny model at 2 and 4 bits, through the real CLI: the NPZ
// members and their shapes, the manifest valid against the schema and the NPZ (the language server's checks, and
// `apl-quant validate`), hovers, docs/FORMAT.md's numpy dequantize equal to the engine bit for bit, and an old-style
// reader (the README's loader before this type) refusing the weights rather than misreading them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { MarkupContent } from 'vscode-languageserver-types';
import { KQ_PRESETS, kdequantize, kqSizes } from '../../../native/kquant';
import { parseConvertArgs } from '../../../server/src/cli/convert';
import { kquantMemberNames, type Manifest, matrixView } from '../../../server/src/formats/manifest';
import { openNpzFile } from '../../../server/src/formats/npz';
import { parseManifest } from '../../../server/src/manifest/document';
import { FileCache, manifestFiles } from '../../../server/src/manifest/files';
import { hover } from '../../../server/src/manifest/hover';
import { validateDoc } from '../../../server/src/manifest/validate';
import { readNpzWeight } from '../../../server/src/run/load';
import { requireNumpy, runPython } from '../../helpers/numpy';
import { docSnippet, root, tempDir, tinyModel } from './helpers';

const apl = (args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', join(root, 'server/src/cli.ts'), ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, APL_CLI_MAIN: '1' },
  });

/** The README's loader as it was before kquant (a reader that knows only groupwise_int / perrow_int / none). */
const OLD_READER = `
import json, os, sys
import numpy as np

def load(manifest_path, name):
    manifest = json.load(open(manifest_path))
    npz = np.load(os.path.join(os.path.dirname(manifest_path), manifest['metadata']['npz']))
    e = next(w for w in manifest['weights'] if w['name'] == name)
    if e['quantization']['type'] == 'none':
        return npz[e['q']].astype(np.float32).reshape(e['shape'])
    bits, group, cols = e['bit_width'], e['quantization']['group_size'], e['shape'][-1]
    packed = npz[e['q']]
    shifts = np.arange(0, 8, bits, dtype=np.uint8)
    q = ((packed[:, :, None] >> shifts) & ((1 << bits) - 1)).reshape(packed.shape[0], -1)[:, :cols]
    scale = np.repeat(npz[e['q_scales']].astype(np.float32), group, axis=1)[:, :cols]
    zero = np.repeat(npz[e['q_zero_point']].astype(np.float32), group, axis=1)[:, :cols]
    return ((q - zero) * scale).reshape(e['shape'])

load(sys.argv[1], sys.argv[2])
`;

test('convert --format: parsed and checked', () => {
  const r = parseConvertArgs(['tiny', '--bits', '4', '--format', 'kquant']);
  assert.ok(r !== 'help' && r.opts.format === 'kquant');
  assert.throws(() => parseConvertArgs(['tiny', '--format', 'q4k']), /--format must be groupwise or kquant/);
  const bad = apl(['convert', tinyModel, '--bits', '8', '--format', 'kquant', '--out', '/nonexistent-apl']);
  assert.equal(bad.status, 1, bad.stderr);
  assert.match(bad.stderr.trim(), /^apl-quant convert: --format kquant needs --bits 2 or 4 \(got 8\)$/);
});

for (const bits of [2, 4] as const) {
  test(`convert --format kquant --bits ${bits}: members, schema + NPZ checks, validate, numpy, old readers`, async (t) => {
    const out = tempDir(t, 'apl-kq-cli-');
    const r = apl(['convert', tinyModel, '--bits', String(bits), '--format', 'kquant', '--out', out, '--name', 't']);
    assert.equal(r.status, 0, r.stderr);
    const manifestPath = join(out, `t_manifest_q${bits}.json`);
    const text = readFileSync(manifestPath, 'utf8');
    const m = JSON.parse(text) as Manifest;
    const f = KQ_PRESETS[bits];

    // Every 2-D weight but the 8-bit embeddings / head is kquant, with exactly its four members.
    const kq = m.weights.filter((w) => w.quantization.type === 'kquant');
    assert.ok(kq.length >= 7, `${kq.length} kquant weights`);
    assert.ok(m.weights.some((w) => w.quantization.type === 'groupwise_int' && w.bit_width === 8));
    const npz = await openNpzFile(join(out, m.metadata.npz));
    const members = new Set(npz.members.map((x) => x.name));
    for (const w of kq) {
      const names = kquantMemberNames(w.name, bits);
      assert.deepEqual(
        { q: w.q, q_codes: w.q_codes, q_d: w.q_d, q_dmin: w.q_dmin, s: w.q_scales, z: w.q_zero_point },
        { ...names, s: null, z: null },
      );
      assert.deepEqual(w.quantization, {
        type: 'kquant',
        bits,
        method: 'asymmetric',
        group_size: f.group,
        super_size: f.super,
        scale_bits: f.scaleBits,
        min_bits: f.minBits,
        scale_dtype: 'float16',
      });
      assert.ok(w.accuracy && w.accuracy.output_rel_error !== undefined && w.accuracy.rel_error > 0);
      const { rows, cols } = matrixView(w.shape);
      const sz = kqSizes(rows, cols, f);
      for (const k of ['q', 'q_codes', 'q_d', 'q_dmin'] as const) assert.ok(members.has(names[k]), names[k]);
      assert.ok(![...members].some((x) => x.startsWith(names.q.replace('.npy', '_scales'))));
      const lw = await readNpzWeight(npz, w, 'npz');
      assert.equal(lw.kind, 'kquant');
      // readNpzWeight checked each member's dtype and element count against the format; the sizes here:
      if (lw.kind === 'kquant')
        assert.deepEqual(
          [lw.q, lw.codes, lw.d, lw.dmin].map((a) => a.byteLength),
          [sz.q, sz.codes, sz.d, sz.dmin],
        );
    }
    const report = JSON.parse(readFileSync(join(out, `t_accuracy_q${bits}.json`), 'utf8'));
    const rw = report.weights.find((x: { name: string }) => x.name === kq[0].name);
    assert.equal(rw.rel_error, kq[0].accuracy!.rel_error, 'the report has the same metrics');

    // The language server: schema and NPZ checks clean; a broken member is caught; hover describes the type.
    const doc = parseManifest(text);
    const files = manifestFiles(doc, manifestPath);
    const cache = new FileCache();
    const state = await cache.getNpz(files.npzPath!);
    const rep = await cache.getReport(files.reportPath!, files.reportNamed);
    const clean = validateDoc(doc, { manifestPath, npz: state, report: rep });
    assert.deepEqual(
      clean.filter((d) => d.severity === 1 || d.severity === 2),
      [],
    );
    const i = m.weights.indexOf(kq[0]);
    const broken = JSON.parse(text);
    broken.weights[i].q_codes = broken.weights[i].q; // right dtype, wrong shape
    broken.weights[i].checksums = undefined;
    delete broken.weights[i].q_dmin;
    const bad = validateDoc(parseManifest(JSON.stringify(broken, null, 2)), { manifestPath, npz: state });
    const msgs = bad.filter((d) => d.severity === 1).map((d) => String(d.message));
    assert.ok(
      msgs.some((x) => /has shape .*q_codes of .* should be/.test(x)),
      msgs.join('\n'),
    );
    assert.ok(
      msgs.some((x) => /q_dmin is needed for a kquant weight/.test(x)),
      msgs.join('\n'),
    );
    const h = hover(doc, text.indexOf(`"${kq[0].name}"`) + 2, { npz: state, report: rep });
    const card = (h!.contents as MarkupContent).value;
    assert.match(
      card,
      new RegExp(`kquant, ${bits} bits, asymmetric, group size ${f.group}, super-blocks of ${f.super}`),
    );
    assert.match(card, /codes and super-scales/);

    // apl-quant validate: a clean manifest; at 2 bits the guide's 20 % tolerance fails by design, which validate
    // reports with exit 3 (the accuracy report's verdict), not as a manifest error.
    const v = apl(['validate', manifestPath]);
    const reportFails = report.pass === false;
    assert.equal(v.status, reportFails ? 3 : 0, v.stdout + v.stderr);
    assert.match(v.stdout, reportFails ? /accuracy report: FAIL/ : /: ok; accuracy report: pass/);
    const vb = join(out, 'broken_manifest_q4.json');
    writeFileSync(vb, JSON.stringify(broken, null, 2));
    assert.equal(apl(['validate', vb]).status, 1);

    if (!requireNumpy(t)) return;
    // docs/FORMAT.md's numpy dequantize equals the engine's, bit for bit, for every kquant weight.
    const defs = docSnippet().split('\nmanifest, npz = load_manifest')[0];
    const dump = `${defs}
_m, _npz = load_manifest(sys.argv[1])
for _i, _e in enumerate(_m['weights']):
    if _e['quantization']['type'] == 'kquant':
        dequantize(_e, _npz).astype('<f4').tofile(os.path.join(sys.argv[2], 'w%d.f32' % _i))
print('ok')
`;
    assert.equal(runPython(dump, [manifestPath, out]).trim(), 'ok');
    for (const w of kq) {
      const lw = await readNpzWeight(npz, w, 'npz');
      if (lw.kind !== 'kquant') continue;
      const want = kdequantize(lw);
      const got = new Float32Array(readFileSync(join(out, `w${m.weights.indexOf(w)}.f32`)).buffer.slice(0));
      assert.equal(got.length, want.length, w.name);
      assert.ok(Buffer.from(got.buffer).equals(Buffer.from(want.buffer)), `${w.name}: numpy = engine bit for bit`);
    }
    // An old-style reader refuses a kquant weight (q_scales is null: not a member) instead of misreading it.
    const old = spawnSync('python3', ['-', manifestPath, kq[0].name], { input: OLD_READER, encoding: 'utf8' });
    assert.notEqual(old.status, 0, 'the old reader must fail');
    assert.match(old.stderr, /KeyError|TypeError/);
  });
}
