// The layers of docs/ARCHITECTURE.md as a checked rule: every import of every TypeScript source is read (static,
// `export … from`, dynamic `import()` and `require()`) and checked against who may import what.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';

const ROOT = resolve(__dirname, '../../..');

interface Import {
  /** The importing file, relative to the repository root, with forward slashes. */
  file: string;
  spec: string;
  /** For a relative import: the target, relative to the root (extension-less as written). */
  target?: string;
  typeOnly: boolean;
}

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      if (f === 'node_modules' || f === 'build' || f.startsWith('.')) continue;
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (f.endsWith('.ts') && !f.endsWith('.d.ts')) out.push(p);
    }
  };
  walk(join(ROOT, dir));
  return out;
}

/** Every import of a source file (comments removed first, so a commented-out import does not count). */
export function importsOf(absFile: string, text = readFileSync(absFile, 'utf8')): Import[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const file = relative(ROOT, absFile).split('\\').join('/');
  const out: Import[] = [];
  const add = (spec: string, typeOnly: boolean) => {
    const target = spec.startsWith('.')
      ? relative(ROOT, resolve(dirname(absFile), spec))
          .split('\\')
          .join('/')
      : undefined;
    out.push({ file, spec, target, typeOnly });
  };
  for (const m of code.matchAll(/^\s*(import|export)\s+(type\s+)?[^'";]*?\bfrom\s*['"]([^'"]+)['"]/gms))
    add(m[3], !!m[2]);
  for (const m of code.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm)) add(m[1], false);
  for (const m of code.matchAll(/\b(?:import|require)\s*\(\s*['"]([^'"]+)['"]\s*\)/g)) add(m[1], false);
  return out;
}

const all = (...dirs: string[]) => dirs.flatMap(tsFiles).flatMap((f) => importsOf(f));
const under = (path: string | undefined, dir: string) => !!path && (path === dir || path.startsWith(`${dir}/`));
const isVscode = (spec: string) => spec === 'vscode';
/** The one lenient reader of the accuracy report JSON (pure): the report webview normalises what it is sent. */
const REPORT_READER = 'server/src/report/read';
const show = (bad: Import[]) => bad.map((i) => `${i.file} imports ${i.spec}`).join('\n');

describe('layering (docs/ARCHITECTURE.md)', () => {
  it('the import reader sees static, re-export, side-effect, type-only and dynamic imports, not comments', () => {
    const src = [
      "import { a } from './a';",
      "import type {\n  B,\n} from '../b';",
      "export { c } from './c';",
      "import './d';",
      "const e = await import('./e');",
      "// import { f } from './f';",
    ].join('\n');
    const got = importsOf(join(ROOT, 'client/x.ts'), src);
    assert.deepEqual(
      got.map((i) => [i.spec, i.target, i.typeOnly]),
      [
        ['./a', 'client/a', false],
        ['../b', 'b', true],
        ['./c', 'client/c', false],
        ['./d', 'client/d', false],
        ['./e', 'client/e', false],
      ],
    );
  });

  it('native/ imports nothing outside native/ (it is the bottom layer)', () => {
    const imports = all('native');
    assert.ok(imports.length > 0, 'native/ has imports to check');
    const bad = imports.filter((i) => i.target !== undefined && !under(i.target, 'native'));
    assert.deepEqual(bad, [], show(bad));
  });

  it('only client/ (and the in-editor tests) import vscode', () => {
    const bad = all('server', 'native', 'bench', 'scripts', 'test/unit', 'test/helpers').filter((i) =>
      isVscode(i.spec),
    );
    assert.deepEqual(bad, [], show(bad));
  });

  it('server/ and native/ never import client/', () => {
    const bad = all('server', 'native').filter((i) => under(i.target, 'client'));
    assert.deepEqual(bad, [], show(bad));
  });

  it('webviews import only protocol.ts, server/src/common/, the report reader, their own files and their element library', () => {
    const imports = all('client/webview');
    assert.ok(
      imports.some((i) => i.target === 'server/src/protocol'),
      'the webviews import the protocol (the reader works)',
    );
    const allowed = (i: Import) =>
      i.target !== undefined
        ? under(i.target, 'client/webview') ||
          i.target === 'server/src/protocol' ||
          i.target === REPORT_READER ||
          under(i.target, 'server/src/common')
        : i.spec.startsWith('@vscode-elements/');
    const bad = imports.filter((i) => !allowed(i));
    assert.deepEqual(bad, [], show(bad));
  });

  it('server/src/common/ is pure: at run time it imports nothing outside itself (no Node, editor or package)', () => {
    const imports = all('server/src/common');
    const bad = imports.filter((i) => !i.typeOnly && !under(i.target, 'server/src/common'));
    assert.deepEqual(bad, [], show(bad));
  });

  it('protocol.ts and the report reader have only type imports (erased), so the webview bundles stay pure', () => {
    for (const f of ['server/src/protocol.ts', `${REPORT_READER}.ts`]) {
      const bad = importsOf(join(ROOT, f)).filter((i) => !i.typeOnly);
      assert.deepEqual(bad, [], show(bad));
    }
  });

  it('the manifest language service knows no connection: only vscode-languageserver-types from the LSP packages', () => {
    const bad = all('server/src/manifest').filter(
      (i) => i.spec.startsWith('vscode-languageserver') && i.spec !== 'vscode-languageserver-types',
    );
    assert.deepEqual(bad, [], show(bad));
  });

  it('within client/src, commands/ and tasks/ do not import each other', () => {
    const imports = all('client/src');
    const bad = imports.filter(
      (i) =>
        (under(i.file, 'client/src/commands') && under(i.target, 'client/src/tasks')) ||
        (under(i.file, 'client/src/tasks') && under(i.target, 'client/src/commands')),
    );
    assert.deepEqual(bad, [], show(bad));
  });
});
