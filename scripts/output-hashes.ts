// Byte-identity check for refactors and speed work: converts the bundled tiny model and a synthetic TinyLlama-shaped
// checkpoint at 1, 2, 4 and 8 bits with the built CLI and prints a sha256 per output file. Fields that record when
// or how long (the report's `seconds`, the manifest's `metadata.created_at`) and where (absolute source paths) are
// blanked before hashing, so two runs of the same code print the same lines and a changed line means changed output.
//
//   node --import tsx scripts/output-hashes.ts [--layers N] [--out FILE] [-- extra convert flags]
//
// Compare two runs with `diff before.txt after.txt`. The synthetic checkpoint is cached in os.tmpdir().
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { generate } from '../bench/synthetic-checkpoint';

const root = resolve(__dirname, '..');
const argv = process.argv.slice(2);
const dashDash = argv.indexOf('--');
const extra = dashDash >= 0 ? argv.slice(dashDash + 1) : [];
const opts = dashDash >= 0 ? argv.slice(0, dashDash) : argv;
const flag = (name: string) => {
  const i = opts.indexOf(name);
  return i >= 0 ? opts[i + 1] : undefined;
};
const layers = Number(flag('--layers') ?? 22);
const outFile = flag('--out');

function normalise(file: string, bytes: Buffer): Buffer {
  if (!file.endsWith('.json')) return bytes;
  const doc = JSON.parse(bytes.toString('utf8'));
  const blank = (o: unknown): void => {
    if (!o || typeof o !== 'object') return;
    for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
      if (k === 'seconds' || k === 'created_at' || k === 'source') (o as Record<string, unknown>)[k] = '<blank>';
      else blank(v);
    }
  };
  blank(doc);
  return Buffer.from(JSON.stringify(doc));
}

const lines: string[] = [];
const sources: [string, string][] = [['tiny-llama', join(root, 'test/fixtures/tiny-llama')]];
if (layers > 0) {
  const dir = join(tmpdir(), 'apl-output-hashes', `tinyllama-shapes-${layers}L`);
  generate(dir, layers);
  sources.push([`tinyllama-shapes-${layers}L`, dir]);
}
for (const [label, src] of sources) {
  for (const bits of [1, 2, 4, 8]) {
    const out = join(tmpdir(), 'apl-output-hashes', 'out', label, String(bits));
    rmSync(out, { recursive: true, force: true });
    mkdirSync(out, { recursive: true });
    const args = [join(root, 'bin/apl-quant.js'), 'convert', src, '--bits', String(bits), '--out', out, ...extra];
    const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
    if (r.status !== 0 && r.status !== 3) {
      // 3 = converted, accuracy verdict failed (1- and 2-bit by design); anything else is an error.
      console.error(r.stdout, r.stderr);
      throw new Error(`convert ${label} --bits ${bits} exited ${r.status}`);
    }
    for (const f of readdirSync(out).sort()) {
      const h = createHash('sha256')
        .update(normalise(f, readFileSync(join(out, f))))
        .digest('hex');
      const line = `${h}  ${label}/${f}`;
      lines.push(line);
      console.log(line);
    }
  }
}
if (outFile) writeFileSync(outFile, `${lines.join('\n')}\n`);
