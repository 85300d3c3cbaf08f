// apl-quant: the command line. Each subcommand lives in server/src/cli/<name>.ts and exports
// `run(argv: string[]): Promise<number>` (the exit code). This file only dispatches.
import { VERSION } from './cli/common';
import { runAsMain, runSubcommand } from './cli/dispatch';

type Sub = { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> };

const commands: Record<string, Sub> = {
  inspect: { summary: 'list the tensors of a .npz, .npy or .safetensors file', load: () => import('./cli/inspect') },
  convert: { summary: 'download and quantize a model to NPZ + manifest', load: () => import('./cli/convert') },
  eval: {
    summary: 'end-to-end accuracy (PPL, KLD, same top) against the float model',
    load: () => import('./cli/eval'),
  },
  validate: { summary: 'check a manifest against its schema and its NPZ', load: () => import('./cli/validate') },
  run: { summary: 'generate text with a converted model (--json for events)', load: () => import('./cli/run') },
  matmul: { summary: 'y = x · Ŵᵀ with one weight of a converted model', load: () => import('./cli/matmul') },
  lsp: { summary: 'start the manifest language server (--stdio)', load: () => import('./cli/lsp') },
};

function usage(): string {
  const lines = [`apl-quant ${VERSION}`, '', 'usage: apl-quant <command> [options]', '', 'commands:'];
  for (const [name, c] of Object.entries(commands)) lines.push(`  ${name.padEnd(10)} ${c.summary}`);
  lines.push('', 'Run `apl-quant <command> --help` for its options.');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    // No arguments is a request for help, not a mistake: the usage and status 0.
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const sub = commands[name];
  if (!sub) {
    process.stderr.write(`apl-quant: unknown command '${name}'\n\n${usage()}\n`);
    return 2;
  }
  return runSubcommand(name, sub.load, rest);
}

if (require.main === module || process.env.APL_CLI_MAIN === '1' || /apl-quant(\.js)?$/.test(process.argv[1] ?? '')) {
  runAsMain(main, process.argv.slice(2));
}
