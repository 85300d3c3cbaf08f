// numpy .npz: a zip of .npy members. The reader lists members from the central directory alone (ZIP64 aware), so
// a multi-GB archive lists in milliseconds, and reads one member's header or any byte range of its data on demand
// (stored members by direct range reads, deflated ones by inflating a prefix). The writer is in npz-writer.ts
// (re-exported here) and the zip structures both share in zip.ts.
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { crc32 } from './crc32';
import { byteswapInPlace } from './dtypes';
import { FormatError } from './errors';
import {
  dtypeItemSize,
  isNumericHeader,
  type NpTypedArray,
  type NpyAnyHeader,
  type NpyHeader,
  parseNpyAnyHeaderWith,
  toTypedArray,
} from './npy';
import { openFileSource, type RandomAccessSource, readIntoFrom } from './source';
import {
  isUnsafeMemberName,
  SIG_CENTRAL,
  SIG_EOCD,
  SIG_EOCD64,
  SIG_LOC64,
  SIG_LOCAL,
  U16_MAX,
  U32_MAX,
  u64,
} from './zip';

export { type ArrayData, NpzWriter, type NpzWriterOptions } from './npz-writer';
export { isUnsafeMemberName } from './zip';

export interface NpzMember {
  /** The name in the zip, e.g. "w_q4.npy". */
  name: string;
  /** The name without ".npy" (numpy's key). */
  key: string;
  compressed: boolean;
  compressedSize: number;
  /** Uncompressed size of the whole .npy member (header + data). */
  size: number;
  crc32: number;
  localHeaderOffset: number;
}

export interface NpzArchive {
  readonly name: string;
  readonly members: NpzMember[];
  /** Looks a member up by zip name or by key ("x" finds "x.npy"). */
  member(name: string): NpzMember | undefined;
  readHeader(name: string): Promise<NpyHeader>;
  /** readHeader, also for string, bytes and object members (readData then reads their raw bytes). */
  readAnyHeader(name: string): Promise<NpyAnyHeader>;
  /** `length` bytes of the array data (after the .npy header) starting at `offset` within the data. */
  readData(name: string, offset: number, length: number): Promise<Buffer>;
  /**
   * The array data in chunks of about `chunkBytes` (whole elements), in order; nothing is read ahead. With
   * `reuseBuffer`, a stored member's chunks all share one buffer (valid until the next chunk is asked for).
   */
  dataChunks(name: string, chunkBytes?: number, opts?: { reuseBuffer?: boolean }): AsyncIterable<Buffer>;
  /** The whole array; checks the member's CRC-32. */
  readArray(name: string): Promise<{ header: NpyHeader; data: NpTypedArray }>;
  /**
   * readArray into memory the caller gives: `target(header)` returns exactly `header.dataBytes` bytes (a weight
   * arena's slice), which a stored member's data is read into directly (a deflated one is inflated, then copied);
   * big-endian data is swapped in place. Checks the CRC-32 as readArray does; returns the header and those bytes.
   */
  readArrayInto(
    name: string,
    target: (header: NpyHeader) => Uint8Array,
  ): Promise<{ header: NpyHeader; data: Uint8Array }>;
  /** Reads the whole member and checks its CRC-32 against the directory. */
  verify(name: string): Promise<void>;
  /** Closes the underlying source. */
  close(): Promise<void>;
}

/** Largest central directory accepted (a million members take about 60 MB). */
const MAX_CENTRAL_DIR = 256 << 20;
/** Deflate cannot expand data by more than this factor (1032:1 plus a little). */
const MAX_DEFLATE_RATIO = 1032;
/** Compressed members up to this size are inflated in one synchronous call (cheaper than a stream). */
const SMALL_MEMBER = 256 << 10;

interface Entry extends NpzMember {
  dataStart?: number;
  header?: NpyAnyHeader;
}

export async function openNpz(src: RandomAccessSource): Promise<NpzArchive> {
  const file = src.name;
  const fail = (why: string): never => {
    throw new FormatError(file, why);
  };
  if (src.size < 22) fail(`not a zip/npz file (${src.size} bytes is too short)`);
  // One read of the last 128 KiB finds the end record (after at most a 64 KiB comment) and, for archives of up to
  // about a thousand members, holds the whole central directory too.
  const tailLen = Math.min(src.size, 128 << 10);
  const tailStart = src.size - tailLen;
  const tail = await src.read(tailStart, tailLen);
  let eocd = -1;
  for (let i = tail.length - 22; i >= Math.max(0, tail.length - 22 - U16_MAX); i--) {
    if (tail.readUInt32LE(i) === SIG_EOCD && i + 22 + tail.readUInt16LE(i + 20) <= tail.length) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) fail('not a zip/npz file (no end-of-central-directory record; truncated?)');
  const eocdAbs = tailStart + eocd;
  const diskNo = tail.readUInt16LE(eocd + 4);
  const cdDisk = tail.readUInt16LE(eocd + 6);
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  let cdEnd = eocdAbs;
  if (diskNo !== 0 || cdDisk !== 0) fail('multi-disk zip archives are not supported');
  const locAbs = eocdAbs - 20;
  if (locAbs >= 0) {
    const loc = locAbs >= tailStart ? tail.subarray(locAbs - tailStart, eocd) : await src.read(locAbs, 20);
    if (loc.readUInt32LE(0) === SIG_LOC64) {
      const e64Off = u64(loc, 8, fail, 'ZIP64 record offset');
      if (e64Off + 56 > locAbs) fail(`ZIP64 end record offset ${e64Off} is out of range`);
      const e64 = await src.read(e64Off, 56);
      if (e64.readUInt32LE(0) !== SIG_EOCD64) fail('bad ZIP64 end-of-central-directory record');
      count = u64(e64, 32, fail, 'member count');
      cdSize = u64(e64, 40, fail, 'central directory size');
      cdOffset = u64(e64, 48, fail, 'central directory offset');
      cdEnd = e64Off;
    }
  }
  if (cdOffset + cdSize > cdEnd) {
    fail(`central directory (offset ${cdOffset}, ${cdSize} bytes) runs past its end record (truncated?)`);
  }
  if (cdSize > MAX_CENTRAL_DIR) fail(`central directory of ${cdSize} bytes exceeds the limit`);
  if (count * 46 > cdSize) fail(`central directory claims ${count} members but has only ${cdSize} bytes`);
  const cd =
    cdOffset >= tailStart
      ? tail.subarray(cdOffset - tailStart, cdOffset - tailStart + cdSize)
      : await src.read(cdOffset, cdSize);
  const entries: Entry[] = [];
  const byName = new Map<string, Entry>();
  let p = 0;
  for (let k = 0; k < count; k++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== SIG_CENTRAL) fail(`corrupt central directory at entry ${k}`);
    const flags = cd.readUInt16LE(p + 8);
    const method = cd.readUInt16LE(p + 10);
    const crc = cd.readUInt32LE(p + 16);
    let csize = cd.readUInt32LE(p + 20);
    let usize = cd.readUInt32LE(p + 24);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    let lho = cd.readUInt32LE(p + 42);
    const end = p + 46 + nameLen + extraLen + commentLen;
    if (end > cd.length) fail(`corrupt central directory at entry ${k}`);
    const nameBuf = cd.subarray(p + 46, p + 46 + nameLen);
    const name = nameBuf.toString(flags & 0x800 ? 'utf8' : 'latin1');
    const extra = cd.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen);
    for (let e = 0; e + 4 <= extra.length; ) {
      const id = extra.readUInt16LE(e);
      const len = extra.readUInt16LE(e + 2);
      if (e + 4 + len > extra.length) fail(`member '${name}': corrupt extra field`);
      if (id === 0x0001) {
        let q = e + 4;
        const next = (what: string) => {
          if (q + 8 > e + 4 + len) fail(`member '${name}': ZIP64 extra field lacks the ${what}`);
          const v = u64(extra, q, fail, `member '${name}' ${what}`);
          q += 8;
          return v;
        };
        if (usize === U32_MAX) usize = next('size');
        if (csize === U32_MAX) csize = next('compressed size');
        if (lho === U32_MAX) lho = next('offset');
      }
      e += 4 + len;
    }
    p = end;
    if (name.endsWith('/')) continue; // a folder entry
    if (isUnsafeMemberName(name)) fail(`member name '${name}' is unsafe (absolute or contains '..')`);
    if (byName.has(name)) fail(`duplicate member name '${name}'`);
    if (flags & 1) fail(`member '${name}' is encrypted`);
    if (method !== 0 && method !== 8) fail(`member '${name}' uses unsupported compression method ${method}`);
    if (method === 0 && csize !== usize) fail(`stored member '${name}' has compressed size ${csize} ≠ size ${usize}`);
    if (method === 8 && usize > csize * MAX_DEFLATE_RATIO + 1024) {
      fail(`member '${name}' declares ${usize} bytes from ${csize} compressed bytes, more than deflate can produce`);
    }
    if (lho + 30 + csize > cdOffset)
      fail(`member '${name}' data (offset ${lho}, ${csize} bytes) runs past the archive`);
    const entry: Entry = {
      name,
      key: name.endsWith('.npy') ? name.slice(0, -4) : name,
      compressed: method === 8,
      compressedSize: csize,
      size: usize,
      crc32: crc,
      localHeaderOffset: lho,
    };
    entries.push(entry);
    byName.set(name, entry);
  }
  return new Archive(src, entries, byName);
}

/** Opens an .npz file from disk; `close()` closes the file. */
export async function openNpzFile(path: string): Promise<NpzArchive> {
  const src = await openFileSource(path);
  try {
    return await openNpz(src);
  } catch (e) {
    await src.close();
    throw e;
  }
}

class Archive implements NpzArchive {
  readonly name: string;
  readonly members: NpzMember[];
  constructor(
    private readonly src: RandomAccessSource,
    entries: Entry[],
    private readonly byName: Map<string, Entry>,
  ) {
    this.name = src.name;
    this.members = entries.map(({ dataStart: _d, header: _h, ...m }) => m);
    this.publicByName = new Map(this.members.map((m) => [m.name, m]));
  }

  private readonly publicByName: Map<string, NpzMember>;

  private fail(m: NpzMember | string, why: string): never {
    throw new FormatError(this.name, `member '${typeof m === 'string' ? m : m.name}': ${why}`);
  }

  private entry(name: string): Entry {
    const e = this.byName.get(name) ?? this.byName.get(`${name}.npy`);
    if (!e) throw new FormatError(this.name, `no member named '${name}'`);
    return e;
  }

  member(name: string): NpzMember | undefined {
    return this.publicByName.get(name) ?? this.publicByName.get(`${name}.npy`);
  }

  private async dataStart(e: Entry): Promise<number> {
    if (e.dataStart !== undefined) return e.dataStart;
    const lh = await this.src.read(e.localHeaderOffset, 30);
    if (lh.readUInt32LE(0) !== SIG_LOCAL) this.fail(e, `bad local header at offset ${e.localHeaderOffset}`);
    const start = e.localHeaderOffset + 30 + lh.readUInt16LE(26) + lh.readUInt16LE(28);
    if (start + e.compressedSize > this.src.size) this.fail(e, 'data runs past the end of the file (truncated?)');
    e.dataStart = start;
    return start;
  }

  /** Inflates member `e` from its start, yielding output until `stopAfter` bytes have come out. */
  private async *inflate(e: Entry, stopAfter = e.size): AsyncGenerator<Buffer> {
    const start = await this.dataStart(e);
    const src = this.src;
    const csize = e.compressedSize;
    const input = Readable.from(
      (async function* () {
        let chunk = 64 << 10;
        for (let pos = 0; pos < csize; ) {
          const n = Math.min(chunk, csize - pos);
          yield await src.read(start + pos, n);
          pos += n;
          chunk = Math.min(chunk * 2, 4 << 20);
        }
      })(),
    );
    const inf = zlib.createInflateRaw({ chunkSize: 256 << 10 });
    input.on('error', (err) => inf.destroy(err));
    input.pipe(inf);
    let total = 0;
    try {
      for await (const out of inf as AsyncIterable<Buffer>) {
        total += out.length;
        if (total > e.size) this.fail(e, `inflates past its declared size of ${e.size} bytes (zip bomb?)`);
        yield out;
        // A partial read stops early; a whole read keeps going so that data past the declared size is caught.
        if (total >= stopAfter && stopAfter < e.size) return;
      }
    } catch (err) {
      if (err instanceof FormatError) throw err;
      this.fail(e, `corrupt compressed data: ${(err as Error).message}`);
    } finally {
      input.destroy();
      inf.destroy();
    }
    if (total < Math.min(stopAfter, e.size))
      this.fail(e, `inflates to ${total} bytes, less than its declared ${e.size}`);
  }

  private small?: { entry: Entry; data: Buffer };

  /** Inflates a small member in one call (bounded by its declared size), keeping the last one. */
  private async inflateSmall(e: Entry): Promise<Buffer> {
    if (this.small?.entry === e) return this.small.data;
    const comp = await this.src.read(await this.dataStart(e), e.compressedSize);
    let data: Buffer;
    try {
      data = zlib.inflateRawSync(comp, { maxOutputLength: Math.max(1, e.size) });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ERR_BUFFER_TOO_LARGE')
        this.fail(e, `inflates past its declared size of ${e.size} bytes (zip bomb?)`);
      this.fail(e, `corrupt compressed data: ${(err as Error).message}`);
    }
    if (data.length !== e.size) this.fail(e, `inflates to ${data.length} bytes, not its declared ${e.size}`);
    this.small = { entry: e, data };
    return data;
  }

  /** `length` bytes at `offset` of the member's uncompressed bytes (the .npy file). */
  private async readMemberRange(e: Entry, offset: number, length: number): Promise<Buffer> {
    if (offset + length > e.size) this.fail(e, `read of ${length} bytes at ${offset} is past its size ${e.size}`);
    if (!e.compressed) return this.src.read((await this.dataStart(e)) + offset, length);
    if (e.compressedSize <= SMALL_MEMBER) {
      const all = await this.inflateSmall(e);
      return all.subarray(offset, offset + length);
    }
    // Collect what actually inflates (never allocate the declared size up front: it is only a claim).
    const parts: Buffer[] = [];
    let pos = 0;
    let got = 0;
    for await (const chunk of this.inflate(e, offset + length)) {
      const a = Math.max(0, offset - pos);
      const b = Math.min(chunk.length, offset + length - pos);
      if (b > a) {
        parts.push(chunk.subarray(a, b));
        got += b - a;
      }
      pos += chunk.length;
    }
    if (got < length) this.fail(e, `inflates to ${pos} bytes, less than its declared ${e.size}`);
    return parts.length === 1 ? parts[0] : Buffer.concat(parts, got);
  }

  async readHeader(name: string): Promise<NpyHeader> {
    const h = await this.readAnyHeader(name);
    if (!isNumericHeader(h)) this.fail(this.entry(name), `unsupported dtype '${h.descr}'`);
    return h as NpyHeader;
  }

  async readAnyHeader(name: string): Promise<NpyAnyHeader> {
    const e = this.entry(name);
    if (e.header) return e.header;
    let prefix: Buffer | undefined;
    const read = async (o: number, l: number): Promise<Buffer> => {
      if (!e.compressed) return this.readMemberRange(e, o, l);
      // Inflate a prefix once, long enough for typical headers, and again only for huge ones.
      if (!prefix || prefix.length < o + l)
        prefix = await this.readMemberRange(e, 0, Math.min(e.size, Math.max(o + l, 4096)));
      return prefix.subarray(o, o + l);
    };
    try {
      e.header = await parseNpyAnyHeaderWith(this.name, read, e.size, 0);
    } catch (err) {
      if (err instanceof FormatError && err.problem && !err.problem.startsWith('member ')) this.fail(e, err.problem);
      throw err;
    }
    return e.header;
  }

  async readData(name: string, offset: number, length: number): Promise<Buffer> {
    const e = this.entry(name);
    const h = await this.readAnyHeader(name);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      this.fail(e, `invalid data range (offset ${offset}, length ${length})`);
    }
    if (offset + length > h.dataBytes) this.fail(e, `data range ${offset}+${length} is past its ${h.dataBytes} bytes`);
    return this.readMemberRange(e, h.headerBytes + offset, length);
  }

  async *dataChunks(name: string, chunkBytes = 4 << 20, opts: { reuseBuffer?: boolean } = {}): AsyncGenerator<Buffer> {
    const e = this.entry(name);
    const h = await this.readHeader(name);
    const step = Math.max(h.itemSize, chunkBytes - (chunkBytes % h.itemSize));
    if (!e.compressed) {
      const base = (await this.dataStart(e)) + h.headerBytes;
      const shared = opts.reuseBuffer ? Buffer.allocUnsafe(Math.min(step, h.dataBytes)) : undefined;
      for (let o = 0; o < h.dataBytes; o += step) {
        const len = Math.min(step, h.dataBytes - o);
        if (!shared) yield await this.src.read(base + o, len);
        else {
          const b = shared.subarray(0, len);
          await readIntoFrom(this.src, b, base + o);
          yield b;
        }
      }
      return;
    }
    let skip = h.headerBytes;
    let left = h.dataBytes;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    for await (let chunk of this.inflate(e, h.headerBytes + h.dataBytes)) {
      if (skip) {
        const s = Math.min(skip, chunk.length);
        chunk = chunk.subarray(s);
        skip -= s;
      }
      if (chunk.length > left) chunk = chunk.subarray(0, left);
      left -= chunk.length;
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= step) {
        const all = Buffer.concat(pending, pendingBytes);
        const whole = pendingBytes - (pendingBytes % h.itemSize);
        yield all.subarray(0, whole);
        pending = whole < pendingBytes ? [all.subarray(whole)] : [];
        pendingBytes -= whole;
      }
      if (!left && h.headerBytes + h.dataBytes < e.size) break;
    }
    if (pendingBytes) yield Buffer.concat(pending, pendingBytes);
  }

  private async wholeMember(e: Entry): Promise<Buffer> {
    const buf = await this.readMemberRange(e, 0, e.size);
    const c = crc32(buf);
    if (c !== e.crc32) {
      this.fail(
        e,
        `CRC-32 mismatch (directory ${e.crc32.toString(16).padStart(8, '0')}, data ${c.toString(16).padStart(8, '0')})`,
      );
    }
    return buf;
  }

  async readArray(name: string): Promise<{ header: NpyHeader; data: NpTypedArray }> {
    const e = this.entry(name);
    const header = await this.readHeader(name);
    const buf = await this.wholeMember(e);
    const raw = buf.subarray(header.headerBytes, header.headerBytes + header.dataBytes);
    return { header, data: toTypedArray(header.dtype, raw, header.littleEndian) };
  }

  async readArrayInto(
    name: string,
    target: (header: NpyHeader) => Uint8Array,
  ): Promise<{ header: NpyHeader; data: Uint8Array }> {
    const e = this.entry(name);
    const header = await this.readHeader(name);
    const data = target(header);
    if (data.length !== header.dataBytes) this.fail(e, `target of ${data.length} bytes for ${header.dataBytes}`);
    if (e.compressed)
      data.set((await this.wholeMember(e)).subarray(header.headerBytes, header.headerBytes + data.length));
    else {
      const start = await this.dataStart(e);
      const head = await this.src.read(start, header.headerBytes);
      await readIntoFrom(this.src, data, start + header.headerBytes);
      let c = crc32(data, crc32(head));
      if (header.headerBytes + data.length < e.size) {
        const rest = e.size - header.headerBytes - data.length;
        c = crc32(await this.src.read(start + header.headerBytes + data.length, rest), c);
      }
      if (c !== e.crc32) {
        this.fail(
          e,
          `CRC-32 mismatch (directory ${e.crc32.toString(16).padStart(8, '0')}, data ${c.toString(16).padStart(8, '0')})`,
        );
      }
    }
    if (!header.littleEndian) byteswapInPlace(data, dtypeItemSize(header.dtype));
    return { header, data };
  }

  async verify(name: string): Promise<void> {
    const e = this.entry(name);
    let c = 0;
    let n = 0;
    if (!e.compressed) {
      const start = await this.dataStart(e);
      for (let o = 0; o < e.size; o += 4 << 20) {
        const b = await this.src.read(start + o, Math.min(4 << 20, e.size - o));
        c = crc32(b, c);
        n += b.length;
      }
    } else {
      for await (const b of this.inflate(e)) {
        c = crc32(b, c);
        n += b.length;
      }
    }
    if (c !== e.crc32) this.fail(e, `CRC-32 mismatch over ${n} bytes`);
  }

  close(): Promise<void> {
    return this.src.close();
  }
}
