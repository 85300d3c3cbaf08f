// Alternating rounds for the convert benchmark's numpy / convert ratio (issue 13): on a shared machine one run of
// each measures the minute it ran in, not the code (the numpy baseline alone moved 1.7× between two runs minutes
// apart). Here each round runs every command once, the order reversed every other round (A B, B A, ...) so a load
// that rises or falls over the rounds weighs on both alike; each round's ratio is taken within the round, and the
// median over the rounds is the figure quoted, with the load average at each round and the spread. One warm-up run
// of each command first (page cache, Python's and Node's own files), not counted.
import { loadavg } from 'node:os';

export interface Timed {
  wall: number;
  cpu: number;
  rssMb: number;
  /** Minor page faults, where measured (a 4 KiB fault costs ≈ 12 µs on this project's VMs: docs/PERFORMANCE.md). */
  faults?: number;
}

export interface Rounds {
  /** Per round: each command's run, in the names' order (not the order they ran). */
  runs: Timed[][];
  /** Per round: the 1-minute load average when the round began. */
  load: number[];
  /** Per round: wall of the first command / wall of the second (the ratio within the round). */
  ratio: number[];
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (!n) return Number.NaN;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/**
 * `rounds` rounds of the two commands, alternating which runs first; `warmUp` runs each once before, uncounted.
 * Returns every run, the load average at each round and each round's ratio first / second (walls).
 */
export function alternate(cmds: [() => Timed, () => Timed], rounds: number, warmUp = true): Rounds {
  if (warmUp) for (const c of cmds) c();
  const out: Rounds = { runs: [], load: [], ratio: [] };
  for (let r = 0; r < rounds; r++) {
    out.load.push(loadavg()[0]);
    const order = r % 2 === 0 ? [0, 1] : [1, 0];
    const got: Timed[] = [];
    for (const i of order) got[i] = cmds[i]();
    out.runs.push(got);
    out.ratio.push(got[0].wall / got[1].wall);
  }
  return out;
}

const f = (x: number, d = 2) => x.toFixed(d);

/** The rounds as printed lines: one per round, then the medians and the spread. */
export function describeRounds(names: [string, string], r: Rounds): string[] {
  const lines = [`alternating rounds (${names[0]} and ${names[1]}, the order reversed every other round):`];
  r.runs.forEach((run, i) => {
    lines.push(
      `  round ${i + 1} (load ${f(r.load[i])}): ${names[0]} ${f(run[0].wall)} s (cpu ${f(run[0].cpu)}), ` +
        `${names[1]} ${f(run[1].wall)} s (cpu ${f(run[1].cpu)}); ${names[0]} / ${names[1]} = ${f(r.ratio[i])}×`,
    );
  });
  const w = (k: 0 | 1) => median(r.runs.map((x) => x[k].wall));
  const c = (k: 0 | 1) => median(r.runs.map((x) => x[k].cpu));
  lines.push(
    `  median of ${r.runs.length}: ${names[0]} ${f(w(0))} s, ${names[1]} ${f(w(1))} s; ratio ${f(median(r.ratio))}× ` +
      `(rounds ${f(Math.min(...r.ratio))}–${f(Math.max(...r.ratio))}×; CPU ratio ${f(c(0) / c(1))}×); ` +
      `load ${f(Math.min(...r.load))}–${f(Math.max(...r.load))}`,
  );
  return lines;
}
