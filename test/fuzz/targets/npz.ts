// The NPZ/ZIP container: archives built by lib/zip.ts from valid .npy members (stored and deflated, with and
// without ZIP64 records), then one field at a time overridden (central directory sizes, offsets, counts, flags,
// methods, CRCs, names, ZIP64 extra fields and end records, deflate streams), plus byte mutations and the fixture
// archive mutated. Read through every entry point of the archive reader and through inspectSource with stats.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { FormatError } from '../../../server/src/formats/errors';
import { inspectSource } from '../../../server/src/formats/inspect';
import { openNpz } from '../../../server/src/formats/npz';
import { bufferSource } from '../../../server/src/formats/source';
import { applyByteOps, byteOp, INTERESTING, INTERESTING_BIG } from '../lib/mutate';
import { acceptedOrRefused, b64, Finding, type Target } from '../lib/target';
import { buildZip, type CdField, type ZipSpec } from '../lib/zip';
import { buildNpy, header, SEEDS as NPY_SEEDS } from './npy';

const ROOT = join(__dirname, '../../..');
const FIXTURE = readFileSync(join(ROOT, 'test/fixtures/manifests/tiny_quantized_q4.npz'));

const field32 = fc.oneof(
  fc.constantFrom(...INTERESTING),
  fc.nat({ max: 0xffffffff }),
  fc.integer({ min: 0, max: 4096 }),
);
const cdField = fc.constantFrom<CdField>(
  'flags',
  'method',
  'crc',
  'csize',
  'usize',
  'nameLen',
  'extraLen',
  'commentLen',
  'lho',
);
const memberName = fc.oneof(
  fc.constantFrom('w.npy', 'w_q4.npy', 'a/b.npy', 'dir/', '../x.npy', '/abs.npy', 'C:x.npy', 'w.npy', 'x', 'é.npy', ''),
  fc.string({ maxLength: 12 }).map((s) => `${s}.npy`),
);

const member = fc.record({
  name: memberName,
  data: fc.oneof(
    fc.nat({ max: NPY_SEEDS.length - 1 }).map((i) => new Uint8Array(NPY_SEEDS[i])),
    header.map((h) => new Uint8Array(buildNpy(h))),
  ),
  deflate: fc.boolean(),
  cd: fc.option(fc.dictionary(cdField, field32, { maxKeys: 2 }), { nil: undefined }),
  local: fc.option(
    fc.record({ method: fc.constantFrom(0, 8, 12), nameLen: field32, extraLen: field32 }, { requiredKeys: [] }),
    { nil: undefined },
  ),
  zip64: fc.option(
    fc.record(
      {
        usize: fc.constantFrom(...INTERESTING_BIG),
        csize: fc.constantFrom(...INTERESTING_BIG),
        offset: fc.constantFrom(...INTERESTING_BIG),
      },
      { requiredKeys: [] },
    ),
    { nil: undefined },
  ),
});

const spec: fc.Arbitrary<ZipSpec> = fc.record({
  members: fc.array(member, { minLength: 0, maxLength: 4 }),
  eocd: fc.option(
    fc.record(
      {
        disk: field32,
        cdDisk: field32,
        countDisk: field32,
        count: field32,
        cdSize: field32,
        cdOffset: field32,
        commentLen: field32,
      },
      { requiredKeys: [] },
    ),
    { nil: undefined },
  ),
  comment: fc.option(fc.uint8Array({ maxLength: 64 }), { nil: undefined }),
  zip64: fc.option(
    fc.record(
      {
        count: fc.constantFrom(...INTERESTING_BIG),
        cdSize: fc.constantFrom(...INTERESTING_BIG),
        cdOffset: fc.constantFrom(...INTERESTING_BIG),
        e64Offset: fc.constantFrom(...INTERESTING_BIG),
      },
      { requiredKeys: [] },
    ),
    { nil: null },
  ),
});

// Field overrides mostly one or two at a time: drop all but a few of them so most archives are nearly valid.
const input = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.tuple(spec, fc.array(byteOp, { maxLength: 2 })).map(([s, ops]) => applyByteOps(buildZip(s), ops)),
  },
  { weight: 1, arbitrary: fc.array(byteOp, { maxLength: 8 }).map((ops) => applyByteOps(FIXTURE, ops)) },
);

/** Every read path of the archive reader, as the inspector, the converter's checks and the CLI use them. */
export async function readNpzEverywhere(bytes: Uint8Array): Promise<void> {
  const name = 'fuzz.npz';
  await acceptedOrRefused(
    async () => {
      const z = await openNpz(bufferSource(bytes, name));
      for (const m of z.members) {
        await acceptedOrRefused(
          async () => {
            const h = await z.readHeader(m.name);
            await z.readData(m.name, 0, Math.min(h.dataBytes, 64));
            if (h.dataBytes > 3) await z.readData(m.name, h.dataBytes - 3, 3);
            let n = 0;
            for await (const c of z.dataChunks(m.name, 16)) n += c.length;
            if (n !== h.dataBytes) throw new Finding(`dataChunks gave ${n} bytes of ${h.dataBytes} without an error`);
            await z.readArray(m.name);
          },
          [FormatError],
          name,
        );
        await acceptedOrRefused(() => z.verify(m.name), [FormatError], name);
      }
      await z.close();
    },
    [FormatError],
    name,
  );
  await acceptedOrRefused(
    () => inspectSource(bufferSource(bytes, name), { stats: true, chunkBytes: 64 }),
    [FormatError],
    name,
  );
}

export const target: Target<Uint8Array> = {
  name: 'npz',
  describe: 'the NPZ/ZIP container: central directory, ZIP64, deflate; openNpz and all its readers, inspectSource',
  arbitrary: () => input,
  check: readNpzEverywhere,
  serialize: b64,
};
