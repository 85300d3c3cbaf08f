// Shared helpers for CLI subcommands: argument parsing and errors that print as one line.
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import pkg from '../../../package.json';

export const VERSION: string = pkg.version;

/** An error that the CLI prints as one line (no stack) with the given exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export interface ParsedArgs {
  positionals: string[];
  flags: Map<string, string | true>;
}

/**
 * Parses `--flag`, `--key value` and `--key=value`. `valued` lists the options that take a value; any other
 * `--x` is boolean. Unknown options are an error when `known` is given.
 */
export function parseArgs(argv: string[], valued: readonly string[], known?: readonly string[]): ParsedArgs {
  const positionals: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const key = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      if (known && !known.includes(key) && !valued.includes(key)) throw new CliError(`unknown option --${key}`, 2);
      if (valued.includes(key)) {
        const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
        if (v === undefined) throw new CliError(`--${key} needs a value`, 2);
        flags.set(key, v);
      } else {
        if (eq >= 0) throw new CliError(`--${key} takes no value`, 2);
        flags.set(key, true);
      }
    } else positionals.push(a);
  }
  return { positionals, flags };
}

/**
 * A .npy output named by `flag`, checked before any work: the right extension, not a folder, and a folder to write
 * it in (else a usage error, exit 2, rather than a failure after the work naming a temporary file).
 */
export function npyOutput(flag: string, path: string): string {
  if (!path.endsWith('.npy')) throw new CliError(`--${flag} must name a .npy file`, 2);
  const dir = dirname(resolve(path));
  if (existsSync(path) && statSync(path).isDirectory()) throw new CliError(`--${flag} ${path}: is a folder`, 2);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new CliError(`--${flag} ${path}: the folder ${dir} does not exist`, 2);
  }
  return path;
}
