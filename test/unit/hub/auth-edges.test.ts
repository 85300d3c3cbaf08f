// The Hub client's token, endpoint and offline rules at their edges, where `npm run mutate -- hub-auth` found
// behaviour no test pinned: a token file that is not a token, an endpoint typed with spaces or slashes, an
// HF_HUB_OFFLINE value that only contains "on", and the help text appended to auth errors.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { authHelp, offlineFromEnv, resolveEndpoint, resolveToken } from '../../../server/src/hub/auth';
import { tempDir } from './fixtures';

const tmp = tempDir();
after(() => tmp.cleanup());

test('a token file of 4096 characters or more is not a token (a wrong HF_TOKEN_PATH); 4095 is', () => {
  const file = join(tmp.dir, 'token');
  writeFileSync(file, 'x'.repeat(4096));
  assert.equal(resolveToken(undefined, { HF_TOKEN_PATH: file }), undefined);
  writeFileSync(file, `\uFEFF${'x'.repeat(4095)}\n`);
  assert.equal(resolveToken(undefined, { HF_TOKEN_PATH: file }), 'x'.repeat(4095), 'BOM and newline dropped');
});

test('a token path that is a FIFO, a device or a folder is no token (not read: that would block or never end)', (t) => {
  if (process.platform === 'win32') {
    t.skip('no FIFOs or /dev here');
    return;
  }
  const fifo = join(tmp.dir, 'token-fifo');
  execFileSync('mkfifo', [fifo]);
  for (const p of [fifo, '/dev/zero', tmp.dir])
    assert.equal(resolveToken(undefined, { HF_TOKEN_PATH: p }), undefined, p);
});

test('the endpoint: spaces trimmed and every trailing slash dropped, from the option or HF_ENDPOINT', () => {
  assert.equal(resolveEndpoint('  http://127.0.0.1:8080//  ', {}), 'http://127.0.0.1:8080');
  assert.equal(resolveEndpoint(undefined, { HF_ENDPOINT: ' https://hub.example/ ' }), 'https://hub.example');
  assert.equal(resolveEndpoint('  ', { HF_ENDPOINT: 'https://hub.example' }), 'https://hub.example');
  assert.equal(resolveEndpoint(undefined, {}), 'https://huggingface.co');
});

test('HF_HUB_OFFLINE: the whole (trimmed) value must be 1, true, yes or on', () => {
  for (const v of ['1', 'TRUE', ' yes ', 'On']) assert.equal(offlineFromEnv({ HF_HUB_OFFLINE: v }), true, v);
  for (const v of ['0', 'no', 'onion', 'neon', '10', 'yes please', '', undefined])
    assert.equal(offlineFromEnv({ HF_HUB_OFFLINE: v }), false, String(v));
});

test('authHelp: one line; the licence sentence with the model page only for a gated model', () => {
  const plain = authHelp('org/m', 'https://hub.example', false);
  const gated = authHelp('org/m', 'https://hub.example', true);
  for (const t of [plain, gated]) {
    assert.doesNotMatch(t, /[\r\n]/);
    assert.match(t, /apl-quant convert org\/m --token hf_…/);
    assert.match(t, /HF_TOKEN/);
  }
  assert.doesNotMatch(plain, /gated/);
  assert.ok(gated.startsWith(plain));
  assert.match(gated, / This model is gated: also accept its licence on its Hub page, https:\/\/hub\.example\/org\/m,/);
});
