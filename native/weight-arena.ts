// One block of memory for a model's weights, in 2 MiB pages from the first touch (Linux transparent huge pages):
// the buffer is allocated untouched, its whole 2 MiB pages are advised MADV_HUGEPAGE (native/src/infer/hugepages.h
// advise_arena) and only then are the packed bytes read or copied into it, so every page the kernels stream is a
// 2 MiB page from the start: no collapse afterwards (the model's MADV_COLLAPSE stays as the fallback where the
// kernel gave 4 KiB pages anyway), and no partial 4 KiB pages at the ends of each weight's buffer. Weights start at
// the first 2 MiB boundary inside the buffer, each at a multiple of ARENA_ALIGN; the arena's size is rounded up to
// whole 2 MiB pages (≤ 2 MiB more resident than the weights; the slack before the boundary is never touched).
// APL_HUGE=0 (4 KiB pages, for A/B runs) and an addon without the advice give no arena: the callers then allocate
// each weight as before.
import { constants } from 'node:buffer';
import type { LinearWeight, ModelWeights } from './forward-types';
import { nativeAddon } from './index';

export const HUGE_PAGE = 2 << 20;
/** Each weight's bytes start at a multiple of this (a cache line; the kernels' widest load). */
export const ARENA_ALIGN = 64;
/** Below this many bytes of weights an arena is not worth it (a 2 MiB page for a few KiB): the loaders skip it. */
export const ARENA_MIN_BYTES = 4 << 20;

const MAX_LENGTH = constants.MAX_LENGTH;
const up = (n: number, a: number) => Math.ceil(n / a) * a;

export interface WeightArena {
  /** `bytes` bytes of the arena, not yet touched, at a multiple of ARENA_ALIGN. Throws when the arena is full. */
  take(bytes: number): Uint8Array;
  /** Whether the kernel took the MADV_HUGEPAGE advice (it may still hand out 4 KiB pages when short of 2 MiB ones). */
  readonly advised: boolean;
  /**
   * Faults the arena's pages in from the back on a libuv pool thread while the caller fills it from the front
   * (hugepages.h populate_back: the first-touch cost on two cores instead of one); resolves to the bytes it
   * faulted in (0 where the advice was not taken). The caller awaits it before handing the weights on.
   */
  populate(): Promise<number>;
  /** The bytes the weights may use (whole 2 MiB pages) and the bytes taken so far (with alignment). */
  readonly capacity: number;
  readonly used: number;
}

interface ArenaAddon {
  inferArena(bytes: Uint8Array): { offset: number; bytes: number; advised: boolean };
  inferArenaPopulate?(bytes: Uint8Array): Promise<number>;
}

/** The arena bytes `sizes` take, each rounded up to ARENA_ALIGN (what createWeightArena is asked for). */
export function arenaBytes(sizes: Iterable<number>): number {
  let n = 0;
  for (const s of sizes) n += up(s, ARENA_ALIGN);
  return n;
}

/**
 * An arena for `bytes` bytes of weights (arenaBytes of their sizes), or null with APL_HUGE=0, without the addon's
 * advice, or for fewer than `minBytes` (ARENA_MIN_BYTES unless given).
 */
export function createWeightArena(bytes: number, minBytes = ARENA_MIN_BYTES): WeightArena | null {
  if (process.env.APL_HUGE === '0' || !(bytes >= minBytes) || bytes <= 0) return null;
  const a = nativeAddon() as Partial<ArenaAddon> | null;
  if (typeof a?.inferArena !== 'function') return null;
  const capacity = up(bytes, HUGE_PAGE);
  // untouched: Node takes a buffer this large straight from mmap (malloc's threshold), and allocUnsafeSlow does
  // not clear it; one 2 MiB page of slack for the boundary
  // one Buffer holds at most buffer.constants.MAX_LENGTH (4 GiB in Node 20): larger models keep a buffer per
  // member (and the model's collapse), as does a failed allocation
  if (capacity + HUGE_PAGE > MAX_LENGTH) return null;
  let buf: Buffer;
  try {
    buf = Buffer.allocUnsafeSlow(capacity + HUGE_PAGE);
  } catch {
    return null;
  }
  const advice = a.inferArena(buf);
  if (advice.offset + capacity > buf.length) return null; // cannot happen (offset < 2 MiB); no arena rather than a short one
  let used = 0;
  return {
    advised: advice.advised,
    capacity,
    get used() {
      return used;
    },
    populate(): Promise<number> {
      if (!advice.advised || !a.inferArenaPopulate) return Promise.resolve(0);
      return a.inferArenaPopulate(new Uint8Array(buf.buffer, buf.byteOffset + advice.offset, capacity));
    },
    take(n: number): Uint8Array {
      const at = used;
      if (!Number.isSafeInteger(n) || n < 0 || at + n > capacity) {
        throw new Error(`weight arena: ${n} bytes asked for at ${at}, past its ${capacity} bytes`);
      }
      used = up(at + n, ARENA_ALIGN);
      return new Uint8Array(buf.buffer, buf.byteOffset + advice.offset + at, n);
    },
  };
}

/** The byte arrays of a linear weight (packed: q, scales, zeros; kquant: q, codes, d, dmin; float: data). */
export function weightArrays(w: LinearWeight): Uint8Array[] {
  if (w.kind === 'packed') return [w.q, w.scales, w.zeros];
  if (w.kind === 'kquant') return [w.q, w.codes, w.d, w.dmin];
  return [w.data];
}

function copyInto(w: LinearWeight, arena: WeightArena): LinearWeight {
  const c = (x: Uint8Array) => {
    const t = arena.take(x.length);
    t.set(x);
    return t;
  };
  if (w.kind === 'packed') return { ...w, q: c(w.q), scales: c(w.scales), zeros: c(w.zeros) };
  if (w.kind === 'kquant') return { ...w, q: c(w.q), codes: c(w.codes), d: c(w.d), dmin: c(w.dmin) };
  return { ...w, data: c(w.data) };
}

/**
 * The same weights with every linear's bytes copied into one weight arena (the layers' in order, then the LM head,
 * then the embedding table; a tied head stays the embedding's object), or `w` itself where createWeightArena gives
 * none. For weights built in memory (benches, tests); the NPZ loader reads into an arena directly.
 */
export function weightsInArena(w: ModelWeights, minBytes = ARENA_MIN_BYTES): ModelWeights {
  const lins: LinearWeight[] = [];
  for (const L of w.layers) lins.push(L.q, L.k, L.v, L.o, L.gate, L.up, L.down);
  lins.push(w.lmHead, w.embed);
  const uniq = [...new Set(lins)];
  const arena = createWeightArena(arenaBytes(uniq.flatMap(weightArrays).map((x) => x.length)), minBytes);
  if (!arena) return w;
  const moved = new Map(uniq.map((x) => [x, copyInto(x, arena)]));
  const m = (x: LinearWeight) => moved.get(x) as LinearWeight;
  return {
    ...w,
    layers: w.layers.map((L) => ({
      ...L,
      q: m(L.q),
      k: m(L.k),
      v: m(L.v),
      o: m(L.o),
      gate: m(L.gate),
      up: m(L.up),
      down: m(L.down),
    })),
    lmHead: m(w.lmHead),
    embed: m(w.embed),
  };
}
