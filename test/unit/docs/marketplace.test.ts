// Issue 15 item 11: the VSIX ships a user's README (not the developer one), an icon, a changelog, and categories
// and keywords that find it.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

const ROOT = join(__dirname, '../../..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));

test('the VSIX: a user README, a 128×128 PNG icon, a changelog, categories and keywords', () => {
  const m = /--readme-path (\S+)/.exec(pkg.scripts.package);
  assert.ok(m, 'vsce package --readme-path');
  const readme = readFileSync(join(ROOT, m[1]), 'utf8');
  assert.doesNotMatch(readme, /npm ci|apt-get/);
  assert.match(readme, /APL: Convert Model/);
  const png = readFileSync(join(ROOT, pkg.icon));
  assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG');
  assert.equal(png.readUInt32BE(16), 128);
  assert.equal(png.readUInt32BE(20), 128);
  assert.ok(existsSync(join(ROOT, 'CHANGELOG.md')));
  assert.ok(pkg.categories.includes('Machine Learning'));
  for (const k of ['quantization', 'llm', 'huggingface']) assert.ok(pkg.keywords.includes(k), k);
});
