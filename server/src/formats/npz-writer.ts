// numpy .npz writer: streams one member at a time (stored), with CRC-32, ZIP64 when needed, fixed timestamps
// (deterministic bytes) and an atomic rename (temp file, then rename; a failed write leaves no partial output).
// The bytes go to the file through a sink: the native DirectFile where the addon has it (O_DIRECT from reused,
// aligned staging buffers, written by a thread of its own: no fresh page-cache pages for the cores to fault in;
// docs/PERFORMANCE.md "The NPZ write stage with O_DIRECT"), else a Node file handle. Both write the same bytes.
import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, unlink } from 'node:fs/promises';
import { type DirectFile, openDirectFile } from '../../../native/index';
import { crc32 } from './crc32';
import { dtypeItemSize, encodeNpyHeader, type NpyHeaderSpec, resolveSpec, shapeCount } from './npy';
import { isUnsafeMemberName, SIG_CENTRAL, SIG_EOCD, SIG_EOCD64, SIG_LOC64, SIG_LOCAL, U16_MAX, U32_MAX } from './zip';

/** Fixed DOS timestamp 1980-01-01 00:00:00 so the same arrays always give the same bytes. */
const DOS_TIME = 0;
const DOS_DATE = (0 << 9) | (1 << 5) | 1;
const BUF_SIZE = 1 << 20;

interface Written {
  name: Buffer;
  utf8: boolean;
  crc: number;
  size: number;
  offset: number;
}

export interface NpzWriterOptions {
  /** Write ZIP64 records even for small archives (for tests); default only when needed. */
  forceZip64?: boolean;
  /**
   * Write through the native DirectFile (O_DIRECT where the file system takes it) when the addon has it; default
   * true unless APL_NPZ_DIRECT=0. False: a Node file handle (the path used without the addon).
   */
  direct?: boolean;
  /** The DirectFile's staging: buffer size (default 8 MiB) and count (default 3); for tests. */
  staging?: { bufferBytes?: number; buffers?: number };
}

/** How the bytes reach the file: O_DIRECT, the DirectFile's ordinary writes (O_DIRECT refused), or Node's. */
export type NpzWriteMode = 'o_direct' | 'buffered' | 'node';

/** Where the writer's bytes go: appended in order, and patched in place (a member's CRC-32). */
interface Sink {
  /** Appends b; resolves once b may be reused. */
  append(b: Uint8Array): Promise<void>;
  /** Overwrites bytes already appended. */
  patch(at: number, b: Uint8Array): Promise<void>;
  /** Everything on the file, the file closed. */
  close(): Promise<void>;
  /** Closed, never throws (the caller removes the file). */
  abort(): Promise<void>;
  mode(): NpzWriteMode;
}

class NodeSink implements Sink {
  private pos = 0;
  constructor(private readonly fh: FileHandle) {}
  async append(b: Uint8Array): Promise<void> {
    let done = 0;
    while (done < b.length) {
      const { bytesWritten } = await this.fh.write(b, done, b.length - done, this.pos + done);
      done += bytesWritten;
    }
    this.pos += b.length;
  }
  async patch(at: number, b: Uint8Array): Promise<void> {
    await this.fh.write(b, 0, b.length, at);
  }
  close(): Promise<void> {
    return this.fh.close();
  }
  async abort(): Promise<void> {
    await this.fh.close().catch(() => {});
  }
  mode(): NpzWriteMode {
    return 'node';
  }
}

class DirectSink implements Sink {
  constructor(private readonly f: DirectFile) {}
  append(b: Uint8Array): Promise<void> {
    return this.f.write(b);
  }
  async patch(at: number, b: Uint8Array): Promise<void> {
    this.f.patch(at, b);
  }
  close(): Promise<void> {
    return this.f.close();
  }
  async abort(): Promise<void> {
    try {
      this.f.abort();
    } catch {}
  }
  mode(): NpzWriteMode {
    return this.f.direct() ? 'o_direct' : 'buffered';
  }
}

async function openSink(tmp: string, opts: NpzWriterOptions): Promise<Sink> {
  const want = opts.direct ?? process.env.APL_NPZ_DIRECT !== '0';
  if (want) {
    let f: DirectFile | null;
    try {
      f = openDirectFile(tmp, opts.staging);
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw e;
    }
    if (f) return new DirectSink(f);
  }
  return new NodeSink(await open(tmp, 'w'));
}

/** Raw little-endian bytes, whole or in chunks (any typed array is taken as its bytes). */
export type ArrayData = Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

export class NpzWriter {
  private pos = 0;
  private buf = Buffer.allocUnsafe(BUF_SIZE);
  private bufLen = 0;
  private readonly written: Written[] = [];
  private readonly names = new Set<string>();
  private state: 'open' | 'closed' | 'failed' = 'open';
  private busy = false;

  private constructor(
    readonly path: string,
    readonly tmpPath: string,
    private readonly sink: Sink,
    private readonly opts: NpzWriterOptions,
  ) {}

  static async create(path: string, opts: NpzWriterOptions = {}): Promise<NpzWriter> {
    const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    return new NpzWriter(path, tmp, await openSink(tmp, opts), opts);
  }

  /**
   * How the bytes reach the file (o_direct turns into buffered at the first write on a file system that accepts
   * O_DIRECT at open but not in writes).
   */
  get writeMode(): NpzWriteMode {
    return this.sink.mode();
  }

  /** Bytes written so far (the archive's size if it were closed now, minus the directory). */
  get bytesWritten(): number {
    return this.pos;
  }

  private async flush(): Promise<void> {
    if (!this.bufLen) return;
    await this.sink.append(this.buf.subarray(0, this.bufLen));
    this.bufLen = 0;
  }

  private async put(b: Uint8Array): Promise<void> {
    if (b.length >= BUF_SIZE / 4) {
      await this.flush();
      await this.sink.append(b);
      this.pos += b.length;
      return;
    }
    if (this.bufLen + b.length > BUF_SIZE) await this.flush();
    this.buf.set(b, this.bufLen);
    this.bufLen += b.length;
    this.pos += b.length;
  }

  /** Patches 4 bytes at an absolute position already written (or still buffered). */
  private async patchU32(at: number, value: number): Promise<void> {
    const bufStart = this.pos - this.bufLen;
    if (at >= bufStart) this.buf.writeUInt32LE(value, at - bufStart);
    else {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(value);
      await this.sink.patch(at, b);
    }
  }

  /**
   * Appends one array as a stored `.npy` member (".npy" is added to `name` when missing). `data` is the raw
   * little-endian bytes of the array, whole or in chunks; their total must match the shape.
   */
  async addArray(name: string, header: NpyHeaderSpec, data: ArrayData): Promise<{ crc32: number; size: number }> {
    if (this.state !== 'open') throw new Error(`${this.path}: writer is ${this.state}`);
    if (this.busy) throw new Error(`${this.path}: addArray called while another addArray is in progress`);
    const member = name.endsWith('.npy') ? name : `${name}.npy`;
    if (isUnsafeMemberName(member)) throw new Error(`${this.path}: unsafe member name '${member}'`);
    if (this.names.has(member)) throw new Error(`${this.path}: duplicate member name '${member}'`);
    const { dtype } = resolveSpec(header);
    const hdr = encodeNpyHeader(header);
    const itemSize = dtypeItemSize(dtype);
    const dataBytes = shapeCount(this.path, header.shape, itemSize) * itemSize;
    const size = hdr.length + dataBytes;
    const offset = this.pos;
    const zip64 = !!this.opts.forceZip64 || size >= U32_MAX;
    const utf8 = /[^\x20-\x7e]/.test(member);
    const nameBuf = Buffer.from(member, utf8 ? 'utf8' : 'latin1');
    const local = Buffer.alloc(30 + nameBuf.length + (zip64 ? 20 : 0));
    local.writeUInt32LE(SIG_LOCAL, 0);
    local.writeUInt16LE(zip64 ? 45 : 20, 4);
    local.writeUInt16LE(utf8 ? 0x800 : 0, 6);
    local.writeUInt16LE(0, 8);
    local.writeUInt16LE(DOS_TIME, 10);
    local.writeUInt16LE(DOS_DATE, 12);
    local.writeUInt32LE(0, 14); // CRC, patched below
    local.writeUInt32LE(zip64 ? U32_MAX : size, 18);
    local.writeUInt32LE(zip64 ? U32_MAX : size, 22);
    local.writeUInt16LE(nameBuf.length, 26);
    local.writeUInt16LE(zip64 ? 20 : 0, 28);
    nameBuf.copy(local, 30);
    if (zip64) {
      const x = 30 + nameBuf.length;
      local.writeUInt16LE(0x0001, x);
      local.writeUInt16LE(16, x + 2);
      local.writeBigUInt64LE(BigInt(size), x + 4);
      local.writeBigUInt64LE(BigInt(size), x + 12);
    }
    this.busy = true;
    try {
      await this.put(local);
      await this.put(hdr);
      let crc = crc32(hdr);
      let n = 0;
      const bytesOf = (v: ArrayBufferView) =>
        v instanceof Uint8Array ? v : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      const chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array> = ArrayBuffer.isView(data)
        ? [bytesOf(data)]
        : data;
      for await (const chunk of chunks) {
        if (!ArrayBuffer.isView(chunk))
          throw new Error(`${this.path}: member '${member}': data chunks must be byte arrays`);
        const c = bytesOf(chunk);
        n += c.length;
        if (n > dataBytes)
          throw new Error(`${this.path}: member '${member}' got more than its ${dataBytes} data bytes`);
        crc = crc32(c, crc);
        await this.put(c);
      }
      if (n !== dataBytes)
        throw new Error(`${this.path}: member '${member}' got ${n} data bytes, expected ${dataBytes}`);
      await this.patchU32(offset + 14, crc);
      this.names.add(member);
      this.written.push({ name: nameBuf, utf8, crc, size, offset });
      return { crc32: crc, size };
    } catch (e) {
      this.state = 'failed';
      throw e;
    } finally {
      this.busy = false;
    }
  }

  /** Writes the central directory, closes the file and renames it into place. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    if (this.state === 'failed') {
      await this.abort();
      throw new Error(`${this.path}: not written, because an earlier addArray failed`);
    }
    try {
      const cdStart = this.pos;
      for (const w of this.written) {
        const needSize = this.opts.forceZip64 || w.size >= U32_MAX;
        const needOff = this.opts.forceZip64 || w.offset >= U32_MAX;
        const extraLen = needSize || needOff ? 4 + (needSize ? 16 : 0) + (needOff ? 8 : 0) : 0;
        const c = Buffer.alloc(46 + w.name.length + extraLen);
        const z = extraLen > 0;
        c.writeUInt32LE(SIG_CENTRAL, 0);
        c.writeUInt16LE((3 << 8) | (z ? 45 : 20), 4);
        c.writeUInt16LE(z ? 45 : 20, 6);
        c.writeUInt16LE(w.utf8 ? 0x800 : 0, 8);
        c.writeUInt16LE(0, 10);
        c.writeUInt16LE(DOS_TIME, 12);
        c.writeUInt16LE(DOS_DATE, 14);
        c.writeUInt32LE(w.crc, 16);
        c.writeUInt32LE(needSize ? U32_MAX : w.size, 20);
        c.writeUInt32LE(needSize ? U32_MAX : w.size, 24);
        c.writeUInt16LE(w.name.length, 28);
        c.writeUInt16LE(extraLen, 30);
        c.writeUInt32LE((0o100644 << 16) >>> 0, 38);
        c.writeUInt32LE(needOff ? U32_MAX : w.offset, 42);
        w.name.copy(c, 46);
        if (z) {
          let x = 46 + w.name.length;
          c.writeUInt16LE(0x0001, x);
          c.writeUInt16LE(extraLen - 4, x + 2);
          x += 4;
          if (needSize) {
            c.writeBigUInt64LE(BigInt(w.size), x);
            c.writeBigUInt64LE(BigInt(w.size), x + 8);
            x += 16;
          }
          if (needOff) c.writeBigUInt64LE(BigInt(w.offset), x);
        }
        await this.put(c);
      }
      const cdSize = this.pos - cdStart;
      const count = this.written.length;
      const z64 = this.opts.forceZip64 || count >= U16_MAX || cdStart >= U32_MAX || cdSize >= U32_MAX;
      if (z64) {
        const e64At = this.pos;
        const r = Buffer.alloc(56 + 20);
        r.writeUInt32LE(SIG_EOCD64, 0);
        r.writeBigUInt64LE(44n, 4);
        r.writeUInt16LE((3 << 8) | 45, 12);
        r.writeUInt16LE(45, 14);
        r.writeBigUInt64LE(BigInt(count), 24);
        r.writeBigUInt64LE(BigInt(count), 32);
        r.writeBigUInt64LE(BigInt(cdSize), 40);
        r.writeBigUInt64LE(BigInt(cdStart), 48);
        r.writeUInt32LE(SIG_LOC64, 56);
        r.writeBigUInt64LE(BigInt(e64At), 64);
        r.writeUInt32LE(1, 72);
        await this.put(r);
      }
      const e = Buffer.alloc(22);
      e.writeUInt32LE(SIG_EOCD, 0);
      e.writeUInt16LE(z64 ? U16_MAX : count, 8);
      e.writeUInt16LE(z64 ? U16_MAX : count, 10);
      e.writeUInt32LE(z64 ? U32_MAX : cdSize, 12);
      e.writeUInt32LE(z64 ? U32_MAX : cdStart, 16);
      await this.put(e);
      await this.flush();
      await this.sink.close();
      await rename(this.tmpPath, this.path);
      this.state = 'closed';
    } catch (err) {
      this.state = 'failed';
      await this.abort();
      throw err;
    }
  }

  /** Discards everything: closes and removes the temp file. */
  async abort(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'failed';
    await this.sink.abort();
    await unlink(this.tmpPath).catch(() => {});
  }
}
