// Long work of the language server (parsing and validating a large manifest) run a slice at a time: about SLICE_MS
// of steps (manifest/steps.ts), then a turn of the event loop (setImmediate), in which the connection reads what
// arrived and answers the next queued message. So a request waits behind at most one slice of someone else's work,
// whatever the document's size. Between slices each waiter is asked whether it still wants the result (a
// validation of a version that an edit superseded does not); when none does, the work pauses (and resumes where it
// stopped if someone asks again). Without a waiter nothing runs; `finish()` runs the rest at once.
import { performance } from 'node:perf_hooks';
import type { Steps } from '../manifest';

/** Work per slice before the event loop gets a turn. */
export const SLICE_MS = 4;

/** Slices run so far and the longest (ms: wall time, and the process's CPU time, which the neighbours' load does
 * not stretch), for the load test (test/fuzz/lsp-load.ts). */
export const sliceStats = { slices: 0, longestMs: 0, longestCpuMs: 0 };

export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface Waiter<T> {
  alive: () => boolean;
  resolve: (r: { value: T } | undefined) => void;
}

export class SlicedTask<T> {
  private result: { value: T } | undefined;
  private readonly waiters = new Set<Waiter<T>>();
  private running = false;

  constructor(
    private readonly steps: Steps<T>,
    private readonly sliceMs = SLICE_MS,
  ) {}

  get done(): boolean {
    return this.result !== undefined;
  }

  /** The result once the work is done in slices; undefined when `alive()` turned false first (checked between slices). */
  wait(alive: () => boolean = () => true): Promise<{ value: T } | undefined> {
    if (this.result) return Promise.resolve(this.result);
    return new Promise((resolve) => {
      this.waiters.add({ alive, resolve });
      if (!this.running) {
        this.running = true;
        void this.loop();
      }
    });
  }

  /** Runs the rest of the work now (synchronously) and returns the result. */
  finish(): T {
    while (!this.result) this.step();
    this.settle();
    return this.result.value;
  }

  private step(): void {
    const r = this.steps.next();
    if (r.done) this.result = { value: r.value };
  }

  private async loop(): Promise<void> {
    while (!this.result) {
      for (const w of this.waiters)
        if (!w.alive()) {
          this.waiters.delete(w);
          w.resolve(undefined);
        }
      if (this.waiters.size === 0) break; // paused: nobody wants it now
      const cpu = process.cpuUsage();
      const start = performance.now();
      const end = start + this.sliceMs;
      do this.step();
      while (!this.result && performance.now() < end);
      const ms = performance.now() - start;
      const used = process.cpuUsage(cpu);
      sliceStats.slices++;
      sliceStats.longestMs = Math.max(sliceStats.longestMs, ms);
      sliceStats.longestCpuMs = Math.max(sliceStats.longestCpuMs, (used.user + used.system) / 1000);
      if (!this.result) await nextTurn();
    }
    this.running = false;
    this.settle();
  }

  private settle(): void {
    if (!this.result) return;
    for (const w of this.waiters) w.resolve(this.result);
    this.waiters.clear();
  }
}
