// The CUDA emulation's source rewrite (test/native/cuda-emu/prep.mjs): launches become calls of the emulation's
// launcher, and what is not code (comments, string and character literals) is never taken for a launch or a bracket.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { codeMask, prep } from '../../native/cuda-emu/prep.mjs';

const launch = (callee: string, cfg: string, args: string) =>
  `::apl_emu::launch("${callee}", ::apl_emu::config(${cfg}), [&]() { ${callee}(${args}); })`;

test('a launch becomes a call of the emulated launcher, line breaks kept', () => {
  const src = 'void f() {\n  k_add<<<blocks, 256>>>(x,\n    y, n);\n}\n';
  const out = prep(src);
  assert.equal(out, `void f() {\n  ${launch('k_add', 'blocks, 256', 'x,\n    y, n')};\n}\n`);
  assert.equal(out.split('\n').length, src.split('\n').length);
});

test('templated callees, shared memory and streams, nested brackets in the arguments', () => {
  const out = prep('ns::k<float, 8>\n    <<<g, b, smem, st>>>(f(a, (b)), c);');
  assert.equal(out, `${launch('ns::k<float, 8>', 'g, b, smem, st', 'f(a, (b)), c')};`);
});

test('comments and literals are not code: a launch or a bracket there is left alone', () => {
  const src = [
    '// k<<<1, 1>>>(x) in a line comment',
    '/* k<<<1, 1>>>(x) in a block comment ) */',
    'const char* s = "k<<<1, 1>>>(x)";',
    'k<<<1, 2>>>(a /* ) */, \')\', ")", b); // )',
  ].join('\n');
  const out = prep(src);
  const lines = out.split('\n');
  assert.deepEqual(lines.slice(0, 3), src.split('\n').slice(0, 3));
  assert.equal(lines[3], `${launch('k', '1, 2', 'a /* ) */, \')\', ")", b')}; // )`);
});

test("extern __shared__ arrays become the launch's dynamic shared memory", () => {
  const out = prep('extern __shared__ __align__(16) float buf[];');
  assert.equal(out, 'float* buf = static_cast<float*>(::apl_emu::dynamic_shared());');
});

test('codeMask marks comments and literals, escapes honoured', () => {
  const s = 'a"\\"("b/*(*/c//(\nd\'(\'';
  const m = Array.from(codeMask(s));
  const code = [...s].filter((_, i) => m[i]).join('');
  assert.equal(code, 'abc\nd');
});

test('malformed sources get an error that says what is wrong', () => {
  assert.throws(() => prep('k<<<1, 1>>>(a, b;'), /unbalanced parentheses/);
  assert.throws(() => prep('k<<<1, 1(a);'), /<<< without >>>/);
  assert.throws(() => prep('k<<<1, 1>>> x;'), /not followed by its arguments/);
  assert.throws(() => prep('<<<1, 1>>>(a);'), /no kernel name/);
  assert.throws(() => prep('/* open'), /unterminated comment/);
  assert.throws(() => prep('s = "open\n";'), /unterminated literal/);
});
