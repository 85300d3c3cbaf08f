// Formats benchmark: listing a 1 GB NPZ of 400 members (vs numpy's `np.load(f).files`, timed inside python so
// process start-up is excluded), reading a stored member's data, and safetensors bf16 → f32, each in GB/s beside
// `cat FILE > /dev/null` in the same run. Files go to an ignored temp dir and are deleted afterwards.
// Targets (issue 2): listing ≤ 5 ms; reading and converting ≥ 1 GB/s.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bf16BytesToF32 } from '../server/src/formats/dtypes';
import { NpzWriter, openNpz } from '../server/src/formats/npz';
import { openSafetensors, writeSafetensors } from '../server/src/formats/safetensors';
import { openFileSource } from '../server/src/formats/source';

const MEMBERS = 400;
const TOTAL = 1 << 30;
const PER = Math.floor(TOTAL / MEMBERS / 4) * 4;
const ST_BYTES = 256 << 20;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const gbs = (bytes: number, ms: number) => bytes / 1e9 / (ms / 1e3);
const fmt = (x: number, d = 2) => x.toFixed(d);

function catMs(path: string): number {
  const out = execFileSync(
    'bash',
    ['-c', `s=$(date +%s%N); cat "$1" > /dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000 ))`, 'x', path],
    {
      encoding: 'utf8',
    },
  );
  return Number(out.trim()) / 1000;
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'apl-bench-formats-'));
  try {
    const npzPath = join(dir, 'big.npz');
    const chunk = Buffer.alloc(PER);
    for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 2654435761) >>> 24;
    let t = performance.now();
    const w = await NpzWriter.create(npzPath);
    for (let m = 0; m < MEMBERS; m++) {
      chunk.writeUInt32LE(m, 0);
      await w.addArray(`model.layers.${m >> 4}.w${m & 15}`, { dtype: 'float32', shape: [PER / 4] }, chunk);
    }
    await w.close();
    const writeMs = performance.now() - t;
    console.log(
      `wrote ${MEMBERS} members, ${fmt((PER * MEMBERS) / 2 ** 30)} GiB, in ${fmt(writeMs, 0)} ms (${fmt(gbs(PER * MEMBERS, writeMs))} GB/s incl. CRC)`,
    );

    // --- listing
    const ours: number[] = [];
    for (let r = 0; r < 30; r++) {
      t = performance.now();
      const src = await openFileSource(npzPath);
      const z = await openNpz(src);
      if (z.members.length !== MEMBERS) throw new Error('member count');
      await z.close();
      ours.push(performance.now() - t);
    }
    const py = spawnSync(
      'python3',
      [
        '-c',
        `import sys, time, numpy as np
ts = []
for _ in range(30):
    t = time.perf_counter(); f = np.load(sys.argv[1]); n = len(f.files); f.close(); ts.append((time.perf_counter() - t) * 1e3)
ts.sort(); print(ts[len(ts) // 2])`,
        npzPath,
      ],
      { encoding: 'utf8' },
    );
    const npMs = py.status === 0 ? Number(py.stdout.trim()) : Number.NaN;
    const oursMs = median(ours);
    console.log(
      `list 1 GB / ${MEMBERS} members: ours ${fmt(oursMs, 3)} ms (open+list+close, median of 30), numpy np.load(f).files ${py.status === 0 ? `${fmt(npMs, 3)} ms` : `unavailable (${py.stderr.trim().split('\n').pop()})`}; ratio ours/numpy ${fmt(oursMs / npMs)}; target ≤ 5 ms: ${oursMs <= 5 ? 'met' : 'MISSED'}`,
    );

    // --- reading stored member data, beside cat
    const cat1 = catMs(npzPath);
    const z = await openNpz(await openFileSource(npzPath));
    t = performance.now();
    let bytes = 0;
    for (const m of z.members) {
      for await (const c of z.dataChunks(m.name, 8 << 20)) bytes += c.length;
    }
    const readMs = performance.now() - t;
    await z.close();
    const cat2 = catMs(npzPath);
    const catBest = Math.min(cat1, cat2);
    const fileBytes = PER * MEMBERS;
    console.log(
      `read all member data (${fmt(bytes / 2 ** 30)} GiB): ours ${fmt(gbs(bytes, readMs))} GB/s, cat > /dev/null ${fmt(gbs(fileBytes, catBest))} GB/s (best of 2); ratio ours/cat ${fmt(gbs(bytes, readMs) / gbs(fileBytes, catBest))}; target ≥ 1 GB/s: ${gbs(bytes, readMs) >= 1 ? 'met' : 'MISSED'}`,
    );
    rmSync(npzPath);

    // --- safetensors bf16 → f32
    const stPath = join(dir, 'model.safetensors');
    const raw = Buffer.alloc(ST_BYTES);
    for (let i = 0; i < raw.length; i += 2) raw.writeUInt16LE(0x3f80 + ((i >> 1) % 255), i);
    const rows = 4096;
    await writeSafetensors(stPath, [{ name: 'w', dtype: 'BF16', shape: [rows, ST_BYTES / 2 / rows], data: raw }]);
    const catSt = Math.min(catMs(stPath), catMs(stPath));
    const f = await openSafetensors(await openFileSource(stPath));
    const conv: number[] = [];
    const e2e: number[] = [];
    for (let r = 0; r < 3; r++) {
      t = performance.now();
      const v = bf16BytesToF32(raw);
      conv.push(performance.now() - t);
      if (v.length !== ST_BYTES / 2) throw new Error('length');
      t = performance.now();
      const g = await f.readF32('w');
      e2e.push(performance.now() - t);
      if (g[1] !== 1.0078125) throw new Error(`value ${g[1]}`);
    }
    await f.close();
    const convGbs = gbs(ST_BYTES, median(conv));
    const e2eGbs = gbs(ST_BYTES, median(e2e));
    const catGbs = gbs(ST_BYTES, catSt);
    console.log(
      `bf16 → f32 (${ST_BYTES >> 20} MiB of bf16 in): convert in memory ${fmt(convGbs)} GB/s, read+convert from file ${fmt(e2eGbs)} GB/s, cat ${fmt(catGbs)} GB/s; ratios convert/cat ${fmt(convGbs / catGbs)}, read+convert/cat ${fmt(e2eGbs / catGbs)}; target ≥ 1 GB/s: ${e2eGbs >= 1 ? 'met' : 'MISSED'}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
