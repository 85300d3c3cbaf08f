// Folder watchers for the files beside open manifests (NPZ, report): a change names the folder and the file (or
// none, when the platform cannot tell). Bounded in number; a folder that cannot be watched is skipped (its files
// are still re-checked, by stat, on every edit).
import { type FSWatcher, watch } from 'node:fs';

export class DirWatchers {
  private readonly watchers = new Map<string, FSWatcher>();

  constructor(
    private readonly onChange: (dir: string, name: string | undefined) => void,
    private readonly max = 256,
  ) {}

  watch(dir: string): void {
    if (this.watchers.has(dir) || this.watchers.size >= this.max) return;
    try {
      const w = watch(dir, { persistent: false }, (_event, name) =>
        this.onChange(dir, name ? String(name) : undefined),
      );
      w.on('error', () => {
        w.close();
        this.watchers.delete(dir);
      });
      this.watchers.set(dir, w);
    } catch {
      // Not watchable (gone, permissions, platform limit): the next edit re-checks by stat.
    }
  }

  close(): void {
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }
}
