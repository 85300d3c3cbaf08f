// The .npy header and data: headers built field by field (version, header length, descr, fortran_order, shape,
// extra keys, data length), then mutated byte by byte; read with parseNpyHeader and readNpyArray, and through
// inspectSource (format detection, stats) as the inspector and `apl-quant inspect` read them.
import fc from 'fast-check';
import { FormatError } from '../../../server/src/formats/errors';
import { inspectSource } from '../../../server/src/formats/inspect';
import { encodeNpyHeader, type NP_DTYPES, readNpyArray } from '../../../server/src/formats/npy';
import { bufferSource } from '../../../server/src/formats/source';
import { applyByteOps, byteOp, INTERESTING } from '../lib/mutate';
import { acceptedOrRefused, b64, type Target } from '../lib/target';

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);

function seedFile(dtype: (typeof NP_DTYPES)[number], shape: number[], fortran = false): Buffer {
  const h = encodeNpyHeader({ dtype, shape, fortranOrder: fortran });
  const n = shape.reduce((a, b) => a * b, 1);
  const item = Number(/\d+$/.exec(dtype === 'bool' ? 'b1' : dtype)?.[0] ?? 8) / 8 || 1;
  const data = Buffer.alloc(n * Math.max(1, item));
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + 11) & 0xff;
  return Buffer.concat([h, data]);
}

export const SEEDS: Buffer[] = [
  seedFile('float32', [3, 4]),
  seedFile('float16', [5]),
  seedFile('int8', [2, 3, 2], true),
  seedFile('uint64', []),
  seedFile('bool', [0, 7]),
  seedFile('float64', [2, 2]),
];

const descr = fc.oneof(
  fc.constantFrom('<f4', '>f4', '|u1', '<i8', '>u8', '<f2', '|b1', '=i4', '<f8', '>i2'),
  fc.constantFrom('<c8', '<U10', 'O', '<f16', '', '<f4 ', '<V8', "<f4'", '|S3', '<M8[ns]'),
  fc.string({ maxLength: 8 }),
);
const dim = fc.oneof(
  fc.integer({ min: 0, max: 6 }),
  fc.constantFrom(-1, 2 ** 31, 2 ** 53 - 1, 2 ** 53, 1e300),
  fc.nat(),
);
const pyValue = (v: unknown): string =>
  typeof v === 'string' ? `'${v}'` : typeof v === 'boolean' ? (v ? 'True' : 'False') : String(v);

export const header = fc.record({
  version: fc.oneof(fc.constantFrom(1, 2, 3), fc.integer({ min: 0, max: 255 })),
  descr: fc.oneof(descr.map(pyValue), fc.constantFrom("[('a', '<f4')]", '3', 'None', '"<f4"')),
  fortran: fc.constantFrom('False', 'True', '0', "'no'", 'None'),
  shape: fc.oneof(
    fc.array(dim, { maxLength: 5 }).map((s) => (s.length === 1 ? `(${s[0]},)` : `(${s.join(', ')})`)),
    fc.constantFrom(
      '[2, 3]',
      '((2,),)',
      '(2L, 3L)',
      '()',
      '(True,)',
      "('a',)",
      '(-0,)',
      '((((((((((1,),),),),),),),),),)',
    ),
  ),
  extra: fc.constantFrom('', "'x': 1, ", "'descr': '<f4', ", "'shape': (), "),
  order: fc.constantFrom(0, 1, 2),
  close: fc.constantFrom('}', '', '}}', '} x', '}\0'),
  hlenDelta: fc.oneof(fc.constant(0), fc.integer({ min: -16, max: 16 }), fc.constantFrom(...INTERESTING)),
  pad: fc.integer({ min: 0, max: 80 }),
  dataBytes: fc.oneof(fc.integer({ min: 0, max: 256 }), fc.constant(-1)),
});

export function buildNpy(h: HeaderSpec): Buffer {
  const fields = [`'descr': ${h.descr}`, `'fortran_order': ${h.fortran}`, `'shape': ${h.shape}`];
  const ordered = h.order === 1 ? fields.reverse() : h.order === 2 ? [fields[1], fields[2], fields[0]] : fields;
  const dict = Buffer.from(`{${h.extra}${ordered.join(', ')}, ${h.close}${' '.repeat(h.pad)}\n`, 'latin1');
  const major = h.version;
  const prefix = major === 1 ? 10 : 12;
  const pre = Buffer.alloc(prefix);
  MAGIC.copy(pre, 0);
  pre[6] = major;
  pre[7] = 0;
  if (major === 1) pre.writeUInt16LE((dict.length + h.hlenDelta) & 0xffff, 8);
  else pre.writeUInt32LE((dict.length + h.hlenDelta) >>> 0, 8);
  const data = Buffer.alloc(Math.max(0, h.dataBytes === -1 ? 24 : h.dataBytes), 0x3f);
  return Buffer.concat([pre, dict, data]);
}
export type HeaderSpec = {
  version: number;
  descr: string;
  fortran: string;
  shape: string;
  extra: string;
  order: number;
  close: string;
  hlenDelta: number;
  pad: number;
  dataBytes: number;
};

const input = fc.oneof(
  fc
    .tuple(fc.nat({ max: SEEDS.length - 1 }), fc.array(byteOp, { maxLength: 6 }))
    .map(([i, ops]) => applyByteOps(SEEDS[i], ops)),
  fc.tuple(header, fc.array(byteOp, { maxLength: 2 })).map(([h, ops]) => applyByteOps(buildNpy(h), ops)),
);

/** Reads `bytes` as the product does; resolves when accepted or refused with a FormatError naming the file. */
export async function readNpyEverywhere(bytes: Uint8Array): Promise<void> {
  const name = 'fuzz.npy';
  await acceptedOrRefused(() => readNpyArray(bufferSource(bytes, name)), [FormatError], name);
  await acceptedOrRefused(() => inspectSource(bufferSource(bytes, name), { stats: true }), [FormatError], name);
}

export const target: Target<Uint8Array> = {
  name: 'npy',
  describe: 'the .npy header and data: parseNpyHeader, readNpyArray, inspectSource',
  arbitrary: () => input,
  check: readNpyEverywhere,
  serialize: b64,
};
