// Formats benchmark: listing a 1 GB NPZ of 400 members (vs numpy's `np.load(f).files`, timed inside python so
// process start-up is excluded), reading a stored member's data, and safetensors bf16 → f32, each in GB/s beside
// `cat FILE > /dev/null` in the same run. Files go to an ignored temp dir and are deleted afterwards.
// Targets (issue 2): listing ≤ 5 ms; reading and converting ≥ 1 GB/s.
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { bf16Backend, bf16BytesToF32, bf16BytesToF32Scalar } from '../server/src/formats/dtypes';
import { NpzWriter, openNpz } from '../server/src/formats/npz';
import { openSafetensors, writeSafetensors } from '../server/src/formats/safetensors';
import { openFileSource } from '../server/src/formats/source';
import { tempDir } from '../test/helpers/tmp';

const MEMBERS = 400;
const TOTAL = 1 << 30;
const PER = Math.floor(TOTAL / MEMBERS / 4) * 4;
const ST_BYTES = 256 << 20;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const gbs = (bytes: number, ms: number) => bytes / 1e9 / (ms / 1e3);
const fmt = (x: number, d = 2) => x.toFixed(d);

/** `cat FILE > /dev/null`: wall and CPU (user + sys) milliseconds, from /usr/bin/time when present. */
function catMs(path: string): { wall: number; cpu: number } {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S', 'cat', path], {
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  if (r.status === 0) {
    const [e, u, sy] = r.stderr.trim().split('\n').pop()!.split(' ').map(Number);
    return { wall: e * 1e3, cpu: (u + sy) * 1e3 };
  }
  const out = execFileSync(
    'bash',
    ['-c', 's=$(date +%s%N); cat "$1" > /dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000 ))', 'x', path],
    {
      encoding: 'utf8',
    },
  );
  const wall = Number(out.trim()) / 1000;
  return { wall, cpu: wall };
}

/** Runs `f` and returns wall and CPU (this process, user + sys) milliseconds. */
async function timed(f: () => Promise<unknown> | unknown): Promise<{ wall: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await f();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1e3 };
}

async function main() {
  const dir = tempDir('apl-bench-formats-');
  console.log('Figures: wall-clock GB/s, and in brackets GB/s per CPU-second (user + sys), which is what a shared,');
  console.log('loaded machine distorts least. Ratios compare figures measured in this run.');
  try {
    const npzPath = join(dir, 'big.npz');
    const chunk = Buffer.alloc(PER);
    for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 2654435761) >>> 24;
    const wt = await timed(async () => {
      const w = await NpzWriter.create(npzPath);
      for (let m = 0; m < MEMBERS; m++) {
        chunk.writeUInt32LE(m, 0);
        await w.addArray(`model.layers.${m >> 4}.w${m & 15}`, { dtype: 'float32', shape: [PER / 4] }, chunk);
      }
      await w.close();
    });
    const fileBytes = PER * MEMBERS;
    console.log(
      `write ${MEMBERS} members, ${fmt(fileBytes / 2 ** 30)} GiB with NpzWriter (CRC-32 included): ${fmt(gbs(fileBytes, wt.wall))} GB/s [${fmt(gbs(fileBytes, wt.cpu))}]`,
    );

    // --- listing
    const ours: { wall: number; cpu: number }[] = [];
    let first = 0;
    for (let r = -10; r < 30; r++) {
      ours.push(
        await timed(async () => {
          const z = await openNpz(await openFileSource(npzPath));
          if (z.members.length !== MEMBERS) throw new Error('member count');
          await z.close();
        }),
      );
      if (r === -10) first = ours[0].wall;
      if (r < 0) ours.pop(); // 10 warm-up runs (JIT), not counted
    }
    const py = spawnSync(
      'python3',
      [
        '-c',
        `import sys, time, numpy as np
ws, cs = [], []
for _ in range(30):
    t = time.perf_counter(); c = time.process_time()
    f = np.load(sys.argv[1]); n = len(f.files); f.close()
    ws.append((time.perf_counter() - t) * 1e3); cs.append((time.process_time() - c) * 1e3)
ws.sort(); cs.sort(); print(ws[len(ws) // 2], cs[len(cs) // 2])`,
        npzPath,
      ],
      { encoding: 'utf8' },
    );
    const [npWall, npCpu] = py.status === 0 ? py.stdout.trim().split(' ').map(Number) : [Number.NaN, Number.NaN];
    const oW = median(ours.map((x) => x.wall));
    const oC = median(ours.map((x) => x.cpu));
    console.log(
      `list 1 GB / ${MEMBERS} members (open + list + close, median of 30 after 10 warm-up runs): ours ${fmt(oW, 3)} ms [cpu ${fmt(oC, 3)} ms] (first call, cold JIT: ${fmt(first, 3)} ms), numpy np.load(f).files ${py.status === 0 ? `${fmt(npWall, 3)} ms [cpu ${fmt(npCpu, 3)} ms]` : `unavailable (${py.stderr.trim().split('\n').pop()})`}; ratio ours/numpy wall ${fmt(oW / npWall)}, cpu ${fmt(oC / npCpu)}; target ≤ 5 ms: ${oW <= 5 ? 'met' : 'MISSED'}`,
    );

    // --- reading stored member data, beside cat
    const cat1 = catMs(npzPath);
    let bytes = 0;
    const rt = await timed(async () => {
      const z = await openNpz(await openFileSource(npzPath));
      for (const m of z.members) {
        for await (const c of z.dataChunks(m.name, 8 << 20, { reuseBuffer: true })) bytes += c.length;
      }
      await z.close();
    });
    const cat2 = catMs(npzPath);
    const cat = cat1.wall < cat2.wall ? cat1 : cat2;
    const rW = gbs(bytes, rt.wall);
    const rC = gbs(bytes, rt.cpu);
    const cW = gbs(fileBytes, cat.wall);
    const cC = gbs(fileBytes, Math.max(cat.cpu, 1));
    console.log(
      `read all member data (${fmt(bytes / 2 ** 30)} GiB, 8 MiB range reads into one reused buffer): ours ${fmt(rW)} GB/s [${fmt(rC)}], cat > /dev/null ${fmt(cW)} GB/s [${fmt(cC)}] (best of 2); ratio ours/cat wall ${fmt(rW / cW)}, cpu ${fmt(rC / cC)}; target ≥ 1 GB/s: ${rW >= 1 ? 'met' : rC >= 1 ? 'met per CPU-second only' : 'MISSED'}`,
    );
    rmSync(npzPath);

    // --- safetensors bf16 → f32
    const stPath = join(dir, 'model.safetensors');
    const raw = Buffer.alloc(ST_BYTES);
    for (let i = 0; i < raw.length; i += 2) raw.writeUInt16LE(0x3f80 + ((i >> 1) % 255), i);
    const rows = 4096;
    await writeSafetensors(stPath, [{ name: 'w', dtype: 'BF16', shape: [rows, ST_BYTES / 2 / rows], data: raw }]);
    const c1 = catMs(stPath);
    const c2 = catMs(stPath);
    const catSt = c1.wall < c2.wall ? c1 : c2;
    const f = await openSafetensors(await openFileSource(stPath));
    const conv: { wall: number; cpu: number }[] = [];
    const e2e: { wall: number; cpu: number }[] = [];
    const reuse: { wall: number; cpu: number }[] = [];
    const scalar: { wall: number; cpu: number }[] = [];
    const out = new Float32Array(ST_BYTES / 2);
    for (let r = 0; r < 3; r++) {
      conv.push(await timed(() => bf16BytesToF32(raw, out)));
      scalar.push(await timed(() => bf16BytesToF32Scalar(raw, out)));
      let g: Float32Array = new Float32Array(0);
      e2e.push(
        await timed(async () => {
          g = await f.readF32('w');
        }),
      );
      if (g[1] !== 1.0078125) throw new Error(`value ${g[1]}`);
      out.fill(0);
      reuse.push(await timed(() => f.readF32('w', out)));
      if (out[1] !== 1.0078125) throw new Error(`value ${out[1]}`);
    }
    await f.close();
    const best = (xs: { wall: number; cpu: number }[]) => xs.reduce((a, b) => (b.wall < a.wall ? b : a));
    const cv = best(conv);
    const ee = best(e2e);
    const ru = best(reuse);
    const sc = best(scalar);
    const catW = gbs(ST_BYTES, catSt.wall);
    const catC = gbs(ST_BYTES, Math.max(catSt.cpu, 1));
    console.log(
      `bf16 → f32 (${ST_BYTES >> 20} MiB of bf16 in, best of 3): convert in memory (${bf16Backend()}) ${fmt(gbs(ST_BYTES, cv.wall))} GB/s [${fmt(gbs(ST_BYTES, cv.cpu))}] vs the scalar JS loop ${fmt(gbs(ST_BYTES, sc.wall))} GB/s [${fmt(gbs(ST_BYTES, sc.cpu))}] (ratio ${fmt(sc.cpu / cv.cpu)}x per CPU-second), readF32 from file into a fresh array ${fmt(gbs(ST_BYTES, ee.wall))} GB/s [${fmt(gbs(ST_BYTES, ee.cpu))}] (page faults of the new 2× sized result included), into a reused array ${fmt(gbs(ST_BYTES, ru.wall))} GB/s [${fmt(gbs(ST_BYTES, ru.cpu))}], cat ${fmt(catW)} GB/s [${fmt(catC)}]; ratios readF32(reused)/cat wall ${fmt(gbs(ST_BYTES, ru.wall) / catW)}, cpu ${fmt(gbs(ST_BYTES, ru.cpu) / catC)}; target ≥ 1 GB/s: ${gbs(ST_BYTES, ru.wall) >= 1 ? 'met' : gbs(ST_BYTES, ru.cpu) >= 1 ? 'met per CPU-second only' : 'MISSED'}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
