// Random-access byte sources: the readers take one of these, so tests use in-memory buffers and the editor and
// CLI use files. A read past the end is a FormatError naming the source (never a short buffer, never an
// allocation larger than the source itself).
import { closeSync, constants, fstatSync, openSync, readFileSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { FormatError } from './errors';

/**
 * Read-only and non-blocking, so that opening a FIFO (or another special file) returns at once instead of waiting
 * for a writer; regular files read the same either way. Windows has no O_NONBLOCK.
 */
const READ_NONBLOCK = constants.O_NONBLOCK ? constants.O_RDONLY | constants.O_NONBLOCK : constants.O_RDONLY;

function openProblem(path: string, e: unknown): FormatError {
  const code = (e as NodeJS.ErrnoException).code;
  const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (e as Error).message;
  return new FormatError(path, why);
}

/** Why an opened file is not to be read whole: not a regular file, or larger than `maxBytes`. */
function statProblem(path: string, st: Stats, maxBytes: number): FormatError | undefined {
  if (!st.isFile()) {
    return new FormatError(path, st.isDirectory() ? 'is a directory' : 'not a regular file (a pipe, socket or device)');
  }
  if (st.size > maxBytes) return new FormatError(path, `is ${st.size} bytes, more than the ${maxBytes}-byte limit`);
  return undefined;
}

const asFormatError = (path: string, e: unknown) =>
  e instanceof FormatError ? e : new FormatError(path, (e as Error)?.message ?? String(e));

/**
 * A whole regular file (JSON, text), read through one descriptor: the file is opened without blocking and checked
 * from that descriptor, so a FIFO or device is refused at once and nothing can be swapped in between a check and
 * the read. Throws FormatError naming the file: 'no such file', 'is a directory', 'not a regular file (a pipe,
 * socket or device)', or over `maxBytes`.
 */
export function readRegularFileSync(path: string, maxBytes = Number.POSITIVE_INFINITY): Buffer {
  let fd: number;
  try {
    fd = openSync(path, READ_NONBLOCK);
  } catch (e) {
    throw openProblem(path, e);
  }
  try {
    const bad = statProblem(path, fstatSync(fd), maxBytes);
    if (bad) throw bad;
    return readFileSync(fd);
  } catch (e) {
    throw asFormatError(path, e);
  } finally {
    closeSync(fd);
  }
}

/** readRegularFileSync without blocking the thread. */
export async function readRegularFile(path: string, maxBytes = Number.POSITIVE_INFINITY): Promise<Buffer> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(path, READ_NONBLOCK);
  } catch (e) {
    throw openProblem(path, e);
  }
  try {
    const bad = statProblem(path, await fh.stat(), maxBytes);
    if (bad) throw bad;
    return await fh.readFile();
  } catch (e) {
    throw asFormatError(path, e);
  } finally {
    await fh.close();
  }
}

export interface RandomAccessSource {
  readonly name: string;
  readonly size: number;
  /** Exactly `length` bytes at `offset`; throws FormatError when the range is outside the source. */
  read(offset: number, length: number): Promise<Buffer>;
  /** Optional: fills all of `target` from `offset` (lets hot loops reuse one buffer). Same range checks as read. */
  readInto?(target: Uint8Array, offset: number): Promise<void>;
  close(): Promise<void>;
}

/** Fills `target` from `offset`, with readInto when the source has it, else read + copy. */
export async function readIntoFrom(src: RandomAccessSource, target: Uint8Array, offset: number): Promise<void> {
  if (src.readInto) return src.readInto(target, offset);
  target.set(await src.read(offset, target.length));
}

export function checkRange(name: string, size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new FormatError(name, `invalid read range (offset ${offset}, length ${length})`);
  }
  if (offset + length > size) {
    throw new FormatError(
      name,
      `unexpected end of file: needs ${length} bytes at offset ${offset}, but the file has ${size} bytes`,
    );
  }
}

export async function openFileSource(path: string): Promise<RandomAccessSource> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(path, READ_NONBLOCK);
  } catch (e) {
    throw openProblem(path, e);
  }
  const st = await fh.stat();
  const bad = statProblem(path, st, Number.POSITIVE_INFINITY);
  if (bad) {
    await fh.close();
    throw bad;
  }
  const size = st.size;
  let closed = false;
  const fill = async (buf: Uint8Array, offset: number) => {
    if (closed) throw new FormatError(path, 'read after close');
    let done = 0;
    while (done < buf.length) {
      const { bytesRead } = await fh.read(buf, done, buf.length - done, offset + done);
      if (bytesRead === 0) throw new FormatError(path, `file shrank while reading (at offset ${offset + done})`);
      done += bytesRead;
    }
  };
  return {
    name: path,
    size,
    async read(offset, length) {
      checkRange(path, size, offset, length);
      const buf = Buffer.allocUnsafe(length);
      await fill(buf, offset);
      return buf;
    },
    async readInto(target, offset) {
      checkRange(path, size, offset, target.length);
      await fill(target, offset);
    },
    async close() {
      if (closed) return;
      closed = true;
      await fh.close();
    },
  };
}

export function bufferSource(buf: Uint8Array, name = '<buffer>'): RandomAccessSource {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return {
    name,
    size: b.length,
    async read(offset, length) {
      checkRange(name, b.length, offset, length);
      return b.subarray(offset, offset + length);
    },
    async readInto(target, offset) {
      checkRange(name, b.length, offset, target.length);
      target.set(b.subarray(offset, offset + target.length));
    },
    async close() {},
  };
}

/** A window [offset, offset + size) of another source, under its own name (e.g. `archive.npz:w.npy`). */
export function sliceSource(
  src: RandomAccessSource,
  offset: number,
  size: number,
  name = src.name,
): RandomAccessSource {
  checkRange(src.name, src.size, offset, size);
  return {
    name,
    size,
    async read(o, length) {
      checkRange(name, size, o, length);
      return src.read(offset + o, length);
    },
    async close() {},
  };
}
