// The quick end-to-end check's defaults, shared by `convert --eval` and "APL: Evaluate Model…" (pure constants, so
// the extension can import them without the engine).

/** 16 chunks of 256 tokens (2,032 tokens scored), the model's context when shorter. */
export const DEFAULT_EVAL_CTX = 256;
export const DEFAULT_EVAL_CHUNKS = 16;
/** The held-out text a model folder may ship (test/fixtures/brown-tiny does), used when no text is given. */
export const HELDOUT_TEXT = 'heldout.txt';
