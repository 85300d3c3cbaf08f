// The shard index (model.safetensors.index.json) with its shards, as convert reads a checkpoint folder
// (openCheckpoint, readRows, readF32) and as the Hub client reads it to pick the shards (shardsFromIndex). The
// index is edited field by field (weight_map entries renamed, pointed at missing, traversing or odd files, given
// wrong types) and sometimes one shard is mutated too. The folder must be left as it was (nothing written).
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { FormatError } from '../../../server/src/formats/errors';
import {
  encodeSafetensors,
  openCheckpoint,
  SAFETENSORS_DTYPE_BITS,
  type SafetensorsInput,
} from '../../../server/src/formats/safetensors';
import { HubError } from '../../../server/src/hub/errors';
import { shardsFromIndex } from '../../../server/src/hub/files';
import { tempDir } from '../../helpers/tmp';
import { applyByteOps, applyJsonOps, byteOp, jsonOp } from '../lib/mutate';
import { acceptedOrRefused, Finding, type Target } from '../lib/target';

const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 13 + 1) & 0xff);
const T = (name: string, dtype: SafetensorsInput['dtype'], shape: number[]): SafetensorsInput => ({
  name,
  dtype,
  shape,
  data: bytes((shape.reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPE_BITS[dtype]) / 8),
});
const SHARDS: Record<string, Buffer> = {
  'model-00001-of-00002.safetensors': encodeSafetensors([T('a.weight', 'F32', [4, 3]), T('b.weight', 'BF16', [2, 8])]),
  'model-00002-of-00002.safetensors': encodeSafetensors([T('c.weight', 'F16', [3, 3]), T('d', 'F32', [5])]),
};
const INDEX = {
  metadata: { total_size: 200 },
  weight_map: {
    'a.weight': 'model-00001-of-00002.safetensors',
    'b.weight': 'model-00001-of-00002.safetensors',
    'c.weight': 'model-00002-of-00002.safetensors',
    d: 'model-00002-of-00002.safetensors',
  },
};

interface Input {
  index: string;
  shard?: { which: number; bytes: string };
}

const fileName = fc.constantFrom(
  'model-00001-of-00002.safetensors',
  'model-00002-of-00002.safetensors',
  'missing.safetensors',
  '../model-00001-of-00002.safetensors',
  '/etc/passwd',
  '.hidden.safetensors',
  'sub/x.safetensors',
  'model.bin',
  'model-00001-of-00002.safetensors\0',
);
const input: fc.Arbitrary<Input> = fc.record(
  {
    index: fc.oneof(
      fc
        .tuple(
          fc.array(jsonOp, { minLength: 1, maxLength: 4 }),
          fc.dictionary(fc.string({ maxLength: 8 }), fileName, { maxKeys: 2 }),
        )
        .map(([ops, extra]) => {
          const doc = applyJsonOps(INDEX, ops) as { weight_map?: Record<string, unknown> };
          if (doc && typeof doc === 'object' && doc.weight_map && typeof doc.weight_map === 'object')
            Object.assign(doc.weight_map, extra);
          return JSON.stringify(doc) ?? '';
        }),
      fc
        .array(byteOp, { minLength: 1, maxLength: 4 })
        .map((ops) => Buffer.from(applyByteOps(Buffer.from(JSON.stringify(INDEX)), ops)).toString('latin1')),
    ),
    shard: fc.tuple(fc.nat({ max: 1 }), fc.array(byteOp, { minLength: 1, maxLength: 4 })).map(([which, ops]) => ({
      which,
      bytes: Buffer.from(applyByteOps(Object.values(SHARDS)[which], ops)).toString('base64'),
    })),
  },
  { requiredKeys: ['index'] },
);

let dir = '';
export const target: Target<Input> = {
  name: 'shard-index',
  describe: 'model.safetensors.index.json and its shards: openCheckpoint, readRows, readF32, shardsFromIndex',
  arbitrary: () => input,
  async setup() {
    dir = tempDir('apl-fuzz-ckpt-');
  },
  async teardown() {
    rmSync(dir, { recursive: true, force: true });
  },
  async check(x) {
    for (const [n, b] of Object.entries(SHARDS)) writeFileSync(join(dir, n), b);
    if (x.shard) writeFileSync(join(dir, Object.keys(SHARDS)[x.shard.which]), Buffer.from(x.shard.bytes, 'base64'));
    writeFileSync(join(dir, 'model.safetensors.index.json'), x.index);
    const before = readdirSync(dir).sort().join();
    await acceptedOrRefused(async () => {
      const c = await openCheckpoint(dir);
      try {
        for (const t of c.tensors) {
          await c.readRows(t.name, 0, 1);
          if (t.dtype === 'F32' || t.dtype === 'F16' || t.dtype === 'BF16') await c.readF32(t.name);
        }
      } finally {
        await c.close();
      }
    }, [FormatError]);
    await acceptedOrRefused(
      () => shardsFromIndex(x.index, 'repo@main/model.safetensors.index.json'),
      [HubError],
      'repo@main',
    );
    const after = readdirSync(dir).sort().join();
    if (after !== before) throw new Finding(`the checkpoint folder changed: ${before} → ${after}`);
  },
  serialize: (x) => JSON.stringify(x),
};
