// Rewrites a .cu file into C++ for the CPU emulation of CUDA (cuda_runtime.h here): each launch
// `kernel<<<grid, block[, smem[, stream]]>>>(args)` becomes
// `::apl_emu::launch("kernel", ::apl_emu::config(grid, block, …), [&]() { kernel(args); })`, and each
// `extern __shared__ T name[];` a pointer to the launch's dynamic shared memory. Line breaks are kept, so the
// compiler's messages point at the .cu file's lines (a #line directive names it). Comments and string and
// character literals are skipped: a `<<<` or a parenthesis there is never taken for a launch's
// (test/unit/tools/cuda-emu-prep.test.ts).
// Usage: node prep.mjs IN.cu OUT.cc
import { readFileSync, writeFileSync } from 'node:fs';

/**
 * Which offsets of s are code: false inside comments (`//` to the end of the line, `/* … *\/`), string and character
 * literals (escapes honoured), so a `<<<` or a parenthesis there is never taken for a launch's.
 */
export function codeMask(s) {
  const code = new Uint8Array(s.length).fill(1);
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    let end = -1;
    if (c === '/' && s[i + 1] === '/') {
      end = s.indexOf('\n', i);
      if (end < 0) end = s.length;
    } else if (c === '/' && s[i + 1] === '*') {
      end = s.indexOf('*/', i + 2);
      if (end < 0) throw new Error(`unterminated comment at offset ${i}`);
      end += 2;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      for (; j < s.length && s[j] !== c && s[j] !== '\n'; j++) if (s[j] === '\\') j++;
      if (s[j] !== c) throw new Error(`unterminated literal at offset ${i}`);
      end = j + 1;
    }
    if (end < 0) continue;
    code.fill(0, i, end);
    i = end - 1;
  }
  return code;
}

/** Index of the bracket closing the one at `open` (parentheses in code only). */
function closing(s, code, open) {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (!code[i]) continue;
    if (s[i] === '(') depth++;
    else if (s[i] === ')' && --depth === 0) return i;
  }
  throw new Error(`unbalanced parentheses from offset ${open}`);
}

/** The first `<<<` at or after `from` that is code, or -1. */
function launchAt(s, code, from) {
  for (let at = s.indexOf('<<<', from); at >= 0; at = s.indexOf('<<<', at + 1)) if (code[at]) return at;
  return -1;
}

/** Start of the callee expression that ends just before `end` (a name, `ns::name`, `name<T, 8>`, then spaces). */
function calleeStart(s, end) {
  let i = end;
  while (i > 0 && /\s/.test(s[i - 1])) i--; // clang-format may break the line before <<<
  let angle = 0;
  while (i > 0) {
    const c = s[i - 1];
    if (c === '>') angle++;
    else if (c === '<') angle--;
    else if (!(angle > 0 || /[\w:]/.test(c))) break;
    i--;
  }
  return i;
}

export function prep(src) {
  const s = src.replace(
    /extern\s+__shared__\s+(?:__align__\(\s*\d+\s*\)\s+)?([\w:]+(?:\s*\*)?)\s+(\w+)\s*\[\s*\]\s*;/g,
    (_m, type, name) => `${type}* ${name} = static_cast<${type}*>(::apl_emu::dynamic_shared());`,
  );
  const code = codeMask(s);
  let out = '';
  let pos = 0;
  for (;;) {
    const at = launchAt(s, code, pos);
    if (at < 0) break;
    let cfgEnd = s.indexOf('>>>', at);
    while (cfgEnd >= 0 && !code[cfgEnd]) cfgEnd = s.indexOf('>>>', cfgEnd + 1);
    if (cfgEnd < 0) throw new Error(`<<< without >>> at offset ${at}`);
    const start = calleeStart(s, at);
    if (start < pos) throw new Error(`a launch inside another launch's arguments at offset ${at}`);
    const callee = s.slice(start, at).replace(/\s+/g, ' ').trim();
    if (!callee) throw new Error(`a launch with no kernel name at offset ${at}`);
    let open = cfgEnd + 3;
    while (/\s/.test(s[open])) open++;
    if (s[open] !== '(') throw new Error(`${callee}<<<…>>> not followed by its arguments`);
    const close = closing(s, code, open);
    const cfg = s.slice(at + 3, cfgEnd);
    const args = s.slice(open + 1, close);
    out += `${s.slice(pos, start)}::apl_emu::launch("${callee}", ::apl_emu::config(${cfg}), [&]() { ${callee}(${args}); })`;
    pos = close + 1;
  }
  return out + s.slice(pos);
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const [, , input, output] = process.argv;
  if (!input || !output) {
    console.error('usage: node prep.mjs IN.cu OUT.cc');
    process.exit(2);
  }
  writeFileSync(output, `#line 1 "${input}"\n${prep(readFileSync(input, 'utf8'))}`);
}
