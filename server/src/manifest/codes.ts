// Stable diagnostic codes of the manifest checks. Tests, quick fixes and users' tooling match on these; the
// wording of messages may change, the codes do not.

export const DiagnosticCodes = {
  /** JSON syntax error (also: nesting too deep, document too large to analyse). */
  syntax: 'apl.syntax',
  /** The manifest does not match schemas/manifest.schema.json. */
  schema: 'apl.schema',
  /** metadata.npz names a file that does not exist. */
  npzMissing: 'apl.npz-missing',
  /** The NPZ exists but cannot be read as a zip of .npy members. */
  npzUnreadable: 'apl.npz-unreadable',
  /** A member's CRC-32 in the NPZ differs from the manifest's checksum: the NPZ changed after the manifest was written. */
  npzChanged: 'apl.npz-changed',
  /** q / q_scales / q_zero_point names a member the NPZ does not have. */
  memberMissing: 'apl.member-missing',
  /** A member's shape disagrees with the weight's shape, bit width and group size. */
  shapeMismatch: 'apl.shape-mismatch',
  /** A member's dtype disagrees with the quantization (uint8 for q, scale_dtype for scales and zero points). */
  dtypeMismatch: 'apl.dtype-mismatch',
  /** bit_width differs from quantization.bits. */
  bitsMismatch: 'apl.bits-mismatch',
  /** Fields of quantization contradict each other (type, method, bits, group_size, null members). */
  quantizationMismatch: 'apl.quantization-mismatch',
  /** Two weights share a name. */
  duplicateName: 'apl.duplicate-name',
  /** Two weights refer to the same NPZ member. */
  duplicateMember: 'apl.duplicate-member',
  /** The model block disagrees with the weights (layers, hidden size, vocabulary, intermediate size). */
  modelMismatch: 'apl.model-mismatch',
  /** NPZ members that no weight refers to. */
  memberUnreferenced: 'apl.member-unreferenced',
  /** metadata.accuracy_report names a file that does not exist or is not a report. */
  reportMissing: 'apl.report-missing',
  /**
   * metadata.tokenizer, tokenizer_config or generation_config names a file that is missing, is not JSON, has a shape
   * the tokenizer cannot use, or defines more ids than model.vocab_size: `apl-quant run` refuses it.
   */
  sideFile: 'apl.side-file',
} as const;
export type DiagnosticCode = (typeof DiagnosticCodes)[keyof typeof DiagnosticCodes];

/** `Diagnostic.source` of every manifest diagnostic. */
export const DIAGNOSTIC_SOURCE = 'apl-manifest';

/** At most this many diagnostics per document; one more says how many were left out. */
export const MAX_DIAGNOSTICS = 1000;
/** Deeper JSON is reported, not parsed (parsers recurse; a hostile file must not overflow the stack). */
export const MAX_DEPTH = 256;
