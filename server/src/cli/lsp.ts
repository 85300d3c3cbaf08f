// `apl-quant lsp --stdio`: the manifest language server on stdin/stdout, for any LSP client (Neovim, Helix, Emacs).
// See docs/LSP.md. `--node-ipc` (what VS Code's client uses) works too.
import { oneLine } from '../formats/errors';
import { CliError, parseArgs } from './common';

const USAGE = `usage: apl-quant lsp --stdio

Starts the manifest language server speaking LSP on stdin/stdout (see docs/LSP.md).`;

export async function run(argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs(argv, ['clientProcessId'], ['stdio', 'node-ipc', 'help']);
  if (flags.has('help')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length) throw new CliError(`lsp takes no arguments (got ${oneLine(positionals[0])})\n${USAGE}`, 2);
  if (!flags.has('stdio') && !flags.has('node-ipc')) throw new CliError(`choose a transport\n${USAGE}`, 2);
  // --node-ipc talks over the IPC channel of a parent Node process (VS Code's client starts the server so); from a
  // shell there is none, and the language server library would throw on its own.
  if (!flags.has('stdio') && typeof process.send !== 'function')
    throw new CliError(
      '--node-ipc needs a parent process that opened an IPC channel (as VS Code does); use --stdio',
      2,
    );
  const { startServer } = await import('../server');
  const lsp = await import('vscode-languageserver/node');
  const connection = flags.has('stdio')
    ? lsp.createConnection(
        lsp.ProposedFeatures.all,
        new lsp.StreamMessageReader(process.stdin),
        new lsp.StreamMessageWriter(process.stdout),
      )
    : lsp.createConnection(lsp.ProposedFeatures.all);
  startServer(connection);
  // Serve until the client sends exit (the connection then ends the process) or stdin closes.
  await new Promise<void>((resolve) => {
    process.stdin.on('close', resolve);
  });
  return 0;
}
