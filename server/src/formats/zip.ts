// The zip structures an .npz is made of (APPNOTE 6.3): record signatures, the ZIP64 escape values, and the checks
// the reader and the writer share. Only what numpy's archives use: stored and deflated members, ZIP64.

export const SIG_LOCAL = 0x04034b50;
export const SIG_CENTRAL = 0x02014b50;
export const SIG_EOCD = 0x06054b50;
export const SIG_EOCD64 = 0x06064b50;
export const SIG_LOC64 = 0x07064b50;
/** A 32-bit size or offset field holding this means "see the ZIP64 extra field / record". */
export const U32_MAX = 0xffffffff;
export const U16_MAX = 0xffff;

/** A little-endian 64-bit field as a number; `fail` when it is beyond 2^53. */
export function u64(buf: Buffer, off: number, fail: (why: string) => never, what: string): number {
  const v = buf.readBigUInt64LE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} ${v} is too large`);
  return Number(v);
}

/** True when a member name could escape a target folder if extracted (absolute, `..`, drive letters, NUL). */
export function isUnsafeMemberName(name: string): boolean {
  if (name.length === 0 || name.includes('\0')) return true;
  if (name.startsWith('/') || name.startsWith('\\') || /^[A-Za-z]:/.test(name)) return true;
  return name.split(/[/\\]/).some((p) => p === '..');
}
