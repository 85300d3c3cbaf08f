// Work that can stop between steps. A long pass over a manifest (parsing, schema validation, cross-checks) is
// written as a generator that yields after each small unit of work (a few hundred tokens, one weight, one
// diagnostic placed); it does nothing by itself at a yield. Callers either drain it at once (the CLI, the pure
// functions' plain versions) or run it a few milliseconds at a time between turns of the event loop (the language
// server: server/src/lsp/slices.ts), so that a request never waits behind a whole validation.

/** A computation of a T in steps: `next()` runs one step; the last returns the T. */
export type Steps<T> = Generator<void, T, undefined>;

/** Runs all the remaining steps now and returns the result. */
export function drain<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}
