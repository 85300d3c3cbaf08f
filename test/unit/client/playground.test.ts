// The playground's command line (client/src/webviews/playgroundArgs.ts) runs the real CLI: the quantized and the
// float side of one request each print prompt, token and done RunEvents, one JSON line each.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runArgs } from '../../../client/src/webviews/playgroundArgs';
import type { PlaygroundRequest, RunEvent } from '../../../server/src/protocol';
import { convertTiny, root } from '../run/helpers';

const REQ: PlaygroundRequest = { prompt: 'The sky', temperature: 0, maxTokens: 3, chat: false, compare: true };

test('runArgs: the flags of apl-quant run, --float only on the float side, --system only in chat mode', () => {
  assert.deepEqual(runArgs('cli.js', 'm.json', REQ, 'quantized'), [
    'cli.js',
    'run',
    'm.json',
    '--prompt',
    'The sky',
    '--max-tokens',
    '3',
    '--temperature',
    '0',
    '--json',
  ]);
  assert.equal(runArgs('cli.js', 'm.json', REQ, 'float').at(-1), '--float');
  assert.deepEqual(runArgs('c', 'm', { ...REQ, system: 'x' }, 'quantized').includes('--system'), false);
  assert.deepEqual(runArgs('c', 'm', { ...REQ, chat: true, system: 'Be brief.' }, 'quantized').slice(-3), [
    '--chat',
    '--system',
    'Be brief.',
  ]);
});

test('the playground command line runs both sides of a request through the CLI (--json events)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'apl-play-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const manifest = await convertTiny('tiny-llama', 4, dir);
  const prompts: Record<string, unknown> = {};
  for (const side of ['quantized', 'float'] as const) {
    const [, ...args] = runArgs(join(root, 'server/src/cli.ts'), manifest, REQ, side);
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'server/src/cli.ts'), ...args], {
      cwd: root,
      env: { ...process.env, APL_CLI_MAIN: '1' },
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(r.status, 0, r.stderr);
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as RunEvent);
    assert.equal(events[0].type, 'prompt');
    const done = events.at(-1)!;
    assert.equal(done.type, 'done');
    assert.equal(events.filter((e) => e.type === 'token').length, done.type === 'done' ? done.generated_tokens : -1);
    prompts[side] = events[0].type === 'prompt' ? events[0].ids : null;
  }
  assert.deepEqual(prompts.float, prompts.quantized, 'the same prompt tokens on both sides');
});
