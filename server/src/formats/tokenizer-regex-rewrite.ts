// The tokenizer library's rewrite of a tokenizer.json `{"Regex": …}` pattern from the Rust library's Oniguruma syntax
// into a JavaScript RegExp (@huggingface/tokenizers 0.2.0's rewrite_oniguruma_to_js and compile_unicode_regexp),
// redone here without importing the library so that tokenizer-regex.ts checks the very RegExp the library would run:
// `(?i:…)`, `\A`, `\z`, `\h`, `.`, `^`, `$`, possessive `++`, `{n,m}+`, POSIX brackets and `&&` in classes, a `{` that
// is no quantifier, and the retry of an unknown `\p{Name}` as `\p{Script=Name}`.
/** new RegExp, retried as the library retries it: a `\p{Name}` V8 does not know as a property becomes a script. */
export function compileUnicode(source: string, flags: string): RegExp {
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
export const matchAt = (re: RegExp, s: string, at: number): RegExpExecArray | undefined => {
  re.lastIndex = at;
  return re.exec(s) ?? undefined;
};
export const charAt = (s: string, i: number): string => String.fromCodePoint(s.codePointAt(i)!);
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
