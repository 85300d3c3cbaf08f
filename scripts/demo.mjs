// npm run demo: the main job on the bundled trained model, with no network.
//   1. convert test/fixtures/brown-tiny (a small Llama trained on the Brown corpus) to 4 bits into models/,
//   2. generate a sentence from the float model and from the 4-bit model (greedy, same prompt),
//   3. measure what quantization cost end to end (llama.cpp's perplexity/KL-divergence protocol, 4 chunks).
// Each step is the apl-quant CLI, so what it prints is what a user sees.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const cli = join(root, 'bin/apl-quant.js');
const model = join(root, 'test/fixtures/brown-tiny');
const manifest = join(root, 'models/brown-tiny_manifest_q4.json');
const prompt = 'The jury said';

function step(title, args) {
  console.log(`\n== ${title}\n$ apl-quant ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [cli, ...args], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) {
    console.error(`demo: step failed (exit ${r.status}): ${title}`);
    process.exit(r.status ?? 1);
  }
}

step('convert to 4 bits', ['convert', model, '--bits', '4', '--force', '--out', join(root, 'models')]);
for (const [label, extra] of [
  ['float model', ['--float']],
  ['4-bit model', []],
]) {
  step(`generate (${label})`, [
    'run',
    manifest,
    '--prompt',
    prompt,
    '--max-tokens',
    '24',
    '--temperature',
    '0',
    ...extra,
  ]);
}
step('end-to-end accuracy against the float model', [
  'eval',
  manifest,
  '--text',
  join(model, 'heldout.txt'),
  '--ctx',
  '256',
  '--chunks',
  '4',
]);
