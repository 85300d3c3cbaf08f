// `apl-quant convert` with faults injected through the converter's test seam (ConvertHooks), for cli.test.ts:
// APL_TEST_FAULT = `after-tensor:N[:SIGNAL]` (this process is sent SIGNAL, default SIGKILL, once N tensors are
// written), `during-write[:SIGNAL]` (the same once the temporaries are complete, before the renames), or
// `enospc-after-tensor:N` (writing fails with ENOSPC after N tensors). A killed process is what a user's kill does;
// the product code never signals itself. Exit codes and the error line as bin/apl-quant prints them.
import { CliError } from '../../../server/src/cli/common';
import { run } from '../../../server/src/cli/convert';
import type { ConvertHooks } from '../../../server/src/convert/options';

const [point, a, b] = (process.env.APL_TEST_FAULT ?? '').split(':');
const n = Number(a);
const signalName = ((point === 'during-write' ? a : b) || 'SIGKILL') as NodeJS.Signals;

async function kill(signal?: AbortSignal): Promise<void> {
  process.kill(process.pid, signalName);
  // Let the CLI's signal handler run (it aborts the run), so the converter notices it like any other cancellation.
  for (let i = 0; i < 50 && !signal?.aborted; i++) await new Promise((r) => setTimeout(r, 10));
}

const hooks: ConvertHooks = {
  afterTensor: async (index, signal) => {
    if (index + 1 !== n) return;
    if (point === 'after-tensor') await kill(signal);
    if (point === 'enospc-after-tensor') throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
  },
  beforeCommit: async (signal) => {
    if (point === 'during-write') await kill(signal);
  },
};

run(process.argv.slice(2), hooks).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`apl-quant convert: ${(e as Error).message}\n`);
    process.exitCode = e instanceof CliError ? e.exitCode : 1;
  },
);
