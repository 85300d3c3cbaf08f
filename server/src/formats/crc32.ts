// CRC-32 (the zip polynomial). Uses the addon's PCLMULQDQ folding where it runs (native/src/crc32.h), else
// zlib.crc32 where Node has it (≥ 20.15 / 22.2), else a slicing-by-8 table.
import * as zlib from 'node:zlib';
import { crc32Native } from '../../../native/index';

const native = (zlib as unknown as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

let tables: Uint32Array[] | undefined;
function makeTables(): Uint32Array[] {
  const t: Uint32Array[] = [];
  for (let k = 0; k < 8; k++) t.push(new Uint32Array(256));
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[0][n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[0][n];
    for (let k = 1; k < 8; k++) {
      c = t[0][c & 0xff] ^ (c >>> 8);
      t[k][n] = c >>> 0;
    }
  }
  return t;
}

/** Portable CRC-32, continuing from `crc` (0 to start). Exported for tests. */
export function crc32Js(data: Uint8Array, crc = 0): number {
  tables ??= makeTables();
  const [t0, t1, t2, t3, t4, t5, t6, t7] = tables;
  let c = ~crc >>> 0;
  let i = 0;
  const n = data.length;
  for (; i + 8 <= n; i += 8) {
    c ^= data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    c =
      t7[c & 0xff] ^
      t6[(c >>> 8) & 0xff] ^
      t5[(c >>> 16) & 0xff] ^
      t4[c >>> 24] ^
      t3[data[i + 4]] ^
      t2[data[i + 5]] ^
      t1[data[i + 6]] ^
      t0[data[i + 7]];
  }
  for (; i < n; i++) c = t0[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

let fast: boolean | undefined; // false once the addon's CRC is known to be missing
/** CRC-32 of `data`, continuing from `crc` (0 to start). */
export function crc32(data: Uint8Array, crc = 0): number {
  if (fast !== false) {
    const c = crc32Native(data, crc);
    if (c !== undefined) return c;
    fast = false; // no addon, or a CPU without PCLMULQDQ: asked once
  }
  return native ? native(data, crc) >>> 0 : crc32Js(data, crc);
}
