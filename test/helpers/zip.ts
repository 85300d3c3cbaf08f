// A minimal zip builder for tests (stored or deflated members, local headers, central directory, end record) that
// writes whatever it is told, lies included: the hostile-archive tests and readArrayInto's.
import { deflateRawSync } from 'node:zlib';
import { crc32 } from '../../server/src/formats/crc32';

export interface RawEntry {
  name: string;
  data: Buffer;
  deflate?: boolean;
  /** Lie about the uncompressed size. */
  size?: number;
  crc?: number;
}

/** A zip record of `bytes` bytes: its signature, then the 2-byte and 4-byte fields at their offsets. */
function record(bytes: number, sig: number, u16: [number, number][], u32: [number, number][]): Buffer {
  const b = Buffer.alloc(bytes);
  b.writeUInt32LE(sig, 0);
  for (const [o, v] of u16) b.writeUInt16LE(v, o);
  for (const [o, v] of u32) b.writeUInt32LE(v, o);
  return b;
}

/** A minimal zip builder that writes whatever it is told, lies included. */
export function makeZip(entries: RawEntry[], opts: { count?: number; cdOffset?: number } = {}): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let off = 0;
  for (const e of entries) {
    const body = e.deflate ? deflateRawSync(e.data) : e.data;
    const name = Buffer.from(e.name);
    const crc = e.crc ?? crc32(e.data);
    const size = e.size ?? e.data.length;
    const method = e.deflate ? 8 : 0;
    // [offset, value] little-endian 2-byte fields, then 4-byte ones: the local header, then the central one
    const l = record(
      30,
      0x04034b50,
      [
        [4, 20],
        [8, method],
        [26, name.length],
      ],
      [
        [14, crc],
        [18, body.length],
        [22, size],
      ],
    );
    const c = record(
      46,
      0x02014b50,
      [
        [4, 20],
        [6, 20],
        [10, method],
        [28, name.length],
      ],
      [
        [16, crc],
        [20, body.length],
        [24, size],
        [42, off],
      ],
    );
    central.push(c, name);
    parts.push(l, name, body);
    off += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(central);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(opts.count ?? entries.length, 8);
  eocd.writeUInt16LE(opts.count ?? entries.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(opts.cdOffset ?? off, 16);
  return Buffer.concat([...parts, cd, eocd]);
}
