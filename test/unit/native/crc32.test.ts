// The addon's CRC-32 (native/src/crc32.cc, PCLMULQDQ folding) against the portable table (crc32Js) and zlib:
// every length 0..300 at unaligned offsets (the 16-byte blocks, the 64-byte folds and the byte tail), chained
// calls, a 3 MiB buffer; and formats/crc32.ts uses it where it runs.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import * as zlib from 'node:zlib';
import { crc32Native, engineInfo } from '../../../native/index';
import { crc32, crc32Js } from '../../../server/src/formats/crc32';

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let v = seed >>> 0;
  for (let i = 0; i < n; i++) {
    v = (Math.imul(v, 1103515245) + 12345) >>> 0;
    b[i] = v >>> 16;
  }
  return b;
}

const cpuHasPclmul = (() => {
  try {
    return /\bpclmulqdq\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return false;
  }
})();

describe('native CRC-32', () => {
  it('runs wherever the addon loads on a CPU with PCLMULQDQ', (t) => {
    if (!engineInfo().native) return t.skip('no addon: formats/crc32.ts uses zlib');
    assert.equal(crc32Native(new Uint8Array(64)) !== undefined, process.arch === 'x64' && cpuHasPclmul);
  });

  it('equals the table CRC on every length 0..300, unaligned, from several starting values', (t) => {
    if (crc32Native(new Uint8Array(1)) === undefined) return t.skip('no native CRC here');
    const b = bytes(400, 7);
    for (const off of [0, 1, 5, 16])
      for (let n = 0; n <= 300; n++)
        for (const start of [0, 0xffffffff, 0x12345678]) {
          const v = b.subarray(off, off + n);
          assert.equal(crc32Native(v, start), crc32Js(v, start), `offset ${off} length ${n} from ${start}`);
        }
  });

  it('chains like zlib and agrees on a 3 MiB buffer', (t) => {
    if (crc32Native(new Uint8Array(1)) === undefined) return t.skip('no native CRC here');
    const big = bytes(3 << 20, 11);
    const whole = crc32Native(big);
    assert.equal(whole, crc32Js(big));
    const z = (zlib as unknown as { crc32?: (d: Uint8Array, v?: number) => number }).crc32;
    if (z) assert.equal(whole, z(big) >>> 0);
    let c = 0;
    for (let i = 0; i < big.length; i += 100003) c = crc32Native(big.subarray(i, i + 100003), c) as number;
    assert.equal(c, whole);
    assert.equal(crc32(big), whole, 'formats/crc32.ts gives the same');
  });
});
