// Rewrites a .cu file into C++ for the CPU emulation of CUDA (cuda_runtime.h here): each launch
// `kernel<<<grid, block[, smem[, stream]]>>>(args)` becomes
// `::apl_emu::launch("kernel", ::apl_emu::config(grid, block, …), [&]() { kernel(args); })`, and each
// `extern __shared__ T name[];` a pointer to the launch's dynamic shared memory. Line breaks are kept, so the
// compiler's messages point at the .cu file's lines (a #line directive names it).
// Usage: node prep.mjs IN.cu OUT.cc
import { readFileSync, writeFileSync } from 'node:fs';

/** Index of the bracket closing the one at `open` (parentheses; strings and chars skipped). */
function closing(s, open) {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    const c = s[i];
    if (c === '"' || c === "'") {
      for (i++; i < s.length && s[i] !== c; i++) if (s[i] === '\\') i++;
      continue;
    }
    if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return i;
  }
  throw new Error(`unbalanced parentheses from offset ${open}`);
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
  let s = src.replace(
    /extern\s+__shared__\s+(?:__align__\(\s*\d+\s*\)\s+)?([\w:]+(?:\s*\*)?)\s+(\w+)\s*\[\s*\]\s*;/g,
    (_m, type, name) => `${type}* ${name} = static_cast<${type}*>(::apl_emu::dynamic_shared());`,
  );
  let out = '';
  for (;;) {
    const at = s.indexOf('<<<');
    if (at < 0) break;
    const cfgEnd = s.indexOf('>>>', at);
    if (cfgEnd < 0) throw new Error(`<<< without >>> at offset ${at}`);
    const start = calleeStart(s, at);
    const callee = s.slice(start, at).replace(/\s+/g, ' ').trim();
    if (!callee) throw new Error(`a launch with no kernel name at offset ${at}`);
    let open = cfgEnd + 3;
    while (/\s/.test(s[open])) open++;
    if (s[open] !== '(') throw new Error(`${callee}<<<…>>> not followed by its arguments`);
    const close = closing(s, open);
    const cfg = s.slice(at + 3, cfgEnd);
    const args = s.slice(open + 1, close);
    out += `${s.slice(0, start)}::apl_emu::launch("${callee}", ::apl_emu::config(${cfg}), [&]() { ${callee}(${args}); })`;
    s = s.slice(close + 1);
  }
  return out + s;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const [, , input, output] = process.argv;
  if (!input || !output) {
    console.error('usage: node prep.mjs IN.cu OUT.cc');
    process.exit(2);
  }
  writeFileSync(output, `#line 1 "${input}"\n${prep(readFileSync(input, 'utf8'))}`);
}
