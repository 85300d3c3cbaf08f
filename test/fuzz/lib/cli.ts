// Runs `apl-quant` in this process, output captured, and checks the CLI's side of the property: an exit status
// the CLI documents, errors on one line, and no error that is not the product's own. A subcommand's run() is
// called as main() calls it, so that what it throws is classified by class (main() would print any error as
// one line, a TypeError included); other argument vectors (help, version, unknown commands) go through main().
import { main } from '../../../server/src/cli';
import { CliError } from '../../../server/src/cli/common';
import { ConvertError } from '../../../server/src/convert/errors';
import { FormatError } from '../../../server/src/formats/errors';
import { HubError } from '../../../server/src/hub/errors';
import { RunError } from '../../../server/src/run/config';
import { expectRefusal, Finding } from './target';

const SUBCOMMANDS: Record<string, () => Promise<{ run(argv: string[]): Promise<number> }>> = {
  inspect: () => import('../../../server/src/cli/inspect'),
  convert: () => import('../../../server/src/cli/convert'),
  validate: () => import('../../../server/src/cli/validate'),
  run: () => import('../../../server/src/cli/run'),
  matmul: () => import('../../../server/src/cli/matmul'),
  lsp: () => import('../../../server/src/cli/lsp'),
};
const PRODUCT = [CliError, ConvertError, FormatError, HubError, RunError];

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runCli(argv: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write;
  const err = process.stderr.write;
  process.stdout.write = ((s: string | Uint8Array) => {
    stdout += String(s);
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => {
    stderr += String(s);
    return true;
  }) as typeof process.stderr.write;
  let code: number;
  try {
    const sub = SUBCOMMANDS[argv[0]];
    if (!sub) code = await main(argv);
    else {
      try {
        code = await (await sub()).run(argv.slice(1));
      } catch (e) {
        // A usage error (status 2) prints the error on its first line and the usage after it, by design.
        if (!(e instanceof CliError && e.exitCode === 2 && e.message.split('\n')[0])) expectRefusal(e, PRODUCT);
        code = e instanceof CliError ? e.exitCode : 1;
        stderr += `apl-quant ${argv[0]}: ${(e as Error).message}\n`;
      }
    }
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
  if (![0, 1, 2, 3, 130].includes(code)) throw new Finding(`exit status ${code}`);
  // validate exits 1 for a manifest with errors (its diagnostics are the output); elsewhere 1 is a refusal.
  if (code === 1 && argv[0] !== 'validate') {
    const first = stderr.split('\n').find((l) => l.startsWith('apl-quant'));
    if (!first) throw new Finding(`failed without an 'apl-quant …' error line: ${stderr.slice(0, 500)}`);
  }
  return { code, stdout, stderr };
}
