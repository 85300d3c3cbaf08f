// Shared by the converter tests: temp folders, the tiny fixture, and the numpy check that runs docs/FORMAT.md's snippet.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const root = join(__dirname, '../../..');
export const tinyModel = join(root, 'test/fixtures/tiny-llama');

/** A fresh temp folder, removed when the test ends. */
export function tempDir(t: { after(fn: () => void): void }, prefix = 'apl-convert-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A writable copy of the tiny model (to break its config or files). */
export function copyTiny(to: string): string {
  cpSync(tinyModel, to, { recursive: true });
  return to;
}

/** Every file in a folder with its bytes, for "earlier outputs intact" checks. */
export function snapshot(dir: string): Map<string, Buffer> {
  const m = new Map<string, Buffer>();
  for (const f of readdirSync(dir)) if (statSync(join(dir, f)).isFile()) m.set(f, readFileSync(join(dir, f)));
  return m;
}

/** The python blocks of docs/FORMAT.md, in order. */
export function docSnippet(): string {
  const md = readFileSync(join(root, 'docs/FORMAT.md'), 'utf8');
  const blocks = [...md.matchAll(/```python\n([\s\S]*?)```/g)].map((m) => m[1]);
  if (blocks.length < 2) throw new Error('docs/FORMAT.md: expected the python snippet blocks');
  return blocks.join('\n');
}

const CHECK = `
import json as _json
_out = {}
for _e in manifest['weights']:
    _w = load_source_tensor(model_dir, _e['source']).astype(np.float64)
    _wh = dequantize(_e, npz).astype(np.float64)
    assert _wh.shape == _w.shape, (_e['name'], _wh.shape, _w.shape)
    if _e['quantization']['type'] == 'none':
        _out[_e['name']] = float(np.abs(_w - _wh).max())
    else:
        _out[_e['name']] = float(np.linalg.norm(_w - _wh) / np.linalg.norm(_w))
print('JSON' + _json.dumps({'members': sorted(npz.files), 'errors': _out}))
`;

/**
 * Runs docs/FORMAT.md's snippet with python3 on a manifest: returns the line the snippet prints (first quantized
 * weight and its error), numpy's member list, and per tensor the relative error (quantized) or max abs difference
 * (kept as float) against the source checkpoint.
 */
export function numpyCheck(
  manifest: string,
  modelDir: string,
): { line: string; members: string[]; errors: Record<string, number> } {
  const r = spawnSync('python3', ['-', manifest, modelDir], { input: docSnippet() + CHECK, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python3 failed: ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  const json = lines.find((l) => l.startsWith('JSON'));
  if (!json) throw new Error(`no JSON line in ${r.stdout}`);
  return { line: lines[0], ...JSON.parse(json.slice(4)) };
}
