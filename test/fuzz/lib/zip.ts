// An in-memory zip builder whose every field can be overridden: the NPZ target builds valid archives and then
// replaces one field at a time (sizes, offsets, counts, flags, methods, CRCs, names, ZIP64 records).
import { deflateRawSync } from 'node:zlib';
import { crc32 } from '../../../server/src/formats/crc32';

export interface ZipMember {
  name: string;
  data: Uint8Array;
  deflate?: boolean;
  /** Central directory field overrides. */
  cd?: Partial<Record<CdField, number>>;
  /** Local header field overrides. */
  local?: Partial<Record<'method' | 'nameLen' | 'extraLen' | 'csize', number>>;
  /** Write a ZIP64 extra field with these values (each written when present). */
  zip64?: { usize?: bigint; csize?: bigint; offset?: bigint };
  /** Bytes appended to the name in the central directory only (a name that differs from the local header). */
  nameBytes?: Uint8Array;
}
export type CdField = 'flags' | 'method' | 'crc' | 'csize' | 'usize' | 'nameLen' | 'extraLen' | 'commentLen' | 'lho';

export interface ZipSpec {
  members: ZipMember[];
  eocd?: Partial<Record<'disk' | 'cdDisk' | 'countDisk' | 'count' | 'cdSize' | 'cdOffset' | 'commentLen', number>>;
  comment?: Uint8Array;
  /** Add ZIP64 end records, with overrides. */
  zip64?: { count?: bigint; cdSize?: bigint; cdOffset?: bigint; e64Offset?: bigint } | null;
}

export function buildZip(spec: ZipSpec): Buffer {
  const parts: Buffer[] = [];
  let pos = 0;
  const central: Buffer[] = [];
  for (const m of spec.members) {
    const name = Buffer.from(m.name, 'utf8');
    const stored = m.deflate ? deflateRawSync(m.data) : Buffer.from(m.data);
    const method = m.deflate ? 8 : 0;
    const crc = crc32(m.data);
    const local = Buffer.alloc(30 + name.length);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x800, 6);
    local.writeUInt16LE(m.local?.method ?? method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE((m.local?.csize ?? stored.length) >>> 0, 18);
    local.writeUInt32LE(m.data.length, 22);
    local.writeUInt16LE((m.local?.nameLen ?? name.length) & 0xffff, 26);
    local.writeUInt16LE((m.local?.extraLen ?? 0) & 0xffff, 28);
    name.copy(local, 30);
    const offset = pos;
    parts.push(local, stored);
    pos += local.length + stored.length;
    let extra = Buffer.alloc(0);
    if (m.zip64) {
      const vals = [m.zip64.usize, m.zip64.csize, m.zip64.offset].filter((v) => v !== undefined) as bigint[];
      extra = Buffer.alloc(4 + 8 * vals.length);
      extra.writeUInt16LE(1, 0);
      extra.writeUInt16LE(8 * vals.length, 2);
      for (const [i, v] of vals.entries()) extra.writeBigUInt64LE(v, 4 + 8 * i);
    }
    const cname = m.nameBytes ? Buffer.concat([name, m.nameBytes]) : name;
    const c = Buffer.alloc(46 + cname.length + extra.length);
    const o = m.cd ?? {};
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(20, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE((o.flags ?? 0x800) & 0xffff, 8);
    c.writeUInt16LE((o.method ?? method) & 0xffff, 10);
    c.writeUInt32LE((o.crc ?? crc) >>> 0, 16);
    c.writeUInt32LE((o.csize ?? stored.length) >>> 0, 20);
    c.writeUInt32LE((o.usize ?? m.data.length) >>> 0, 24);
    c.writeUInt16LE((o.nameLen ?? cname.length) & 0xffff, 28);
    c.writeUInt16LE((o.extraLen ?? extra.length) & 0xffff, 30);
    c.writeUInt16LE((o.commentLen ?? 0) & 0xffff, 32);
    c.writeUInt32LE((o.lho ?? offset) >>> 0, 42);
    cname.copy(c, 46);
    extra.copy(c, 46 + cname.length);
    central.push(c);
  }
  const cdStart = pos;
  for (const c of central) parts.push(c);
  const cdSize = central.reduce((a, c) => a + c.length, 0);
  pos += cdSize;
  if (spec.zip64) {
    const z = spec.zip64;
    const r = Buffer.alloc(76);
    r.writeUInt32LE(0x06064b50, 0);
    r.writeBigUInt64LE(44n, 4);
    r.writeBigUInt64LE(z.count ?? BigInt(spec.members.length), 24);
    r.writeBigUInt64LE(z.count ?? BigInt(spec.members.length), 32);
    r.writeBigUInt64LE(z.cdSize ?? BigInt(cdSize), 40);
    r.writeBigUInt64LE(z.cdOffset ?? BigInt(cdStart), 48);
    r.writeUInt32LE(0x07064b50, 56);
    r.writeBigUInt64LE(z.e64Offset ?? BigInt(pos), 64);
    r.writeUInt32LE(1, 72);
    parts.push(r);
    pos += r.length;
  }
  const comment = spec.comment ?? new Uint8Array(0);
  const e = Buffer.alloc(22);
  const eo = spec.eocd ?? {};
  e.writeUInt32LE(0x06054b50, 0);
  e.writeUInt16LE((eo.disk ?? 0) & 0xffff, 4);
  e.writeUInt16LE((eo.cdDisk ?? 0) & 0xffff, 6);
  e.writeUInt16LE((eo.countDisk ?? spec.members.length) & 0xffff, 8);
  e.writeUInt16LE((eo.count ?? (spec.zip64 ? 0xffff : spec.members.length)) & 0xffff, 10);
  e.writeUInt32LE((eo.cdSize ?? (spec.zip64 ? 0xffffffff : cdSize)) >>> 0, 12);
  e.writeUInt32LE((eo.cdOffset ?? (spec.zip64 ? 0xffffffff : cdStart)) >>> 0, 16);
  e.writeUInt16LE((eo.commentLen ?? comment.length) & 0xffff, 20);
  parts.push(e, Buffer.from(comment));
  return Buffer.concat(parts);
}
