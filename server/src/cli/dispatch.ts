// Runs one subcommand with the CLI's error handling: a CliError prints as one line with its exit code, any other
// error as one line with status 1 (its stack with APL_DEBUG). Shared by the dispatcher (server/src/cli.ts) and the
// convert-only bundle (server/src/cli-convert.ts).
import { CliError } from './common';

export type Subcommand = { run(argv: string[]): Promise<number> };

export async function runSubcommand(name: string, load: () => Promise<Subcommand>, argv: string[]): Promise<number> {
  try {
    const mod = await load();
    return await mod.run(argv);
  } catch (e) {
    if (e instanceof CliError) {
      process.stderr.write(`apl-quant ${name}: ${e.message}\n`);
      return e.exitCode;
    }
    const err = e as Error;
    process.stderr.write(`apl-quant ${name}: ${err?.message ?? String(e)}\n`);
    if (process.env.APL_DEBUG) process.stderr.write(`${err?.stack ?? ''}\n`);
    return 1;
  }
}

/** The CLI's own process: run `main` and set the exit code (an error escaping main prints as one line). */
export function runAsMain(main: (argv: string[]) => Promise<number>, argv: string[]): void {
  main(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`apl-quant: ${(e as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}
