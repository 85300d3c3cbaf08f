// The `{"Regex": …}` patterns of a tokenizer.json (normalizer, pre-tokenizer and decoder Replace and Split steps),
// checked before @huggingface/tokenizers compiles them. The library turns each one from the Rust library's
// Oniguruma syntax into a JavaScript RegExp with flags "gu" and runs it over every text it encodes, and V8 matches
// by backtracking with no bound for a "u" pattern: a hostile `(\p{L}+)+x` hangs the process on a line of letters.
// Here such a pattern is one sentence instead of a hang:
//
//  - it must compile as the library compiles it: `toJs` redoes the library's rewrite (0.2.0's
//    rewrite_oniguruma_to_js: `(?i:…)`, `\A`, `\z`, `\h`, `.`, `^`, `$`, possessive `++`, `{n,m}+`, POSIX brackets
//    and `&&` in classes, a `{` that is no quantifier) and `compileUnicode` its retry with `\p{Script=Name}`;
//  - it must not be exponentially ambiguous: no text may be read in two different ways from one place of the
//    pattern back to the same place, which a repeat (of more than one) around it would multiply on each pass:
//    `(a+)+`, `(a*)*`, `([a-z]+\s?)*`, `(?:x|y+)*`, `(a{1,5}){2,}`, `(?:.*,)+`, `(a|aa)+`, `(a?){25}` are refused;
//    `(?:\r?\n)+` (a repeat ends at its one \n), `(?:\p{L}\p{M}*)+` (a repeat begins at its one letter, and no mark
//    is a letter), `(a{3})+`, `(?:'s|'t)+` pass, as real tokenizers use such shapes. Characters are compared as sets:
//    literals and small classes exactly, general categories (`\p{L}` against `\p{M}`) by category, and anything
//    else (a script, `\w`, a large range) is taken to overlap what its categories may overlap;
//  - it must be at most MAX_PATTERN_CHARS long, and the check gives up (a refusal) past MAX_STEPS.
//
// Not caught, deliberately: polynomial patterns (`\s*\s*\s*$`, `a+a+a+b`, `\d+\.?\d+`), slow on long texts but never
// a hang on a line; a repeat of a repeat is refused even when its count makes it only polynomial (`(a+){2}`, as
// `(a+){20}` is n^20). A fixed count is modelled as a loop its count decides (see slowRepeat), a lookaround as
// reading nothing (its inside is checked on its own), a backreference as any one character.

/** A tokenizer pattern longer than this is refused (real ones are under a thousand characters). */
export const MAX_PATTERN_CHARS = 4096;

const show = (s: string): string => {
  const j = JSON.stringify(s);
  return j.length > 40 ? `${j.slice(0, 37)}…` : j;
};

/**
 * What is wrong with a tokenizer.json `{"Regex": source}` pattern, in one sentence that begins with `subject` and
 * the pattern, or undefined when the tokenizer library compiles it and it cannot backtrack exponentially.
 */
export function regexPatternProblem(source: string, subject = 'pattern'): string | undefined {
  const what = `${subject} ${show(source)}`;
  if (source.length > MAX_PATTERN_CHARS) {
    const n = source.length.toLocaleString('en-US');
    return `${what} is ${n} characters long, more than the ${MAX_PATTERN_CHARS.toLocaleString('en-US')} a tokenizer pattern may have`;
  }
  let js: string;
  try {
    js = compileUnicode(toJs(source), 'gu').source;
  } catch (e) {
    const m = (e as Error)?.message ?? String(e);
    const reason = /^Invalid regular expression: \/.*\/[a-z]*: (.*)$/s.exec(m)?.[1] ?? m;
    return `${what} is not a regular expression the tokenizer library compiles (${reason.charAt(0).toLowerCase()}${reason.slice(1)})`;
  }
  const slow = slowRepeat(js);
  return slow === undefined ? undefined : `${what} ${slow}`;
}

// ---- The library's rewrite of Oniguruma syntax into JavaScript's ---------------------------------------------------

/** new RegExp, retried as the library retries it: a `\p{Name}` V8 does not know as a property becomes a script. */
function compileUnicode(source: string, flags: string): RegExp {
  try {
    return new RegExp(source, flags);
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    const rewritten = source.replace(/(\\[pP])\{([^}=]+)\}/g, (text, p: string, n: string, at: number) => {
      let slashes = 0;
      for (let i = at - 1; i >= 0 && source[i] === '\\'; --i) slashes++;
      if (slashes % 2 === 1) return text;
      try {
        new RegExp(`\\p{${n}}`, 'u');
        return text;
      } catch {
        return `${p}{Script=${n}}`;
      }
    });
    if (rewritten === source) throw error;
    try {
      return new RegExp(rewritten, flags);
    } catch {
      throw error;
    }
  }
}

const WORD_IN_CLASS = '\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}';
const WORD_CHARS = `${WORD_IN_CLASS}\\u00B2\\u00B3\\u00B9\\u00BC-\\u00BE`;
const WORD = `[${WORD_CHARS}]`;
const NON_WORD = `[^${WORD_CHARS}]`;
const HEX = '0-9A-Fa-f';
const ANY = '[\\s\\S]';
const JS_SYNTAX = '^$\\.*+?()[]{}|/';
const ESCAPES = new Map([
  ['A', '(?<![\\s\\S])'],
  ['z', '(?![\\s\\S])'],
  ['Z', '(?=\\n?(?![\\s\\S]))'],
  ['h', `[${HEX}]`],
  ['H', `[^${HEX}]`],
  ['w', WORD],
  ['W', NON_WORD],
  ['d', '\\p{Nd}'],
  ['D', '\\P{Nd}'],
  ['s', '\\p{White_Space}'],
  ['S', '\\P{White_Space}'],
  ['b', `(?:(?<!${WORD})(?=${WORD})|(?<=${WORD})(?!${WORD}))`],
  ['B', `(?:(?<!${WORD})(?!${WORD})|(?<=${WORD})(?=${WORD}))`],
  ['a', '\\x07'],
  ['e', '\\x1B'],
]);
const CLASS_ESCAPES = new Map([
  ['h', HEX],
  ['w', WORD_IN_CLASS],
  ['d', '\\p{Nd}'],
  ['D', '\\P{Nd}'],
  ['s', '\\p{White_Space}'],
  ['S', '\\P{White_Space}'],
  ['a', '\\x07'],
  ['e', '\\x1B'],
]);
const CLASS_COMPLEMENTS = new Map([
  ['W', `[^${WORD_IN_CLASS}]`],
  ['H', `[^${HEX}]`],
]);
const RAW_WHITESPACE = new Map([
  ['\n', '\\n'],
  ['\r', '\\r'],
  ['\t', '\\t'],
  ['\f', '\\f'],
  ['\v', '\\v'],
]);
const POSIX = new Map([
  ['alpha', '\\p{Alphabetic}'],
  ['alnum', '\\p{Alphabetic}\\p{Nd}'],
  ['digit', '\\p{Nd}'],
  ['lower', '\\p{Lowercase}'],
  ['upper', '\\p{Uppercase}'],
  ['space', '\\p{White_Space}'],
  ['blank', '\\t\\p{Zs}'],
  ['punct', '\\p{P}\\p{S}'],
  ['cntrl', '\\p{Cc}'],
  ['word', WORD_IN_CLASS],
  ['xdigit', HEX],
]);
const GROUP_PREFIX = /\(\?(?:<[=!]|<[A-Za-z_][A-Za-z0-9_]*>|[:=!>])/y;
const BRACED_ESCAPE = /\\([pPxu])\{([^}]*)\}/y;
const BRACE_QUANTIFIER = /\{(\d+(?:,\d*)?|,\d+)\}/y;
const FIXED_ESCAPE = /\\x[0-9A-Fa-f]{2}|\\u[0-9A-Fa-f]{4}|\\c[A-Za-z]/y;
const POSIX_BRACKET = /\[:(\^?)(\p{Alphabetic}+):\]/uy;
const BAD_POSIX_BRACKET = /\[(?:\.[^\]]*\.\]|=[^\]]*=\])/y;

/** The match of a sticky regex at `at`, or undefined. */
const matchAt = (re: RegExp, s: string, at: number): RegExpExecArray | undefined => {
  re.lastIndex = at;
  return re.exec(s) ?? undefined;
};
const charAt = (s: string, i: number): string => String.fromCodePoint(s.codePointAt(i)!);
const isAsciiLetter = (c: string): boolean => (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
const foldedHex = (hex: string): string | undefined => {
  if (!/^[0-9A-Fa-f]{1,8}$/.test(hex)) return undefined;
  const cp = Number.parseInt(hex, 16);
  const c = cp < 128 ? String.fromCharCode(cp) : '';
  return isAsciiLetter(c) ? `[${c.toLowerCase()}${c.toUpperCase()}]` : undefined;
};

/** One side of a class intersection: a plain fragment and the set-valued atoms beside it. */
interface Operand {
  fragment: string;
  alternatives: string[];
  tail: 'range' | 'complete' | 'scalar' | 'set' | null;
  complex: boolean;
}
interface ParsedClass {
  atom: string;
  end: number;
  negated: boolean;
  complex: boolean;
  nestedNegatedComplex: boolean;
}

const rangeError = (at: number) => new SyntaxError(`Unsupported range with a set-valued operand at index ${at}`);
function addAtom(o: Operand, atom: string, at: number, complex = true): void {
  if (o.tail === 'range') throw rangeError(at);
  o.alternatives.push(atom);
  o.tail = 'set';
  o.complex ||= complex;
}
function addFragment(o: Operand, fragment: string, setValued = false, at = -1): void {
  if (setValued && o.tail === 'range') throw rangeError(at);
  o.fragment += fragment;
  if (o.tail === 'range') o.tail = 'complete';
  else {
    o.tail = setValued ? 'set' : 'scalar';
    o.complex ||= setValued;
  }
}
const union = (pieces: string[]): string => (pieces.length === 1 ? pieces[0] : `(?:(?=(?:${pieces.join('|')}))${ANY})`);
const operandAtom = (o: Operand): string =>
  union(o.fragment.length === 0 ? o.alternatives : [`[${o.fragment}]`, ...o.alternatives]);

/** An escape inside a class, at `i`; returns the index after it. */
function classEscape(re: string, i: number, o: Operand): number {
  const braced = matchAt(BRACED_ESCAPE, re, i);
  if (braced) {
    const [text, kind, body] = braced;
    if (kind === 'P' && body === 'Word') addAtom(o, `[^${WORD_IN_CLASS}]`, i);
    else {
      const js = kind === 'x' ? `\\u{${body}}` : kind === 'p' && body === 'Word' ? WORD_IN_CLASS : text;
      addFragment(o, js, kind === 'p' || kind === 'P', i);
    }
    return i + text.length;
  }
  const fixed = matchAt(FIXED_ESCAPE, re, i);
  if (fixed) {
    addFragment(o, fixed[0]);
    return i + fixed[0].length;
  }
  if (i + 1 >= re.length) throw new SyntaxError(`Unterminated escape in character class at index ${i}`);
  const next = charAt(re, i + 1);
  const end = i + 1 + next.length;
  const raw = RAW_WHITESPACE.get(next);
  const complement = CLASS_COMPLEMENTS.get(next);
  const rewrite = CLASS_ESCAPES.get(next);
  if (raw !== undefined) addFragment(o, raw);
  else if (complement !== undefined) addAtom(o, complement, i);
  else if (rewrite !== undefined) addFragment(o, rewrite, next !== 'a' && next !== 'e', i);
  else if (/[A-Za-z0-9]/.test(next) || JS_SYNTAX.includes(next) || next === '-') addFragment(o, `\\${next}`);
  else addFragment(o, next);
  return end;
}

/** The ASCII letters an inline `(?i:…)` adds to a class: the other case of each letter it holds in one case only. */
function foldAdditions(atom: string): string {
  const member = compileUnicode(`^(?:${atom})$`, 'u');
  let add = '';
  for (let k = 0; k < 26; k++) {
    const upper = String.fromCharCode(65 + k);
    const lower = String.fromCharCode(97 + k);
    const u = member.test(upper);
    if (u !== member.test(lower)) add += u ? lower : upper;
  }
  return add;
}

/** The class opening at `start` (Oniguruma's: nested classes, `&&`, POSIX brackets) as one JavaScript atom. */
function parseClass(re: string, start: number, fold: boolean, applyFold: boolean, depth: number): ParsedClass {
  if (depth > 256) throw new SyntaxError(`Maximum character-class nesting depth of 256 exceeded at index ${start}`);
  let i = start + 1;
  const negated = re[i] === '^';
  if (negated) i++;
  const firstContent = i;
  const fresh = (): Operand => ({ fragment: '', alternatives: [], tail: null, complex: false });
  const operands = [fresh()];
  let o = operands[0];
  let nestedNegatedComplex = false;
  while (i < re.length) {
    const c = charAt(re, i);
    if (c === '\\') {
      i = classEscape(re, i, o);
    } else if (c === ']' && i === firstContent) {
      addFragment(o, '\\]');
      i++;
    } else if (c === ']') {
      if (o.tail === null) {
        throw new SyntaxError(
          operands.length > 1
            ? `Malformed character-class intersection with an empty operand at index ${i}`
            : `Empty character class at index ${start}`,
        );
      }
      const complex = operands.some((x) => x.complex);
      if (negated && operands.length > 1 && nestedNegatedComplex) {
        throw new SyntaxError(`Unsupported outer-negated intersection with a nested negated complex class at ${start}`);
      }
      const first = operandAtom(operands[0]);
      let positive = first;
      if (operands.length > 1) {
        positive = `(?:${operands
          .slice(1)
          .map((x) => `(?=${operandAtom(x)})`)
          .join('')}${first})`;
      }
      const direct = operands.length === 1 && o.alternatives.length === 0;
      let fragment = o.fragment;
      if (fold && applyFold) {
        const add = foldAdditions(positive);
        if (add && direct) {
          fragment += add;
          positive = `[${fragment}]`;
        } else if (add) positive = union([positive, `[${add}]`]);
      }
      const atom = !negated ? positive : direct ? `[^${fragment}]` : `(?:(?!${positive})${ANY})`;
      return { atom, end: i + 1, negated, complex, nestedNegatedComplex };
    } else if (re.startsWith('&&', i)) {
      if (o.tail === null) {
        throw new SyntaxError(`Malformed character-class intersection with an empty operand at index ${i}`);
      }
      o = fresh();
      operands.push(o);
      i += 2;
    } else if (c === '[') {
      if (re.startsWith('[:^:]', i)) throw new SyntaxError(`Malformed empty negated POSIX class at index ${i}`);
      const posix = matchAt(POSIX_BRACKET, re, i);
      if (posix) {
        const [text, neg, name] = posix;
        const fragment = POSIX.get(name);
        if (fragment === undefined) throw new SyntaxError(`Unsupported POSIX character class "${name}" at index ${i}`);
        if (fold && neg && (name === 'lower' || name === 'upper')) {
          throw new SyntaxError(`Unsupported negated POSIX ${name} class inside an inline case-insensitive group`);
        }
        if (neg) addAtom(o, `[^${fragment}]`, i);
        else addFragment(o, fragment, true, i);
        i += text.length;
        continue;
      }
      if (matchAt(BAD_POSIX_BRACKET, re, i)) {
        throw new SyntaxError(`Unsupported POSIX collating or equivalence bracket expression at index ${i}`);
      }
      const nested = parseClass(re, i, fold, false, depth + 1);
      addAtom(o, nested.atom, i, nested.complex);
      nestedNegatedComplex ||= nested.nestedNegatedComplex || (nested.negated && nested.complex);
      i = nested.end;
    } else if (c === '-') {
      const terminal = re[i + 1] === ']' || re.startsWith('&&', i + 1);
      if (o.tail === 'set' && !terminal) throw rangeError(i);
      if (o.tail === null || o.tail === 'range' || o.tail === 'complete' || terminal) addFragment(o, '\\-');
      else {
        o.fragment += '-';
        o.tail = 'range';
      }
      i++;
    } else {
      addFragment(o, c === '^' && o.fragment.length === 0 ? '\\^' : c);
      i += c.length;
    }
  }
  throw new SyntaxError(
    `${operands.length > 1 ? 'Unterminated character-class intersection' : 'Unterminated character class'} at index ${start}`,
  );
}

/** The JavaScript source the library compiles for an Oniguruma pattern (SyntaxError where it throws one). */
export function toJs(pattern: string): string {
  // BLOOM's `[^(\s|[.,!?…])]` means "none of these" in Oniguruma; the library spells it out first.
  const re = pattern.replace(/\[\^\(\\s\|\[([^\]]+)\]\)\]/g, '[^()|\\s$1]');
  let out = '';
  let atomStart = -1;
  let lastWasQuantifier = false;
  let fold = false;
  const groups: [number, boolean][] = [];
  const emit = (text: string) => {
    atomStart = out.length;
    out += text;
    lastWasQuantifier = false;
  };
  for (let i = 0; i < re.length; ) {
    const c = charAt(re, i);
    if (c === '\\') {
      const braced = matchAt(BRACED_ESCAPE, re, i);
      const fixed = braced ? undefined : matchAt(FIXED_ESCAPE, re, i);
      if (braced) {
        const [text, kind, body] = braced;
        if (kind === 'x') emit((fold && foldedHex(body)) || `\\u{${body}}`);
        else emit(body === 'Word' ? (kind === 'p' ? WORD : NON_WORD) : text);
        i += text.length;
        continue;
      }
      if (fixed) {
        const text = fixed[0];
        emit((fold && text[1] !== 'c' && foldedHex(text.slice(2))) || text);
        i += text.length;
        continue;
      }
      if (i + 1 >= re.length) {
        out += c;
        break;
      }
      const next = charAt(re, i + 1);
      i += 1 + next.length;
      if (next === 'G') continue;
      const rewrite = RAW_WHITESPACE.get(next) ?? ESCAPES.get(next);
      emit(rewrite ?? (/[A-Za-z0-9]/.test(next) || JS_SYNTAX.includes(next) ? `\\${next}` : next));
      continue;
    }
    if (c === '[') {
      const parsed = parseClass(re, i, fold, true, 1);
      emit(parsed.atom);
      i = parsed.end;
      continue;
    }
    const quantifier = c === '{' ? matchAt(BRACE_QUANTIFIER, re, i) : undefined;
    if (c === '{' && quantifier && atomStart >= 0) {
      const body = quantifier[1].startsWith(',') ? `0${quantifier[1]}` : quantifier[1];
      i += quantifier[0].length;
      const following = re[i];
      if (following === '+' || following === '*') {
        // Not possessive in Oniguruma's Ruby syntax: a repeat of the repeat.
        out = `${out.slice(0, atomStart)}(?:${out.slice(atomStart)}{${body}})${following}`;
        i++;
      } else out += `{${body}}`;
      lastWasQuantifier = true;
      continue;
    }
    i += c.length;
    switch (c) {
      case ']':
      case '{':
      case '}':
        emit(`\\${c}`);
        break;
      case '.':
        emit('[^\\n]');
        break;
      case '^':
        emit('(?:(?<![\\s\\S])|(?<=\\n))');
        break;
      case '$':
        emit('(?:(?=\\n)|(?![\\s\\S]))');
        break;
      case '(': {
        const caseless = re.startsWith('(?i:', i - 1);
        const prefix = caseless ? '(?i:' : (matchAt(GROUP_PREFIX, re, i - 1)?.[0] ?? '(');
        groups.push([out.length, fold]);
        if (caseless) fold = true;
        out += caseless || prefix === '(?>' ? '(?:' : prefix;
        lastWasQuantifier = false;
        i += prefix.length - 1;
        break;
      }
      case ')':
        out += c;
        [atomStart, fold] = groups.pop() ?? [-1, false];
        lastWasQuantifier = false;
        break;
      case '|':
        out += c;
        atomStart = -1;
        lastWasQuantifier = false;
        break;
      case '+':
        // After a quantifier, Oniguruma's possessive `++` `*+` `?+`: the library drops it.
        if (!lastWasQuantifier) out += c;
        lastWasQuantifier = true;
        break;
      case '*':
      case '?':
        out += c;
        lastWasQuantifier = true;
        break;
      default:
        emit(fold && isAsciiLetter(c) ? `[${c.toLowerCase()}${c.toUpperCase()}]` : c);
    }
  }
  return out;
}

// ---- Sets of characters ----------------------------------------------------------------------------------------

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
interface CharSet {
  chars?: number[];
  mask: number;
  test?: RegExp;
}
const ANY_CHAR = '[\\s\\S]';

const ESCAPE_AT =
  /\\(?:([pP])\{([^}]*)\}|u\{([0-9A-Fa-f]+)\}|u([0-9A-Fa-f]{4})(?:\\u([Dd][C-Fc-f][0-9A-Fa-f]{2}))?|x([0-9A-Fa-f]{2})|c([A-Za-z])|([dDsSwW])|([nrtfv0b-]))/y;
const CONTROL: Record<string, number> = { n: 10, r: 13, t: 9, f: 12, v: 11, '0': 0, b: 8, '-': 45 };

/** One character or escape of a compiled class's body at `i`: a code point, or a set of them, and where it ends. */
function classItem(text: string, i: number): { end: number; cp?: number; set?: CharSet; exact?: number } {
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
function charSet(atom: string): CharSet {
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
function meets(x: CharSet, y: CharSet): boolean {
  if (x.chars && y.chars) {
    const [small, large] = x.chars.length < y.chars.length ? [x.chars, y.chars] : [y.chars, x.chars];
    const set = new Set(large);
    return small.some((cp) => set.has(cp));
  }
  if ((x.mask & y.mask) === 0) return false;
  const [fin, inf] = x.chars ? [x, y] : [y, x];
  return !fin.chars || fin.chars.some((cp) => inf.test!.test(String.fromCodePoint(cp)));
}

// ---- Repeats that can share text out in more than one way -------------------------------------------------------
//
// The compiled pattern as a position automaton (Glushkov's): a position for each atom that reads a character, and
// an edge from each position to each that can read the next one, labelled with what made it: `s` one atom after
// another, `v<i>` a repeat of a varying count going round again, `f<i>` one of a fixed count (i: where its
// quantifier is in the pattern). Backtracking tries every way to read a text, and the ways multiply without bound
// when two different paths lead from a position back to it over the same text: then each pass round doubles them
// (exponential degree of ambiguity). The check looks for that in the automaton paired with itself: a strongly
// connected part that holds a pair (p, p) and either a pair of two different positions or a step where the two
// copies take different edges. A fixed count is not modelled (its edge is a loop): its choice, decided by the count,
// only counts against a varying repeat inside it, so `(?:(?:ab){2})+` passes and `(?:a+){20}` does not.

/** A position: the atom it reads, and its edges. */
interface Position {
  atom: string;
  out: { label: string; to: number }[];
}
/** A piece of the compiled pattern: whether it can match empty text, and its first and last positions. */
interface Piece {
  empty: boolean;
  first: number[];
  last: number[];
}
const NOTHING: Piece = { empty: true, first: [], last: [] };
const QUANTIFIER = /(?:[*+?]|\{(\d+)(,(\d*))?\})\??/y;
const GROUP_OPEN = /\((?:\?(?:[:=!]|<[=!]|<[^>]*>|[a-z]*-?[a-z]*:))?/y; // modifiers: V8 12.5 and later
const BACKREFERENCE = /\\(?:[1-9]\d*|k<[^>]*>)/y;
const EXPONENTIAL = 'which can take exponential time on some inputs';
const TOO_COMPLEX = 'is too complex to check for slow matching';
/** The most edges (of the automaton and of its pairing) the check follows for one pattern: real ones take < 1,000. */
const MAX_STEPS = 200_000;

/** Why a compiled pattern can take exponential time, or undefined. */
function slowRepeat(js: string): string | undefined {
  const positions: Position[] = [];
  const quantifiers = new Map<string, string>(); // label → its quantifier
  let steps = 0;
  const link = (from: number[], to: number[], label: string) => {
    steps += from.length * to.length;
    if (steps > MAX_STEPS) return;
    for (const p of from) for (const q of to) positions[p].out.push({ label, to: q });
  };
  const then = (a: Piece, b: Piece): Piece => {
    link(a.last, b.first, 's');
    return {
      empty: a.empty && b.empty,
      first: a.empty ? [...a.first, ...b.first] : a.first,
      last: b.empty ? [...b.last, ...a.last] : b.last,
    };
  };
  const or = (a: Piece, b: Piece): Piece => ({
    empty: a.empty || b.empty,
    first: [...a.first, ...b.first],
    last: [...a.last, ...b.last],
  });
  const atom = (text: string): Piece => {
    positions.push({ atom: text, out: [] });
    const id = [positions.length - 1];
    return { empty: false, first: id, last: id };
  };

  interface Frame {
    look: boolean;
    done?: Piece; // the alternatives before the last `|`
    seq: Piece;
    last?: Piece; // what a quantifier would repeat
  }
  const stack: Frame[] = [{ look: false, seq: NOTHING }];
  const put = (p: Piece) => {
    const f = stack[stack.length - 1];
    if (f.last) f.seq = then(f.seq, f.last);
    f.last = p;
  };
  const close = (f: Frame): Piece => {
    const seq = f.last ? then(f.seq, f.last) : f.seq;
    return f.done ? or(f.done, seq) : seq;
  };
  for (let i = 0; i < js.length; ) {
    const c = js[i];
    const f = stack[stack.length - 1];
    const q = '*+?{'.includes(c) ? matchAt(QUANTIFIER, js, i) : undefined;
    if (q) {
      const [text, lo, comma, hi] = q;
      const min = c === '{' ? Number(lo) : c === '+' ? 1 : 0;
      const max = c === '{' ? (comma === undefined ? min : hi ? Number(hi) : Infinity) : c === '?' ? 1 : Infinity;
      const x = f.last ?? NOTHING;
      if (max >= 2 && min >= 2 && x.empty && x.first.length > 0) {
        // (a?){25}: each of the 25 may or may not take an a.
        return `repeats a group that can match empty text at least ${min} times ((…)${text}), ${EXPONENTIAL}`;
      }
      const label = `${min === max ? 'f' : 'v'}${i}`;
      quantifiers.set(label, text);
      if (max >= 2) link(x.last, x.first, label);
      f.last = { ...x, empty: x.empty || min === 0 };
      i += text.length;
    } else if (c === '(') {
      const open = matchAt(GROUP_OPEN, js, i)![0];
      put(NOTHING);
      stack.push({ look: /^\(\?<?[=!]/.test(open), seq: NOTHING });
      i += open.length;
    } else if (c === ')') {
      stack.pop();
      put(f.look ? NOTHING : close(f)); // a lookaround reads no text: its positions stand apart
      i++;
    } else if (c === '|') {
      f.done = close(f);
      f.seq = NOTHING;
      f.last = undefined;
      i++;
    } else if (c === '^' || c === '$' || (c === '\\' && (js[i + 1] === 'b' || js[i + 1] === 'B'))) {
      put(NOTHING);
      i += c === '\\' ? 2 : 1;
    } else if (c === '.' || (c === '\\' && matchAt(BACKREFERENCE, js, i))) {
      put(atom(ANY_CHAR)); // a backreference: any text, as far as this check goes
      i = c === '.' ? i + 1 : BACKREFERENCE.lastIndex;
    } else if (c === '[') {
      let j = i + 1;
      while (j < js.length && js[j] !== ']') j += js[j] === '\\' ? 2 : 1;
      put(atom(js.slice(i, j + 1)));
      i = j + 1;
    } else {
      const end = c === '\\' ? classItem(js, i).end : i + charAt(js, i).length;
      put(atom(js.slice(i, end)));
      i = end;
    }
    if (steps > MAX_STEPS) return TOO_COMPLEX;
  }
  return ambiguousLoop(positions, quantifiers, steps);
}

/** Whether two edges taken from one position by the two copies part ways (see above for fixed counts). */
function partWays(a: { label: string; to: number }, b: { label: string; to: number }): boolean {
  if (a.to !== b.to) return true;
  if (a.label === b.label) return false;
  const at = (l: string) => Number(l.slice(1));
  if (a.label[0] === 'f') return b.label[0] === 'v' && at(b.label) < at(a.label);
  if (b.label[0] === 'f') return a.label[0] === 'v' && at(a.label) < at(b.label);
  return true;
}

/** The pairing check over the automaton: the message for an exponentially ambiguous loop, or undefined. */
function ambiguousLoop(positions: Position[], quantifiers: Map<string, string>, steps: number): string | undefined {
  const n = positions.length;
  const sets = new Map<string, CharSet>();
  const setOf = (p: number): CharSet => {
    const atom = positions[p].atom;
    let s = sets.get(atom);
    if (!s) {
      s = charSet(atom);
      sets.set(atom, s);
    }
    return s;
  };
  const meetCache = new Map<number, boolean>();
  const meet = (p: number, q: number): boolean => {
    const k = p < q ? p * n + q : q * n + p;
    let m = meetCache.get(k);
    if (m === undefined) {
      m = p === q || positions[p].atom === positions[q].atom || meets(setOf(p), setOf(q));
      meetCache.set(k, m);
    }
    return m;
  };
  // The pairs reachable from the pairs (p, p) of positions that have edges, and the steps between them.
  const index = new Map<number, number>();
  const pairs: number[] = [];
  const next: { to: number; parts: boolean; labels: [string, string] }[][] = [];
  const visit = (key: number): number => {
    let k = index.get(key);
    if (k === undefined) {
      k = pairs.length;
      index.set(key, k);
      pairs.push(key);
      next.push([]);
    }
    return k;
  };
  for (let p = 0; p < n; p++) if (positions[p].out.length) visit(p * n + p);
  for (let k = 0; k < pairs.length; k++) {
    const p = Math.floor(pairs[k] / n);
    const q = pairs[k] % n;
    for (const a of positions[p].out) {
      for (const b of positions[q].out) {
        if (++steps > MAX_STEPS) return TOO_COMPLEX;
        if (!meet(a.to, b.to)) continue;
        const to = visit(a.to * n + b.to);
        next[k].push({ to, parts: p === q && partWays(a, b), labels: [a.label, b.label] }); // from a pair (p, p) only
      }
    }
  }
  // Strongly connected parts (Tarjan's, without recursion).
  const order = new Array<number>(pairs.length).fill(-1);
  const low = new Array<number>(pairs.length).fill(0);
  const part = new Array<number>(pairs.length).fill(-1);
  const onStack: number[] = [];
  let counter = 0;
  let components = 0;
  for (let root = 0; root < pairs.length; root++) {
    if (order[root] >= 0) continue;
    const work: [number, number][] = [[root, 0]];
    order[root] = low[root] = counter++;
    onStack.push(root);
    while (work.length) {
      const top = work[work.length - 1];
      const [v, e] = top;
      if (e < next[v].length) {
        top[1]++;
        const w = next[v][e].to;
        if (order[w] < 0) {
          order[w] = low[w] = counter++;
          onStack.push(w);
          work.push([w, 0]);
        } else if (part[w] < 0) low[v] = Math.min(low[v], order[w]);
        continue;
      }
      work.pop();
      if (work.length) low[work[work.length - 1][0]] = Math.min(low[work[work.length - 1][0]], low[v]);
      if (low[v] === order[v]) {
        let w: number;
        do {
          w = onStack.pop()!;
          part[w] = components;
        } while (w !== v);
        components++;
      }
    }
  }
  // A part where the two copies part ways from a pair (p, p): they come back together, so the part holds a loop
  // with two paths over the same text. (A part with a pair (p, p) and a pair (q, r) has such a step on the way.)
  const split = new Set<number>();
  for (let k = 0; k < pairs.length; k++) {
    for (const e of next[k]) if (e.parts && part[e.to] === part[k]) split.add(part[k]);
  }
  for (const c of split) {
    // Name the outermost repeat of the loop and the first one of a varying count inside it.
    const labels = new Set<string>();
    for (let k = 0; k < pairs.length; k++) {
      if (part[k] !== c) continue;
      for (const e of next[k]) if (part[e.to] === c) for (const l of e.labels) if (l !== 's') labels.add(l);
    }
    const loops = [...labels].sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)));
    const outer = loops[loops.length - 1];
    const inner = loops.find((l) => l !== outer && l[0] === 'v');
    if (outer === undefined) continue; // cannot happen: a loop of the automaton goes round a repeat
    const text = quantifiers.get(outer);
    return inner
      ? `repeats a group that itself repeats (…${quantifiers.get(inner)} inside (…)${text}) with nothing to tell one repeat from the next, ${EXPONENTIAL}`
      : `repeats a group whose parts can match the same text in more than one way ((…)${text}), ${EXPONENTIAL}`;
  }
  return undefined;
}
