// `apl-quant convert` as a bundle of its own (dist/cli-convert.js, issue 13): bin/apl-quant.js loads it for
// `convert`, so a conversion does not first wait while V8 compiles the other commands (the language server, run,
// eval, inspect: about two thirds of dist/cli.js). The same subcommand, errors and exit codes as through
// server/src/cli.ts, which stays the entry for every command (and the one the VS Code task runs).
import { run } from './cli/convert';
import { runAsMain, runSubcommand } from './cli/dispatch';

export function main(argv: string[]): Promise<number> {
  return runSubcommand('convert', async () => ({ run }), argv);
}

if (require.main === module || /apl-quant(\.js)?$/.test(process.argv[1] ?? '')) {
  // argv: node, bin/apl-quant.js, convert, ...its arguments
  runAsMain(main, process.argv.slice(process.argv[2] === 'convert' ? 3 : 2));
}
