// `apl-quant lsp` refusals from a shell (fuzz findings): --node-ipc without the IPC channel a parent opens (the
// language-server library threw its own uncaught error), and stray arguments; both a usage error (exit 2) on one line.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const CLI = join(__dirname, '../../../server/src/cli.ts');

function lsp(...args: string[]) {
  // stdio only: no IPC channel, as from a shell
  return spawnSync(process.execPath, ['--import', 'tsx', CLI, 'lsp', ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 60_000,
  });
}

describe('apl-quant lsp from a shell', () => {
  it('--node-ipc without an IPC channel is a usage error naming --stdio', () => {
    for (const args of [['--node-ipc'], ['--node-ipc', '--clientProcessId', '1']]) {
      const r = lsp(...args);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /--node-ipc needs a parent process that opened an IPC channel.*use --stdio/);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack');
    }
  });
  it('stray arguments are refused, with control characters escaped', () => {
    const r = lsp('--stdio', '--', '--help\r');
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /lsp takes no arguments \(got --help\\u000d\)/);
  });
});
