#!/usr/bin/env node
// Regenerates the end-to-end figures table (README "End-to-end accuracy"): converts the trained test model
// test/fixtures/brown-tiny at 8, 4, 2 and 1 bits with group 64 and one group per row, each with `convert --eval`
// over its held-out text (every full chunk of 256 tokens), and prints a markdown table of mean KLD, same top and
// PPL ratio beside llama.cpp's published figures for Llama-2-7B on Wikitext-2 (a different, far larger model:
// the rows show orders of magnitude, not a like-for-like comparison).
//   node scripts/eval-table.mjs [--ctx 256] [--chunks 1000] [--out DIR]
// Deterministic: the same inputs give the same figures on the same engine (the forward pass's backend is printed).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const opt = (k, d) => {
  const i = args.indexOf(`--${k}`);
  return i >= 0 ? args[i + 1] : d;
};
const ctx = opt('ctx', '256');
const chunks = opt('chunks', '1000');
const keep = opt('out');
const out = keep ?? mkdtempSync(join(tmpdir(), 'apl-eval-table-'));
const model = join(root, 'test/fixtures/brown-tiny');

const rows = [];
for (const bits of [8, 4, 2, 1]) {
  for (const group of ['64', 'row']) {
    const name = `brown-tiny-g${group}`;
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        join(root, 'server/src/cli.ts'),
        'convert',
        model,
        '--bits',
        String(bits),
        '--group-size',
        group,
        '--name',
        name,
        '--out',
        out,
        '--force',
        '--eval',
        '--eval-ctx',
        ctx,
        '--eval-chunks',
        chunks,
        '--json-progress',
      ],
      { cwd: root, encoding: 'utf8', env: { ...process.env, APL_CLI_MAIN: '1' } },
    );
    if (r.status !== 0) {
      process.stderr.write(`${bits} bits, group ${group}: exit ${r.status}\n${r.stderr}`);
      process.exit(1);
    }
    const rep = JSON.parse(readFileSync(join(out, `${name}_accuracy_q${bits}.json`), 'utf8'));
    const e = rep.end_to_end;
    rows.push({ bits, group, rep, e });
    process.stderr.write(
      `${bits} bits, group ${group}: KLD ${e.kld_mean.toPrecision(3)}, same top ${(100 * e.same_top).toFixed(2)} %\n`,
    );
  }
}

const f = (x, d) => x.toFixed(d);
const lines = [
  `| model | bits (group) | bits/weight | mean KLD | KLD 99 % | same top | RMS Δp | PPL ratio | weights verdict | end-to-end verdict |`,
  '|---|---|---:|---:|---:|---:|---:|---:|---|---|',
];
for (const { bits, group, rep, e } of rows) {
  lines.push(
    `| brown-tiny | ${bits} (${group === 'row' ? 'per row' : `group ${group}`}) | ${f(rep.sizes.bits_per_weight, 2)} | ${e.kld_mean.toPrecision(3)} ± ${e.kld_se.toPrecision(2)} | ${e.kld_p99.toPrecision(3)} | ${f(100 * e.same_top, 2)} ± ${f(100 * e.same_top_se, 2)} % | ${f(100 * e.rms_dp, 2)} % | ${f(e.ppl_ratio, 4)} | ${rep.summary.failed ? 'FAIL' : 'pass'} | ${e.pass ? 'pass' : 'FAIL'} |`,
  );
}
for (const [q, kld, top, dp, ratio] of [
  ['q8_0', '0.00037', '98.85 %', '0.62 %', '1.0007'],
  ['q4_K_M', '0.0127', '94.67 %', '3.25 %', '1.0142'],
  ['q2_K', '0.109', '85.58 %', '9.76 %', '1.108'],
]) {
  lines.push(`| Llama-2-7B (llama.cpp, Wikitext-2, ctx 512) | ${q} | | ${kld} | | ${top} | ${dp} | ${ratio} | | |`);
}
const e0 = rows[0].e;
process.stdout.write(
  `${lines.join('\n')}\n\nbrown-tiny: ${e0.tokens_scored} tokens of ${e0.text.name} scored (ctx ${e0.ctx}, ${e0.chunks} chunks), float PPL ${f(e0.ppl_float, 2)}; embeddings and head at 8 bits; forward pass ${e0.backend}.\n`,
);
if (!keep) rmSync(out, { recursive: true, force: true });
