// The CLI's arguments: argument vectors built from the commands, their options (with and without values, as
// --k=v and --k v), hostile values and stray words, run through the real main() in a scratch folder with the Hub
// unreachable (offline, a dead endpoint). Sources include a tiny valid model, so some conversions really run.
// Checked: a documented exit status, errors on one line without a stack, no file written outside the output
// folder, and nothing at all left behind by a command that failed.
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import fc from 'fast-check';
import { encodeSafetensors } from '../../../server/src/formats/safetensors';
import { tempDir } from '../../helpers/tmp';
import { runCli } from '../lib/cli';
import { MANIFEST_PATH, NPZ_PATH } from '../lib/fixtures';
import { hostileString } from '../lib/mutate';
import { Finding, type Target } from '../lib/target';

const COMMANDS = [
  'convert',
  'inspect',
  'validate',
  'run',
  'matmul',
  'lsp',
  'help',
  '--help',
  '-h',
  '--version',
  '-V',
  'nope',
  '',
];
const OPTIONS = [
  'bits',
  'group-size',
  'mode',
  'embeddings-bits',
  'scale-dtype',
  'tolerance',
  'out',
  'name',
  'backend',
  'threads',
  'revision',
  'token',
  'symmetric',
  'asymmetric',
  'offline',
  'force',
  'strict',
  'json-progress',
  'help',
  'json',
  'stats',
  'stdio',
  'node-ipc',
  'clientProcessId',
  'x',
];
const VALUES = [
  '1',
  '2',
  '3',
  '4',
  '8',
  '0',
  '-1',
  '64',
  'row',
  '1e9',
  'NaN',
  'Infinity',
  '0x10',
  '',
  ' ',
  'cpu',
  'gpu',
  'auto',
  'minmax',
  'optimized',
  'f16',
  'f32',
  '4=0.1',
  '4=x,8=',
  '=',
  'out',
  'out/sub',
  'main',
  'refs/pr/1',
  '../x',
];
const SOURCES = [
  'model',
  'bad',
  'empty',
  'nope',
  'tinyllama',
  'owner/name',
  'a/b/c',
  '.',
  'x.npz',
  'x.safetensors',
  'm.json',
];

const word = fc.oneof(
  fc.constantFrom(...OPTIONS).map((o) => `--${o}`),
  fc.tuple(fc.constantFrom(...OPTIONS), fc.constantFrom(...VALUES)).map(([o, v]) => `--${o}=${v}`),
  fc.constantFrom(...VALUES),
  fc.constantFrom(...SOURCES),
  fc.constantFrom('--', '-', '-x', '--='),
  hostileString.filter((s) => !s.includes('\0')),
);
const argv = fc.tuple(fc.constantFrom(...COMMANDS), fc.array(word, { maxLength: 7 })).map(([c, rest]) => {
  const a = [c, ...rest];
  // `lsp --stdio` serves stdin until it closes: not an argument check.
  if (c === 'lsp' && !a.some((w) => w === '--help' || w.startsWith('--help='))) a[0] = 'validate';
  return a;
});

let dir = '';
let cwd = '';
function listFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(root, p));
    }
  };
  walk(root);
  return out.sort();
}

export const target: Target<string[]> = {
  name: 'cli',
  describe: "the CLI's arguments through main(): every command, option and hostile value, in a scratch folder",
  // A valid argument vector converts the tiny model for real: allow for that on a loaded machine.
  timeoutMs: 10_000,
  arbitrary: () => argv,
  async setup() {
    dir = tempDir('apl-fuzz-cli-');
    const model = join(dir, 'model');
    mkdirSync(model);
    writeFileSync(
      join(model, 'config.json'),
      JSON.stringify({
        model_type: 'llama',
        architectures: ['LlamaForCausalLM'],
        hidden_size: 8,
        num_hidden_layers: 1,
      }),
    );
    const w = new Uint8Array(8 * 16 * 4);
    new Float32Array(w.buffer).forEach((_, i, a) => {
      a[i] = Math.sin(i);
    });
    writeFileSync(
      join(model, 'model.safetensors'),
      encodeSafetensors([{ name: 'model.layers.0.mlp.up_proj.weight', dtype: 'F32', shape: [8, 16], data: w }]),
    );
    mkdirSync(join(dir, 'bad'));
    writeFileSync(join(dir, 'bad', 'config.json'), '{"model_type": 7}');
    writeFileSync(join(dir, 'bad', 'model.safetensors'), 'not a safetensors file');
    mkdirSync(join(dir, 'empty'));
    writeFileSync(join(dir, 'x.npz'), Buffer.from(await import('node:fs').then((f) => f.readFileSync(NPZ_PATH))));
    writeFileSync(join(dir, 'x.safetensors'), 'junk');
    writeFileSync(join(dir, 'm.json'), await import('node:fs').then((f) => f.readFileSync(MANIFEST_PATH)));
    writeFileSync(join(dir, 'in.txt'), `${Array.from({ length: 16 }, (_, i) => i / 7).join(' ')}\n1 2\n`);
    cwd = process.cwd();
    process.chdir(dir);
    // A converted model for run and matmul.
    await runCli(['convert', 'model', '--out', 'conv']);
    process.env.HF_HUB_OFFLINE = '1';
    process.env.HF_HOME = join(dir, '.hf');
    process.env.HF_HUB_CACHE = join(dir, '.hf', 'hub');
    process.env.HF_ENDPOINT = 'http://127.0.0.1:9';
    delete process.env.HF_TOKEN;
  },
  async teardown() {
    process.chdir(cwd);
    rmSync(dir, { recursive: true, force: true });
  },
  async check(a) {
    const before = new Set(listFiles(dir));
    try {
      const r = await runCli(a);
      const added = listFiles(dir).filter((f) => !before.has(f));
      const partial = added.filter((f) => /\.tmp-|\.partial|\.incomplete/.test(f));
      if (partial.length) throw new Finding(`partial output left behind: ${partial.join(', ')}`);
      if (r.code === 1 || r.code === 2) {
        if (added.length) throw new Finding(`failed (status ${r.code}) but left files: ${added.join(', ')}`);
      } else if (added.length) {
        const outFlag = a.findIndex((w) => w === '--out' || w.startsWith('--out='));
        const outDir = outFlag < 0 ? 'models' : a[outFlag].startsWith('--out=') ? a[outFlag].slice(6) : a[outFlag + 1];
        const outside = added.filter((f) =>
          relative(resolve(dir, outDir ?? 'models'), resolve(dir, f)).startsWith('..'),
        );
        if (outside.length) throw new Finding(`wrote outside the output folder ${outDir}: ${outside.join(', ')}`);
      }
    } finally {
      for (const n of readdirSync(dir))
        if (!before.has(n) && !['model', 'bad', 'empty', '.hf', 'conv'].includes(n))
          rmSync(join(dir, n), { recursive: true, force: true });
    }
  },
  serialize: (a) => JSON.stringify(a),
};
