// Loads a converted model for the forward pass: the manifest, its NPZ (tensor by tensor; quantized weights stay
// packed) and the files convert keeps beside it (tokenizer, tokenizer config with the chat template, generation
// config). With `float`, the source checkpoint's tensors instead (the folder or Hugging Face cache snapshot the
// manifest names), bf16 kept as bf16. Every problem is a RunError naming the file.
import { existsSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { FloatWeight, KquantWeight, LinearWeight, ModelConfig, ModelWeights } from '../../../native/forward-types';
import { checkFormat, kqSizes } from '../../../native/kquant';
import { arenaBytes, createWeightArena, type WeightArena } from '../../../native/weight-arena';
import { f16ToF32 } from '../formats/dtypes';
import { FormatError } from '../formats/errors';
import type { Manifest, WeightEntry } from '../formats/manifest';
import { groupsPerRow, matrixView, packedRowBytes } from '../formats/manifest';
import { type NpzArchive, openNpzFile } from '../formats/npz';
import { type Checkpoint, openCheckpoint, toF32 } from '../formats/safetensors';
import { checkSideBytes, MAX_SIDE_BYTES, type SideKey } from '../formats/side-file';
import { readRegularFileSync } from '../formats/source';
import { tokenizerIdCount } from '../formats/tokenizer-json';
import { defaultCacheDir } from '../hub/cache';
import { modelConfigFromManifest, RunError } from './config';
import { TextTokenizer } from './tokenizer';

export interface LoadOptions {
  /** Run on the source checkpoint's float weights instead of the NPZ. */
  float?: boolean;
  /** Never touch the network (loading never does; kept for the interface). */
  offline?: boolean;
  /** With `float`: the source checkpoint folder to read (default: the one the manifest names, sourceCandidates). */
  sourceDir?: string;
  /**
   * The NPZ's linear weights in one weight arena, in 2 MiB pages from the first touch (native/weight-arena.ts):
   * by default when the model has ARENA_MIN_BYTES of them or more; true: whatever the size; false: never (each
   * weight in its own buffer, as with APL_HUGE=0).
   */
  arena?: boolean;
  /** false: leave the tokenizer unread (tokenizer null), for a second model over the same manifest (eval's float). */
  tokenizer?: boolean;
}

export interface LoadedModel {
  manifestPath: string;
  manifest: Manifest;
  config: ModelConfig;
  weights: ModelWeights;
  tokenizer: TextTokenizer | null;
  chatTemplate?: string;
  generation?: Record<string, unknown>;
  /** Where the weights came from: the NPZ, or the source checkpoint folder. */
  weightsFrom: string;
}

const oneLine = (s: string) => s.replace(/\s*\n\s*/g, ' ');
const errMsg = (e: unknown) => oneLine((e as Error)?.message ?? String(e));
/** e's problem at `file`: a FormatError about that file already names it, so only its problem is kept. */
const problemAt = (file: string, e: unknown) =>
  e instanceof FormatError && e.file === file ? oneLine(e.problem) : errMsg(e);

/** Reads and minimally checks a manifest (JSON, model block, weights list, metadata.npz). */
export function readManifest(path: string): Manifest {
  let text: string;
  try {
    // A FIFO or device would block the read forever: only a regular file is read.
    text = readRegularFileSync(path).toString('utf8');
  } catch (e) {
    throw new RunError(`${path}: ${problemAt(path, e)}`);
  }
  let m: Manifest;
  try {
    m = JSON.parse(text);
  } catch (e) {
    throw new RunError(`${path}: not valid JSON (${errMsg(e)})`);
  }
  if (!m || typeof m !== 'object' || !m.model || typeof m.model !== 'object' || !Array.isArray(m.weights)) {
    throw new RunError(`${path}: not an apl-quant manifest (expected model and weights)`);
  }
  if (typeof m.metadata?.npz !== 'string' || !m.metadata.npz) throw new RunError(`${path}: metadata.npz is missing`);
  return m;
}

/** Opens the NPZ a manifest names (beside it). */
export async function openManifestNpz(manifestPath: string, m: Manifest): Promise<{ npz: NpzArchive; path: string }> {
  const path = join(dirname(manifestPath), m.metadata.npz);
  if (!existsSync(path)) throw new RunError(`${manifestPath}: its NPZ ${path} is missing`);
  try {
    return { npz: await openNpzFile(path), path };
  } catch (e) {
    throw new RunError(`${path}: ${problemAt(path, e)}`);
  }
}

/** One manifest weight read from the NPZ as the forward pass wants it: packed stays packed; floats stay as stored. */
export async function readNpzWeight(
  npz: NpzArchive,
  e: WeightEntry,
  file: string,
  arena?: WeightArena | null,
): Promise<LinearWeight> {
  const { rows, cols } = matrixView(e.shape);
  const read = async (member: string) => {
    if (!npz.member(member)) throw new RunError(`${file}: member ${member} of ${e.name} is missing`);
    try {
      // with an arena, the data is read straight into it (2 MiB pages from the first touch: native/weight-arena.ts)
      return arena ? await npz.readArrayInto(member, (h) => arena.take(h.dataBytes)) : await npz.readArray(member);
    } catch (err) {
      throw new RunError(`${file}: ${e.name}: ${problemAt(file, err)}`);
    }
  };
  const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const disagree = (what: string, got: unknown, want: unknown) =>
    new RunError(`${file}: ${e.name}: ${what} is ${JSON.stringify(got)} but the manifest says ${JSON.stringify(want)}`);
  const qz = e.quantization;
  if (!qz || qz.type === 'none') {
    const { header, data } = await read(e.q);
    if (header.count !== rows * cols) throw disagree('shape', header.shape, e.shape);
    if (header.dtype !== 'float16' && header.dtype !== 'float32') {
      throw new RunError(`${file}: ${e.name}: dtype ${header.dtype} is not a float`);
    }
    return { kind: 'float', rows, cols, dtype: header.dtype === 'float16' ? 'f16' : 'f32', data: bytes(data) };
  }
  if (qz.type === 'kquant') return readKquantWeight(e, rows, cols, read, disagree, file);
  if (qz.type !== 'groupwise_int' && qz.type !== 'perrow_int') {
    throw new RunError(`${file}: ${e.name}: quantization type '${qz.type}' is not one the forward pass reads`);
  }
  const bits = qz.bits;
  if (bits !== 1 && bits !== 2 && bits !== 4 && bits !== 8) throw new RunError(`${file}: ${e.name}: bits ${bits}`);
  const groupSize = qz.group_size ?? cols;
  if (!e.q_scales || !e.q_zero_point) throw new RunError(`${file}: ${e.name}: q_scales or q_zero_point missing`);
  const q = await read(e.q);
  const want = [rows, packedRowBytes(cols, bits)];
  if (q.header.dtype !== 'uint8' || q.header.count !== want[0] * want[1]) {
    throw disagree(`packed member ${e.q}`, q.header.shape, want);
  }
  const s = await read(e.q_scales);
  const z = await read(e.q_zero_point);
  const groups = rows * groupsPerRow(cols, groupSize);
  for (const [m, a] of [
    [e.q_scales, s],
    [e.q_zero_point, z],
  ] as const) {
    if (a.header.count !== groups) throw disagree(`member ${m}`, a.header.shape, [rows, groupsPerRow(cols, groupSize)]);
    if (a.header.dtype !== 'float16' && a.header.dtype !== 'float32') throw disagree(`${m} dtype`, a.header.dtype, 'f');
  }
  return {
    kind: 'packed',
    rows,
    cols,
    bits,
    groupSize,
    q: bytes(q.data),
    scales: bytes(s.data),
    zeros: bytes(z.data),
    scaleDtype: s.header.dtype === 'float16' ? 'f16' : 'f32',
  };
}

/** A kquant weight's four members (docs/FORMAT.md), checked against its format and shape. */
async function readKquantWeight(
  e: WeightEntry,
  rows: number,
  cols: number,
  read: (m: string) => Promise<{ header: { dtype: string; count: number; shape: number[] }; data: ArrayBufferView }>,
  disagree: (what: string, got: unknown, want: unknown) => RunError,
  file: string,
): Promise<KquantWeight> {
  const qz = e.quantization;
  const f = {
    bits: qz.bits as 2 | 4 | 8,
    group: qz.group_size ?? 0,
    super: qz.super_size ?? 0,
    scaleBits: qz.scale_bits ?? 0,
    minBits: qz.min_bits ?? 0,
  };
  try {
    checkFormat(f, `${file}: ${e.name}`);
  } catch (err) {
    throw new RunError(errMsg(err));
  }
  if (!e.q_codes || !e.q_d || !e.q_dmin) throw new RunError(`${file}: ${e.name}: q_codes, q_d or q_dmin missing`);
  const sizes = kqSizes(rows, cols, f);
  const arrays: Uint8Array[] = [];
  for (const [m, k, dtype] of [
    [e.q, 'q', 'uint8'],
    [e.q_codes, 'codes', 'uint8'],
    [e.q_d, 'd', 'float16'],
    [e.q_dmin, 'dmin', 'float16'],
  ] as const) {
    const a = await read(m);
    const n = sizes[k] / (dtype === 'float16' ? 2 : 1);
    if (a.header.dtype !== dtype || a.header.count !== n) {
      throw disagree(`member ${m}`, `${a.header.dtype} ${JSON.stringify(a.header.shape)}`, `${dtype} of ${n} values`);
    }
    arrays.push(new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength));
  }
  const [q, codes, d, dmin] = arrays;
  return { kind: 'kquant', rows, cols, ...f, q, codes, d, dmin };
}

/** A 1-D weight (a norm) as float32. */
export function vectorOf(w: LinearWeight, name: string, file: string): Float32Array {
  if (w.kind !== 'float') throw new RunError(`${file}: ${name} is quantized; a norm weight must be float`);
  if (w.dtype === 'f32') return new Float32Array(w.data.slice().buffer);
  if (w.dtype === 'bf16') return toF32(w.data, 'BF16', name);
  const out = new Float32Array(w.rows * w.cols);
  const dv = new DataView(w.data.buffer, w.data.byteOffset, w.data.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = f16ToF32(dv.getUint16(i * 2, true));
  return out;
}

/** The tensor names of the three families (they share Llama's layout). */
export function tensorNames(numLayers: number) {
  const layers = Array.from({ length: numLayers }, (_, l) => {
    const p = `model.layers.${l}`;
    return {
      inputNorm: `${p}.input_layernorm.weight`,
      q: `${p}.self_attn.q_proj.weight`,
      k: `${p}.self_attn.k_proj.weight`,
      v: `${p}.self_attn.v_proj.weight`,
      o: `${p}.self_attn.o_proj.weight`,
      postAttnNorm: `${p}.post_attention_layernorm.weight`,
      gate: `${p}.mlp.gate_proj.weight`,
      up: `${p}.mlp.up_proj.weight`,
      down: `${p}.mlp.down_proj.weight`,
    };
  });
  return { embed: 'model.embed_tokens.weight', finalNorm: 'model.norm.weight', lmHead: 'lm_head.weight', layers };
}

/**
 * Refuses a num_layers past the layers `file` holds (its last layer's input norm missing) before anything is sized
 * by it: a manifest edited to a huge count is one clear line, not an out-of-memory crash.
 */
export function checkLayerCount(config: ModelConfig, has: (name: string) => boolean, file: string): void {
  const last = `model.layers.${config.numLayers - 1}.input_layernorm.weight`;
  if (!has(last)) {
    throw new RunError(`${file}: model.num_layers is ${config.numLayers}, but there is no ${last}`);
  }
}

/** Assembles ModelWeights from a reader of named tensors (NPZ or checkpoint); `has` tells whether a tensor exists. */
export async function assembleWeights(
  config: ModelConfig,
  get: (name: string) => Promise<LinearWeight>,
  has: (name: string) => boolean,
  file: string,
): Promise<ModelWeights> {
  checkLayerCount(config, has, file);
  const n = tensorNames(config.numLayers);
  const h = config.hiddenSize;
  const qd = config.numHeads * config.headDim;
  const kvd = config.numKvHeads * config.headDim;
  const ff = config.intermediateSize;
  // Every shape against the model block, naming the tensor and the config values that size it.
  const mat = async (name: string, rows: number, cols: number, by: string) => {
    const w = await get(name);
    if (w.rows !== rows || w.cols !== cols) {
      throw new RunError(
        `${file}: ${name} has shape [${w.rows}, ${w.cols}], but the model block asks for [${rows}, ${cols}] (${by})`,
      );
    }
    return w;
  };
  const vec = async (name: string) => {
    const v = vectorOf(await get(name), name, file);
    if (v.length !== h) throw new RunError(`${file}: ${name} has ${v.length} values, but hidden_dim is ${h}`);
    return v;
  };
  const embed = await mat(n.embed, config.vocabSize, h, 'vocab_size, hidden_dim');
  const layers = [];
  for (const l of n.layers) {
    layers.push({
      inputNorm: await vec(l.inputNorm),
      q: await mat(l.q, qd, h, 'num_heads × head_dim, hidden_dim'),
      k: await mat(l.k, kvd, h, 'num_kv_heads × head_dim, hidden_dim'),
      v: await mat(l.v, kvd, h, 'num_kv_heads × head_dim, hidden_dim'),
      o: await mat(l.o, h, qd, 'hidden_dim, num_heads × head_dim'),
      postAttnNorm: await vec(l.postAttnNorm),
      gate: await mat(l.gate, ff, h, 'intermediate_size, hidden_dim'),
      up: await mat(l.up, ff, h, 'intermediate_size, hidden_dim'),
      down: await mat(l.down, h, ff, 'hidden_dim, intermediate_size'),
    });
  }
  const finalNorm = await vec(n.finalNorm);
  const lmHead =
    has(n.lmHead) && !config.tieWordEmbeddings
      ? await mat(n.lmHead, config.vocabSize, h, 'vocab_size, hidden_dim')
      : embed;
  return { embed, layers, finalNorm, lmHead };
}

/** The source checkpoint folder a manifest names: model.source as a folder, else its HF cache snapshot. */
export function sourceCandidates(manifestPath: string, m: Manifest): string[] {
  const source = m.model.source;
  if (typeof source !== 'string' || !source) return [];
  const out = [isAbsolute(source) ? source : join(dirname(manifestPath), source)];
  const rev = m.model.revision;
  if (/^[\w.-]+\/[\w.-]+$/.test(source) && typeof rev === 'string' && /^[0-9a-f]{40}$/.test(rev)) {
    out.push(join(defaultCacheDir(), `models--${source.replace('/', '--')}`, 'snapshots', rev));
  }
  return out;
}

const ST_DTYPES: Record<string, FloatWeight['dtype']> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };

/** A checkpoint tensor as a FloatWeight (raw bytes, dtype kept). */
export async function checkpointWeight(ck: Checkpoint, name: string): Promise<FloatWeight> {
  const t = ck.tensor(name);
  if (!t) throw new RunError(`${ck.dir}: tensor ${name} is missing`);
  const dtype = ST_DTYPES[t.dtype];
  if (!dtype) throw new RunError(`${ck.dir}: tensor ${name} has dtype ${t.dtype}, not F32, F16 or BF16`);
  const { rows, cols } = matrixView(t.shape);
  const raw = await ck.readRaw(name);
  return { kind: 'float', rows, cols, dtype, data: new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength) };
}

/** A side file named by the manifest's metadata (`key`), read and checked as convert and the editor check it. */
function readSideFile(manifestPath: string, name: unknown, key: SideKey): Record<string, unknown> | undefined {
  if (typeof name !== 'string' || !name) return undefined;
  const p = join(dirname(manifestPath), name);
  let bytes: Buffer;
  try {
    bytes = readRegularFileSync(p, MAX_SIDE_BYTES);
  } catch (e) {
    throw new RunError(`${p}: ${problemAt(p, e)}`);
  }
  const content = checkSideBytes(key, bytes);
  if (content.problem !== undefined) throw new RunError(`${p}: ${oneLine(content.problem)}`);
  return content.value as Record<string, unknown>;
}

/**
 * The tokenizer convert kept beside the manifest, or null when there is none. Both files' shapes are checked first
 * (formats/side-file.ts), and with `vocabSize` (the model's) every id the tokenizer defines must be below it.
 */
export function loadTokenizer(manifestPath: string, m: Manifest, vocabSize?: number): TextTokenizer | null {
  const json = readSideFile(manifestPath, m.metadata.tokenizer, 'tokenizer');
  if (!json) return null;
  const file = join(dirname(manifestPath), String(m.metadata.tokenizer));
  const cfg = readSideFile(manifestPath, m.metadata.tokenizer_config, 'tokenizer_config') ?? {};
  const ids = tokenizerIdCount(json);
  if (vocabSize !== undefined && ids > vocabSize) {
    throw new RunError(
      `${file}: the tokenizer defines ${ids} ids but the model's vocabulary has ${vocabSize}: they do not match`,
    );
  }
  try {
    return new TextTokenizer(json, cfg);
  } catch (e) {
    throw new RunError(`${file}: ${errMsg(e)}`);
  }
}

/** The NPZ members of a weight entry (packed codes and their parameters, kquant's four, or the float data). */
function entryMembers(e: WeightEntry): string[] {
  return [e.q, e.q_scales, e.q_zero_point, e.q_codes, e.q_d, e.q_dmin].filter((m): m is string => !!m);
}

/**
 * The weight arena for a model's linear weights (their data bytes from the NPZ's headers), or null (APL_HUGE=0, no
 * addon, a small model, or `arena: false`); `names` are the linears the forward pass streams and reads rows of.
 */
async function npzArena(npz: NpzArchive, byName: Map<string, WeightEntry>, names: Set<string>, opts: LoadOptions) {
  if (opts.arena === false || process.env.APL_HUGE === '0') return null;
  const sizes: number[] = [];
  for (const n of names) {
    const e = byName.get(n);
    for (const m of e ? entryMembers(e) : []) {
      if (!npz.member(m)) continue; // reported by the read
      try {
        sizes.push((await npz.readHeader(m)).dataBytes);
      } catch {
        // a bad header: reported by the read, which then takes a buffer of its own
      }
    }
  }
  return createWeightArena(arenaBytes(sizes), opts.arena === true ? 1 : undefined);
}

export async function loadModel(manifestPath: string, opts: LoadOptions = {}): Promise<LoadedModel> {
  const path = resolve(manifestPath);
  const manifest = readManifest(path);
  const config = modelConfigFromManifest(manifest.model, path);
  const byName = new Map(manifest.weights.map((w) => [w.name, w]));
  let weights: ModelWeights;
  let weightsFrom: string;
  if (opts.float) {
    const candidates = opts.sourceDir ? [opts.sourceDir] : sourceCandidates(path, manifest);
    const dir = candidates.find((d) => existsSync(d) && statSync(d).isDirectory());
    if (!dir) {
      throw new RunError(
        `${path}: --float needs the source checkpoint, not found (looked in ${candidates.join(', ') || 'nothing: the manifest names no source'})`,
      );
    }
    let ck: Checkpoint;
    try {
      ck = await openCheckpoint(dir);
    } catch (e) {
      throw new RunError(errMsg(e));
    }
    try {
      weights = await assembleWeights(
        config,
        (name) => checkpointWeight(ck, name),
        (name) => ck.tensor(name) !== undefined,
        dir,
      );
    } finally {
      await ck.close().catch(() => {});
    }
    weightsFrom = dir;
  } else {
    const { npz, path: npzPath } = await openManifestNpz(path, manifest);
    try {
      checkLayerCount(config, (name) => byName.has(name), path);
      const n = tensorNames(config.numLayers);
      const linears = new Set([
        n.embed,
        n.lmHead,
        ...n.layers.flatMap((l) => [l.q, l.k, l.v, l.o, l.gate, l.up, l.down]),
      ]);
      const arena = await npzArena(npz, byName, linears, opts);
      const faulting = arena?.populate(); // the pages faulted in from the back while the reads fill the front
      weights = await assembleWeights(
        config,
        async (name) => {
          const e = byName.get(name);
          if (!e) throw new RunError(`${path}: weight ${name} is missing from the manifest`);
          return readNpzWeight(npz, e, npzPath, linears.has(name) ? arena : null);
        },
        (name) => byName.has(name),
        path,
      );
      await faulting;
    } finally {
      await npz.close().catch(() => {});
    }
    weightsFrom = npzPath;
  }
  const tokenizer = opts.tokenizer === false ? null : loadTokenizer(path, manifest, config.vocabSize);
  const generation = readSideFile(path, manifest.metadata.generation_config, 'generation_config');
  return {
    manifestPath: path,
    manifest,
    config,
    weights,
    tokenizer,
    chatTemplate: tokenizer?.chatTemplate,
    generation,
    weightsFrom,
  };
}
