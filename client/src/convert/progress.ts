// Turns the converter's `--json-progress` output into events and progress figures. Pure: no `vscode`, no I/O;
// unit-tested. The event types live in server/src/protocol.ts.

import { formatBitsPerWeight, formatBytes } from '../../../server/src/common/format';
import { CommandIds, type ConvertEvent, type ConvertStage } from '../../../server/src/protocol';

const EVENT_TYPES = new Set(['start', 'stage', 'progress', 'log', 'result', 'error']);

/** One stdout line → a ConvertEvent, or undefined when the line is not one (plain text is shown as is). */
export function parseEventLine(line: string): ConvertEvent | undefined {
  const t = line.trim();
  if (!t.startsWith('{')) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch {
    return undefined;
  }
  if (!v || typeof v !== 'object' || !EVENT_TYPES.has((v as { type?: unknown }).type as string)) return undefined;
  return v as ConvertEvent;
}

/** Splits a byte stream into lines, keeping the unfinished tail for the next chunk. Bounded: 1 MB a line. */
export class LineSplitter {
  private tail = '';
  push(chunk: string): string[] {
    const parts = (this.tail + chunk).split(/\r?\n/);
    this.tail = parts.pop() ?? '';
    if (this.tail.length > 1 << 20) {
      parts.push(this.tail);
      this.tail = '';
    }
    return parts;
  }
  flush(): string[] {
    const t = this.tail;
    this.tail = '';
    return t ? [t] : [];
  }
}

/** Share of the whole run each stage covers, in percent, in order. */
const STAGE_SPAN: Record<ConvertStage, [number, number]> = {
  resolve: [0, 2],
  download: [2, 40],
  quantize: [40, 94],
  write: [94, 97],
  validate: [97, 100],
  // convert --eval: after the outputs are written; the chunks' progress (bytesDone/bytesTotal count chunks).
  evaluate: [97, 100],
  done: [100, 100],
};

export interface ProgressUpdate {
  /** Overall percent 0..100 (never decreases). */
  percent: number;
  /** What a progress notification says, e.g. "quantize 3/12 · 45% · 1.2 MB / 2.7 MB". */
  message: string;
}

/** Folds events into an overall, monotonic percent and a one-line message. */
export class ProgressTracker {
  percent = 0;
  stage: ConvertStage = 'resolve';
  update(e: ConvertEvent): ProgressUpdate | undefined {
    if (e.type === 'stage') {
      this.stage = e.stage;
      this.bump(STAGE_SPAN[e.stage][0]);
      return { percent: this.percent, message: e.message ? `${e.stage}: ${e.message}` : e.stage };
    }
    if (e.type === 'progress') {
      this.stage = e.stage;
      const [lo, hi] = STAGE_SPAN[e.stage];
      const frac = e.bytesTotal > 0 ? Math.min(1, Math.max(0, e.bytesDone / e.bytesTotal)) : 0;
      this.bump(lo + (hi - lo) * frac);
      const parts: string[] = [e.stage];
      if (e.tensor !== undefined && e.tensors) parts[0] += ` ${e.tensor + 1}/${e.tensors}`;
      parts.push(`${Math.round(frac * 100)}%`);
      if (e.bytesTotal > 0) parts.push(`${formatBytes(e.bytesDone)} / ${formatBytes(e.bytesTotal)}`);
      return { percent: this.percent, message: parts.join(' · ') };
    }
    if (e.type === 'result') {
      this.bump(100);
      return { percent: 100, message: 'done' };
    }
    return undefined;
  }
  private bump(p: number): void {
    if (p > this.percent) this.percent = Math.min(100, p);
  }
}

/** The terminal line for an event (CRLF for a pseudoterminal), or undefined for events shown only as progress. */
export function describeEvent(e: ConvertEvent): string | undefined {
  switch (e.type) {
    case 'start':
      return `Converting ${e.model} to ${e.bits}-bit (backend ${e.backend}, apl-quant ${e.version}) → ${e.out}`;
    case 'stage':
      return `== ${e.stage}${e.message ? `: ${e.message}` : ''}`;
    case 'progress':
      return undefined;
    case 'log':
      return `${e.level === 'info' ? '' : `${e.level}: `}${e.message}`;
    case 'result':
      return [
        `Done in ${e.seconds.toFixed(1)} s: ${formatBytes(e.sourceBytes)} → ${formatBytes(e.outputBytes)}`,
        `(${formatBitsPerWeight(e.bitsPerWeight)} bits/weight), accuracy ${e.pass ? 'PASS' : 'FAIL'}`,
        `\r\n  ${e.npz}\r\n  ${e.manifest}\r\n  ${e.report}`,
      ].join(' ');
    case 'error':
      return `error (${e.code}): ${e.message}`;
  }
}

/** The fix a failure's code suggests: the label of an action button and the command it runs. */
export function fixForError(code: string): { label: string; command: string } | undefined {
  if (code === 'auth') return { label: 'Set Hugging Face Token', command: CommandIds.setHfToken };
  return undefined;
}

/** Masks a token for display: never more than its first 3 and last 2 characters. */
export function maskToken(token: string): string {
  if (token.length <= 8) return '•'.repeat(token.length);
  return `${token.slice(0, 3)}…${token.slice(-2)}`;
}
