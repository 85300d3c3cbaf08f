// One linear layer (5632 × 2048, TinyLlama's gate/up shape) on one token, one thread, with each CPU kernel
// variant side by side in one run: best of many calls, alternating variants, so a loaded machine disturbs every
// variant alike. Prints GMAC/s and each variant's speed over the 256-bit VNNI kernel (the default before the
// 512-bit wide path). APL_BENCH_ROWS (5632), APL_BENCH_REPS (300), APL_BENCH_BITS (4,2,1,8), APL_BENCH_GROUP (64),
// APL_BENCH_WEIGHTS (1): that many distinct weights, each call on the one used longest ago (12: ~80 MB at 4 bits,
// so every call reads its weight from DRAM, as decode does; 1: the weight mostly in cache, the kernel's compute
// speed).
// Prompt mode, APL_BENCH_TOKENS=n (e.g. 512): n tokens per call, APL_BENCH_THREADS (1) threads, best of
// APL_BENCH_REPS (default 10), variants alternating (APL_BENCH_VARIANTS, e.g. avx512,avx512-gemm), ratios over the
// first variant.
import { randomFillSync } from 'node:crypto';
import { inferInfo, linear } from '../native/forward';
import type { LinearWeight } from '../native/forward-types';

const ROWS = Number(process.env.APL_BENCH_ROWS ?? 5632);
const COLS = 2048;
const TOKENS = Number(process.env.APL_BENCH_TOKENS ?? 1);
const THREADS = Number(process.env.APL_BENCH_THREADS ?? 1);
const GROUP = Number(process.env.APL_BENCH_GROUP ?? 64);
const REPS = Number(process.env.APL_BENCH_REPS ?? (TOKENS > 1 ? 10 : 300));
const WEIGHTS = Math.max(1, Number(process.env.APL_BENCH_WEIGHTS ?? 1));
const BITS = (process.env.APL_BENCH_BITS ?? '4,2,1,8').split(',').map(Number) as (1 | 2 | 4 | 8)[];
const now = () => Number(process.hrtime.bigint()) / 1e9;

function packed(bits: 1 | 2 | 4 | 8): LinearWeight {
  const g = ROWS * Math.ceil(COLS / GROUP);
  return {
    kind: 'packed',
    rows: ROWS,
    cols: COLS,
    bits,
    groupSize: GROUP,
    q: randomFillSync(new Uint8Array((ROWS * COLS * bits) / 8)),
    scales: new Uint8Array(new Uint16Array(g).fill(0x1818).buffer), // f16 ≈ 0.002
    zeros: new Uint8Array(new Uint16Array(g).fill(0x4780).buffer), // f16 7.5
    scaleDtype: 'f16',
  };
}

const info = inferInfo();
if (!info) console.log('linear bench: the native addon is not built (npm run build:native); nothing measured');
else if (TOKENS > 1) prompt();
else {
  const variants = info.variants.filter((v) => v !== 'scalar');
  console.log(
    `${ROWS} × ${COLS}, 1 token, 1 thread, best of ${REPS}, ${WEIGHTS} weight(s) in turn; variants ${variants.join(', ')}`,
  );
  const x = new Float32Array(COLS).map((_, i) => Math.sin(i));
  for (const bits of BITS) {
    const ws = Array.from({ length: WEIGHTS }, () => packed(bits));
    const best = new Map(variants.map((v) => [v, Infinity]));
    let call = 0;
    for (let i = 0; i < REPS; i++)
      for (const v of variants) {
        const w = ws[call++ % WEIGHTS];
        const t0 = now();
        linear(w, x, 1, { threads: 1, variant: v });
        best.set(v, Math.min(best.get(v)!, now() - t0));
      }
    const base = best.get('avx512-vnni') ?? best.get(variants[0])!;
    console.log(
      `${bits}-bit g64: ` +
        variants
          .map((v) => {
            const s = best.get(v)!;
            return `${v} ${(s * 1e3).toFixed(3)} ms (${((ROWS * COLS) / s / 1e9).toFixed(1)} GMAC/s, ${(base / s).toFixed(2)}×)`;
          })
          .join('; '),
    );
  }
}

function prompt() {
  const variants =
    process.env.APL_BENCH_VARIANTS?.split(',') ?? info!.variants.filter((v) => v !== 'scalar' && v !== 'avx2');
  console.log(
    `${ROWS} × ${COLS} g${GROUP}, ${TOKENS} tokens, ${THREADS} thread(s), best of ${REPS}; variants ${variants.join(', ')}`,
  );
  const x = new Float32Array(TOKENS * COLS).map((_, i) => Math.sin(i * 0.37));
  for (const bits of BITS) {
    const w = packed(bits);
    const best = new Map(variants.map((v) => [v, Infinity]));
    const cpu = new Map(variants.map((v) => [v, Infinity])); // CPU seconds: moves less with the machine's load
    for (let i = 0; i < REPS; i++)
      for (const v of variants) {
        const c0 = process.cpuUsage();
        const t0 = now();
        linear(w, x, TOKENS, { threads: THREADS, variant: v });
        best.set(v, Math.min(best.get(v)!, now() - t0));
        const c = process.cpuUsage(c0);
        cpu.set(v, Math.min(cpu.get(v)!, (c.user + c.system) / 1e6));
      }
    const base = best.get(variants[0])!;
    const cbase = cpu.get(variants[0])!;
    console.log(
      `${bits}-bit: ` +
        variants
          .map((v) => {
            const s = best.get(v)!;
            const c = cpu.get(v)!;
            return `${v} ${(s * 1e3).toFixed(2)} ms (${((ROWS * COLS * TOKENS) / s / 1e9).toFixed(1)} GMAC/s, ${(base / s).toFixed(2)}×; CPU ${(c * 1e3).toFixed(0)} ms, ${(cbase / c).toFixed(2)}×)`;
          })
          .join('; '),
    );
  }
}
