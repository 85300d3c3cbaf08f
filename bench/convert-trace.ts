// The convert benchmark's timeline profile: one convert run with APL_CONVERT_TRACE (server/src/convert/trace.ts)
// records every stage's spans; summed here per stage as busy time (the union of its spans, so a stage's own
// overlapping spans count once) beside the wall. Stages that overlap add up to more than the wall; what runs alone
// shows as the start (process start, modules, addon), the gaps where the kernel waits, and the tail (after the last
// kernel call: the last writes, closing the NPZ, the report and the renames).
import { readFileSync } from 'node:fs';

export interface TraceSummary {
  /** ms from process start to the end of the conversion. */
  end: number;
  /** Busy ms per stage (union of its spans). */
  busy: Record<string, number>;
  /** ms from process start until the conversion began (process start, modules, addon load, arguments). */
  start: number;
  /** ms between the first kernel call's start and the last one's end when no kernel call ran. */
  kernelIdle: number;
  /** ms from the last kernel call's end to the end. */
  tail: number;
}

interface Span {
  s: string;
  t0: number;
  t1: number;
}

function union(spans: Span[]): number {
  const xs = spans.map((x) => [x.t0, x.t1]).sort((a, b) => a[0] - b[0]);
  let sum = 0;
  let c0 = Number.NaN;
  let c1 = Number.NaN;
  for (const [a0, a1] of xs) {
    if (!(a0 <= c1)) {
      if (c1 > c0) sum += c1 - c0;
      c0 = a0;
      c1 = a1;
    } else c1 = Math.max(c1, a1);
  }
  if (c1 > c0) sum += c1 - c0;
  return sum;
}

export function summarise(file: string): TraceSummary {
  const { spans, end } = JSON.parse(readFileSync(file, 'utf8')) as { spans: Span[]; end: number };
  const by = new Map<string, Span[]>();
  for (const s of spans) by.set(s.s, [...(by.get(s.s) ?? []), s]);
  const busy: Record<string, number> = {};
  for (const [k, xs] of by) busy[k] = union(xs);
  const kernels = by.get('kernel') ?? [];
  const k0 = Math.min(...kernels.map((x) => x.t0));
  const k1 = Math.max(...kernels.map((x) => x.t1));
  return {
    end,
    busy,
    start: by.get('start')?.[0]?.t1 ?? 0,
    kernelIdle: kernels.length ? k1 - k0 - (busy.kernel ?? 0) : 0,
    tail: kernels.length ? end - k1 : 0,
  };
}

/** Lines for the bench's output. */
export function describe(t: TraceSummary): string[] {
  const ms = (x: number) => `${(x / 1000).toFixed(3)} s`;
  const order = ['read', 'kernel', 'write', 'keep', 'open', 'close', 'report'];
  const parts = order.filter((k) => t.busy[k] !== undefined).map((k) => `${k} ${ms(t.busy[k])}`);
  const sum = order.reduce((a, k) => a + (t.busy[k] ?? 0), 0);
  return [
    `  wall ${ms(t.end)}: start (process, modules, addon) ${ms(t.start)}; busy per stage: ${parts.join(', ')}`,
    `  stages' busy time summed ${ms(sum)} = ${(sum / Math.max(1, t.end - t.start)).toFixed(2)}× the wall after the start (> 1: they overlap); kernel idle between its first and last call ${ms(t.kernelIdle)}; tail after the last kernel call ${ms(t.tail)}`,
  ];
}
