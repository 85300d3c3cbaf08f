// What make-tiny-model.mjs and make-tiny-families.mjs share: the seeded PRNG, float → 16-bit encodings, the tensor
// and safetensors writers, the tokenizer's special tokens and the atomic write of a fixture folder.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// mulberry32: a small, fast 32-bit PRNG; Box–Muller for normals.
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => {
    const u = 1 - next();
    const v = next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  return { next, normal };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** float → bfloat16 bits, round to nearest even. */
export function bf16(x) {
  f32[0] = x;
  const b = u32[0];
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float → float16 bits, round to nearest even (subnormals kept, overflow to infinity). */
export function f16(v) {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const e = ((x >>> 23) & 0xff) - 127 + 15;
  let m = x & 0x7fffff;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    m |= 0x800000;
    const shift = 14 - e;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (m >>> 13);
  const rem = m & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

/** A 16-bit tensor: gen(i) for every element in order, encoded by enc (bf16 or f16). */
export function tensor(name, shape, gen, enc) {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) data.writeUInt16LE(enc(gen(i)), i * 2);
  return { name, shape, data };
}

/** A safetensors file of the tensors in order, all of one dtype ('BF16' or 'F16'). */
export function safetensors(list, dtype) {
  const header = { __metadata__: { format: 'pt' } };
  let off = 0;
  for (const t of list) {
    header[t.name] = { dtype, shape: t.shape, data_offsets: [off, off + t.data.length] };
    off += t.data.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, Buffer.from(json, 'utf8'), ...list.map((t) => t.data)]);
}

/** tokenizer.json's added_tokens: the specials at ids 0, 1, … */
export function addedTokens(specials) {
  return specials.map((content, i) => ({
    id: i,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
}

/** Pretty JSON with a final newline, as the Hugging Face files are written. */
export const json = (o) => `${JSON.stringify(o, null, 2)}\n`;

/** Writes { name: data } into out, each file through a temporary and a rename. */
export function writeFolder(out, files) {
  mkdirSync(out, { recursive: true });
  for (const [name, data] of Object.entries(files)) {
    const tmp = join(out, `.${name}.tmp-${process.pid}`);
    writeFileSync(tmp, data);
    renameSync(tmp, join(out, name));
  }
  console.log(`wrote ${out}`);
}
