// What the manifest checks need to know about an NPZ: each member's dtype, shape and CRC-32. A small in-memory
// index, so the checks are pure functions that tests feed directly; built from an NpzArchive by
// `npzIndexFromArchive` (or loaded from disk by npz-loader.ts).

export interface NpzMemberInfo {
  /** numpy dtype name (uint8, float16, ...), or the raw descr when the formats reader does not know it. */
  dtype: string;
  shape: number[];
  /** CRC-32 of the member's whole .npy file, from the zip directory. */
  crc32?: number;
  /** Uncompressed size of the member's .npy file in bytes. */
  size?: number;
  /** Set when the member's .npy header could not be read. */
  error?: string;
}

export interface NpzIndex {
  /** Path (or name) of the NPZ, for messages. */
  file?: string;
  /** Members by key: the zip name without ".npy". */
  members: Map<string, NpzMemberInfo>;
  /** Size of the NPZ file in bytes. */
  size?: number;
}

/** The NPZ could not be indexed: it is missing, or it is not a readable zip of .npy members. */
export interface NpzProblem {
  problem: 'missing' | 'unreadable';
  file: string;
  message: string;
}

export type NpzState = NpzIndex | NpzProblem;

export function isNpzProblem(s: NpzState | undefined): s is NpzProblem {
  return !!s && 'problem' in s;
}

/** `x.npy` → `x`; numpy's NpzFile accepts both spellings. */
export function memberKey(name: string): string {
  return name.endsWith('.npy') ? name.slice(0, -4) : name;
}

export function lookupMember(index: NpzIndex, name: string): NpzMemberInfo | undefined {
  return index.members.get(memberKey(name));
}

/** The structural part of formats/npz's NpzArchive that the index needs. */
export interface NpzArchiveLike {
  members: readonly { name: string; key: string; size: number; crc32: number }[];
  readHeader(name: string): Promise<{ dtype?: string; descr?: string; shape: number[] }>;
}

/** Reads every member's .npy header (in small parallel batches) into an index. Never throws for one bad member. */
export async function npzIndexFromArchive(archive: NpzArchiveLike, file?: string, size?: number): Promise<NpzIndex> {
  const members = new Map<string, NpzMemberInfo>();
  const list = archive.members;
  const batch = 32;
  for (let i = 0; i < list.length; i += batch) {
    const chunk = list.slice(i, i + batch);
    const headers = await Promise.all(
      chunk.map((m) =>
        archive.readHeader(m.name).then(
          (h) => ({ h, err: undefined }),
          (e: unknown) => ({ h: undefined, err: e instanceof Error ? e.message : String(e) }),
        ),
      ),
    );
    chunk.forEach((m, j) => {
      const { h, err } = headers[j];
      const key = m.key ?? memberKey(m.name);
      if (h) members.set(key, { dtype: h.dtype ?? h.descr ?? '?', shape: [...h.shape], crc32: m.crc32, size: m.size });
      else members.set(key, { dtype: '?', shape: [], crc32: m.crc32, size: m.size, error: err });
    });
  }
  return { file, members, size };
}

/** Levenshtein distance, bounded: returns max + 1 as soon as the distance must exceed max. */
export function editDistance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let prev = new Array<number>(b.length + 1);
  let cur = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    let rowMin = cur[0];
    for (let j = 1; j <= b.length; j++) {
      const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1;
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
      if (cur[j] < rowMin) rowMin = cur[j];
    }
    if (rowMin > max) return max + 1;
    [prev, cur] = [cur, prev];
  }
  return prev[b.length];
}

/** The existing member names nearest to `name` (at most `count`, distance ≤ a third of the name's length). */
export function nearestMembers(index: NpzIndex, name: string, count = 3): string[] {
  const key = memberKey(name);
  const max = Math.max(2, Math.floor(key.length / 3));
  const scored: { k: string; d: number }[] = [];
  for (const k of index.members.keys()) {
    const d = editDistance(key, k, max);
    if (d <= max) scored.push({ k, d });
  }
  scored.sort((x, y) => x.d - y.d || (x.k < y.k ? -1 : 1));
  const withNpy = name.endsWith('.npy');
  return scored.slice(0, count).map((s) => (withNpy ? `${s.k}.npy` : s.k));
}
