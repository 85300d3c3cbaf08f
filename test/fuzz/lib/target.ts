// What a fuzz target is, and the one property every target checks: an input is accepted, or refused with the
// product's one-line error (a FormatError, HubError, CliError, ConvertError … whose message is one line and names
// what is at fault). Anything else (a TypeError, a RangeError, a multi-line message, an error of the wrong class)
// is a finding. The worker adds the other halves of the property: no run over 2 s, no run that grows the peak
// memory by more than 256 MB, no crash of the process (the runner watches for that).
import type fc from 'fast-check';

export interface Target<T> {
  name: string;
  /** One line: which input surface and which entry points. */
  describe: string;
  /** Made once per worker (fixtures read, temp folders made, servers started). */
  setup?(): Promise<void>;
  teardown?(): Promise<void>;
  /** Inputs: seeds from the fixtures, mutated field by field and byte by byte. */
  arbitrary(): fc.Arbitrary<T>;
  /** Runs one input through the product; resolves when accepted or properly refused, throws Finding otherwise. */
  check(input: T): Promise<void>;
  /** The input as text for a finding (a regression test is made from it). */
  serialize(input: T): string;
  /** Per-input time limit in ms (default 2000). */
  timeoutMs?: number;
}

/** A violation of the property (distinct from the product's own errors, which are accepted refusals). */
export class Finding extends Error {
  override readonly name = 'Finding';
}

type ErrorClass = abstract new (...args: never[]) => Error;

/**
 * Accepts `e` when it is one of the product's error classes with a non-empty one-line message; otherwise throws a
 * Finding that carries the original error's stack.
 */
export function expectRefusal(e: unknown, classes: readonly ErrorClass[], mustMention?: string): void {
  if (e instanceof Finding) throw e;
  const ok = classes.some((c) => e instanceof c);
  const msg = (e as Error)?.message ?? String(e);
  if (!ok) {
    throw new Finding(
      `uncaught ${(e as Error)?.constructor?.name ?? typeof e}: ${msg}\n${(e as Error)?.stack ?? ''}`.trim(),
    );
  }
  if (!msg || /[\r\n]/.test(msg)) throw new Finding(`refusal is not one line: ${JSON.stringify(msg)}`);
  if (mustMention && !msg.includes(mustMention)) {
    throw new Finding(`refusal does not name ${mustMention}: ${JSON.stringify(msg)}`);
  }
}

/** Runs `f`; an error is checked with expectRefusal. Returns true when `f` accepted the input. */
export async function acceptedOrRefused(
  f: () => Promise<unknown> | unknown,
  classes: readonly ErrorClass[],
  mustMention?: string,
): Promise<boolean> {
  try {
    await f();
    return true;
  } catch (e) {
    expectRefusal(e, classes, mustMention);
    return false;
  }
}

export const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
