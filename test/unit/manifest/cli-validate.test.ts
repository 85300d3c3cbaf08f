// `apl-quant validate` through the real CLI entry: one line per diagnostic (file:line:col severity code message),
// exit 1 on errors, --json, and plain one-line errors for a missing file.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { FIXTURES, mutate } from './helpers';

const ROOT = join(__dirname, '../../..');
// The test runs in a scratch folder, so tsx is named by its resolved location rather than by package name.
const TSX = pathToFileURL(require.resolve('tsx')).href;
let dir: string;

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', TSX, join(ROOT, 'server/src/cli.ts'), 'validate', ...args], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'apl-validate-'));
  for (const f of ['tiny_manifest_q4.json', 'tiny_quantized_q4.npz', 'tiny_accuracy_q4.json'])
    copyFileSync(join(FIXTURES, f), join(dir, f));
  writeFileSync(
    join(dir, 'bad_manifest_q4.json'),
    mutate((m) => {
      m.weights[2].bit_width = 8;
      m.weights[3].q = 'nope.npy';
    }),
  );
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('apl-quant validate', () => {
  it('a valid manifest: exit 0, "ok" and the verdict on stdout, nothing on stderr', () => {
    const r = cli('tiny_manifest_q4.json');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^tiny_manifest_q4\.json: ok(; accuracy report: pass)?\n$/);
    assert.equal(r.err, '');
  });
  it('a valid manifest whose accuracy report fails: not "ok", the verdict, exit 3', () => {
    const report = JSON.parse(readFileSync(join(dir, 'tiny_accuracy_q4.json'), 'utf8'));
    report.pass = false;
    const sub = join(dir, 'failing');
    mkdirSync(sub, { recursive: true });
    for (const f of ['tiny_manifest_q4.json', 'tiny_quantized_q4.npz']) copyFileSync(join(dir, f), join(sub, f));
    writeFileSync(join(sub, 'tiny_accuracy_q4.json'), JSON.stringify(report));
    const r = cli(join('failing', 'tiny_manifest_q4.json'));
    assert.equal(r.code, 3, r.out + r.err);
    assert.doesNotMatch(r.out, /: ok/);
    assert.match(r.out, /accuracy report: FAIL\n$/);
  });
  it('problems: one line each, file:line:col severity code message, exit 1', () => {
    const r = cli('bad_manifest_q4.json');
    assert.equal(r.code, 1);
    const lines = r.out.trim().split('\n');
    assert.equal(lines.length, 4); // bits mismatch, missing member, the member nothing refers to now, the counts
    assert.match(lines[3], /^bad_manifest_q4\.json: 2 error\(s\), 1 warning/);
    assert.match(lines[0], /^bad_manifest_q4\.json:\d+:\d+ error apl\.bits-mismatch /);
    assert.match(lines[1], /^bad_manifest_q4\.json:\d+:\d+ error apl\.member-missing .*nope\.npy/);
    assert.match(lines[2], /^bad_manifest_q4\.json:\d+:\d+ info apl\.member-unreferenced /);
  });
  it('--json prints the same diagnostics as JSON', () => {
    const r = cli('bad_manifest_q4.json', '--json');
    assert.equal(r.code, 1);
    const ds = JSON.parse(r.out);
    assert.deepEqual(
      ds.map((d: { code: string }) => d.code),
      ['apl.bits-mismatch', 'apl.member-missing', 'apl.member-unreferenced'],
    );
    assert.equal(typeof ds[0].line, 'number');
  });
  it('a missing file: one line on stderr, exit 1; no argument: usage, exit 2; apl-quant alone: usage, exit 0', () => {
    const r = cli('missing.json');
    assert.equal(r.code, 1);
    assert.equal(r.err.trim().split('\n').length, 1);
    assert.match(r.err, /missing\.json: no such file/);
    assert.equal(cli().code, 2);
    const bare = spawnSync(process.execPath, ['--import', TSX, join(ROOT, 'server/src/cli.ts')], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(bare.status, 0);
    assert.match(bare.stdout, /usage: apl-quant <command>/);
  });
});
