// Progress for the Hub client: a throttle so a multi-GB download does not flood a UI with an update per chunk.
export interface HubProgress {
  /** The file being fetched (relative path in the repo). */
  file: string;
  /** Bytes of all selected files present so far (cached files count as done), and their total. */
  bytesDone: number;
  bytesTotal: number;
  filesDone: number;
  filesTotal: number;
  /** Bytes of `file` present so far, and its size. */
  fileBytesDone: number;
  fileBytesTotal: number;
}

/**
 * Calls onProgress at most once per `intervalMs` (a file's first and last update always, the latest pending one
 * after the interval), so a multi-GB download does not flood a UI with an update per network chunk. Errors thrown
 * by the callback are ignored: they must not look like network failures.
 */
export function throttledProgress(cb: ((p: HubProgress) => void) | undefined, intervalMs: number) {
  let last = 0;
  let lastSent: HubProgress | undefined;
  let pending: HubProgress | undefined;
  let timer: NodeJS.Timeout | undefined;
  const call = (p: HubProgress) => {
    last = Date.now();
    const same =
      lastSent?.file === p.file && lastSent.fileBytesDone === p.fileBytesDone && lastSent.filesDone === p.filesDone;
    lastSent = p;
    if (same) return;
    try {
      cb?.(p);
    } catch {
      // ignored, see above
    }
  };
  return {
    emit(p: HubProgress, force: boolean): void {
      if (!cb) return;
      const now = Date.now();
      if (force || now - last >= intervalMs) {
        clearTimeout(timer);
        timer = undefined;
        pending = undefined;
        call(p);
        return;
      }
      pending = p;
      timer ??= setTimeout(
        () => {
          timer = undefined;
          const q = pending;
          pending = undefined;
          if (q) call(q);
        },
        intervalMs - (now - last),
      );
    },
    stop(): void {
      clearTimeout(timer);
      timer = undefined;
    },
  };
}
