// What convert carries for running the model: the config values in the manifest's model block (with the
// transformers defaults for what config.json leaves out) and the tokenizer / generation config side files.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { planCarry, runConfigFields } from '../../../server/src/convert/carry';
import { convertModel } from '../../../server/src/convert/pipeline';
import { parseManifest } from '../../../server/src/manifest/document';
import { FileCache, isSideProblem, loadSideFile, manifestFiles } from '../../../server/src/manifest/files';
import { validateDoc } from '../../../server/src/manifest/validate';
import { root, tempDir } from './helpers';

/** The language server's diagnostics for a manifest on disk (as `apl-quant validate` computes them). */
async function diagnostics(
  file: string,
  edit?: (m: { model: Record<string, unknown>; metadata: Record<string, unknown> }) => void,
) {
  const m = JSON.parse(readFileSync(file, 'utf8'));
  edit?.(m);
  const doc = parseManifest(JSON.stringify(m, null, 2));
  const files = manifestFiles(doc, file);
  const cache = new FileCache();
  const npz = files.npzPath ? await cache.getNpz(files.npzPath) : undefined;
  const report = files.reportPath ? await cache.getReport(files.reportPath, files.reportNamed) : undefined;
  return validateDoc(doc, { manifestPath: file, npz, report }).map((d) => `${d.code}: ${d.message}`);
}

test('runConfigFields: family defaults and what config.json says', () => {
  assert.deepEqual(runConfigFields({ hidden_size: 64, num_attention_heads: 4 }, 'llama'), {
    head_dim: 16,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    hidden_act: 'silu',
  });
  assert.equal(runConfigFields({}, 'mistral').sliding_window, 4096);
  assert.equal(runConfigFields({ sliding_window: null }, 'mistral').sliding_window, null);
  assert.equal(runConfigFields({ hidden_act: 'gelu' }, 'gemma').hidden_act, 'gelu_pytorch_tanh');
  const g = runConfigFields({ head_dim: 256, eos_token_id: [1, 107], bos_token_id: 2 }, 'gemma');
  assert.deepEqual([g.head_dim, g.eos_token_id, g.bos_token_id], [256, [1, 107], 2]);
  assert.deepEqual(runConfigFields({ rope_scaling: { type: 'linear', factor: 2 } }, 'llama').rope_scaling, {
    type: 'linear',
    factor: 2,
  });
});

test('convert keeps the tokenizer, its config and the generation config beside the manifest, named in metadata', async (t) => {
  const out = tempDir(t);
  const src = join(root, 'test/fixtures/tiny-mistral');
  const r = await convertModel({ source: src, bits: 4, outDir: out, name: 'tm' }, () => {});
  assert.deepEqual(readdirSync(out).sort(), [
    'tm_accuracy_q4.json',
    'tm_generation_config_q4.json',
    'tm_manifest_q4.json',
    'tm_quantized_q4.npz',
    'tm_tokenizer_config_q4.json',
    'tm_tokenizer_q4.json',
  ]);
  const m = JSON.parse(readFileSync(r.manifest, 'utf8'));
  assert.equal(m.metadata.tokenizer, 'tm_tokenizer_q4.json');
  assert.equal(m.metadata.tokenizer_config, 'tm_tokenizer_config_q4.json');
  assert.equal(m.metadata.generation_config, 'tm_generation_config_q4.json');
  for (const [k, f] of [
    ['tokenizer', 'tokenizer.json'],
    ['tokenizer_config', 'tokenizer_config.json'],
    ['generation_config', 'generation_config.json'],
  ]) {
    assert.equal(readFileSync(join(out, m.metadata[k]), 'utf8'), readFileSync(join(src, f), 'utf8'));
  }
  // The model block's existing fields keep their order; the run fields follow them.
  assert.deepEqual(Object.keys(m.model), [
    'name',
    'family',
    'architecture',
    'context_length',
    'hidden_dim',
    'intermediate_size',
    'num_layers',
    'num_heads',
    'num_kv_heads',
    'vocab_size',
    'tie_word_embeddings',
    'source',
    'head_dim',
    'rms_norm_eps',
    'rope_theta',
    'rope_scaling',
    'sliding_window',
    'hidden_act',
    'bos_token_id',
    'eos_token_id',
  ]);
  assert.equal(m.model.sliding_window, 8);
  assert.deepEqual(m.model.rope_scaling, { type: 'linear', factor: 2 });
  assert.deepEqual(await diagnostics(r.manifest), []);
  // The schema describes the new fields; the checks relate head_dim to the weights.
  assert.match(
    (
      await diagnostics(r.manifest, (x) => {
        x.model.head_dim = 32;
      })
    ).join('\n'),
    /apl.model-mismatch: head_dim × num_heads = 32 × 4 disagrees with q_proj rows 64/,
  );
  assert.match(
    (
      await diagnostics(r.manifest, (x) => {
        x.model.sliding_window = 'wide';
        x.metadata.tokenizer = 3;
      })
    ).join('\n'),
    /apl.schema/,
  );
});

test('a failed conversion leaves no side files behind', async (t) => {
  const out = tempDir(t);
  const ac = new AbortController();
  const p = convertModel(
    { source: join(root, 'test/fixtures/tiny-gemma'), bits: 4, outDir: out, name: 'tg' },
    (e) => {
      if (e.type === 'stage' && e.stage === 'write') ac.abort();
    },
    ac.signal,
  );
  await assert.rejects(p, /cancelled/);
  assert.deepEqual(readdirSync(out), []);
  assert.ok(!existsSync(join(out, 'tg_tokenizer_q4.json')));
});

test("planCarry removes a killed run's side-file temporaries (its pid gone) and nothing else", (t) => {
  const out = tempDir(t);
  const DEAD = 99999999; // above Linux's pid_max: no such process
  const gone = [`.m_tokenizer_q4.json.tmp-${DEAD}`, `.m_generation_config_q4.json.tmp-${DEAD}`];
  const kept = [
    `.m_tokenizer_q4.json.tmp-${process.pid}`, // this process
    `.m_tokenizer_q4.json.tmp-1`, // alive (init)
    `.m_tokenizer_config_q4.json.tmp-${process.ppid}`, // alive (the parent)
    `.m_tokenizer_q8.json.tmp-${DEAD}`, // another bit width's
    `.m_quantized_q4.npz.staged-${DEAD}`, // the converter's own (outputs.ts removes those)
    `.m_tokenizer_q4.json.tmp-${DEAD}.tmp-77-ff`, // not the side-file form
    `m_tokenizer_q4.json.tmp-${DEAD}`, // no leading dot
    `.m_tokenizer_q4.json.tmp-${DEAD}x`,
  ];
  for (const f of [...gone, ...kept]) writeFileSync(join(out, f), 'x');
  planCarry(join(out, 'no-such-model'), out, 'm', 4);
  assert.deepEqual(readdirSync(out).sort(), [...kept].sort());
});

test('hostile side files in the checkpoint: a FIFO or a directory is not carried, a malformed one is carried with a warning; the conversion neither hangs nor fails', async (t) => {
  const out = tempDir(t);
  const src = join(tempDir(t), 'model');
  cpSync(join(root, 'test/fixtures/tiny-mistral'), src, { recursive: true });
  rmSync(join(src, 'tokenizer.json'));
  execFileSync('mkfifo', [join(src, 'tokenizer.json')]); // opened for reading, a FIFO with no writer blocks forever
  writeFileSync(join(src, 'tokenizer_config.json'), '[1, 2]');
  rmSync(join(src, 'generation_config.json'));
  mkdirSync(join(src, 'generation_config.json'));
  const warnings: string[] = [];
  const r = await convertModel({ source: src, bits: 4, outDir: out, name: 'h' }, (e) => {
    if (e.type === 'log' && e.level === 'warn') warnings.push(e.message);
  });
  assert.deepEqual(warnings, [
    `${join(src, 'tokenizer.json')}: not a regular file (a pipe, socket or device): not carried beside the output`,
    `${join(src, 'tokenizer_config.json')}: the tokenizer config is a list, not an object: carried as it is, but apl-quant run will refuse it until it is fixed beside the manifest`,
    `${join(src, 'generation_config.json')}: is a directory: not carried beside the output`,
  ]);
  const m = JSON.parse(readFileSync(r.manifest, 'utf8'));
  assert.equal(m.metadata.tokenizer, undefined);
  assert.equal(m.metadata.generation_config, undefined);
  assert.equal(readFileSync(join(out, m.metadata.tokenizer_config), 'utf8'), '[1, 2]');
  assert.deepEqual(readdirSync(out).sort(), [
    'h_accuracy_q4.json',
    'h_manifest_q4.json',
    'h_quantized_q4.npz',
    'h_tokenizer_config_q4.json',
  ]);
  // The language server flags the carried file for the same reason.
  const side = await loadSideFile(join(out, m.metadata.tokenizer_config), 'tokenizer_config');
  assert.match(
    isSideProblem(side) ? side.message : '',
    /h_tokenizer_config_q4\.json: the tokenizer config is a list, not an object$/,
  );
});

test("a tokenizer whose ids pass the model's vocabulary is carried byte for byte, with a warning naming both counts", async (t) => {
  const out = tempDir(t);
  const src = join(tempDir(t), 'model');
  cpSync(join(root, 'test/fixtures/tiny-mistral'), src, { recursive: true });
  const tok = JSON.parse(readFileSync(join(src, 'tokenizer.json'), 'utf8'));
  tok.added_tokens.push({ id: 4999, content: '<extra>', special: true });
  const bytes = `${JSON.stringify(tok)}\n`;
  writeFileSync(join(src, 'tokenizer.json'), bytes);
  const vocab = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8')).vocab_size;
  const warnings: string[] = [];
  const r = await convertModel({ source: src, bits: 4, outDir: out, name: 'v' }, (e) => {
    if (e.type === 'log' && e.level === 'warn') warnings.push(e.message);
  });
  assert.deepEqual(warnings, [
    `${join(src, 'tokenizer.json')}: the tokenizer defines 5000 ids but the model's vocabulary (vocab_size in config.json) has ${vocab}: carried as it is, but apl-quant run will refuse it until it is fixed beside the manifest`,
  ]);
  const m = JSON.parse(readFileSync(r.manifest, 'utf8'));
  assert.equal(readFileSync(join(out, m.metadata.tokenizer), 'utf8'), bytes);
  assert.equal(m.metadata.generation_config, 'v_generation_config_q4.json');
});
