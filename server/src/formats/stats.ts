// Streaming tensor statistics for `apl-quant inspect --stats`: min, max, mean, std (population, like numpy's
// default), NaN and Inf counts, fed one chunk at a time so memory stays bounded by the chunk. The arithmetic is the
// engine's (native/index.ts StatsAccumulator: native code, with native/reference-stats.ts as its spec and fallback).
import {
  ELEMENT_SIZES,
  type ElementDType,
  isElementDType,
  StatsAccumulator,
  type StatsSummary,
} from '../../../native/index';

export { StatsAccumulator };

export type TensorStatsResult = StatsSummary;

/** Element kinds the accumulator can decode, spelled as numpy (and ml_dtypes) spell them. */
export type StatsDtype = ElementDType;

export function isStatsDtype(d: string): d is StatsDtype {
  return isElementDType(d);
}

/** Statistics over a stream of raw chunks (each a whole number of elements; a trailing partial one is ignored). */
export async function streamStats(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  dtype: StatsDtype,
  littleEndian = true,
): Promise<TensorStatsResult> {
  const acc = new StatsAccumulator();
  const size = ELEMENT_SIZES[dtype];
  for await (const c of chunks) acc.add(c.subarray(0, c.byteLength - (c.byteLength % size)), dtype, littleEndian);
  return acc.result();
}
