// What the converter's fused work costs on top of the kquant kernel (issue 13): one TinyLlama MLP-shaped bf16 weight
// (5632×2048, 4 bits, the default format 24/1536), quantized into a reused q at 1 and 2 threads: the kernel alone,
// + metrics, + the output check (the converter's sampled rows and inputs). Best of ROUNDS after an untimed round,
// cases interleaved; wall and process CPU.
import * as kq from '../native/kquant';
import { evalInputs, evalSample } from '../server/src/convert/accuracy';
import { gaussian } from '../test/helpers/random';

const ROWS = 5632;
const COLS = 2048;
const ROUNDS = 10;

async function main() {
  const n0 = ROWS * COLS;
  const x = gaussian(n0, 1);
  const bf = new Uint8Array(n0 * 2);
  const u = new Uint32Array(x.buffer);
  const h = new Uint16Array(bf.buffer);
  for (let i = 0; i < n0; i++) h[i] = u[i] >>> 16;
  const kf = { bits: 4 as const, group: 24, super: 1536, scaleBits: 5, minBits: 6 };
  const qInto = new Uint8Array(kq.kqSizes(ROWS, COLS, kf).q);
  const { n, sampled } = evalSample(ROWS, 4);
  const picked: number[] = [];
  for (let r = 0; r < ROWS; r++) if (sampled(r)) picked.push(r);
  const check = () => ({ x: evalInputs(n, COLS), n, rows: Int32Array.from(picked) });
  const cases: Array<[string, Partial<kq.KqQuantizeOptions>]> = [];
  for (const threads of [1, 2]) {
    cases.push([`kernel alone, ${threads} thread(s)`, { threads }]);
    cases.push([`+ metrics, ${threads} thread(s)`, { threads, metrics: true }]);
    cases.push([`+ metrics + check, ${threads} thread(s)`, { threads, metrics: true, check: check() }]);
  }
  const wall = new Map<string, number>();
  const cpu = new Map<string, number>();
  for (let round = 0; round <= ROUNDS; round++)
    for (const [name, o] of cases) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await kq.kquantize({ ...kf, data: bf, dtype: 'bf16', rows: ROWS, cols: COLS, qInto, ...o });
      const dt = performance.now() - t0;
      const c = process.cpuUsage(c0);
      if (round === 0) continue; // warm-up
      wall.set(name, Math.min(wall.get(name) ?? Infinity, dt));
      cpu.set(name, Math.min(cpu.get(name) ?? Infinity, (c.user + c.system) / 1e3));
    }
  console.log(`${ROWS}×${COLS} bf16, kquant 4-bit 24/1536, ${n} inputs × ${picked.length} sampled rows, reused q`);
  console.log(`${'what'.padEnd(40)} ${'wall ms'.padStart(8)} ${'cpu ms'.padStart(8)}  vs kernel alone (same threads)`);
  for (const [name] of cases) {
    const base = `kernel alone, ${name.endsWith('1 thread(s)') ? 1 : 2} thread(s)`;
    const w = wall.get(name) as number;
    console.log(
      `${name.padEnd(40)} ${w.toFixed(2).padStart(8)} ${(cpu.get(name) as number).toFixed(2).padStart(8)}  ${(w / (wall.get(base) as number)).toFixed(2)}×`,
    );
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
