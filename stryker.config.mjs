// Mutation testing (`npm run mutate`, not part of `npm test` or CI: too slow for two cores). Stryker mutates the
// modules where a wrong answer costs users the most and runs, per mutant, only the unit test files that cover it.
//
// GROUPS is the one place that names files: when a module moves (e.g. server/src/hub/resume.ts), update its path
// here. `mutate` takes Stryker's syntax, including line ranges (`file.ts:10-40`, or fn(file, name) for one function); `tests` are globs of test files
// run with node's test runner through tsx (the TAP runner, one process per file, run in Stryker's sandbox).
import { readFileSync } from 'node:fs';

/** `file:start-end` for a top-level function (its first line to the closing brace at column 0), found by name. */
function fn(file, name) {
  const lines = readFileSync(new URL(file, import.meta.url), 'utf8').split('\n');
  const start = lines.findIndex((l) => new RegExp(`^(export )?(async )?function ${name}\\b`).test(l));
  const end = lines.findIndex((l, i) => i > start && l === '}');
  if (start < 0 || end < 0) throw new Error(`stryker.config.mjs: no function ${name} in ${file}`);
  return `${file}:${start + 1}-${end + 1}`;
}

/** `file:start-end` from the line holding `from` to the line before the one holding `to` (comment markers). */
function between(file, from, to) {
  const lines = readFileSync(new URL(file, import.meta.url), 'utf8').split('\n');
  const start = lines.findIndex((l) => l.includes(from));
  const end = lines.findIndex((l, i) => i > start && l.includes(to));
  if (start < 0 || end < 0) throw new Error(`stryker.config.mjs: no '${from}' … '${to}' in ${file}`);
  return `${file}:${start + 1}-${end}`;
}

export const GROUPS = {
  verdict: {
    about: 'the accuracy verdict: tolerances, judge(), layer aggregates',
    mutate: [
      'server/src/report/report.ts',
      'server/src/report/summary.ts',
      fn('server/src/convert/options.ts', 'parseTolerances'),
      fn('server/src/convert/accuracy.ts', 'layerAggregates'),
    ],
    tests: ['test/unit/report/report.test.ts'],
  },
  'manifest-checks': {
    about: "the language server's checks of the model block and layers (the rest of crossCheck: not measured yet)",
    // crossCheck() is one long function; measured here: the model block and layers against the weights.
    mutate: [
      between('server/src/manifest/checks.ts', '// Layers present against model.num_layers.', '// Members no weight'),
      fn('server/src/manifest/checks.ts', 'rangesStr'),
    ],
    tests: ['test/unit/manifest/validate.test.ts', 'test/unit/manifest/model-checks.test.ts'],
  },
  formats: {
    about: 'the NPY header parser (descr, the Python literal, shape, the prefix and the data size)',
    // The NPY header parser: what hostile or foreign files reach first. parseNpyAnyHeaderWith holds the checks
    // (parseNpyHeaderWith only refuses the non-numeric dtypes it returns).
    mutate: [
      fn('server/src/formats/npy.ts', 'parseDescr'),
      fn('server/src/formats/npy.ts', 'parseOtherDescr'),
      fn('server/src/formats/npy.ts', 'parsePyLiteral'),
      fn('server/src/formats/npy.ts', 'shapeCount'),
      fn('server/src/formats/npy.ts', 'parseNpyHeaderWith'),
      fn('server/src/formats/npy.ts', 'parseNpyAnyHeaderWith'),
    ],
    // In memory, hand-made headers (seconds a run); npy.test.ts (numpy round trips) and hostile.test.ts cover the
    // same parser through files and stay out of the mutant loop.
    tests: ['test/unit/formats/npy-mutants.test.ts'],
  },
  'formats-safetensors': {
    about: 'the safetensors header parser and the dtype conversion a checkpoint is read through',
    mutate: [
      fn('server/src/formats/safetensors.ts', 'openSafetensors'),
      fn('server/src/formats/safetensors.ts', 'toF32Into'),
    ],
    // Hand-made headers in memory (seconds a run); safetensors.test.ts and hostile.test.ts (files, Python
    // interop) cover the same reader end to end and stay out of the mutant loop.
    tests: ['test/unit/formats/safetensors-mutants.test.ts'],
  },
  'formats-npz': {
    about: 'the NPZ/ZIP central directory reader (openNpz)',
    mutate: [fn('server/src/formats/npz.ts', 'openNpz')],
    // Hand-made zip structures in memory (seconds a run); npz.test.ts and hostile.test.ts (files, numpy) cover the
    // same reader end to end and stay out of the mutant loop.
    tests: ['test/unit/formats/npz-mutants.test.ts'],
  },
  'formats-dtypes': {
    about: 'bf16/f16 → f32 and back (every checkpoint weight goes through them)',
    mutate: ['server/src/formats/dtypes.ts'],
    // dtypes.test.ts (all 65 536 float16 values against numpy: ~25 s a run here) stays out of the mutant loop.
    tests: [
      'test/unit/formats/dtypes-edges.test.ts',
      'test/unit/formats/bf16-edges.test.ts',
      'test/unit/formats/bf16-nowasm-edges.test.ts',
    ],
  },
  'eval-stats': {
    about: "the evaluation statistics (PPL, KLD, Δp, same-top) and llama.cpp's chunk protocol",
    mutate: ['server/src/eval/stats.ts', 'server/src/eval/chunks.ts'],
    tests: ['test/unit/eval/stats.test.ts', 'test/unit/eval/stats-edges.test.ts'],
  },
  'convert-plan': {
    about: 'the convert stages that decide what happens to each tensor: plan, families',
    mutate: ['server/src/convert/plan.ts', 'server/src/convert/families.ts'],
    tests: ['test/unit/convert/plan.test.ts', 'test/unit/convert/families.test.ts'],
  },
  // The convert stages, in two groups; each runs in-process test files only (a whole conversion per mutant cost ~7 s).
  'convert-write': {
    about: 'the convert stage that runs each tensor and the atomic writing of the outputs (quantize-stage, outputs)',
    mutate: ['server/src/convert/quantize-stage.ts', 'server/src/convert/outputs.ts'],
    // In process only, seconds a run: the stage on the tiny model (groupwise, kquant, f32 scales, a float32/float16
    // checkpoint; 4 KiB chunks) and the outputs in a temp folder (4.5 to 10 minutes for the group here, loaded). Left out:
    // pipeline.test.ts and carry.test.ts, which reach these two modules only through whole conversions (the tiny
    // model converted several times, numpy run on it: ~45 min for the group with them), for paths the -mutants
    // files take directly; cli.test.ts and kquant-cli.test.ts spawn the CLI, where Stryker's mutants are not active.
    tests: ['test/unit/convert/outputs-mutants.test.ts', 'test/unit/convert/quantize-stage-mutants.test.ts'],
  },
  'convert-quantize': {
    about:
      'the per-tensor quantize stages, groupwise and kquant, and their buffer pool (quantize-tensor, quantize-kquant, buffer-pool)',
    mutate: [
      'server/src/convert/quantize-tensor.ts',
      'server/src/convert/quantize-kquant.ts',
      'server/src/convert/buffer-pool.ts',
    ],
    // In process, hand-made tensors through the engine (seconds a run): the two *-mutants files drive quantizeTensor /
    // quantizeKquantTensor against an in-memory checkpoint and writer (quantize-harness.ts); output-check.test.ts
    // calls benchChecks / benchKqChecks. pipeline.test.ts and carry.test.ts (a tiny model converted per mutant,
    // ~7 s each here; the group took 20 minutes with them) reach the same code only through a whole conversion and
    // stay out of the mutant loop: the in-process files assert everything they could see (bytes, scales, sums).
    tests: [
      'test/unit/convert/output-check.test.ts',
      'test/unit/convert/quantize-tensor-mutants.test.ts',
      'test/unit/convert/quantize-kquant-mutants.test.ts',
    ],
  },
  'convert-readahead': {
    about: "the quantize stage's read-ahead (read-ahead.ts)",
    mutate: ['server/src/convert/read-ahead.ts'],
    // In process, gated fake checkpoints and the in-memory harness (seconds a run).
    tests: ['test/unit/convert/read-ahead.test.ts'],
  },
  'hub-auth': {
    about: "the Hub client's token handling (auth.ts)",
    mutate: ['server/src/hub/auth.ts'],
    tests: ['test/unit/hub/auth.test.ts', 'test/unit/hub/auth-edges.test.ts'],
  },
  'hub-resume': {
    about: "the Hub client's resumable, verified download (fetchBlob)",
    mutate: [fn('server/src/hub/resume.ts', 'fetchBlob')],
    // fetchBlob driven through a scripted fetch (seconds a run); resume.test.ts (a real server, a killed child
    // process: about a minute a run here) covers the same paths end to end and stays out of the mutant loop.
    tests: ['test/unit/hub/resume-mutants.test.ts'],
  },
};

const name = process.env.APL_MUTATE_GROUP ?? 'verdict';
const group = GROUPS[name];
if (!group) throw new Error(`APL_MUTATE_GROUP=${name}: no such group (${Object.keys(GROUPS).join(', ')})`);

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'tap',
  tap: {
    testFiles: group.tests,
    // The file runs in the runner's own process (no --test), so the coverage hook sees the mutated code.
    nodeArgs: ['--import', 'tsx', '--test-reporter=tap', '-r', '{{hookFile}}', '{{testFile}}'],
  },
  mutate: group.mutate,
  coverageAnalysis: 'perTest',
  // Error messages are asserted by pattern where they matter; mutating every message string only adds noise.
  mutator: { excludedMutations: ['StringLiteral'] },
  checkers: [],
  concurrency: Number(process.env.APL_MUTATE_CONCURRENCY ?? 1),
  timeoutMS: 20_000,
  timeoutFactor: 2,
  tempDirName: `.stryker-tmp/${name}`, // one per group, so that groups can run side by side
  cleanTempDir: true,
  ignorePatterns: [
    '.stryker-tmp',
    'dist',
    '.tools',
    'test-output',
    'models',
    'bench/out',
    '.vscode-test',
    'reports',
    '*.vsix',
  ],
  reporters: ['clear-text', 'progress', 'json', 'html'],
  jsonReporter: { fileName: `reports/mutation/${name}.json` },
  htmlReporter: { fileName: `reports/mutation/${name}.html` },
  clearTextReporter: { allowColor: false, logTests: false, reportMutants: true, reportScoreTable: true },
  thresholds: { high: 85, low: 70, break: null },
};
