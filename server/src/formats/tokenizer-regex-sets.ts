// Sets of characters for tokenizer-regex.ts's ambiguity check: the set an atom of a compiled pattern reads (a literal,
// a class, an escape, `\p{…}`), as exact code points where it is small and as a mask of general categories otherwise,
// and whether two such sets can share a character.
import { charAt, matchAt } from './tokenizer-regex-rewrite';

/** The 30 general categories, a bit each: a `\p{…}` that is one of them, or a group of them, is exact as a mask. */
const CATEGORIES = 'Lu Ll Lt Lm Lo Mn Mc Me Nd Nl No Pc Pd Ps Pe Pi Pf Po Sm Sc Sk So Zs Zl Zp Cc Cf Cs Co Cn'.split(
  ' ',
);
/** A character of each category, in the same order (the categories partition the code points). */
const SAMPLES = [
  0x41, 0x61, 0x1c5, 0x2b0, 0xaa, 0x300, 0x903, 0x488, 0x30, 0x16ee, 0xb2, 0x5f, 0x2d, 0x28, 0x29, 0xab, 0xbb, 0x21,
  0x2b, 0x24, 0x5e, 0xa6, 0x20, 0x2028, 0x2029, 0, 0xad, 0xd800, 0xe000, 0x378,
];
const ALL = 2 ** 30 - 1;
/** The code points of \p{White_Space}, which the library writes for \s (JavaScript's \s adds U+FEFF). */
export const WHITE_SPACE = [
  9, 10, 11, 12, 13, 32, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008,
  0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
];

const categoryTest = new RegExp(`^(?:${CATEGORIES.map((c) => `(\\p{${c}})`).join('|')})$`, 'u');
const categoryCache = new Map<number, number>();
/** The category bit of one code point. */
function categoryOf(cp: number): number {
  let bit = categoryCache.get(cp);
  if (bit === undefined) {
    const m = categoryTest.exec(String.fromCodePoint(cp));
    const k = m ? m.findIndex((g, j) => j > 0 && g !== undefined) - 1 : -1;
    bit = k < 0 ? ALL : 2 ** k;
    categoryCache.set(cp, bit);
  }
  return bit;
}
const propertyCache = new Map<string, number | undefined>();
/** The categories of `\p{name}` when it is a general category (or a group of them), else undefined. */
function propertyMask(name: string): number | undefined {
  if (!propertyCache.has(name)) {
    let mask: number | undefined;
    try {
      const re = new RegExp(`^\\p{General_Category=${name.replace(/^(?:General_Category|gc)=/, '')}}$`, 'u');
      mask = SAMPLES.reduce((m, cp, k) => (re.test(String.fromCodePoint(cp)) ? m | (2 ** k) : m), 0);
    } catch {
      mask = undefined;
    }
    propertyCache.set(name, mask);
  }
  return propertyCache.get(name);
}

/**
 * The characters one position of the compiled pattern matches: `chars` exactly when finite and small, else `mask`,
 * the general categories it may hold (a superset), and `test`, its exact membership.
 */
export interface CharSet {
  chars?: number[];
  mask: number;
  test?: RegExp;
}
export const ANY_CHAR = '[\\s\\S]';

const ESCAPE_AT =
  /\\(?:([pP])\{([^}]*)\}|u\{([0-9A-Fa-f]+)\}|u([0-9A-Fa-f]{4})(?:\\u([Dd][C-Fc-f][0-9A-Fa-f]{2}))?|x([0-9A-Fa-f]{2})|c([A-Za-z])|([dDsSwW])|([nrtfv0b-]))/y;
const CONTROL: Record<string, number> = { n: 10, r: 13, t: 9, f: 12, v: 11, '0': 0, b: 8, '-': 45 };

/** One character or escape of a compiled class's body at `i`: a code point, or a set of them, and where it ends. */
export function classItem(text: string, i: number): { end: number; cp?: number; set?: CharSet; exact?: number } {
  if (text[i] !== '\\') {
    const ch = charAt(text, i);
    return { end: i + ch.length, cp: ch.codePointAt(0)! };
  }
  const m = matchAt(ESCAPE_AT, text, i);
  if (!m) {
    const ch = charAt(text, i + 1); // an identity escape: \. \/ \^ …
    return { end: i + 1 + ch.length, cp: ch.codePointAt(0)! };
  }
  const end = i + m[0].length;
  const [, p, name, braced, u4, low, x2, ctl, shorthand, control] = m;
  if (braced || x2) return { end, cp: Number.parseInt(braced ?? x2, 16) };
  if (u4) {
    const hi = Number.parseInt(u4, 16);
    if (!low || hi < 0xd800 || hi >= 0xdc00) return { end: low ? end - 6 : end, cp: hi };
    return { end, cp: 0x10000 + ((hi - 0xd800) << 10) + (Number.parseInt(low, 16) - 0xdc00) };
  }
  if (ctl) return { end, cp: ctl.charCodeAt(0) % 32 };
  if (control) return { end, cp: CONTROL[control] };
  const negated = p === 'P' || (shorthand !== undefined && shorthand === shorthand.toUpperCase());
  const prop =
    shorthand === 'd' || shorthand === 'D' ? 'Nd' : shorthand === 's' || shorthand === 'S' ? 'White_Space' : name;
  if (shorthand === 'w' || shorthand === 'W') return { end, set: { mask: ALL } };
  if (prop === 'White_Space' && !negated) {
    return { end, set: { chars: WHITE_SPACE, mask: WHITE_SPACE.reduce((k, cp) => k | categoryOf(cp), 0) } };
  }
  const mask = propertyMask(prop);
  if (mask === undefined) return { end, set: { mask: ALL } };
  const exact = negated ? ALL & ~mask : mask;
  return { end, set: { mask: exact }, exact };
}

/** The set of an atom of the compiled pattern: a class `[…]` (flat in u mode), an escape, or one character. */
export function charSet(atom: string): CharSet {
  if (atom === ANY_CHAR) return { mask: ALL, test: /^[\s\S]$/u };
  const text = atom.startsWith('[') ? atom : `[${atom}]`;
  const negated = text[1] === '^';
  let chars: number[] | undefined = [];
  let mask = 0;
  let exact = 0;
  const add = (lo: number, hi: number) => {
    if (hi - lo >= 256) {
      chars = undefined;
      mask = ALL;
    }
    for (let cp = lo; cp <= hi && hi - lo < 256; cp++) {
      chars?.push(cp);
      mask |= categoryOf(cp);
    }
  };
  const end = text.length - 1;
  for (let i = negated ? 2 : 1; i < end; ) {
    const a = classItem(text, i);
    i = a.end;
    if (a.set) {
      mask |= a.set.mask;
      exact |= a.exact ?? 0;
      if (a.set.chars && chars) chars.push(...a.set.chars);
      else chars = undefined;
    } else if (text[i] === '-' && i + 1 < end) {
      const b = classItem(text, i + 1);
      i = b.end;
      add(a.cp!, b.cp!);
    } else add(a.cp!, a.cp!);
  }
  if (!negated && chars && chars.length <= 256) return { chars, mask };
  return { mask: negated ? ALL & ~exact : mask, test: new RegExp(`^${text}$`, 'u') };
}

/** Whether two atoms can read a common character (true when it is not clear they cannot). */
export function meets(x: CharSet, y: CharSet): boolean {
  if (x.chars && y.chars) {
    const [small, large] = x.chars.length < y.chars.length ? [x.chars, y.chars] : [y.chars, x.chars];
    const set = new Set(large);
    return small.some((cp) => set.has(cp));
  }
  if ((x.mask & y.mask) === 0) return false;
  const [fin, inf] = x.chars ? [x, y] : [y, x];
  return !fin.chars || fin.chars.some((cp) => inf.test!.test(String.fromCodePoint(cp)));
}
