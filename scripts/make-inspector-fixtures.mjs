// Writes test/fixtures/inspector/: small, deterministic tensor files for the inspector's tests (a few KB in all):
//   cube.npy                      float32 (4, 5, 6), value 100·i + 10·j + k at [i, j, k]: a cell names its place
//   tiny.safetensors              BF16 / F32 / F16 / I32 / U8 tensors; embed.weight (BF16) is embed.weight_f32 rounded
//   after.safetensors             embed.weight_f32 with one value changed by +0.5 (a "before vs after" pair)
//   sharded/                      two shards and model.safetensors.index.json
// Values are formulas (no randomness), so re-running reproduces the same bytes:
//   node scripts/make-inspector-fixtures.mjs [--out DIR]
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const outArg = process.argv.indexOf('--out');
const out = outArg > 0 ? process.argv[outArg + 1] : join(root, 'test/fixtures/inspector');

const f32 = (values) => Buffer.from(Float32Array.from(values).buffer);
const i32 = (values) => Buffer.from(Int32Array.from(values).buffer);
const u8 = (values) => Buffer.from(Uint8Array.from(values));
/** float32 → bfloat16 bits, round to nearest even (finite values). */
const bf16 = (values) => {
  const u = new Uint32Array(Float32Array.from(values).buffer);
  const o = new Uint16Array(u.length);
  for (let i = 0; i < u.length; i++) o[i] = (u[i] + 0x7fff + ((u[i] >>> 16) & 1)) >>> 16;
  return Buffer.from(o.buffer);
};
/** float → float16 bits for values exactly representable as normal float16 numbers (or zero). */
const f16 = (values) => {
  const o = new Uint16Array(values.length);
  values.forEach((v, i) => {
    if (v === 0) return;
    const sign = v < 0 ? 0x8000 : 0;
    const a = Math.abs(v);
    const e = Math.floor(Math.log2(a));
    const m = Math.round((a / 2 ** e - 1) * 1024);
    if (m >= 1024 || e < -14 || e > 15 || Math.abs((1 + m / 1024) * 2 ** e - a) > 0) throw new Error(`${v} is not f16`);
    o[i] = sign | ((e + 15) << 10) | m;
  });
  return Buffer.from(o.buffer);
};
const grid = (rows, cols, f) => Array.from({ length: rows * cols }, (_, k) => f(Math.floor(k / cols), k % cols));

function npy(shape, data) {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const unpadded = 10 + header.length + 1;
  header += `${' '.repeat((64 - (unpadded % 64)) % 64)}\n`;
  const pre = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(pre);
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), data]);
}

function safetensors(tensors) {
  const header = {};
  let off = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.data.length] };
    off += t.data.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, Buffer.from(json), ...tensors.map((t) => t.data)]);
}

const write = (rel, data) => {
  const p = join(out, rel);
  writeFileSync(`${p}.tmp`, data);
  renameSync(`${p}.tmp`, p);
};

mkdirSync(join(out, 'sharded'), { recursive: true });
const cube = [];
for (let i = 0; i < 4; i++) for (let j = 0; j < 5; j++) for (let k = 0; k < 6; k++) cube.push(100 * i + 10 * j + k);
write('cube.npy', npy([4, 5, 6], f32(cube)));

const embed = grid(6, 4, (r, c) => (r * 4 + c) / 7 - 1.5);
const after = embed.map((v, k) => (k === 2 * 4 + 3 ? v + 0.5 : v));
const tiny = [
  { name: 'embed.weight', dtype: 'BF16', shape: [6, 4], data: bf16(embed) },
  { name: 'embed.weight_f32', dtype: 'F32', shape: [6, 4], data: f32(embed) },
  { name: 'norm.weight', dtype: 'F16', shape: [4], data: f16([1, 0.5, 0.25, 2]) },
  { name: 'positions', dtype: 'I32', shape: [6], data: i32([0, 1, 2, 3, 4, 5]) },
  { name: 'mask', dtype: 'U8', shape: [2, 3], data: u8([1, 0, 1, 0, 1, 1]) },
  { name: 'odd', dtype: 'F32', shape: [3, 4], data: f32(grid(3, 4, (r, c) => r - c)) },
];
write('tiny.safetensors', safetensors(tiny));
write('after.safetensors', safetensors([{ name: 'embed.weight_f32', dtype: 'F32', shape: [6, 4], data: f32(after) }]));

const shard1 = [
  { name: 'layers.0.weight', dtype: 'F32', shape: [4, 8], data: f32(grid(4, 8, (r, c) => r * 8 + c)) },
  { name: 'embed.weight', dtype: 'BF16', shape: [6, 4], data: bf16(embed) },
];
const shard2 = [
  { name: 'layers.1.weight', dtype: 'F16', shape: [4, 8], data: f16(grid(4, 8, (r, c) => (r * 8 + c) / 4 - 4)) },
  { name: 'norm.weight', dtype: 'F32', shape: [4], data: f32([1, 2, 3, 4]) },
];
const names = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
write(join('sharded', names[0]), safetensors(shard1));
write(join('sharded', names[1]), safetensors(shard2));
const weightMap = {};
for (const t of shard1) weightMap[t.name] = names[0];
for (const t of shard2) weightMap[t.name] = names[1];
write(
  join('sharded', 'model.safetensors.index.json'),
  `${JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }, null, 2)}\n`,
);
console.log(`wrote ${out}`);
