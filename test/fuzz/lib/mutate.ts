// Mutations as fast-check arbitraries: a list of edit operations applied to a seed. Because the operations are
// generated values, fast-check shrinks a failing input to the fewest, smallest edits (the minimised input).
import fc from 'fast-check';

/** Boundary values that break length and offset fields. */
export const INTERESTING = [
  0, 1, 2, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xfffe, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe,
  0xffffffff,
];
export const INTERESTING_BIG = [
  0n,
  1n,
  0xffffffffn,
  0x100000000n,
  BigInt(Number.MAX_SAFE_INTEGER),
  BigInt(Number.MAX_SAFE_INTEGER) + 1n,
  0x7fffffffffffffffn,
  0xffffffffffffffffn,
];

export type ByteOp =
  | { k: 'flip'; pos: number; bit: number }
  | { k: 'set'; pos: number; width: 1 | 2 | 4; v: number }
  | { k: 'set64'; pos: number; v: bigint }
  | { k: 'trunc'; pos: number }
  | { k: 'insert'; pos: number; bytes: Uint8Array }
  | { k: 'del'; pos: number; len: number }
  | { k: 'dup'; pos: number; len: number };

// Positions: small non-negative ones count from the start, negative ones from the end (zip records live there).
const pos = fc.oneof(fc.integer({ min: 0, max: 512 }), fc.integer({ min: -512, max: -1 }), fc.nat());
const value = fc.oneof(fc.constantFrom(...INTERESTING), fc.nat({ max: 0xffffffff }));

export const byteOp: fc.Arbitrary<ByteOp> = fc.oneof(
  fc.record({ k: fc.constant('flip' as const), pos, bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({
    k: fc.constant('set' as const),
    pos,
    width: fc.constantFrom(1 as const, 2 as const, 4 as const),
    v: value,
  }),
  fc.record({ k: fc.constant('set64' as const), pos, v: fc.constantFrom(...INTERESTING_BIG) }),
  fc.record({ k: fc.constant('trunc' as const), pos }),
  fc.record({ k: fc.constant('insert' as const), pos, bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ k: fc.constant('del' as const), pos, len: fc.integer({ min: 1, max: 256 }) }),
  fc.record({ k: fc.constant('dup' as const), pos, len: fc.integer({ min: 1, max: 256 }) }),
);

function at(p: number, n: number): number {
  if (n === 0) return 0;
  return p < 0 ? Math.max(0, n + p) : p % (n + 1);
}

export function applyByteOps(seed: Uint8Array, ops: readonly ByteOp[]): Uint8Array {
  let b = Buffer.from(seed);
  for (const op of ops) {
    const p = at(op.pos, b.length);
    switch (op.k) {
      case 'flip':
        if (p < b.length) b[p] ^= 1 << op.bit;
        break;
      case 'set':
        if (p + op.width <= b.length) b.writeUIntLE(op.v % 2 ** (8 * op.width), p, op.width);
        break;
      case 'set64':
        if (p + 8 <= b.length) b.writeBigUInt64LE(op.v, p);
        break;
      case 'trunc':
        b = b.subarray(0, p);
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, p), op.bytes, b.subarray(p)]);
        break;
      case 'del':
        b = Buffer.concat([b.subarray(0, p), b.subarray(p + op.len)]);
        break;
      case 'dup':
        b = Buffer.concat([b.subarray(0, p + op.len), b.subarray(p, p + op.len), b.subarray(p + op.len)]);
        break;
    }
  }
  return new Uint8Array(b);
}

/** A seed (by index) mutated by up to `maxOps` byte operations. */
export function mutatedBytes(seeds: readonly Uint8Array[], maxOps = 6): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(fc.nat({ max: seeds.length - 1 }), fc.array(byteOp, { maxLength: maxOps }))
    .map(([i, ops]) => applyByteOps(seeds[i], ops));
}

/** Strings that break parsers of text fields. */
export const hostileString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom('', '..', '../x', '/etc/passwd', 'C:\\x', 'a\0b', '\u2028', '\ud800', '%s%n', 'x'.repeat(5000)),
  fc.string({ unit: 'binary', maxLength: 20 }),
);

/** JSON values, hostile ones included (huge and negative numbers, deep nesting, odd strings). */
export const hostileJson: fc.Arbitrary<unknown> = fc.oneof(
  { depthSize: 'small' },
  fc.constantFrom(
    0,
    -1,
    1.5,
    1e308,
    -1e308,
    2 ** 53,
    2 ** 53 + 2,
    2 ** 31,
    2 ** 32,
    null,
    true,
    false,
    '',
    'NaN',
    [],
    {},
    [[[[[[]]]]]],
  ),
  hostileString,
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.jsonValue({ maxDepth: 3 }),
);

/** A JSON path edit: replace, delete or duplicate the value at a random path of a parsed document. */
export type JsonOp = { path: number[]; k: 'set' | 'delete' | 'wrap' | 'clone'; v: unknown };

export const jsonOp: fc.Arbitrary<JsonOp> = fc.record({
  path: fc.array(fc.nat(), { minLength: 0, maxLength: 6 }),
  k: fc.constantFrom('set' as const, 'delete' as const, 'wrap' as const, 'clone' as const),
  v: hostileJson,
});

/** Applies edits to a deep copy of `doc`; each path step picks a child by index modulo the child count. */
export function applyJsonOps(doc: unknown, ops: readonly JsonOp[]): unknown {
  const root = { v: structuredClone(doc) as unknown };
  for (const op of ops) {
    let parent: Record<string, unknown> | unknown[] = root as unknown as Record<string, unknown>;
    let key: string | number = 'v';
    for (const step of op.path) {
      const cur: unknown = (parent as Record<string, unknown>)[key as string];
      if (!cur || typeof cur !== 'object') break;
      const keys: (string | number)[] = Array.isArray(cur) ? cur.map((_, i) => i) : Object.keys(cur);
      if (!keys.length) break;
      parent = cur as Record<string, unknown>;
      key = keys[step % keys.length];
    }
    const container = parent as Record<string | number, unknown>;
    switch (op.k) {
      case 'set':
        container[key] = structuredClone(op.v);
        break;
      case 'delete':
        if (Array.isArray(container)) container.splice(key as number, 1);
        else delete container[key];
        break;
      case 'wrap':
        container[key] = [container[key]];
        break;
      case 'clone':
        if (Array.isArray(container)) container.push(structuredClone(container[key as number]));
        else container[`${String(key)}_`] = structuredClone(container[key]);
        break;
    }
  }
  return root.v;
}

/** A parsed seed document edited field by field. */
export function mutatedJson(seeds: readonly unknown[], maxOps = 5): fc.Arbitrary<unknown> {
  return fc
    .tuple(fc.nat({ max: seeds.length - 1 }), fc.array(jsonOp, { minLength: 1, maxLength: maxOps }))
    .map(([i, ops]) => applyJsonOps(seeds[i], ops));
}

/** Text edits (insert, delete, replace a span) on a seed text: what a person typing does. */
export type TextOp = { pos: number; del: number; ins: string };
export const textOp: fc.Arbitrary<TextOp> = fc.record({
  pos: fc.nat(),
  del: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 8 }), fc.nat({ max: 400 })),
  ins: fc.oneof(
    fc.constantFrom(
      '',
      '{',
      '}',
      '[',
      ']',
      '"',
      ',',
      ':',
      '\\',
      '\n',
      '-1',
      '1e999',
      'null',
      '"x"',
      '\uFEFF',
      '/*',
      '//',
    ),
    fc.string({ maxLength: 12 }),
  ),
});

export function applyTextOps(text: string, ops: readonly TextOp[]): string {
  for (const op of ops) {
    const p = op.pos % (text.length + 1);
    text = text.slice(0, p) + op.ins + text.slice(p + op.del);
  }
  return text;
}
