// `apl-quant lsp` refusals from a shell (fuzz findings): --node-ipc without the IPC channel a parent opens (the
// language-server library threw its own uncaught error), and stray arguments; both a usage error (exit 2) on one line.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { spawnTs } from '../../helpers/cli';

/** The CLI's lsp subcommand with stdio pipes only: no IPC channel, as from a shell. */
const lsp = (...args: string[]) => spawnTs(['server/src/cli.ts', 'lsp', ...args], process.env, `lsp ${args.join(' ')}`);

describe('apl-quant lsp from a shell', () => {
  it('--node-ipc without an IPC channel is a usage error naming --stdio', async () => {
    for (const args of [['--node-ipc'], ['--node-ipc', '--clientProcessId', '1']]) {
      const r = await lsp(...args);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /--node-ipc needs a parent process that opened an IPC channel.*use --stdio/);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack');
    }
  });
  it('stray arguments are refused, with control characters escaped', async () => {
    const r = await lsp('--stdio', '--', '--help\r');
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /lsp takes no arguments \(got --help\\u000d\)/);
  });
});
