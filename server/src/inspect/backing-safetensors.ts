// The inspector's backing for safetensors checkpoints: one `.safetensors` file, or a sharded checkpoint through
// its index (`*.safetensors.index.json`). Opening reads the JSON headers only (the reader refuses hostile ones
// with one line naming the file); tensor bytes are read when a page or a sample asks for them.
import { stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { FormatError } from '../formats/errors';
import {
  openSafetensors,
  SAFETENSORS_DTYPE_BITS,
  SAFETENSORS_NUMPY_NAMES,
  type SafetensorsFile,
  type SafetensorsTensor,
} from '../formats/safetensors';
import { readSafetensorsIndex } from '../formats/safetensors-index';
import { openFileSource } from '../formats/source';
import type { Backing, TensorHeader } from './backing';

/** A tensor's header as numpy would describe it (dtype: numpy's or ml_dtypes' name, e.g. bfloat16). */
export function safetensorsHeader(sf: SafetensorsFile, t: SafetensorsTensor): TensorHeader {
  const count = t.shape.reduce((a, b) => a * b, 1);
  return {
    dtype: SAFETENSORS_NUMPY_NAMES[t.dtype],
    descr: t.dtype,
    littleEndian: true,
    fortranOrder: false,
    shape: t.shape,
    headerBytes: 0,
    dataOffset: sf.dataStart + t.dataOffsets[0],
    dataBytes: t.byteLength,
    itemSize: SAFETENSORS_DTYPE_BITS[t.dtype] / 8,
    count,
    version: [0, 0],
  };
}

function backingOf(entries: { name: string; sf: SafetensorsFile; shard?: string }[], close: () => Promise<void>) {
  const byName = new Map(entries.map((e) => [e.name, e]));
  const backing: Backing = {
    kind: 'safetensors',
    names: entries.map((e) => e.name),
    info: (n) => {
      const e = byName.get(n);
      const t = e?.sf.tensor(n);
      return e && t && { compressed: false, storedBytes: t.byteLength, ...(e.shard ? { shard: e.shard } : {}) };
    },
    header: async (n) => {
      const e = byName.get(n);
      const t = e?.sf.tensor(n);
      if (!e || !t) throw new Error(`no tensor named ${n}`);
      return safetensorsHeader(e.sf, t);
    },
    data: (n, offset, length) => {
      const e = byName.get(n);
      if (!e) throw new Error(`no tensor named ${n}`);
      return e.sf.readRaw(n, offset, length);
    },
    close,
  };
  return backing;
}

/** One `.safetensors` file. */
export async function openSafetensorsBacking(path: string): Promise<Backing> {
  const src = await openFileSource(path);
  let sf: SafetensorsFile;
  try {
    sf = await openSafetensors(src);
  } catch (e) {
    await src.close();
    throw e;
  }
  return backingOf(
    sf.tensors.map((t) => ({ name: t.name, sf })),
    () => sf.close(),
  );
}

/** Whether a path names a safetensors index (`model.safetensors.index.json`, `…safetensors.index.json`). */
export const isSafetensorsIndex = (path: string) => /\.safetensors\.index\.json$/i.test(path);

/**
 * A sharded checkpoint through its index: every shard's header is read (and checked), tensors are listed in the
 * index's order; a tensor the index lists but its shard lacks is refused, naming the shard.
 */
export async function openShardedBacking(indexPath: string): Promise<Backing> {
  const { weightMap, files } = await readSafetensorsIndex(indexPath);
  const dir = dirname(indexPath);
  const opened = new Map<string, SafetensorsFile>();
  const closeAll = async () => {
    await Promise.all([...opened.values()].map((o) => o.close()));
  };
  try {
    for (const f of files) {
      const src = await openFileSource(join(dir, f));
      try {
        opened.set(f, await openSafetensors(src));
      } catch (e) {
        await src.close();
        throw e;
      }
    }
    const entries = [...weightMap].map(([name, shard]) => {
      const sf = opened.get(shard)!;
      if (!sf.tensor(name))
        throw new FormatError(join(dir, shard), `tensor '${name}' listed in ${basename(indexPath)} is missing`);
      return { name, sf, shard };
    });
    let diskBytes = (await stat(indexPath)).size;
    for (const f of files) diskBytes += (await stat(join(dir, f))).size;
    return { ...backingOf(entries, closeAll), diskBytes };
  } catch (e) {
    await closeAll();
    throw e;
  }
}
