// Runs a TypeScript entry point (the CLI, or a test's wrapper of it) in a child node under tsx, from the repository
// root, collecting its output; it is killed, and the promise rejected, after two minutes.
import { spawn } from 'node:child_process';
import { join } from 'node:path';

export interface CliRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const root = join(__dirname, '../..');

/** `node --import tsx ...argv` with exactly `env`; `what` names the command in the timeout's message. */
export function spawnTs(argv: string[], env: NodeJS.ProcessEnv, what: string): Promise<CliRun> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...argv], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} timed out\n${stderr}`));
    }, 120_000);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
  });
}
