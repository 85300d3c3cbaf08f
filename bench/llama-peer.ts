// llama.cpp beside us in the decode bench, through node-llama-cpp 3.21.1 (llama.cpp's prebuilt CPU build), installed
// on demand by `npm run bench:peer-install` into .tools/llama-peer (not a devDependency: its optional GPU prebuilds
// weigh ~680 MB, which every `npm ci` and CI would download for a benchmark they never run). Loads a GGUF of the bench's synthetic weights (bench/gguf.ts), then times decode and prompt the way the
// bench times our engine. When node-llama-cpp is absent or cannot load, peer() says why once and returns null.
import { existsSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ModelConfig, ModelWeights } from '../native/forward-types';
import { tempDir } from '../test/helpers/tmp';
import { ggufTensors, writeGguf } from './gguf';

const now = () => Number(process.hrtime.bigint()) / 1e9;

// The few parts of node-llama-cpp's API used here (typed locally: the bench must load without it).
interface Seq {
  evaluateWithoutGeneratingNewTokens(tokens: number[]): Promise<void>;
  evaluate(tokens: number[], o: { temperature: number; yieldEogToken: boolean }): AsyncGenerator<number>;
}
interface Ctx {
  getSequence(): Seq;
  dispose(): Promise<void>;
}
interface Model {
  createContext(o: { contextSize: number; batchSize: number; threads: { ideal: number; min: number } }): Promise<Ctx>;
  dispose(): Promise<void>;
}
interface Llama {
  loadModel(o: { modelPath: string; gpuLayers: number }): Promise<Model>;
  dispose(): Promise<void>;
}

let llama: Promise<Llama | null> | undefined;
/** The llama.cpp instance (CPU build), or null with the reason printed. */
export function peer(): Promise<Llama | null> {
  llama ??= (async () => {
    try {
      const local = resolve(__dirname, '..', '.tools', 'llama-peer', 'node_modules', 'node-llama-cpp');
      if (!existsSync(local)) throw new Error('node-llama-cpp is not installed (npm run bench:peer-install)');
      const m = (await import(pathToFileURL(join(local, 'dist', 'index.js')).href)) as {
        getLlama(o: object): Promise<Llama>;
      };
      return await m.getLlama({ gpu: false, build: 'never', logLevel: 'error', progressLogs: false, maxThreads: 0 });
    } catch (e) {
      console.log(`llama.cpp peer skipped: ${String((e as Error).message ?? e).split('\n')[0]}`);
      return null;
    }
  })();
  return llama;
}

export interface PeerRun {
  /** Bytes of the GGUF's tensors read per decoded token (all but the embedding table). */
  bytes: number;
  /** Best and median tokens/s, and tokens per CPU-second of this process (moves less with the load). */
  decode(threads: number, tokens: number): Promise<{ best: number; median: number; perCpu: number }>;
  prompt(threads: number, tokens: number[]): Promise<number>;
  close(): Promise<void>;
}

/** Writes the GGUF of `w` to a temporary folder and loads it; close() removes it. */
export async function peerModel(l: Llama, c: ModelConfig, w: ModelWeights): Promise<PeerRun> {
  // ~590 MB: tempDir also removes it when the bench ends early (an error, Ctrl-C, SIGTERM) before close().
  const dir = tempDir('apl-gguf-');
  const path = join(dir, 'model.gguf');
  const tensors = ggufTensors(w);
  let model: Model;
  try {
    writeGguf(path, c, tensors);
    model = await l.loadModel({ modelPath: path, gpuLayers: 0 });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const embed = tensors[0];
  const total = tensors.reduce((s, t) => s + t.bytes, 0);
  const context = (threads: number, size: number) =>
    model.createContext({
      contextSize: size,
      batchSize: Math.min(size, 512),
      threads: { ideal: threads, min: threads },
    });
  return {
    bytes: total - embed.bytes,
    async decode(threads, n) {
      const ctx = await context(threads, 256);
      const seq = ctx.getSequence();
      await seq.evaluateWithoutGeneratingNewTokens([1, 2, 3, 4]);
      const gen = seq.evaluate([5], { temperature: 0, yieldEogToken: true });
      const times: number[] = [];
      const c0 = process.cpuUsage();
      for (let i = 0; i < n; i++) {
        const t0 = now();
        await gen.next();
        times.push(now() - t0);
      }
      const cpu = process.cpuUsage(c0);
      await gen.return(undefined);
      await ctx.dispose();
      times.sort((a, b) => a - b);
      return { best: 1 / times[0], median: 1 / times[times.length >> 1], perCpu: n / ((cpu.user + cpu.system) / 1e6) };
    },
    async prompt(threads, tokens) {
      let best = Infinity;
      for (let rep = 0; rep < 2; rep++) {
        const ctx = await context(threads, tokens.length + 16);
        const t0 = now();
        await ctx.getSequence().evaluateWithoutGeneratingNewTokens(tokens);
        best = Math.min(best, now() - t0);
        await ctx.dispose();
      }
      return best;
    },
    async close() {
      await model.dispose();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
