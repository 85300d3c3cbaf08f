// apl-quant matmul <manifest> --weight NAME --input X: y = x · Ŵᵀ with one weight of a converted model.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { LinearWeight } from '../../../native/forward-types';
import { f16ToF32 } from '../formats/dtypes';
import { matrixView } from '../formats/manifest';
import { readNpyArray, writeNpyFile } from '../formats/npy';
import { openCheckpoint } from '../formats/safetensors';
import { openFileSource, readRegularFileSync } from '../formats/source';
import { RunError } from '../run/config';
import { linearForward } from '../run/engine';
import { checkpointWeight, openManifestNpz, readManifest, readNpzWeight, sourceCandidates } from '../run/load';
import { CliError, npyOutput, parseArgs } from './common';

const HELP = `usage: apl-quant matmul <manifest> --weight NAME --input X [--out Y.npy] [--float] [--backend auto|cpu|gpu]

Computes y = x · Ŵᵀ with one weight of the model (Ŵ dequantized from the NPZ; with --float, the source checkpoint's).
  --weight NAME    the weight's name in the manifest (e.g. model.layers.0.self_attn.q_proj.weight)
  --input X        a .npy (float32 or float16, shape [in] or [n, in]) or a text file of numbers (one row per line,
                   separated by spaces or commas)
  --out Y.npy      write y as float32 [out] or [n, out]; without it, a short summary on stdout
  --float          use the source checkpoint's float weight
  --backend B      auto, cpu or gpu (default auto)
  --threads T      CPU threads`;

export interface MatInput {
  x: Float32Array;
  n: number;
  /** Whether the input was a single vector (then y is [out]). */
  vector: boolean;
}

/** Reads --input: a .npy of float32/float16, or text with one row per line. `cols` is the weight's in-features. */
export async function readInput(path: string, cols: number): Promise<MatInput> {
  let values: Float32Array;
  let shape: number[];
  if (path.endsWith('.npy')) {
    let arr: Awaited<ReturnType<typeof readNpyArray>>;
    let src: Awaited<ReturnType<typeof openFileSource>>;
    try {
      src = await openFileSource(path);
    } catch (e) {
      throw new RunError((e as Error).message);
    }
    try {
      arr = await readNpyArray(src);
    } catch (e) {
      throw new RunError((e as Error).message.replace(/\s*\n\s*/g, ' '));
    } finally {
      await src.close();
    }
    const { header, data } = arr;
    if (header.fortranOrder && header.shape.length > 1)
      throw new RunError(`${path}: Fortran-order arrays are not supported`);
    if (header.dtype === 'float32') values = data as Float32Array;
    else if (header.dtype === 'float16') values = Float32Array.from(data as Uint16Array, (h) => f16ToF32(h));
    else throw new RunError(`${path}: dtype ${header.dtype}; expected float32 or float16`);
    shape = header.shape;
    if (shape.length < 1 || shape.length > 2) throw new RunError(`${path}: shape [${shape}]; expected [in] or [n, in]`);
  } else {
    let text: string;
    try {
      text = readRegularFileSync(path).toString('utf8');
    } catch (e) {
      throw new RunError((e as Error).message);
    }
    const lines = text
      .split(/\r?\n/)
      .map((l) => l.replace(/#.*/, '').trim())
      .filter(Boolean);
    const rows = lines.map((l, i) =>
      l.split(/[\s,]+/).map((t) => {
        const v = Number(t);
        if (t === '' || !Number.isFinite(v)) throw new RunError(`${path}: line ${i + 1}: '${t}' is not a number`);
        return v;
      }),
    );
    const count = rows.reduce((a, r) => a + r.length, 0);
    if (count === 0) throw new RunError(`${path}: no numbers`);
    values = Float32Array.from(rows.flat());
    // One number per line (the guide's vector file) or one row per line.
    shape = rows.every((r) => r.length === 1) ? [count] : [rows.length, rows[0].length];
    if (shape.length === 2 && rows.some((r) => r.length !== rows[0].length)) {
      throw new RunError(`${path}: rows have different lengths`);
    }
  }
  const inner = shape[shape.length - 1];
  if (inner !== cols) {
    throw new RunError(`${path}: input rows have ${inner} values, but the weight takes ${cols} (shape [out, ${cols}])`);
  }
  const n = shape.length === 2 ? shape[0] : 1;
  if (n === 0) throw new RunError(`${path}: no rows`);
  // NaN or ±inf (a text value past float32's range too) would come out as zeros through the int8 activations.
  const bad = values.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    const at = shape.length === 2 ? `row ${Math.floor(bad / inner)}, column ${bad % inner}` : `element ${bad}`;
    throw new RunError(`${path}: ${at} is ${values[bad]}; the input must be finite`);
  }
  return { x: values, n, vector: shape.length === 1 };
}

async function loadWeight(manifestPath: string, name: string, float: boolean): Promise<LinearWeight> {
  const m = readManifest(manifestPath);
  const e = m.weights.find((w) => w.name === name);
  if (!e) {
    const sample = m.weights
      .slice(0, 3)
      .map((w) => w.name)
      .join(', ');
    throw new RunError(`${manifestPath}: unknown weight '${name}' (${m.weights.length} weights, e.g. ${sample})`);
  }
  if (e.shape.length < 2) throw new RunError(`${manifestPath}: ${name} has shape [${e.shape}], not a matrix`);
  if (float) {
    const dir = sourceCandidates(manifestPath, m).find((d) => existsSync(d));
    if (!dir) throw new RunError(`${manifestPath}: --float needs the source checkpoint, which was not found`);
    const ck = await openCheckpoint(dir);
    try {
      return await checkpointWeight(ck, e.source?.tensor ?? name);
    } finally {
      await ck.close();
    }
  }
  const { npz, path } = await openManifestNpz(manifestPath, m);
  try {
    const w = await readNpzWeight(npz, e, path);
    const { rows, cols } = matrixView(e.shape);
    if (w.rows !== rows || w.cols !== cols) throw new RunError(`${path}: ${name} disagrees with the manifest`);
    return w;
  } finally {
    await npz.close();
  }
}

/** min, max, mean and L2 norm of y, and its first values: the summary printed without --out. */
export function summary(y: Float32Array, shape: number[]): string {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  let sum = 0;
  let sq = 0;
  for (const v of y) {
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
    sq += v * v;
  }
  const f = (v: number) => Number(v.toPrecision(6)).toString();
  const head = Array.from(y.subarray(0, 8), f).join(', ');
  return `y: float32 [${shape.join(', ')}], min ${f(min)}, max ${f(max)}, mean ${f(sum / y.length)}, L2 ${f(Math.sqrt(sq))}\nfirst: ${head}${y.length > 8 ? ', …' : ''}`;
}

export async function run(argv: string[], io: { out: (s: string) => void } = { out: (s) => process.stdout.write(s) }) {
  if (argv.includes('-h')) {
    io.out(`${HELP}\n`);
    return 0;
  }
  const valued = ['weight', 'input', 'out', 'backend', 'threads'];
  const { positionals, flags } = parseArgs(argv, valued, [...valued, 'float', 'help']);
  if (flags.has('help')) {
    io.out(`${HELP}\n`);
    return 0;
  }
  const str = (k: string) => {
    const v = flags.get(k);
    return typeof v === 'string' ? v : undefined;
  };
  if (positionals.length !== 1) throw new CliError('expected one manifest (see --help)', 2);
  const weight = str('weight');
  const input = str('input');
  if (!weight) throw new CliError('--weight NAME is required', 2);
  if (!input) throw new CliError('--input X is required', 2);
  const out = str('out');
  if (out !== undefined) npyOutput('out', out);
  const backend = str('backend') ?? 'auto';
  if (!['auto', 'cpu', 'gpu'].includes(backend))
    throw new CliError(`--backend must be auto, cpu or gpu (got ${backend})`, 2);
  const th = str('threads');
  if (th !== undefined && !/^[1-9]\d*$/.test(th)) throw new CliError(`--threads must be a positive integer`, 2);
  try {
    const w = await loadWeight(resolve(positionals[0]), weight, flags.has('float'));
    const { x, n, vector } = await readInput(input, w.cols);
    const y = linearForward(w, x, n, {
      backend: backend as 'auto' | 'cpu' | 'gpu',
      threads: th ? Number(th) : undefined,
    });
    const shape = vector ? [w.rows] : [n, w.rows];
    if (out) {
      await writeNpyFile(out, 'float32', shape, y);
      io.out(`wrote ${out}: float32 [${shape.join(', ')}]\n`);
    } else io.out(`${summary(y, shape)}\n`);
    return 0;
  } catch (e) {
    throw new CliError(((e as Error).message ?? String(e)).replace(/\s*\n\s*/g, ' '), 1);
  }
}
