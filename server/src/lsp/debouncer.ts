// Runs a task per key at most once per turn of the event loop: keys scheduled together are run one after another
// on the next setImmediate; a key scheduled again meanwhile runs once. A task that throws is reported, never fatal.
export class Debouncer {
  private readonly pending = new Set<string>();
  private flushScheduled = false;

  constructor(
    private readonly run: (key: string) => Promise<void>,
    private readonly onError: (key: string, e: unknown) => void,
  ) {}

  schedule(key: string): void {
    this.pending.add(key);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(async () => {
      this.flushScheduled = false;
      const keys = [...this.pending];
      this.pending.clear();
      for (const k of keys) {
        try {
          await this.run(k);
        } catch (e) {
          this.onError(k, e);
        }
      }
    });
  }

  cancel(key: string): void {
    this.pending.delete(key);
  }
}
