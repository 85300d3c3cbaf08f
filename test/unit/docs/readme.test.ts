// The README's numpy snippet is a promise to users: it must read every weight of a real conversion exactly as
// docs/FORMAT.md's reference dequantizer does, at 1, 2, 4 and 8 bits, with groups and per-row layouts, and kquant.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { convertModel } from '../../../server/src/convert/pipeline';
import { requireNumpy, runPython } from '../../helpers/numpy';
import { docSnippet, root, tempDir, tinyModel } from '../convert/helpers';

function readmeSnippet(): string {
  const md = readFileSync(join(root, 'README.md'), 'utf8');
  const block = [...md.matchAll(/```python\n([\s\S]*?)```/g)].map((m) => m[1])[0];
  assert.ok(block, 'README.md has a python block');
  // Keep the definitions; drop the example call at the end, which names a fixed path.
  return block.replace(/^w = load\(.*$/m, '');
}

const COMPARE = `
_manifest = json.load(open(sys.argv[1]))
_npz = np.load(os.path.join(os.path.dirname(sys.argv[1]), _manifest['metadata']['npz']))
_worst = 0.0
for _e in _manifest['weights']:
    _a = load(sys.argv[1], _e['name'])
    _b = dequantize(_e, _npz)
    assert _a.shape == _b.shape, (_e['name'], _a.shape, _b.shape)
    _worst = max(_worst, float(np.abs(_a - _b).max()))
print(len(_manifest['weights']), _worst)
`;

for (const [bits, groupSize] of [
  [1, 64],
  [2, 'row'],
  [4, 64],
  [8, 32],
  [2, 'kquant'],
  [4, 'kquant'],
] as const) {
  test(`README snippet reads a ${bits}-bit (group ${groupSize}) conversion exactly like docs/FORMAT.md`, async (t) => {
    if (!requireNumpy(t)) return;
    const out = tempDir(t, 'apl-readme-');
    const layout = groupSize === 'kquant' ? { format: 'kquant' as const } : { groupSize };
    const r = await convertModel({ source: tinyModel, bits, ...layout, outDir: out, name: 'tiny' }, () => {});
    // FORMAT.md's blocks end with an example that reads sys.argv; keep only its definitions (the first block).
    const formatDefs = docSnippet().split('\nmanifest, npz = load_manifest')[0];
    const code = `${formatDefs}\n${readmeSnippet()}\n${COMPARE}`;
    const [count, worst] = runPython(code, [r.manifest]).trim().split(' ');
    const manifest = JSON.parse(readFileSync(r.manifest, 'utf8'));
    assert.equal(Number(count), manifest.weights.length);
    assert.equal(Number(worst), 0, 'README and FORMAT.md dequantize to identical values');
    if (groupSize === 'kquant')
      assert.ok(
        manifest.weights.some((w: { quantization: { type: string } }) => w.quantization.type === 'kquant'),
        'the conversion has kquant weights',
      );
  });
}
