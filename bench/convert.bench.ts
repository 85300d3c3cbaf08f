// Convert benchmark, two synthetic checkpoints with TinyLlama's shapes (bench/synthetic-checkpoint.ts): the full
// 22 layers (≈ 2.2 GB bf16) and a small one (2 layers, vocabulary 4096: ≈ 210 MB). For each, in one run:
//   - `cat` of the safetensors files (reading the bytes, best of three: the floor),
//   - the quantize kernel alone on the same tensors (the converter's plan, data already in memory, no checks),
//   - convert (the built CLI, a new process: wall with process start and addon load, CPU, peak RSS),
//   - the numpy per-row baseline on the same tensors (a new python3 process, saving an .npz), in alternating rounds
//     with convert (bench/alternate.ts: numpy then convert, then convert then numpy, ...; APL_BENCH_ROUNDS rounds,
//     default 5 on the small checkpoint and 3 on the large, after one uncounted warm-up run of each): every round's
//     walls, its ratio and the load average, and the median ratio, which the target is judged on,
//   - where the time goes, stage by stage, each measured alone over every quantized tensor with the engine of its
//     type (kquant, the default, and groupwise for the 8-bit embeddings and head): reading the rows, the kernel,
//     the kernel with the accuracy check in the engine (now), the check in TypeScript (before), CRC-32 and
//     writing the NPZ (the writer's default: O_DIRECT through the addon's DirectFile; and through Node's page
//     cache, as before),
//   - convert again with APL_NPZ_DIRECT=0 (the NPZ through Node's page-cache writes: the write path alone),
//   - with APL_BENCH_BEFORE=<a checkout with its addon built>, that checkout's convert too (before/after),
//   - the timeline of the convert runs (bench/convert-trace.ts): each stage's busy time beside the wall, so the
//     overlap of reading, the kernel and writing shows, and what runs alone (the start, the kernel's idle gaps,
//     the tail).
// Printed as ratios against the baselines measured here, with the targets of issue 13. Then peak memory at a larger
// size: 2 layers of Llama 2 7B's shapes (1.3 GB; the embeddings and head are 262 MB each, so the 128 MiB chunk bound
// is what limits the rows in memory) and 1 layer of Llama 2 70B's (2.6 GB; 470 MB MLP weights): convert's wall, CPU
// and peak RSS against the 512 MB target (and the APL_BENCH_BEFORE checkout's; one run each, in a fixed order right
// after the checkpoint is written: the memory figure, not a speed comparison). Env: APL_BENCH_LAYERS (default 22),
// APL_BENCH_KEEP=1 keeps the checkpoints, APL_BENCH_SKIP_NUMPY=1 skips the numpy baseline (and its rounds),
// APL_BENCH_ROUNDS=n the alternating numpy / convert rounds, APL_BENCH_7B=0 skips the 7B- and 70B-shaped runs,
// APL_BENCH_ONLY=small runs the small checkpoint alone.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { alternate, describeRounds, median, type Timed } from './alternate';
import { describe, summarise } from './convert-trace';
import { generate, LLAMA2_7B, LLAMA2_70B, type Shape } from './synthetic-checkpoint';

const ROOT = resolve(__dirname, '..');

const NUMPY_BASELINE = `
import json, os, sys, zipfile
import numpy as np
d, out = sys.argv[1], sys.argv[2]
arrays = {}
for f in sorted(x for x in os.listdir(d) if x.endswith('.safetensors')):
    path = os.path.join(d, f)
    with open(path, 'rb') as fh:
        n = int.from_bytes(fh.read(8), 'little')
        header = json.loads(fh.read(n))
    mm = np.memmap(path, dtype=np.uint8, mode='r')
    for name, t in header.items():
        if name == '__metadata__':
            continue
        b, e = t['data_offsets']
        raw = np.frombuffer(mm[8 + n + b:8 + n + e], dtype='<u2')
        w = (raw.astype(np.uint32) << 16).view(np.float32).reshape(t['shape'])
        stem = name.replace('.', '_')
        if w.ndim < 2:
            arrays[stem] = w.copy()
            continue
        bits = 8 if ('embed_tokens' in name or 'lm_head' in name) else 4
        levels = (1 << bits) - 1
        mn = w.min(axis=1, keepdims=True)
        mx = w.max(axis=1, keepdims=True)
        scale = np.where(mx > mn, (mx - mn) / levels, 1.0).astype(np.float32)
        q = np.clip(np.rint((w - mn) / scale), 0, levels).astype(np.uint8)
        if bits == 4:
            q = q[:, 0::2] | (q[:, 1::2] << 4)
        arrays[stem + '_q%d' % bits] = q
        arrays[stem + '_q%d_scales' % bits] = scale.astype(np.float16)
        arrays[stem + '_q%d_zero_point' % bits] = (-mn / scale).astype(np.float16)
np.savez(out, **arrays)
`;

type Run = Timed;

/** A command's wall, CPU (user + system) and peak RSS, through /usr/bin/time (wall measured here). */
function timed(cmd: string, args: string[], cwd = ROOT, env: Record<string, string | undefined> = {}): Run {
  const t = performance.now();
  const merged: Record<string, string | undefined> = { ...process.env, ...env };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete merged[k];
  const r = spawnSync('/usr/bin/time', ['-f', 'TIME %U %S %M %R', cmd, ...args], {
    cwd,
    env: merged,
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
    maxBuffer: 1 << 26,
  });
  const wall = (performance.now() - t) / 1000;
  const line = r.stderr.split('\n').find((l) => l.startsWith('TIME '));
  if (!line || (r.status !== 0 && r.status !== 3)) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  const [u, s, m, faults] = line.slice(5).split(' ').map(Number);
  return { wall, cpu: u + s, rssMb: m / 1024, faults };
}

interface Stages {
  read: number;
  kernel: number;
  engineCheck: number;
  tsCheck: number;
  crc: number;
  write: number;
  /** The same writes through Node's page cache (-1: a checkout whose writer has no such choice). */
  writeNode: number;
  /** How the default writer wrote: o_direct, buffered (O_DIRECT refused) or node. */
  writeMode: string;
  tensors: number;
}

/**
 * Child: every stage alone over the converter's plan (4 bits, default settings), each tensor through the engine of
 * its type: kquant (the default at 2 and 4 bits) or groupwise (8-bit embeddings and head). A checkout without the
 * kquant output check in the engine (APL_BENCH_BEFORE older than issue 13's kquant work) reports its kquant check
 * stages as -1 (not measurable there).
 */
async function stages(dir: string, out: string, root: string): Promise<void> {
  const m = (p: string) => join(root, p);
  const { openCheckpoint }: typeof import('../server/src/formats/safetensors') = await import(
    m('server/src/formats/safetensors')
  );
  const { planModel }: typeof import('../server/src/convert/plan') = await import(m('server/src/convert/plan'));
  const { settingsFrom }: typeof import('../server/src/convert/options') = await import(
    m('server/src/convert/options')
  );
  const { quantize }: typeof import('../native/index') = await import(m('native/index'));
  const { kquantize, kqSizes }: typeof import('../native/kquant') = await import(m('native/kquant'));
  const { crc32 }: typeof import('../server/src/formats/crc32') = await import(m('server/src/formats/crc32'));
  const { NpzWriter }: typeof import('../server/src/formats/npz') = await import(m('server/src/formats/npz'));
  const { benchChecks, ELEM_BYTES }: typeof import('../server/src/convert/quantize-tensor') = await import(
    m('server/src/convert/quantize-tensor')
  );
  const { BufferPool }: typeof import('../server/src/convert/buffer-pool') = await import(
    m('server/src/convert/buffer-pool')
  );
  const kqMod: Partial<typeof import('../server/src/convert/quantize-kquant')> = await import(
    m('server/src/convert/quantize-kquant')
  );
  // Reused buffers, as the converter reads and quantizes (a fresh buffer per tensor measures page faults instead).
  const pool = new BufferPool();
  const s = settingsFrom({ source: dir, bits: 4, outDir: out });
  const ck = await openCheckpoint(dir);
  const plans = planModel(ck.tensors, s).filter((p) => p.kind === 'quantize');
  const st: Stages = {
    read: 0,
    kernel: 0,
    engineCheck: 0,
    tsCheck: 0,
    crc: 0,
    write: 0,
    writeNode: 0,
    writeMode: 'node',
    tensors: plans.length,
  };
  const writer = await NpzWriter.create(join(out, 'stages.npz'));
  // The same bytes through Node's page-cache writes, alternating with the default writer tensor by tensor.
  const nodeWriter = await NpzWriter.create(join(out, 'stages-node.npz'), { direct: false });
  const hasModes = 'writeMode' in writer;
  if (!hasModes) st.writeNode = -1;
  const now = () => performance.now() / 1000;
  for (const p of plans) {
    if (p.kind !== 'quantize') continue;
    let t = now();
    const raw = await ck.readRows(p.name, 0, p.rows, pool.take(p.rows * p.cols * ELEM_BYTES[p.dtype]));
    st.read += now() - t;
    const dtype = p.dtype.toLowerCase() as 'bf16';
    let q: Uint8Array;
    if (p.kq) {
      const o = { ...p.kq, data: raw, dtype, rows: p.rows, cols: p.cols };
      const qInto = pool.take(kqSizes(p.rows, p.cols, p.kq).q);
      t = now();
      const res = await kquantize({ ...o, qInto });
      st.kernel += now() - t;
      q = res.q;
      if (kqMod.benchKqChecks) {
        const checks = kqMod.benchKqChecks(p, raw, res, s);
        const qCheck = pool.take(kqSizes(p.rows, p.cols, p.kq).q); // reused, as the kernel-alone stage (no page faults)
        t = now();
        await kquantize({ ...o, metrics: true, check: checks.request, qInto: qCheck });
        st.engineCheck += now() - t;
        pool.give(qCheck);
        t = now();
        checks.inTs();
        st.tsCheck += now() - t;
      } else {
        st.engineCheck = -1;
        st.tsCheck = -1;
      }
    } else {
      const o = {
        bits: p.bits,
        groupSize: p.groupSize,
        symmetric: p.symmetric,
        mode: p.mode,
        scaleDtype: s.scaleDtype,
        data: raw,
        dtype,
        rows: p.rows,
        cols: p.cols,
      };
      t = now();
      const qInto = pool.take(p.rows * Math.ceil((p.cols * p.bits) / 8));
      const res = await quantize({ ...o, qInto });
      st.kernel += now() - t;
      q = res.q;
      const checks = benchChecks(p, raw, res, s);
      const qCheck = pool.take(p.rows * Math.ceil((p.cols * p.bits) / 8));
      t = now();
      await quantize({ ...o, metrics: true, check: checks.request, qInto: qCheck });
      if (st.engineCheck >= 0) st.engineCheck += now() - t;
      pool.give(qCheck);
      t = now();
      checks.inTs();
      if (st.tsCheck >= 0) st.tsCheck += now() - t;
    }
    t = now();
    crc32(q);
    st.crc += now() - t;
    t = now();
    await writer.addArray(p.name, { dtype: 'uint8', shape: [q.length] }, [q]);
    st.write += now() - t;
    if (hasModes) {
      t = now();
      await nodeWriter.addArray(p.name, { dtype: 'uint8', shape: [q.length] }, [q]);
      st.writeNode += now() - t;
    }
    pool.give(raw);
    pool.give(q);
  }
  let t = now();
  await writer.close();
  st.write += now() - t;
  st.writeMode = (writer as { writeMode?: string }).writeMode ?? 'node';
  t = now();
  if (hasModes) await nodeWriter.close();
  else await nodeWriter.abort();
  if (st.writeNode >= 0) st.writeNode += now() - t;
  await ck.close();
  process.stdout.write(`STAGES${JSON.stringify(st)}\n`);
}

/** The stages in a child, with the modules (and addon) of the checkout at `root`. */
function runStages(dir: string, out: string, root = ROOT): Stages {
  const r = spawnSync(process.execPath, ['--import', 'tsx', __filename, '--stages', dir, out, root], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith('STAGES'));
  if (r.status !== 0 || !line) throw new Error(`stages failed: ${r.stderr}`);
  return JSON.parse(line.slice(6));
}

const f = (x: number, d = 2) => x.toFixed(d);

function bench(label: string, dir: string, files: string[], out: string, rounds: number): void {
  const gb = files.reduce((a, p) => a + statSync(p).size, 0) / 1e9;
  // The floor: the best of three reads (one read alone, as before, took 0.15–0.75 s of the 2.2 GB on this VM's host).
  const cat = Math.min(...[0, 1, 2].map(() => timed('cat', files).wall));
  const st = runStages(dir, out);
  const beforeRoot = process.env.APL_BENCH_BEFORE ? resolve(process.env.APL_BENCH_BEFORE) : undefined;
  const stBefore = beforeRoot ? runStages(dir, out, beforeRoot) : undefined;
  const cli = (root: string, env: Record<string, string | undefined> = {}) =>
    timed(
      process.execPath,
      [join(root, 'bin/apl-quant.js'), 'convert', dir, '--bits', '4', '--out', out, '--force'],
      ROOT,
      env,
    );
  // Each convert records its timeline (a checkout without server/src/convert/trace.ts ignores the variable).
  const trace = (who: string) => {
    const file = join(out, `trace-${who}.json`);
    rmSync(file, { force: true });
    return { file, env: { APL_CONVERT_TRACE: file } };
  };
  const tNow = trace('now');
  const conv = cli(ROOT, tNow.env);
  const convNode = cli(ROOT, { APL_NPZ_DIRECT: '0' });
  const tBefore = trace('before');
  const before = process.env.APL_BENCH_BEFORE ? cli(resolve(process.env.APL_BENCH_BEFORE), tBefore.env) : undefined;
  const numpyRun = () => timed('python3', ['-c', NUMPY_BASELINE, dir, join(out, 'numpy_baseline.npz')]);
  const vsNumpy = process.env.APL_BENCH_SKIP_NUMPY ? undefined : alternate([numpyRun, () => cli(ROOT)], rounds);
  // NODE_EXTRA_CA_CERTS (set on some machines to the whole system bundle) is parsed by every Node process before
  // any JavaScript runs: on the small checkpoint the same rounds without it show what that costs convert here.
  const caCerts = process.env.NODE_EXTRA_CA_CERTS;
  const vsNumpyNoCa =
    vsNumpy && caCerts && gb < 1
      ? alternate([numpyRun, () => cli(ROOT, { NODE_EXTRA_CA_CERTS: undefined })], rounds)
      : undefined;
  const numpy = vsNumpy?.runs[0][0];
  // The convert wall the targets are judged on: the median of the alternating rounds (the traced run otherwise).
  const convWall = vsNumpy ? median(vsNumpy.runs.map((r) => r[1].wall)) : conv.wall;
  const floor = cat + st.kernel;
  console.log(
    `\n== ${label}: ${f(gb)} GB bf16, ${st.tensors} tensors quantized (--bits 4, default settings: kquant, 8-bit groupwise embeddings and head)`,
  );
  const row = (what: string, r: Run | undefined) =>
    r &&
    console.log(
      `${what.padEnd(40)} wall ${f(r.wall).padStart(6)} s  cpu ${f(r.cpu).padStart(6)} s  peak RSS ${r.rssMb.toFixed(0).padStart(5)} MB  page faults ${r.faults ?? '?'}`,
    );
  console.log(`${'cat (read the files, best of 3)'.padEnd(40)} wall ${f(cat).padStart(6)} s`);
  console.log(`${'quantize kernel alone (no checks)'.padEnd(40)} wall ${f(st.kernel).padStart(6)} s`);
  row(`apl-quant convert (CLI, new process)`, conv);
  row('  the same, APL_NPZ_DIRECT=0 (Node writes)', convNode);
  row('apl-quant convert, before (CLI)', before);
  row('numpy per-row baseline (new process, round 1)', numpy);
  console.log(
    `stages, each alone over every quantized tensor (s)${stBefore ? '; before: the same stages with the APL_BENCH_BEFORE checkout' : ''}:`,
  );
  const stage = (what: string, k: Exclude<keyof Stages, 'writeMode'>) =>
    console.log(
      `  ${what.padEnd(44)} ${f(st[k], 3).padStart(7)}  (${f(st[k] / conv.wall, 2)}× convert's wall)` +
        (stBefore
          ? !(stBefore[k] >= 0)
            ? '   before n/a (that checkout has no such stage)'
            : `   before ${f(stBefore[k], 3).padStart(7)}  (${f(stBefore[k] / st[k], 2)}× now)`
          : ''),
    );
  stage('read the rows (readRows)', 'read');
  stage('kernel alone', 'kernel');
  stage('kernel + metrics + output check in the engine', 'engineCheck');
  stage('output check in TypeScript (before)', 'tsCheck');
  stage('CRC-32 of q', 'crc');
  stage(`NPZ write of q (${st.writeMode})`, 'write');
  if (st.writeNode >= 0) stage('NPZ write of q through Node (page cache)', 'writeNode');
  if (stBefore) console.log(`kernel alone, before / now = ${f(stBefore.kernel / st.kernel)}× (same tensors, same run)`);
  // The timeline of the convert runs above: what overlapped, what ran alone.
  for (const [who, t] of [
    ['now', tNow],
    ['before', tBefore],
  ] as const) {
    if (!existsSync(t.file)) continue;
    console.log(`timeline of the convert run (${who}, APL_CONVERT_TRACE):`);
    for (const line of describe(summarise(t.file))) console.log(line);
  }
  const ratio = convWall / floor;
  console.log(
    `convert / (cat + kernel alone) = ${f(ratio)} (target ≤ 1.5: ${ratio <= 1.5 ? 'met' : 'NOT met'}); convert / cat = ${f(convWall / cat, 1)}` +
      (vsNumpy ? ' (convert: the median wall of the rounds below)' : ''),
  );
  console.log(
    `Node writes / ${st.writeMode} convert: wall ${f(convNode.wall / conv.wall)}×, CPU ${f(convNode.cpu / conv.cpu)}×`,
  );
  if (before)
    console.log(`before / after convert: wall ${f(before.wall / conv.wall)}×, CPU ${f(before.cpu / conv.cpu)}×`);
  if (vsNumpy) {
    for (const line of describeRounds(['numpy', 'convert'], vsNumpy)) console.log(line);
    const sp = median(vsNumpy.ratio);
    console.log(
      `numpy / convert wall = ${f(sp)}× (median of ${vsNumpy.ratio.length} rounds); targets: ≥ 5× on the 2.2 GB, ≥ 3× on the small: ${sp >= (gb > 1 ? 5 : 3) ? 'met' : 'NOT met'}`,
    );
  }
  if (vsNumpyNoCa) {
    const start = nodeStart();
    console.log(
      `NODE_EXTRA_CA_CERTS is set here (${caCerts}): Node parses it at every start. \`node -e 0\` CPU, median of ` +
        `${start.n} alternating: ${f(start.with * 1e3, 0)} ms with it, ${f(start.without * 1e3, 0)} ms without.`,
    );
    console.log(
      'the same rounds with convert run without NODE_EXTRA_CA_CERTS (information; the target is judged above):',
    );
    for (const line of describeRounds(['numpy', 'convert'], vsNumpyNoCa)) console.log(`  ${line}`);
  }
  console.log(`peak RSS ${conv.rssMb.toFixed(0)} MB (target ≤ 512 MB: ${conv.rssMb <= 512 ? 'met' : 'NOT met'})`);
}

/** `node -e 0`'s CPU with the environment as it is and without NODE_EXTRA_CA_CERTS, alternating (medians). */
function nodeStart(n = 10): { with: number; without: number; n: number } {
  const w: number[] = [];
  const wo: number[] = [];
  for (let i = 0; i < n; i++) {
    w.push(timed(process.execPath, ['-e', '0']).cpu);
    wo.push(timed(process.execPath, ['-e', '0'], ROOT, { NODE_EXTRA_CA_CERTS: undefined }).cpu);
  }
  return { with: median(w), without: median(wo), n };
}

/** Peak RSS of convert on a checkpoint with a larger model's tensors: the 512 MB target at that size. */
function memoryAt(label: string, dir: string, layers: number, shape: Shape, out: string): void {
  const files = generate(dir, layers, 32000, shape);
  const gb = files.reduce((a, p) => a + statSync(p).size, 0) / 1e9;
  const cli = (root: string) =>
    timed(process.execPath, [join(root, 'bin/apl-quant.js'), 'convert', dir, '--bits', '4', '--out', out, '--force']);
  const before = process.env.APL_BENCH_BEFORE ? resolve(process.env.APL_BENCH_BEFORE) : undefined;
  console.log(`\n== ${label}: ${f(gb)} GB bf16, --bits 4, default settings (peak RSS in MiB)`);
  for (const [what, root] of [['now', ROOT], ...(before ? [['before', before]] : [])] as const) {
    const r = cli(root);
    console.log(
      `apl-quant convert, ${what.padEnd(6)} wall ${f(r.wall).padStart(6)} s  cpu ${f(r.cpu).padStart(6)} s  peak RSS ${r.rssMb.toFixed(0).padStart(5)} MB (target ≤ 512 MB: ${r.rssMb <= 512 ? 'met' : 'NOT met'})`,
    );
  }
}

function main() {
  const layers = Number(process.env.APL_BENCH_LAYERS ?? 22);
  const base = join(tmpdir(), 'apl-bench-convert');
  const out = join(base, 'out');
  mkdirSync(out, { recursive: true });
  const small = join(base, 'tinyllama-shapes-2L-v4096');
  const rounds = (n: number) => Math.max(1, Number(process.env.APL_BENCH_ROUNDS ?? n) || n);
  bench('small (2 layers, vocab 4096)', small, generate(small, 2, 4096), out, rounds(5));
  const smallOnly = process.env.APL_BENCH_ONLY === 'small';
  const big = join(base, `tinyllama-shapes-${layers}L`);
  if (!smallOnly) bench(`TinyLlama-shaped (${layers} layers)`, big, generate(big, layers), out, rounds(3));
  if (!smallOnly && process.env.APL_BENCH_7B !== '0') {
    memoryAt('Llama-2-7B-shaped (2 layers)', join(base, 'llama2-7b-shapes-2L'), 2, LLAMA2_7B, out);
    memoryAt('Llama-2-70B-shaped (1 layer)', join(base, 'llama2-70b-shapes-1L'), 1, LLAMA2_70B, out);
  }
  if (!process.env.APL_BENCH_KEEP) rmSync(base, { recursive: true, force: true });
}

if (process.argv[2] === '--stages') {
  stages(process.argv[3], process.argv[4], process.argv[5] ?? ROOT).catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else main();
