// Decode and prompt speed of the native forward pass (native/forward.ts) on a TinyLlama-shaped synthetic model
// (hidden 2048, intermediate 5632, 32 heads, 4 KV heads, vocab 32000, 22 layers) built in memory with random codes:
// 8, 4, 2 and 1 bits (group 64, f16 scales and zeros) and bf16 float weights; 1 and 2 threads. Beside each
// figure, the memory bound measured right before it: bytes read per token (weights + KV cache) ÷ the read
// bandwidth of one pass over a 512 MB buffer with the same thread count. On a shared machine both are the best of
// several tries (a token's time, a pass's time), and tokens per CPU-second (1 thread) are printed too: they move
// less with the load. The peer is llama.cpp (node-llama-cpp 3.21.1, `npm run bench:peer-install`): the same synthetic weights written
// as a GGUF (bench/gguf.ts: 4-bit → Q4_0, 8-bit → Q8_0, bf16 → F16) and timed the same way in the same run
// (bench/llama-peer.ts); without node-llama-cpp the bench says so and quotes earlier figures (Q4_0: decode 29 /
// 31 tokens/s with 1 / 2 threads, a 128-token prompt at 72 / 140 tokens/s). Last, the peak RSS of a 4-bit run
// (a child process) against the packed size.
//
// APL_BENCH_LAYERS (22), APL_BENCH_DECODE (16 tokens), APL_BENCH_PROMPT (512 tokens), APL_BENCH_PROMPT_LAYERS (4),
// APL_BENCH_KINDS (8,4,2,1,bf16), APL_BENCH_PEER=0 (skip llama.cpp), APL_BENCH_ROUNDS (4: the decoded tokens
// are timed in that many rounds, each of ours followed by one of llama.cpp, so both see the same load).
// APL_PROFILE=1 prints where a decoded token's time goes (per step of the forward pass, native/src/infer/model.cc).
import { spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createModel, inferInfo } from '../native/forward';
import type { LinearWeight, ModelConfig, ModelWeights } from '../native/forward-types';
import { nativeAddon } from '../native/index';
import { arenaBytes, createWeightArena, weightsInArena } from '../native/weight-arena';
import { peer, peerModel } from './llama-peer';
import { bf16Weight, newBytes, packedWeight, syntheticModel, tinyLlamaConfig, weightBytes } from './tiny-llama-shape';

const LAYERS = Number(process.env.APL_BENCH_LAYERS ?? 22);
const DECODE = Number(process.env.APL_BENCH_DECODE ?? 16);
const PROMPT = Number(process.env.APL_BENCH_PROMPT ?? 512);
const PROMPT_LAYERS = Number(process.env.APL_BENCH_PROMPT_LAYERS ?? 4);
const KINDS = (process.env.APL_BENCH_KINDS ?? '8,4,2,1,bf16').split(',');
const ROUNDS = Number(process.env.APL_BENCH_ROUNDS ?? 4);
// the weights' 2 MiB pages (native/src/infer/hugepages.h) collapsed before a model is timed, not in the background
// while it runs: the bench measures the steady state (APL_HUGE=0 from outside keeps 4 KiB pages, for A/B runs)
process.env.APL_HUGE ??= 'sync';
const QUOTED = { decode: [29, 31], prompt: [72, 140] }; // llama.cpp Q4_0 here, measured earlier (no peer in the run)

type Kind = { bits: 1 | 2 | 4 | 8 } | 'bf16';
function weight(rows: number, cols: number, kind: Kind, alloc = newBytes): LinearWeight {
  return kind === 'bf16' ? bf16Weight(rows, cols, alloc) : packedWeight(rows, cols, kind.bits, alloc);
}

/** The byte arrays weight() allocates for one linear (packed: codes, scales, zeros; bf16: the data). */
function weightSizes(rows: number, cols: number, kind: Kind): number[] {
  if (kind === 'bf16') return [rows * cols * 2];
  const g = rows * Math.ceil(cols / 64) * 2;
  return [rows * Math.ceil((cols * kind.bits) / 8), g, g];
}

/**
 * The model of shape c with every linear of the kind, and the bytes of its linears but the embedding table. The
 * weights are built in one weight arena (native/weight-arena.ts: 2 MiB pages from the first touch, as
 * `apl-quant run` loads them), or each in its own buffer with APL_HUGE=0 or an addon without the arena.
 */
function model(c: ModelConfig, kind: Kind): { w: ModelWeights; bytes: number; arena: boolean } {
  const sizes: number[] = [];
  syntheticModel(c, (r, cc) => {
    sizes.push(...weightSizes(r, cc, kind));
    return null as unknown as LinearWeight;
  });
  const arena = createWeightArena(arenaBytes(sizes));
  const alloc = arena ? (n: number) => arena.take(n) : newBytes;
  let bytes = 0;
  const W = (r: number, cc: number) => {
    const w = weight(r, cc, kind, alloc);
    bytes += weightBytes(w);
    return w;
  };
  // the embedding table: one row read per token, not counted
  const w = syntheticModel(c, W, (r, cc) => weight(r, cc, kind, alloc));
  return { w, bytes, arena: !!arena };
}

const now = () => Number(process.hrtime.bigint()) / 1e9;

let bwBuf: Uint8Array | undefined;
let bwPages = '';
function bandwidth(threads: number): number {
  const a = nativeAddon() as { inferMemRead(b: Uint8Array, t: number): number; inferHugePages?(b: Uint8Array): number };
  if (!bwBuf) {
    bwBuf = randomFillSync(new Uint8Array(1 << 29));
    // in 2 MiB pages as the model's weights are (APL_HUGE=0: 4 KiB pages for both), so the bound is the same kind
    bwPages = (a.inferHugePages?.(bwBuf) ?? 0) > bwBuf.length / 2 ? '2 MiB pages' : '4 KiB pages';
  }
  const buf = bwBuf;
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const t0 = now();
    a.inferMemRead(buf, threads);
    best = Math.min(best, now() - t0);
  }
  return buf.length / best;
}

const peerName = (k: Kind) => (k === 'bf16' ? 'F16' : k.bits === 4 ? 'Q4_0' : k.bits === 8 ? 'Q8_0' : '');
const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(0)} %`;

async function main() {
  const info = inferInfo();
  if (!info) {
    console.log('decode bench: the native addon is not built (npm run build:native); nothing measured');
    return;
  }
  console.log(
    `kernel ${info.selected} (variants: ${info.variants.join(', ')}), ${LAYERS} layers, ${DECODE} decoded tokens`,
  );
  const llama = process.env.APL_BENCH_PEER === '0' ? null : await peer();
  const c = tinyLlamaConfig(LAYERS);
  const kinds: [string, Kind, number][] = (
    [
      ['8-bit g64', { bits: 8 }, 8.5],
      ['4-bit g64', { bits: 4 }, 4.5],
      ['2-bit g64', { bits: 2 }, 2.5],
      ['1-bit g64', { bits: 1 }, 1.5],
      ['bf16 (--float)', 'bf16', 16],
    ] as [string, Kind, number][]
  ).filter(([, k]) => KINDS.includes(k === 'bf16' ? 'bf16' : String(k.bits)));
  const ctx = 64 + DECODE;
  const kvBytes = c.numLayers * 2 * (c.numKvHeads * c.headDim) * 4 * (4 + DECODE);
  const summary: { name: string; tps: number[]; pct: number[]; perCpu: number }[] = [];
  const peerDecode: Record<string, number[]> = {};
  for (const [name, kind, bpw] of DECODE > 0 ? kinds : []) {
    const { w, bytes, arena } = model(c, kind);
    console.log(
      `${name}: weights ${arena ? 'in one arena, 2 MiB pages from the first touch' : 'in buffers of their own (no arena)'}`,
    );
    const row = { name, tps: [0, 0], pct: [0, 0], perCpu: 0 };
    const pn = peerName(kind);
    // llama.cpp runs in the same rounds as ours (ours ROUNDS times, each followed by the peer), so a change of
    // load on a shared machine falls on both
    const p = llama && pn ? await peerModel(llama, c, w) : null;
    if (p) peerDecode[pn] = [];
    for (const threads of [1, 2]) {
      const m = createModel(c, w, { contextLength: ctx, threads });
      m.forward([1, 2, 3, 4], 0, false);
      if (p) await p.decode(threads, 2); // warm: the GGUF's pages
      const bw = bandwidth(threads);
      const times: number[] = [];
      const peerRuns: { best: number; median: number; perCpu: number }[] = [];
      let cpuSec = 0;
      const per = Math.max(1, Math.floor(DECODE / ROUNDS));
      for (let r = 0, i = 0; r < ROUNDS; r++) {
        const c0 = process.cpuUsage();
        for (let k = 0; k < per; k++, i++) {
          const t0 = now();
          m.forward([5 + i], 4 + i, false);
          times.push(now() - t0);
        }
        const cpu = process.cpuUsage(c0);
        cpuSec += (cpu.user + cpu.system) / 1e6;
        if (p) peerRuns.push(await p.decode(threads, per));
      }
      const cpuTps = times.length / cpuSec;
      times.sort((a, b) => a - b);
      const tps = 1 / times[0];
      const median = 1 / times[times.length >> 1];
      const bound = bw / (bytes + kvBytes);
      const perCpu = threads === 1 ? `, ${cpuTps.toFixed(1)} tok per CPU-s` : '';
      row.tps[threads - 1] = tps;
      if (threads === 1) row.perCpu = cpuTps;
      row.pct[threads - 1] = (100 * tps) / bound;
      console.log(
        `decode ${name} (${bpw} bpw, ${(bytes / 1e9).toFixed(2)} GB/token), ${threads} thread${threads > 1 ? 's' : ''}: ` +
          `best ${tps.toFixed(1)} tok/s (median ${median.toFixed(1)}${perCpu}) = ${pct(tps, bound)} ` +
          `of the memory bound (${bound.toFixed(1)} tok/s at ${(bw / 1e9).toFixed(1)} GB/s, ${bwPages})`,
      );
      m.dispose();
      if (p) {
        const best = Math.max(...peerRuns.map((x) => x.best));
        const med = peerRuns.map((x) => x.median).sort((a, b) => a - b)[peerRuns.length >> 1];
        const pcpu = (peerRuns.length * per) / peerRuns.reduce((s2, x) => s2 + per / x.perCpu, 0);
        const pbound = bw / (p.bytes + kvBytes);
        peerDecode[pn].push(best);
        console.log(
          `  llama.cpp ${pn} (${((8 * p.bytes) / (bytes / (bpw / 8)) / 1).toFixed(2)} bpw read), ${threads} thread${threads > 1 ? 's' : ''}: ` +
            `best ${best.toFixed(1)} tok/s (median ${med.toFixed(1)}` +
            (threads === 1 ? `, ${pcpu.toFixed(1)} tok per CPU-s` : '') +
            `) = ${pct(best, pbound)} of the memory bound; ours ${name} / llama.cpp ${pn}: ` +
            `${(tps / best).toFixed(2)}×` +
            (threads === 1 ? ` (per CPU-s ${(cpuTps / pcpu).toFixed(2)}×)` : ''),
        );
      }
    }
    summary.push(row);
    if (p) await p.close();
    (globalThis as { gc?: () => void }).gc?.();
  }
  const q4 = peerDecode.Q4_0 ?? QUOTED.decode;
  const src = peerDecode.Q4_0 ? 'measured in this run' : 'quoted, not measured in this run';
  const f = summary.find((r) => r.name.startsWith('bf16'));
  if (summary.length) {
    console.log(
      `\ndecode summary (best tok/s, 1 / 2 threads; llama.cpp Q4_0 ${src}: ${q4.map((v) => v.toFixed(1)).join(' / ')})`,
    );
    for (const r of summary) {
      const vsF = f
        ? `; vs bf16 ${r.tps.map((v, i) => (v / f.tps[i]).toFixed(2)).join(' / ')}×, vs float32 ≈ ${r.tps.map((v, i) => ((2 * v) / f.tps[i]).toFixed(1)).join(' / ')}× (float32 reads 2× bf16's bytes)`
        : '';
      console.log(
        `  ${r.name.padEnd(15)} ${r.tps.map((v) => v.toFixed(1)).join(' / ')} tok/s, ${r.pct.map((v) => v.toFixed(0)).join(' / ')} % of bound, ` +
          `${r.tps.map((v, i) => (v / q4[i]).toFixed(2)).join(' / ')}× llama.cpp Q4_0${vsF}`,
      );
    }
  }
  if (PROMPT > 0) await promptBench(llama);
  rss();
}

// Prompt processing: compute-bound, so a fraction of the layers gives tokens/s of the whole model by scaling
// (both engines measured on the same PROMPT_LAYERS-layer model).
async function promptBench(llama: Awaited<ReturnType<typeof peer>>) {
  const pc = tinyLlamaConfig(PROMPT_LAYERS);
  const scale = LAYERS / PROMPT_LAYERS;
  const tokens = Array.from({ length: PROMPT }, (_, i) => 3 + ((i * 7919) % 31000));
  for (const [name, kind] of (
    [
      ['8-bit g64', { bits: 8 }],
      ['4-bit g64', { bits: 4 }],
    ] as [string, Kind][]
  ).filter(([, k]) => KINDS.includes(String(k === 'bf16' ? 'bf16' : k.bits)))) {
    const { w } = model(pc, kind);
    const ours: number[] = [];
    for (const threads of [1, 2]) {
      const m = createModel(pc, w, { contextLength: PROMPT, threads });
      let sec = Infinity;
      const c0 = process.cpuUsage();
      for (let rep = 0; rep < 2; rep++) {
        m.reset();
        const t0 = now();
        m.forward(tokens, 0, false);
        sec = Math.min(sec, now() - t0);
      }
      const cpu = process.cpuUsage(c0);
      const cpuSec = (cpu.user + cpu.system) / 1e6 / 2;
      const tps = PROMPT / (sec * scale);
      ours.push(tps);
      console.log(
        `prompt ${PROMPT} tokens, ${name}, ${threads} thread${threads > 1 ? 's' : ''} (measured on ${PROMPT_LAYERS} layers, ` +
          `scaled to ${LAYERS}): ${tps.toFixed(1)} tok/s` +
          (threads === 1 ? ` (${(PROMPT / (cpuSec * scale)).toFixed(1)} tok per CPU-s)` : ''),
      );
      m.dispose();
    }
    const pn = peerName(kind);
    if (llama && pn) {
      const p = await peerModel(llama, pc, w);
      for (const threads of [1, 2]) {
        const tps = PROMPT / ((await p.prompt(threads, tokens)) * scale);
        console.log(
          `  llama.cpp ${pn}, ${PROMPT} tokens, ${threads} thread${threads > 1 ? 's' : ''} (same method): ${tps.toFixed(1)} tok/s; ` +
            `ours / llama.cpp: ${(ours[threads - 1] / tps).toFixed(2)}×`,
        );
      }
      await p.close();
    } else if (pn === 'Q4_0')
      console.log(
        `  vs llama.cpp Q4_0 quoted (128-token prompt, not this run): ${ours.map((v, i) => (v / QUOTED.prompt[i]).toFixed(2)).join(' / ')}×`,
      );
  }
}

/** Peak RSS of a 4-bit decode run (a child process running only that) against the packed size. */
function rss() {
  if (!KINDS.includes('4')) return;
  const r = spawnSync(process.execPath, ['--import', 'tsx', __filename], {
    env: { ...process.env, APL_BENCH_RSS_CHILD: '1' },
    encoding: 'utf8',
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  if (!line) {
    console.log(`peak RSS: the child run failed (${r.stderr.split('\n')[0]})`);
    return;
  }
  const { base, peak, packed } = JSON.parse(line) as { base: number; peak: number; packed: number };
  console.log(
    `peak RSS of a 4-bit decode run (${LAYERS} layers, context ${64}): ${(peak / 1e9).toFixed(2)} GB; packed weights ` +
      `${(packed / 1e9).toFixed(2)} GB (with the embedding table); node alone ${(base / 1e6).toFixed(0)} MB; ` +
      `RSS − node = ${((peak - base) / packed).toFixed(2)}× the packed size`,
  );
}

function rssChild() {
  const base = process.memoryUsage().rss;
  const c = tinyLlamaConfig(LAYERS);
  const { w, bytes } = model(c, { bits: 4 });
  const e = w.embed.kind === 'packed' ? w.embed.q.length + w.embed.scales.length + w.embed.zeros.length : 0;
  const m = createModel(c, w, { contextLength: 64, threads: 1 });
  m.forward([1, 2, 3, 4], 0, false);
  for (let i = 0; i < 4; i++) m.forward([5 + i], 4 + i, false);
  console.log(JSON.stringify({ base, peak: peakRss(), packed: bytes + e }));
}

/** This process's peak RSS: VmHWM (getrusage's maxRSS carries the parent's peak over fork on Linux). */
function peakRss(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}

/**
 * APL_BENCH_HUGE_AB=1: the 4-bit decode with the weights in 4 KiB pages (A, a model built with APL_HUGE=0) and in
 * 2 MiB pages (B, the default; native/src/infer/hugepages.h) side by side in one process: two copies of the same
 * weights, one token of A then one of B, 1 and 2 threads. Best and median tok/s and B / A; the logits must agree.
 * APL_BENCH_HUGE_AB=arena: A the weights in buffers of their own collapsed to 2 MiB pages (APL_HUGE=sync, as before
 * the weight arena), B a copy in one weight arena (native/weight-arena.ts).
 */
async function hugeAb() {
  const arenaAb = process.env.APL_BENCH_HUGE_AB === 'arena';
  const c = tinyLlamaConfig(LAYERS);
  process.env.APL_HUGE = '0'; // buffers of their own (no arena) for A
  const { w } = model(c, { bits: 4 });
  delete process.env.APL_HUGE;
  const copy = (x: LinearWeight): LinearWeight =>
    x.kind === 'packed' ? { ...x, q: x.q.slice(), scales: x.scales.slice(), zeros: x.zeros.slice() } : x;
  const w2: ModelWeights = arenaAb
    ? weightsInArena(w)
    : {
        ...w,
        layers: w.layers.map((L) => ({
          ...L,
          ...Object.fromEntries(['q', 'k', 'v', 'o', 'gate', 'up', 'down'].map((k) => [k, copy(L[k as 'q'])])),
        })) as ModelWeights['layers'],
        lmHead: copy(w.lmHead),
      };
  const [na, nb] = arenaAb ? ['own buffers collapsed', 'arena'] : ['4 KiB pages', '2 MiB pages'];
  const n = Math.max(8, DECODE);
  for (const threads of [1, 2]) {
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    process.env.APL_HUGE = arenaAb ? 'sync' : '0';
    const a = createModel(c, w, { contextLength: n + 8, threads });
    process.env.APL_HUGE = 'sync';
    const b = createModel(c, w2, { contextLength: n + 8, threads });
    const ta: number[] = [];
    const tb: number[] = [];
    let same = true;
    for (let i = 0; i < n; i++) {
      const t0 = now();
      const la = a.forward([5 + i], i, false);
      const t1 = now();
      const lb = b.forward([5 + i], i, false);
      const t2 = now();
      ta.push(t1 - t0);
      tb.push(t2 - t1);
      same &&= la.length === lb.length && la.every((v, j) => Object.is(v, lb[j]));
    }
    const stat = (t: number[]) => {
      const s = [...t].sort((x, y) => x - y);
      return [1 / s[0], 1 / s[s.length >> 1]];
    };
    const [ab, am] = stat(ta);
    const [bb, bm] = stat(tb);
    console.log(
      `huge-page A/B, 4-bit g64, ${threads} thread${threads > 1 ? 's' : ''} (load ${load}): ${na} best ${ab.toFixed(1)} ` +
        `tok/s (median ${am.toFixed(1)}), ${nb} best ${bb.toFixed(1)} (median ${bm.toFixed(1)}); ` +
        `B / A best ${(bb / ab).toFixed(2)}×, median ${(bm / am).toFixed(2)}×; logits ${same ? 'identical' : 'DIFFER'}`,
    );
    a.dispose();
    b.dispose();
  }
  delete process.env.APL_HUGE;
}

if (process.env.APL_BENCH_RSS_CHILD === '1') rssChild();
else if (process.env.APL_BENCH_HUGE_AB === '1' || process.env.APL_BENCH_HUGE_AB === 'arena')
  hugeAb().then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
else
  main().then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
