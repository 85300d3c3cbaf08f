import { CliError } from './common';

export async function run(_argv: string[]): Promise<number> {
  throw new CliError('convert: not implemented yet', 1);
}
