// The safetensors header: files built with encodeSafetensors, their JSON header edited field by field (dtype,
// shape, data_offsets, __metadata__, extra keys) and re-encoded with a right or wrong length prefix, plus byte
// mutations. Read with openSafetensors (readRaw and readF32 of every tensor) and inspectSource with stats.
import fc from 'fast-check';
import { FormatError } from '../../../server/src/formats/errors';
import { inspectSource } from '../../../server/src/formats/inspect';
import {
  encodeSafetensors,
  openSafetensors,
  SAFETENSORS_DTYPE_BITS,
  type SafetensorsInput,
} from '../../../server/src/formats/safetensors';
import { bufferSource } from '../../../server/src/formats/source';
import { applyByteOps, applyJsonOps, byteOp, INTERESTING, jsonOp } from '../lib/mutate';
import { acceptedOrRefused, b64, Finding, type Target } from '../lib/target';

const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 29 + 3) & 0xff);
const T = (name: string, dtype: SafetensorsInput['dtype'], shape: number[]): SafetensorsInput => ({
  name,
  dtype,
  shape,
  data: bytes((shape.reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPE_BITS[dtype]) / 8),
});

export const SEEDS: Buffer[] = [
  encodeSafetensors([T('a.weight', 'F32', [3, 4]), T('b', 'F16', [5]), T('c', 'BF16', [2, 2])], { format: 'pt' }),
  encodeSafetensors([T('s', 'F32', []), T('e', 'I8', [0, 3]), T('u', 'U8', [7])]),
  encodeSafetensors([T('x', 'F4', [4]), T('y', 'F64', [1, 1]), T('z', 'BOOL', [3]), T('w', 'I64', [2])]),
];

function split(file: Buffer): { header: unknown; data: Buffer } {
  const n = Number(file.readBigUInt64LE(0));
  return { header: JSON.parse(file.subarray(8, 8 + n).toString('utf8')), data: file.subarray(8 + n) };
}
const PARSED = SEEDS.map(split);

/** A header object and data, re-encoded: the length prefix right, or off by `delta`. */
export function encodeRaw(header: unknown, data: Uint8Array, delta = 0, text?: string): Buffer {
  const hb = Buffer.from(text ?? JSON.stringify(header) ?? '', 'utf8');
  const pre = Buffer.alloc(8);
  pre.writeBigUInt64LE(BigInt(Math.max(0, hb.length + delta)));
  return Buffer.concat([pre, hb, data]);
}

const headerEdit = fc.record({
  seed: fc.nat({ max: PARSED.length - 1 }),
  ops: fc.array(jsonOp, { minLength: 1, maxLength: 4 }),
  delta: fc.oneof(
    { weight: 4, arbitrary: fc.constant(0) },
    fc.integer({ min: -8, max: 8 }),
    fc.constantFrom(...INTERESTING),
  ),
  dataCut: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, fc.integer({ min: -64, max: 64 })),
});

const input = fc.oneof(
  headerEdit.map(({ seed, ops, delta, dataCut }) => {
    const { header, data } = PARSED[seed];
    const d =
      dataCut < 0 ? data.subarray(0, Math.max(0, data.length + dataCut)) : Buffer.concat([data, Buffer.alloc(dataCut)]);
    return new Uint8Array(encodeRaw(applyJsonOps(header, ops), d, delta));
  }),
  fc
    .tuple(fc.nat({ max: SEEDS.length - 1 }), fc.array(byteOp, { minLength: 1, maxLength: 6 }))
    .map(([i, ops]) => applyByteOps(SEEDS[i], ops)),
);

export async function readSafetensorsEverywhere(b: Uint8Array, name = 'fuzz.safetensors'): Promise<void> {
  await acceptedOrRefused(
    async () => {
      const f = await openSafetensors(bufferSource(b, name));
      for (const t of f.tensors) {
        const raw = await f.readRaw(t.name);
        if (raw.length !== t.byteLength) throw new Finding(`readRaw gave ${raw.length} bytes of ${t.byteLength}`);
        if (t.dtype === 'F32' || t.dtype === 'F16' || t.dtype === 'BF16') {
          const v = await f.readF32(t.name);
          const n = t.shape.reduce((a, x) => a * x, 1);
          if (v.length !== n) throw new Finding(`readF32 gave ${v.length} values of ${n}`);
        } else await acceptedOrRefused(() => f.readF32(t.name), [Error], 'cannot convert');
      }
      await f.close();
    },
    [FormatError],
    name,
  );
  await acceptedOrRefused(
    () => inspectSource(bufferSource(b, name), { stats: true, chunkBytes: 64 }),
    [FormatError],
    name,
  );
}

export const target: Target<Uint8Array> = {
  name: 'safetensors',
  describe: 'the safetensors header and data: openSafetensors, readRaw, readF32, inspectSource',
  arbitrary: () => input,
  check: (b) => readSafetensorsEverywhere(b),
  serialize: b64,
};
