// Types of prep.mjs for the TypeScript tests that import it.
export function prep(src: string): string;
export function codeMask(s: string): Uint8Array;
