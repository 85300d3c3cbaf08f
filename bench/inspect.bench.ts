// Inspector benchmark: opening a 512 MB NPZ (member table from the central directory and the .npy headers),
// statistics + histogram + preview of its 128 MB member (from a bounded sample), and pages of 64 × 16 values, each
// beside reading the same bytes whole in the same run (`cat FILE`, and the member's data read in full).
// Files go to an ignored temp dir and are deleted afterwards.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { NpzWriter, openNpz } from '../server/src/formats/npz';
import { openFileSource } from '../server/src/formats/source';
import { InspectorSession } from '../server/src/inspect/session';
import { tempDir } from '../test/helpers/tmp';

const SMALL = 24; // members of 2048 × 2048 float32 (16 MiB each)
const BIG_ROWS = 4096;
const BIG_COLS = 8192; // 128 MiB

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (x: number, d = 2) => x.toFixed(d);

function catMs(path: string): number {
  const out = execFileSync(
    'bash',
    ['-c', 's=$(date +%s%N); cat "$1" > /dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000 ))', 'x', path],
    { encoding: 'utf8' },
  );
  return Number(out.trim()) / 1000;
}

function* rows(rowsN: number, cols: number, seed: number): Generator<Uint8Array> {
  const block = new Float32Array(cols * 64);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < block.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    block[i] = ((x >>> 0) / 2 ** 32 - 0.5) * 0.1;
  }
  const bytes = new Uint8Array(block.buffer);
  for (let r = 0; r < rowsN; r += 64) yield bytes.subarray(0, Math.min(64, rowsN - r) * cols * 4);
}

async function main() {
  const dir = tempDir('apl-bench-inspect-');
  try {
    const path = join(dir, 'big.npz');
    const w = await NpzWriter.create(path);
    for (let i = 0; i < SMALL; i++)
      await w.addArray(`w${i}`, { dtype: 'float32', shape: [2048, 2048] }, rows(2048, 2048, i + 1));
    await w.addArray('big', { dtype: 'float32', shape: [BIG_ROWS, BIG_COLS] }, rows(BIG_ROWS, BIG_COLS, 99));
    await w.close();

    const cat = median([catMs(path), catMs(path), catMs(path)]);
    const openTimes: number[] = [];
    for (let k = 0; k < 5; k++) {
      const t = performance.now();
      const s = await InspectorSession.open(path);
      const members = await s.members();
      openTimes.push(performance.now() - t);
      if (members.length !== SMALL + 1) throw new Error('wrong member count');
      await s.close();
    }
    const open = median(openTimes);
    console.log(`open 512 MiB NPZ + member table (${SMALL + 1} members): ${fmt(open)} ms`);
    console.log(`  baseline: cat of the file (page cache warm) ${fmt(cat)} ms → open is ${fmt(cat / open, 1)}× faster`);

    // Baseline for one tensor: its whole data read in one go.
    const npz = await openNpz(await openFileSource(path));
    const fullTimes: number[] = [];
    for (let k = 0; k < 3; k++) {
      const t = performance.now();
      await npz.readData('big', 0, BIG_ROWS * BIG_COLS * 4);
      fullTimes.push(performance.now() - t);
    }
    await npz.close();
    const full = median(fullTimes);

    const s = await InspectorSession.open(path);
    const statTimes: number[] = [];
    let sampled = false;
    for (let k = 0; k < 3; k++) {
      const t = performance.now();
      const tensor = await s.tensor('big');
      statTimes.push(performance.now() - t);
      sampled = tensor.stats.sampled;
    }
    const stat = median(statTimes);
    console.log(`statistics + histogram + preview of the 128 MiB member: ${fmt(stat)} ms (sampled: ${sampled})`);
    console.log(
      `  baseline: reading the member's data whole ${fmt(full)} ms → ${fmt(full / stat, 2)}× the baseline's speed`,
    );

    const pageTimes: number[] = [];
    for (let k = 0; k < 50; k++) {
      const r = Math.floor((k * 7919) % (BIG_ROWS - 64));
      const c = Math.floor((k * 104729) % (BIG_COLS - 16));
      const t = performance.now();
      const p = await s.page('big', 'raw', r, 64, c, 16);
      pageTimes.push(performance.now() - t);
      if (p.values.length !== 64 * 16) throw new Error('short page');
    }
    const page = median(pageTimes);
    console.log(`a 64 × 16 page of values: ${fmt(page, 3)} ms median of 50`);
    console.log(
      `  baseline: reading the member's data whole ${fmt(full)} ms → a page costs ${fmt((page / full) * 100, 3)} % of it`,
    );
    await s.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
