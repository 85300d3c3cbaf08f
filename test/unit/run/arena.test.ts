// The weight arena (native/weight-arena.ts) and the NPZ loader that reads into it (server/src/run/load.ts): every
// linear of a model in one buffer at 64-byte steps, the same bytes and logits as the buffer-per-member load, the
// buffer untouched until the weights are read (so the 2 MiB-page advice comes first), APL_HUGE=0 and an absent
// advice giving the old load, and a short read naming the file. The advice itself (where the 2 MiB pages start,
// a refusal) is tested natively: test/native/test_hugepages.cc.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { LinearWeight, ModelWeights } from '../../../native/forward-types';
import { nativeAddon } from '../../../native/index';
import {
  ARENA_ALIGN,
  arenaBytes,
  createWeightArena,
  HUGE_PAGE,
  weightArrays,
  weightsInArena,
} from '../../../native/weight-arena';
import { createForward } from '../../../server/src/run/engine';
import { loadModel, readManifest, readNpzWeight } from '../../../server/src/run/load';
import { convertTiny, goldenPrompt, openNpzFile } from './helpers';

const hasAdvice = typeof (nativeAddon() as { inferArena?: unknown } | null)?.inferArena === 'function';
const skip = hasAdvice ? false : 'the native addon has no inferArena (npm run build:native)';
// Linux with transparent huge pages in its kernel: the advice is taken (whatever the enabled mode) and shows in smaps.
const thp = process.platform === 'linux' && existsSync('/sys/kernel/mm/transparent_hugepage/enabled');

function linears(w: ModelWeights): LinearWeight[] {
  const out: LinearWeight[] = [];
  for (const L of w.layers) out.push(L.q, L.k, L.v, L.o, L.gate, L.up, L.down);
  out.push(w.lmHead, w.embed);
  return [...new Set(out)];
}

/** Every array of the linears: one ArrayBuffer, 64-byte steps, no overlaps. */
function assertOneArena(w: ModelWeights) {
  const arrays = linears(w).flatMap(weightArrays);
  const buf = arrays[0].buffer;
  const spans = arrays.map((a) => [a.byteOffset, a.byteOffset + a.length]).sort((x, y) => x[0] - y[0]);
  for (const a of arrays) assert.equal(a.buffer, buf, 'a linear outside the arena');
  for (const [lo] of spans)
    assert.equal((lo - spans[0][0]) % ARENA_ALIGN, 0, `offset ${lo} off the ${ARENA_ALIGN}-byte steps`);
  for (let i = 1; i < spans.length; i++) assert.ok(spans[i][0] >= spans[i - 1][1], 'arrays overlap');
}

test('loadModel reads the linears into one arena: same bytes and logits as a buffer per member', {
  skip,
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'apl-arena-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, bits, format] of [
    ['tiny-llama', 4, 'groupwise'],
    ['tiny-gemma', 2, 'kquant'],
  ] as const) {
    const manifest = await convertTiny(name, bits, dir, format);
    const a = await loadModel(manifest, { arena: true });
    const b = await loadModel(manifest, { arena: false });
    assertOneArena(a.weights);
    const la = linears(a.weights);
    const lb = linears(b.weights);
    assert.equal(la.length, lb.length);
    assert.notEqual(
      lb[0].kind === 'float' ? lb[0].data.buffer : weightArrays(lb[0])[0].buffer,
      weightArrays(la[0])[0].buffer,
    );
    for (let i = 0; i < la.length; i++) {
      const [x, y] = [weightArrays(la[i]), weightArrays(lb[i])];
      assert.equal(x.length, y.length);
      for (let j = 0; j < x.length; j++)
        assert.deepEqual(Buffer.from(x[j]), Buffer.from(y[j]), `${name} linear ${i}.${j}`);
    }
    // the norms stay float32 arrays of their own
    assert.notEqual(a.weights.layers[0].inputNorm.buffer, weightArrays(la[0])[0].buffer);
    const ids = goldenPrompt(name);
    const fa = createForward(a.config, a.weights, { contextLength: 32 }).forward(ids, 0, true);
    const fb = createForward(b.config, b.weights, { contextLength: 32 }).forward(ids, 0, true);
    assert.deepEqual(Buffer.from(fa.buffer), Buffer.from(fb.buffer), `${name}: logits differ`);
    // by default a model this small (KiB) gets no arena
    const c = await loadModel(manifest);
    assert.notEqual(weightArrays(linears(c.weights)[0])[0].buffer, weightArrays(linears(c.weights)[1])[0].buffer);
  }
});

test('APL_HUGE=0 gives no arena (the old load, 4 KiB pages)', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'apl-arena0-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const manifest = await convertTiny('tiny-llama', 8, dir, 'groupwise');
  process.env.APL_HUGE = '0';
  try {
    assert.equal(createWeightArena(64 << 20), null);
    const m = await loadModel(manifest, { arena: true });
    const l = linears(m.weights);
    assert.notEqual(weightArrays(l[0])[0].buffer, weightArrays(l[1])[0].buffer);
  } finally {
    delete process.env.APL_HUGE;
  }
});

const rssKb = (): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : Number.NaN;
};

/** Resident kB of each mapping advised MADV_HUGEPAGE ("hg" in VmFlags; "start-end" → Rss), from /proc/self/smaps. */
const hugeAdvisedRssKb = (): Map<string, number> => {
  const m = new Map<string, number>();
  let range = '';
  let rss = 0;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^([0-9a-f]+-[0-9a-f]+) /.exec(line);
    if (head) range = head[1];
    const r = /^Rss:\s+(\d+) kB/.exec(line);
    if (r) rss = Number(r[1]);
    if (line.startsWith('VmFlags:') && line.split(/\s+/).includes('hg')) m.set(range, rss);
  }
  return m;
};

/** The most kB any one advised mapping grew by between two hugeAdvisedRssKb() (a new mapping counts whole). */
const grownKb = (before: Map<string, number>, after: Map<string, number>): number => {
  let kb = 0;
  for (const [range, rss] of after) kb = Math.max(kb, rss - (before.get(range) ?? 0));
  return kb;
};

test('an arena is whole 2 MiB pages, untouched until written, advised, populated on request, full when full', {
  skip,
}, async () => {
  const asked = 3 * HUGE_PAGE + 100;
  const before = rssKb();
  const a = createWeightArena(asked);
  assert.ok(a);
  const after = rssKb();
  assert.equal(a.capacity, 4 * HUGE_PAGE);
  if (thp) {
    assert.equal(a.advised, true, 'madvise(MADV_HUGEPAGE) refused');
    // allocating touched nothing (the advice must come before the first touch): under 1 MiB more resident
    assert.ok(after - before < 1024, `allocating the arena made ${after - before} kB resident`);
  }
  if (thp) {
    // populate faults every page in (from the back, off the main thread): the whole arena resident, bytes unread.
    // Counted in the arena's own mapping (the advised one that grew), not as the process's RSS: memory the garbage
    // collector returns meanwhile elsewhere hid ~5 MB of it in one npm test run, and the heap grows around it too.
    const mapsBefore = hugeAdvisedRssKb();
    assert.equal(await a.populate(), a.capacity);
    const populated = grownKb(mapsBefore, hugeAdvisedRssKb());
    assert.ok(populated >= (a.capacity >> 10) - 1024, `populate made ${populated} kB resident of ${a.capacity >> 10}`);
  }
  const x = a.take(10);
  const y = a.take(HUGE_PAGE);
  assert.equal(y.byteOffset - x.byteOffset, ARENA_ALIGN);
  assert.equal(a.used, ARENA_ALIGN + HUGE_PAGE);
  y.fill(7);
  assert.throws(() => a.take(3 * HUGE_PAGE), /past its 8388608 bytes/);
  assert.equal(arenaBytes([1, 64, 65]), 64 + 64 + 128);
  assert.equal(createWeightArena(1000), null, 'below ARENA_MIN_BYTES');
  assert.equal(createWeightArena(2 ** 53), null, 'past what one Buffer holds: no arena, not a throw');
  assert.ok(createWeightArena(1000, 1));
});

test('weightsInArena: the same bytes in one arena, a tied head kept tied', { skip }, () => {
  const w = (rows: number, cols: number): LinearWeight => ({
    kind: 'packed',
    rows,
    cols,
    bits: 4,
    groupSize: 64,
    q: Uint8Array.from({ length: (rows * cols) / 2 }, (_, i) => (i * 37) & 255),
    scales: new Uint8Array(rows * (cols / 64) * 2).fill(1),
    zeros: new Uint8Array(rows * (cols / 64) * 2).fill(2),
    scaleDtype: 'f16',
  });
  const embed = w(512, 1024);
  const layer = { inputNorm: new Float32Array(4), postAttnNorm: new Float32Array(4) };
  const src: ModelWeights = {
    embed,
    lmHead: embed,
    finalNorm: new Float32Array(4),
    layers: [
      {
        ...layer,
        q: w(64, 1024),
        k: w(64, 1024),
        v: w(64, 1024),
        o: w(64, 1024),
        gate: w(64, 1024),
        up: w(64, 1024),
        down: w(64, 1024),
      },
    ],
  };
  const m = weightsInArena(src, 1);
  assertOneArena(m);
  assert.equal(m.lmHead, m.embed);
  assert.deepEqual(Buffer.from(weightArrays(m.embed)[0]), Buffer.from(weightArrays(embed)[0]));
  assert.deepEqual(Buffer.from(weightArrays(m.layers[0].down)[0]), Buffer.from(weightArrays(src.layers[0].down)[0]));
  assert.equal(weightsInArena(src), src, 'small weights: no arena, the same object');
});

test('a short read into the arena names the file', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'apl-arena-short-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const manifestPath = await convertTiny('tiny-llama', 4, dir, 'groupwise');
  const m = readManifest(manifestPath);
  const npzPath = join(dir, m.metadata.npz);
  const npz = await openNpzFile(npzPath);
  t.after(() => npz.close());
  const e = m.weights.find((x) => x.name === 'model.layers.1.mlp.down_proj.weight');
  assert.ok(e);
  await npz.readHeader(e.q); // the header is read; the data then goes missing under the loader
  const arena = createWeightArena(1 << 20, 1);
  const at = (await npz.readHeader(e.q)).headerBytes;
  const member = npz.member(e.q);
  assert.ok(member && !member.compressed);
  truncateSync(npzPath, member.localHeaderOffset + 30 + member.name.length + at + 10);
  await assert.rejects(readNpzWeight(npz, e, npzPath, arena), (err: Error) => {
    assert.ok(err.message.startsWith(`${npzPath}: `), err.message);
    assert.match(err.message, /model\.layers\.1\.mlp\.down_proj\.weight: .*(shrank|end of file|truncated)/);
    return true;
  });
});
