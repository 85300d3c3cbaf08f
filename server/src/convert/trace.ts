// A conversion's timeline, for profiling (bench/convert.bench.ts, issue 13): with APL_CONVERT_TRACE=<file> every
// stage's span (reading a chunk, the kernel, writing q, a kept tensor, the report...) is recorded with its start and
// end in ms since the process started (performance.now()), and written to the file as JSON when the conversion
// ends. The spans show what overlaps; the sums per stage and the wall say where the time goes. Off (the default)
// it costs one check per span.
import { writeFileSync } from 'node:fs';

export interface Span {
  /** The stage: read, kernel, write, keep, open, report... */
  s: string;
  /** Start and end, ms since the process started. */
  t0: number;
  t1: number;
  /** What it worked on (a tensor name), if any. */
  n?: string;
}

const file = process.env.APL_CONVERT_TRACE;
const spans: Span[] = [];

/** True when the conversion is traced. */
export const tracing = !!file;

/** Records a span that started at t0 (a performance.now() taken before the work) and ends now. */
export function span(s: string, t0: number, n?: string): void {
  if (file) spans.push({ s, t0, t1: performance.now(), n });
}

/** Times an async step as one span. */
export async function traced<T>(s: string, n: string | undefined, f: () => Promise<T>): Promise<T> {
  if (!file) return f();
  const t0 = performance.now();
  try {
    return await f();
  } finally {
    span(s, t0, n);
  }
}

/** Writes the spans recorded so far (and clears them); a no-op when not tracing. Profiling never fails a run. */
export function flushTrace(): void {
  if (!file) return;
  try {
    writeFileSync(file, JSON.stringify({ spans: spans.splice(0), end: performance.now() }));
  } catch {
    // an unwritable trace file loses the trace, not the conversion
  }
}
