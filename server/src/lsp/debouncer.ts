// Runs a task per key once its keys have been quiet: keys scheduled together are run one after another when no
// schedule came for `quietMs` (0: on the next setImmediate, i.e. once per turn of the event loop), and at the latest
// `maxWaitMs` after the first schedule, so steady typing still gets results. A key scheduled again meanwhile runs
// once. A task that throws is reported, never fatal.
// Why a quiet period: the LSP connection handles one message per turn of the event loop, so a burst of didChange
// notifications (a paste, fast typing, an editor replaying edits) would otherwise validate every intermediate
// version, and a hover sent after the burst waited behind all those validations (found by test/fuzz/lsp-load.ts).
export class Debouncer {
  private readonly pending = new Set<string>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private immediate = false;
  private firstAt = 0;

  constructor(
    private readonly run: (key: string) => Promise<void>,
    private readonly onError: (key: string, e: unknown) => void,
    private readonly quietMs = 0,
    private readonly maxWaitMs = 1000,
  ) {}

  schedule(key: string): void {
    this.pending.add(key);
    if (this.quietMs <= 0) {
      if (this.immediate) return;
      this.immediate = true;
      setImmediate(() => {
        this.immediate = false;
        void this.flush();
      });
      return;
    }
    const now = Date.now();
    if (this.timer === undefined) this.firstAt = now;
    else clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(this.quietMs, this.firstAt + this.maxWaitMs - now));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, wait);
  }

  cancel(key: string): void {
    this.pending.delete(key);
  }

  private async flush(): Promise<void> {
    const keys = [...this.pending];
    this.pending.clear();
    for (const k of keys) {
      try {
        await this.run(k);
      } catch (e) {
        this.onError(k, e);
      }
    }
  }
}
