// One fuzz target in its own process: `node --import tsx test/fuzz/worker.ts <target> <seconds> <seed> <out.json>`.
// Runs fast-check over the target's arbitrary until the time is up, checking per input: the target's property,
// a 2 s limit of CPU time (30 s of wall time) and a 256 MB bound on the growth of peak memory. A failing input is shrunk (minimised) by fast-check;
// the run then goes on with the next seed, so distinct findings are counted. Before each input its serialized form
// goes to <out.json>.current, so the runner can name the input when the process hangs or dies.
import { writeFileSync } from 'node:fs';
import { resourceUsage } from 'node:process';
import fc from 'fast-check';
import { Finding, type Target } from './lib/target';
import { TARGETS } from './targets';

const [name, secondsArg, seedArg, out] = process.argv.slice(2);
const MEMORY_LIMIT = 256 * 1024 * 1024;
const MAX_FINDINGS = 5;

interface FindingRecord {
  kind: string;
  message: string;
  input: string;
  seed: number;
  path?: string;
}

async function main(): Promise<void> {
  const load = TARGETS[name];
  if (!load) throw new Error(`unknown fuzz target '${name}'`);
  const target = (await load()) as Target<unknown>;
  const deadline = Date.now() + Number(secondsArg) * 1000;
  let seed = Number(seedArg);
  const current = `${out}.current`;
  await target.setup?.();
  const limit = target.timeoutMs ?? 2000;
  // An answer that never comes (a promise that never settles) spends no CPU: caught by wall time, with room for a
  // worker starved of CPU by its neighbours.
  const wallLimit = Math.max(30_000, 10 * limit);
  let inputs = 0;
  let slowest = 0;
  let slowestInput = '';
  const findings: FindingRecord[] = [];
  const signatures = new Set<string>();
  const timings: number[] = [];
  const prop = fc.asyncProperty(target.arbitrary(), async (x) => {
    inputs++;
    const text = target.serialize(x);
    writeFileSync(current, text);
    const rssBefore = process.memoryUsage.rss();
    const cpu0 = process.cpuUsage();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        target.check(x),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Finding(`hang: no answer within ${wallLimit} ms`)), wallLimit);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
    // CPU time, not wall time: under `nice -n 19` on a shared machine a worker may wait seconds for a core, which
    // is no finding; an input that really loops burns CPU. (A wait that never ends is caught by the wall limit.)
    const used = process.cpuUsage(cpu0);
    const ms = (used.user + used.system) / 1000;
    if (timings.length < 100_000) timings.push(ms);
    if (ms > slowest) {
      slowest = ms;
      slowestInput = text.length > 2000 ? `${text.slice(0, 2000)}…` : text;
    }
    if (ms > limit) throw new Finding(`hang: took ${ms.toFixed(0)} ms (limit ${limit} ms)`);
    const peak = resourceUsage().maxRSS * 1024;
    if (peak - rssBefore > MEMORY_LIMIT) {
      throw new Finding(`memory: peak RSS grew by ${((peak - rssBefore) / 2 ** 20).toFixed(0)} MB on one input`);
    }
  });
  while (Date.now() < deadline && findings.length < MAX_FINDINGS) {
    const details = await fc.check(prop, {
      seed,
      numRuns: Number.MAX_SAFE_INTEGER,
      interruptAfterTimeLimit: Math.max(1, deadline - Date.now()),
      markInterruptAsFailure: false,
      endOnFailure: false,
    });
    if (details.failed && details.counterexample) {
      const err = details.errorInstance as Error | undefined;
      const message = err?.message ?? String(details.errorInstance);
      // Same bug, same signature: the message's first words, without numbers, quotes or parser excerpts.
      const sig = message
        .split(/[\n(]/)[0]
        .slice(0, 80)
        .replace(/\d+/g, 'N')
        .replace(/'[^']*'/g, "'…'");
      if (!signatures.has(sig)) {
        signatures.add(sig);
        findings.push({
          kind: err instanceof Finding ? 'property' : 'exception',
          message: message.slice(0, 4000),
          input: target.serialize(details.counterexample[0]),
          seed,
          path: details.counterexamplePath ?? undefined,
        });
      }
    }
    seed++;
  }
  await target.teardown?.();
  timings.sort((a, b) => a - b);
  const q = (p: number) => (timings.length ? timings[Math.min(timings.length - 1, Math.floor(p * timings.length))] : 0);
  writeFileSync(
    out,
    JSON.stringify({
      target: name,
      inputs,
      findings,
      slowestMs: slowest,
      slowestInput,
      p50Ms: q(0.5),
      p99Ms: q(0.99),
      peakRssMB: Math.round(resourceUsage().maxRSS / 1024),
    }),
  );
  // Targets may leave sockets or timers of the product behind; the worker's job is done.
  process.exit(0);
}

main().catch((e) => {
  writeFileSync(
    out,
    JSON.stringify({
      target: name,
      inputs: 0,
      findings: [{ kind: 'harness', message: (e as Error)?.stack ?? String(e), input: '', seed: Number(seedArg) }],
    }),
  );
  process.exit(1);
});
