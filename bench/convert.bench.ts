// Convert benchmark: a synthetic checkpoint with TinyLlama's shapes (hidden 2048, intermediate 5632, 32 heads, 4 KV
// heads, vocab 32000, bf16; 22 layers ≈ 2.2 GB) generated into os.tmpdir(), then in one run:
//   - `cat` of the safetensors files (the floor: reading the bytes once),
//   - apl-quant's convertModel at 4 bits (child process, so peak RSS is its own),
//   - a numpy baseline quantizing the same tensors per row (vectorised per tensor) and saving an .npz,
//   - convertModel again on a smaller layer count, to show peak memory does not grow with the model.
// Figures are printed as ratios against the baselines measured here. Targets: ≥ 10× faster than numpy, peak RSS
// ≤ 1.5 GB. Env: APL_BENCH_LAYERS (default 22), APL_BENCH_SMALL_LAYERS (default 4), APL_BENCH_KEEP=1 keeps the
// checkpoints, APL_BENCH_SKIP_NUMPY=1 skips the numpy baseline.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { generate } from './synthetic-checkpoint';

const NUMPY_BASELINE = `
import json, os, resource, sys, time, zipfile
import numpy as np
d, out = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
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
secs = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({'seconds': secs, 'cpu': ru.ru_utime + ru.ru_stime, 'peak_rss_mb': ru.ru_maxrss / 1024}))
`;

interface ConvertFigures {
  seconds: number;
  /** User + system CPU seconds of the whole process (all threads). */
  cpu: number;
  peakRssMb: number;
  backend: string;
  outputBytes: number;
  sourceBytes: number;
  pass: boolean;
  worst: number;
}

async function child(dir: string, out: string, mode: string): Promise<void> {
  const { convertModel } = await import('../server/src/convert/pipeline');
  const c0 = process.cpuUsage();
  const r = await convertModel(
    { source: dir, bits: 4, outDir: out, name: 'bench', force: true, mode: mode as 'minmax' | 'optimized' },
    () => {},
  );
  const c = process.cpuUsage(c0);
  const worst = Math.max(...r.accuracy.weights.map((w) => w.rel_error));
  const figures: ConvertFigures = {
    seconds: r.seconds,
    cpu: (c.user + c.system) / 1e6,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    backend: r.accuracy.backend,
    outputBytes: r.outputBytes,
    sourceBytes: r.sourceBytes,
    pass: r.pass,
    worst,
  };
  process.stdout.write(`FIGURES${JSON.stringify(figures)}\n`);
}

function runConvert(dir: string, out: string, mode = 'optimized'): ConvertFigures {
  const r = spawnSync(process.execPath, ['--import', 'tsx', __filename, '--child', dir, out, mode], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith('FIGURES'));
  if (r.status !== 0 || !line) throw new Error(`convert failed: ${r.stderr}`);
  return JSON.parse(line.slice(7));
}

function timeIt(fn: () => void): number {
  const t = performance.now();
  fn();
  return (performance.now() - t) / 1000;
}

async function main() {
  const layers = Number(process.env.APL_BENCH_LAYERS ?? 22);
  const small = Math.min(layers, Number(process.env.APL_BENCH_SMALL_LAYERS ?? 4));
  const base = join(tmpdir(), 'apl-bench-convert');
  const big = join(base, `tinyllama-shapes-${layers}L`);
  const out = join(base, 'out');
  mkdirSync(out, { recursive: true });
  let files: string[] = [];
  const gen = timeIt(() => {
    files = generate(big, layers);
  });
  const gb = files.reduce((a, f) => a + statSync(f).size, 0) / 1e9;
  console.log(
    `synthetic TinyLlama-shaped checkpoint: ${layers} layers, ${gb.toFixed(2)} GB bf16 (${gen.toFixed(1)} s to make)`,
  );

  const cat = timeIt(() => {
    const r = spawnSync('cat', files, { stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) throw new Error('cat failed');
  });
  const conv = runConvert(big, out);
  const convMinmax = runConvert(big, out, 'minmax');
  let numpy: { seconds: number; cpu: number; peak_rss_mb: number } | undefined;
  if (!process.env.APL_BENCH_SKIP_NUMPY) {
    const r = spawnSync('python3', ['-c', NUMPY_BASELINE, big, join(out, 'numpy_baseline.npz')], { encoding: 'utf8' });
    if (r.status === 0) numpy = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    else console.log(`numpy baseline failed: ${r.stderr.trim().split('\n').at(-1)}`);
  }
  let smallConv: ConvertFigures | undefined;
  if (small < layers) {
    const dir = join(base, `tinyllama-shapes-${small}L`);
    generate(dir, small);
    smallConv = runConvert(dir, out);
    if (!process.env.APL_BENCH_KEEP) rmSync(dir, { recursive: true, force: true });
  }

  const mbps = (s: number) => `${((gb * 1000) / s).toFixed(0)} MB/s`;
  const row = (label: string, secs: number, cpu: number | undefined, rss: number | undefined, extra = '') =>
    console.log(
      `${label.padEnd(36)} ${secs.toFixed(2).padStart(7)} s ${mbps(secs).padStart(10)}  cpu ${cpu === undefined ? '   -' : cpu.toFixed(1).padStart(5)} s  peak RSS ${rss === undefined ? '   -' : rss.toFixed(0).padStart(5)} MB ${extra}`,
    );
  console.log('');
  row('cat (read the files once)', cat, undefined, undefined, '(page cache warm after generation)');
  row('apl-quant convert --bits 4', conv.seconds, conv.cpu, conv.peakRssMb, `(optimized, group 64, ${conv.backend})`);
  row('apl-quant convert --bits 4 --mode minmax', convMinmax.seconds, convMinmax.cpu, convMinmax.peakRssMb);
  if (numpy)
    row('numpy per-row baseline (4 bit)', numpy.seconds, numpy.cpu, numpy.peak_rss_mb, '(vectorised per tensor)');
  console.log('');
  console.log(`convert vs cat:    ${(conv.seconds / cat).toFixed(1)}x the time of reading the files`);
  if (numpy) {
    for (const [label, c] of [
      ['optimized', conv],
      ['minmax', convMinmax],
    ] as const) {
      const speedup = numpy.seconds / c.seconds;
      console.log(
        `convert (${label}) vs numpy: ${speedup.toFixed(2)}x numpy's speed in wall time, ${(numpy.cpu / c.cpu).toFixed(2)}x in CPU time (target ≥ 10x: ${speedup >= 10 ? 'met' : 'NOT met'})`,
      );
    }
  }
  console.log(
    `peak RSS:          ${conv.peakRssMb.toFixed(0)} MB (target ≤ 1536 MB: ${conv.peakRssMb <= 1536 ? 'met' : 'NOT met'})`,
  );
  if (smallConv) {
    console.log(
      `peak RSS vs layers: ${small} layers ${smallConv.peakRssMb.toFixed(0)} MB, ${layers} layers ${conv.peakRssMb.toFixed(0)} MB (ratio ${(conv.peakRssMb / smallConv.peakRssMb).toFixed(2)} for ${(layers / small).toFixed(1)}x the layers)`,
    );
  }
  console.log(
    `output: ${(conv.outputBytes / 1e6).toFixed(0)} MB (${((conv.outputBytes * 8) / (conv.sourceBytes / 2)).toFixed(2)} bits/weight), accuracy ${conv.pass ? 'PASS' : 'FAIL'}, worst rel error ${(conv.worst * 100).toFixed(2)}%`,
  );
  if (!process.env.APL_BENCH_KEEP) rmSync(base, { recursive: true, force: true });
}

if (process.argv[2] === '--child') {
  child(process.argv[3], process.argv[4], process.argv[5]).catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
