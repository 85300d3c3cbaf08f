// A minimal GGUF (version 3) writer for the decode bench: the same synthetic weights the bench runs through our
// engine, written for llama.cpp (node-llama-cpp) so that both run side by side in one process. llama
// architecture metadata, a SentencePiece-style vocabulary llama.cpp accepts (<unk>, <s>, </s>, the 256 byte
// tokens <0x00>…<0xFF>, then "▁t<i>" fillers up to the model's vocabulary size), and F32 / F16 / Q4_0 / Q8_0
// tensors. Q4_0: blocks of 32 values, f16 d then 16 bytes (byte j: value j low nibble, value j + 16 high), x =
// (q − 8)·d. Q8_0: f16 d then 32 int8, x = q·d. Q4_K / Q2_K (llama.cpp's k-quants, for the bench's kquant
// weights): blocks of 256 values, Q4_K = f16 d, f16 dmin, 12 bytes of 6-bit scales and mins, 128 bytes of codes;
// Q2_K = 16 bytes of 4-bit scales and mins, 64 bytes of codes, f16 d, f16 dmin (ggml-common.h).
import { closeSync, openSync, writeSync } from 'node:fs';
import type { LinearWeight, ModelConfig, ModelWeights } from '../native/forward-types';

export type GgufType = 'F32' | 'F16' | 'Q4_0' | 'Q8_0' | 'Q2_K' | 'Q4_K';
const TYPE_ID: Record<GgufType, number> = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8, Q2_K: 10, Q4_K: 12 };
const ALIGN = 32;

export interface Tensor {
  name: string;
  bytes: number; // rows × row bytes
  rows: number; // ne1 (out features; 1 for a vector)
  cols: number; // ne0 (in features)
  type: GgufType;
  data: () => Uint8Array; // computed when written
}

function rowBytes(type: GgufType, cols: number): number {
  if (type === 'F32') return cols * 4;
  if (type === 'F16') return cols * 2;
  if (type === 'Q4_K' || type === 'Q2_K') return (cols / 256) * (type === 'Q4_K' ? 144 : 84);
  return (cols / 32) * (type === 'Q4_0' ? 18 : 34);
}

/** Little-endian byte builder for the header. */
class Bytes {
  private parts: Buffer[] = [];
  length = 0;
  private push(b: Buffer) {
    this.parts.push(b);
    this.length += b.length;
  }
  u32(v: number) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  i32(v: number) {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.push(b);
  }
  u64(v: number) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  f32(v: number) {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.push(b);
  }
  str(s: string) {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.push(b);
  }
  raw(b: Buffer) {
    this.push(b);
  }
  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

type Meta = [string, 'u32' | 'f32' | 'str' | 'bool', number | string | boolean] | [string, 'strs', string[]];

function writeMeta(b: Bytes, [key, kind, v]: Meta | [string, 'f32s' | 'i32s', number[]]) {
  b.str(key);
  if (kind === 'u32') {
    b.u32(4);
    b.u32(v as number);
  } else if (kind === 'f32') {
    b.u32(6);
    b.f32(v as number);
  } else if (kind === 'bool') {
    b.u32(7);
    b.raw(Buffer.from([v ? 1 : 0]));
  } else if (kind === 'str') {
    b.u32(8);
    b.str(v as string);
  } else {
    const a = v as (string | number)[];
    b.u32(9);
    b.u32(kind === 'strs' ? 8 : kind === 'f32s' ? 6 : 5);
    b.u64(a.length);
    for (const x of a)
      if (kind === 'strs') b.str(x as string);
      else if (kind === 'f32s') b.f32(x as number);
      else b.i32(x as number);
  }
}

/** The vocabulary: ids 0–2 special, 3–258 the byte tokens, the rest fillers (never produced by a tokenizer run). */
function vocab(n: number): { tokens: string[]; scores: number[]; types: number[] } {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [2, 3, 3]; // UNKNOWN, CONTROL, CONTROL
  for (let i = 0; i < 256; i++) {
    tokens.push(`<0x${i.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6); // BYTE
  }
  for (let i = tokens.length; i < n; i++) {
    tokens.push(`\u2581t${i}`);
    types.push(1); // NORMAL
  }
  return { tokens, scores: tokens.map((_, i) => -i), types };
}

/** Writes a GGUF file; returns its size in bytes. */
export function writeGguf(path: string, c: ModelConfig, tensors: Tensor[]): number {
  const h = new Bytes();
  const v = vocab(c.vocabSize);
  const meta: (Meta | [string, 'f32s' | 'i32s', number[]])[] = [
    ['general.architecture', 'str', 'llama'],
    ['general.name', 'str', 'apl-bench-synthetic'],
    ['general.alignment', 'u32', ALIGN],
    ['llama.context_length', 'u32', c.maxPositionEmbeddings],
    ['llama.embedding_length', 'u32', c.hiddenSize],
    ['llama.block_count', 'u32', c.numLayers],
    ['llama.feed_forward_length', 'u32', c.intermediateSize],
    ['llama.rope.dimension_count', 'u32', c.headDim],
    ['llama.attention.head_count', 'u32', c.numHeads],
    ['llama.attention.head_count_kv', 'u32', c.numKvHeads],
    ['llama.attention.layer_norm_rms_epsilon', 'f32', c.rmsNormEps],
    ['llama.rope.freq_base', 'f32', c.ropeTheta],
    ['llama.vocab_size', 'u32', c.vocabSize],
    ['tokenizer.ggml.model', 'str', 'llama'],
    ['tokenizer.ggml.tokens', 'strs', v.tokens],
    ['tokenizer.ggml.scores', 'f32s', v.scores],
    ['tokenizer.ggml.token_type', 'i32s', v.types],
    ['tokenizer.ggml.unknown_token_id', 'u32', 0],
    ['tokenizer.ggml.bos_token_id', 'u32', 1],
    ['tokenizer.ggml.eos_token_id', 'u32', 2],
    ['tokenizer.ggml.add_bos_token', 'bool', true],
  ];
  h.raw(Buffer.from('GGUF', 'latin1'));
  h.u32(3);
  h.u64(tensors.length);
  h.u64(meta.length);
  for (const m of meta) writeMeta(h, m);
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    h.str(t.name);
    const dims = t.rows === 1 ? [t.cols] : [t.cols, t.rows];
    h.u32(dims.length);
    for (const d of dims) h.u64(d);
    h.u32(TYPE_ID[t.type]);
    h.u64(offset);
    offsets.push(offset);
    offset += Math.ceil((rowBytes(t.type, t.cols) * t.rows) / ALIGN) * ALIGN;
  }
  const pad = (n: number) => Buffer.alloc((ALIGN - (n % ALIGN)) % ALIGN);
  const head = h.done();
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, head);
    writeSync(fd, pad(head.length));
    for (const t of tensors) {
      const d = t.data();
      if (d.length !== rowBytes(t.type, t.cols) * t.rows) throw new Error(`gguf: ${t.name} has ${d.length} bytes`);
      writeSync(fd, d);
      writeSync(fd, pad(d.length));
    }
  } finally {
    closeSync(fd);
  }
  return head.length + pad(head.length).length + offset;
}

// ---------------------------------------------------------------------------------------------------------------
// Our synthetic weights → GGUF tensors

/** float32 bits → float16 bits, round to nearest even. */
function f32BitsToF16(u: number): number {
  const s = (u >>> 16) & 0x8000;
  const e = ((u >>> 23) & 0xff) - 127 + 15;
  let m = u & 0x7fffff;
  if (((u >>> 23) & 0xff) === 0xff) return s | 0x7c00 | (m ? 0x200 : 0);
  if (e >= 31) return s | 0x7c00;
  let shift = 13;
  let h: number;
  if (e <= 0) {
    if (e < -10) return s;
    m |= 0x800000;
    shift = 14 - e;
    h = m >>> shift;
  } else h = (e << 10) | (m >>> 13);
  const rem = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rem > half || (rem === half && h & 1)) h++;
  return s | h;
}

let bf16ToF16: Uint16Array | undefined;
function bf16Table(): Uint16Array {
  if (!bf16ToF16) {
    bf16ToF16 = new Uint16Array(65536);
    for (let i = 0; i < 65536; i++) bf16ToF16[i] = f32BitsToF16(i << 16);
  }
  return bf16ToF16;
}

/**
 * The GGUF form of one of the bench's weights: 4-bit codes (group 64, f16 scales) → Q4_0 with the same codes
 * and scales (each group of 64 is two blocks of 32); 8-bit → Q8_0 (q − 128); bf16 → F16. Zero points differ
 * (ours 7.5 / 127.5, Q4_0's 8 / Q8_0's 0): the same bytes are read, the values shift by half a step.
 */
export function ggufWeight(name: string, w: LinearWeight): Tensor {
  const { rows, cols } = w;
  if (w.kind === 'kquant') return kquantWeight(name, w);
  if (w.kind === 'float' && w.dtype === 'bf16')
    return {
      name,
      bytes: rows * cols * 2,
      rows,
      cols,
      type: 'F16',
      data: () => {
        const t = bf16Table();
        const src = new Uint16Array(w.data.buffer, w.data.byteOffset, rows * cols);
        const out = new Uint16Array(rows * cols);
        for (let i = 0; i < out.length; i++) out[i] = t[src[i]];
        return new Uint8Array(out.buffer);
      },
    };
  if (w.kind !== 'packed' || (w.bits !== 4 && w.bits !== 8) || w.groupSize % 32 || cols % 32 || w.scaleDtype !== 'f16')
    throw new Error(`gguf: ${name}: only 4/8-bit codes with f16 scales (groups of a multiple of 32) or bf16`);
  const scales = new Uint16Array(w.scales.buffer, w.scales.byteOffset, w.scales.length / 2);
  const gpr = Math.ceil(cols / w.groupSize);
  const q4 = w.bits === 4;
  return {
    name,
    bytes: rowBytes(q4 ? 'Q4_0' : 'Q8_0', cols) * rows,
    rows,
    cols,
    type: q4 ? 'Q4_0' : 'Q8_0',
    data: () => {
      const bpb = q4 ? 18 : 34;
      const out = new Uint8Array(rows * (cols / 32) * bpb);
      const dv = new DataView(out.buffer);
      const rb = (cols * w.bits) / 8;
      let o = 0;
      for (let r = 0; r < rows; r++)
        for (let b = 0; b < cols / 32; b++, o += bpb) {
          dv.setUint16(o, scales[r * gpr + Math.floor((b * 32) / w.groupSize)], true);
          const base = r * rb + b * (q4 ? 16 : 32);
          if (q4) {
            // ours: value c in byte c/2 (even c low nibble); Q4_0: byte j = value j | value j+16 << 4
            for (let j = 0; j < 16; j++) {
              const lo = (w.q[base + (j >> 1)] >> ((j & 1) * 4)) & 15;
              const hi = (w.q[base + ((j + 16) >> 1)] >> (((j + 16) & 1) * 4)) & 15;
              out[o + 2 + j] = lo | (hi << 4);
            }
          } else for (let j = 0; j < 32; j++) out[o + 2 + j] = (w.q[base + j] - 128) & 0xff;
        }
      return out;
    },
  };
}

/**
 * A kquant weight (2 or 4 bits, rows of a multiple of 256) → llama.cpp's k-quant of the same bit width (Q2_K /
 * Q4_K) for speed comparisons: the same code bytes in each block (llama.cpp orders a block's values otherwise, so
 * the values differ), fixed sub-block scales and mins, d = 2^-10 and dmin = 2^-8.
 */
function kquantWeight(name: string, w: LinearWeight & { kind: 'kquant' }): Tensor {
  const { rows, cols } = w;
  if ((w.bits !== 2 && w.bits !== 4) || cols % 256)
    throw new Error(`gguf: ${name}: kquant needs 2/4 bits, cols % 256 == 0`);
  const q4 = w.bits === 4;
  const type: GgufType = q4 ? 'Q4_K' : 'Q2_K';
  return {
    name,
    bytes: rowBytes(type, cols) * rows,
    rows,
    cols,
    type,
    data: () => {
      const bpb = q4 ? 144 : 84;
      const qb = q4 ? 128 : 64;
      const out = new Uint8Array(rows * (cols / 256) * bpb);
      const dv = new DataView(out.buffer);
      const rb = (cols * w.bits) / 8;
      let o = 0;
      for (let r = 0; r < rows; r++)
        for (let b = 0; b < cols / 256; b++, o += bpb) {
          const d = q4 ? o : o + 80;
          const sc = q4 ? o + 4 : o;
          const qs = q4 ? o + 16 : o + 16;
          dv.setUint16(d, 0x1400, true); // 2^-10
          dv.setUint16(d + 2, 0x1c00, true); // 2^-8
          out.fill(0x21, sc, sc + (q4 ? 12 : 16));
          out.set(w.q.subarray(r * rb + b * qb, r * rb + (b + 1) * qb), qs);
        }
      return out;
    },
  };
}

function f32Vector(name: string, v: Float32Array): Tensor {
  return {
    name,
    bytes: v.length * 4,
    rows: 1,
    cols: v.length,
    type: 'F32',
    data: () => new Uint8Array(v.buffer, v.byteOffset, v.length * 4),
  };
}

/** The tensors of a llama model in GGUF names (llama.cpp's convert_hf_to_gguf), from the bench's weights. */
export function ggufTensors(w: ModelWeights): Tensor[] {
  const t: Tensor[] = [ggufWeight('token_embd.weight', w.embed)];
  w.layers.forEach((L, i) => {
    const p = `blk.${i}.`;
    t.push(f32Vector(`${p}attn_norm.weight`, L.inputNorm));
    t.push(ggufWeight(`${p}attn_q.weight`, L.q));
    t.push(ggufWeight(`${p}attn_k.weight`, L.k));
    t.push(ggufWeight(`${p}attn_v.weight`, L.v));
    t.push(ggufWeight(`${p}attn_output.weight`, L.o));
    t.push(f32Vector(`${p}ffn_norm.weight`, L.postAttnNorm));
    t.push(ggufWeight(`${p}ffn_gate.weight`, L.gate));
    t.push(ggufWeight(`${p}ffn_up.weight`, L.up));
    t.push(ggufWeight(`${p}ffn_down.weight`, L.down));
  });
  t.push(f32Vector('output_norm.weight', w.finalNorm));
  t.push(ggufWeight('output.weight', w.lmHead));
  return t;
}
