// `apl-quant eval …` as a child process from the sources (tsx), for the eval command's tests.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export const root = join(__dirname, '../../..');

export function evalCli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'server/src/cli.ts'), 'eval', ...args], {
    cwd: root,
    env: { ...process.env, APL_CLI_MAIN: '1' },
    encoding: 'utf8',
    timeout: 240_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
