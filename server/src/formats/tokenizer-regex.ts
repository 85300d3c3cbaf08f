// The `{"Regex": …}` patterns of a tokenizer.json (normalizer, pre-tokenizer and decoder Replace and Split steps),
// checked before @huggingface/tokenizers compiles them. The library turns each one from the Rust library's
// Oniguruma syntax into a JavaScript RegExp with flags "gu" and runs it over every text it encodes, and V8 matches
// by backtracking with no bound for a "u" pattern: a hostile `(\p{L}+)+x` hangs the process on a line of letters.
// Here such a pattern is one sentence instead of a hang:
//
//  - it must compile as the library compiles it: `toJs` (tokenizer-regex-rewrite.ts) redoes the library's rewrite (0.2.0's
//    rewrite_oniguruma_to_js: `(?i:…)`, `\A`, `\z`, `\h`, `.`, `^`, `$`, possessive `++`, `{n,m}+`, POSIX brackets
//    and `&&` in classes, a `{` that is no quantifier) and `compileUnicode` its retry with `\p{Script=Name}`;
//  - it must not be exponentially ambiguous: no text may be read in two different ways from one place of the
//    pattern back to the same place, which a repeat (of more than one) around it would multiply on each pass:
//    `(a+)+`, `(a*)*`, `([a-z]+\s?)*`, `(?:x|y+)*`, `(a{1,5}){2,}`, `(?:.*,)+`, `(a|aa)+`, `(a?){25}` are refused;
//    `(?:\r?\n)+` (a repeat ends at its one \n), `(?:\p{L}\p{M}*)+` (a repeat begins at its one letter, and no mark
//    is a letter), `(a{3})+`, `(?:'s|'t)+` pass, as real tokenizers use such shapes. Characters are compared as sets:
//    literals and small classes exactly, general categories (`\p{L}` against `\p{M}`) by category, and anything
//    else (a script, `\w`, a large range) is taken to overlap what its categories may overlap (tokenizer-regex-sets.ts);
//  - it must be at most MAX_PATTERN_CHARS long, and the check gives up (a refusal) past MAX_STEPS.
//
// Not caught, deliberately: polynomial patterns (`\s*\s*\s*$`, `a+a+a+b`, `\d+\.?\d+`), slow on long texts but never
// a hang on a line; a repeat of a repeat is refused even when its count makes it only polynomial (`(a+){2}`, as
// `(a+){20}` is n^20). A fixed count is modelled as a loop its count decides (see slowRepeat), a lookaround as
// reading nothing (its inside is checked on its own), a backreference as any one character.

import { charAt, compileUnicode, matchAt, toJs } from './tokenizer-regex-rewrite';
import { ANY_CHAR, type CharSet, charSet, classItem, meets } from './tokenizer-regex-sets';

export { toJs } from './tokenizer-regex-rewrite';
export { WHITE_SPACE } from './tokenizer-regex-sets';

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
