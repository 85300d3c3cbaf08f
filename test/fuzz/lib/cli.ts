// Runs `apl-quant` in this process (the real main(), output captured) and checks the CLI's side of the property:
// an exit status the CLI documents, errors on one line, and no stack trace. With APL_DEBUG set, the CLI prints
// the stack of an unexpected error (one that is not the product's own): that stack is the finding.
import { main } from '../../../server/src/cli';
import { Finding } from './target';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

const PRODUCT_ERRORS = /^(FormatError|HubError|ConvertError|CliError)\b/;

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
  process.env.APL_DEBUG = '1';
  let code: number;
  try {
    code = await main(argv);
  } catch (e) {
    throw new Finding(`main() threw instead of returning a status: ${(e as Error)?.stack ?? e}`);
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
    delete process.env.APL_DEBUG;
  }
  const stack = /^(\w*Error)\b[^\n]*\n\s+at /m.exec(stderr);
  if (stack && !PRODUCT_ERRORS.test(stack[1])) throw new Finding(`unexpected ${stack[1]}: ${stderr.slice(0, 3000)}`);
  if (![0, 1, 2, 3].includes(code)) throw new Finding(`exit status ${code}`);
  // validate exits 1 for a manifest with errors (its diagnostics are the output); elsewhere 1 is a refusal.
  if (code === 1 && argv[0] !== 'validate') {
    const first = stderr.split('\n').find((l) => l.startsWith('apl-quant'));
    if (!first) throw new Finding(`failed without an 'apl-quant …' error line: ${stderr.slice(0, 500)}`);
  }
  return { code, stdout, stderr };
}
