// apl-quant convert as a child process: JSON progress, the summary, exit codes, one-line errors, kills at chosen
// points and injected disk-full (APL_TEST_FAULT, through the converter's test seam: see fault-cli.ts), and the Hub
// path against the loopback Hub.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { foldLines, parseConvertArgs } from '../../../server/src/cli/convert';
import type { ConvertEvent } from '../../../server/src/protocol';
import { type CliRun, spawnTs } from '../../helpers/cli';
import { startHubServer } from '../../helpers/hub-server';
import { root, snapshot, tempDir, tinyModel } from './helpers';

type Run = CliRun;

function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const clean = { ...process.env };
  for (const k of ['APL_TEST_FAULT', 'HF_TOKEN', 'HF_ENDPOINT', 'HF_HOME', 'HF_HUB_CACHE', 'HF_HUB_OFFLINE'])
    delete clean[k];
  // A fault runs the same command through fault-cli.ts, which passes ConvertHooks that inject it.
  const entry = env.APL_TEST_FAULT
    ? [join(root, 'test/unit/convert/fault-cli.ts')]
    : [join(root, 'server/src/cli.ts'), 'convert'];
  return spawnTs([...entry, ...args], { ...clean, APL_CLI_MAIN: '1', ...env }, `apl-quant convert ${args.join(' ')}`);
}

function events(r: Run): ConvertEvent[] {
  return r.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as ConvertEvent);
}

/** The stderr line of apl-quant's error (the engine may print a fallback notice before it). */
function errorLine(r: Run): string {
  const lines = r.stderr.trim().split('\n');
  const line = lines.filter((l) => l.startsWith('apl-quant convert: ')).at(-1);
  assert.ok(line, r.stderr);
  return line;
}

const outputs = (out: string) => readdirSync(out).filter((f) => !f.startsWith('.'));
const temps = (out: string) => (existsSync(out) ? readdirSync(out).filter((f) => f.startsWith('.')) : []);

test('argument parsing', () => {
  const p = parseConvertArgs(['tinyllama', '--bits', '2', '--group-size=row', '--symmetric', '--tolerance', '2=25%']);
  assert.ok(p !== 'help');
  assert.equal(p.opts.bits, 2);
  assert.equal(p.opts.groupSize, 'row');
  assert.equal(p.opts.symmetric, true);
  assert.equal(p.opts.tolerance?.[2], 0.25);
  assert.equal(p.opts.tolerance?.[4], 0.1);
  assert.equal(parseConvertArgs(['--help']), 'help');
  assert.throws(() => parseConvertArgs(['x', '--bits', '3']), /--bits must be 1, 2, 4 or 8/);
  assert.throws(() => parseConvertArgs(['x', '--group-size', '0']), /--group-size/);
  assert.throws(() => parseConvertArgs(['x', '--symmetric', '--asymmetric']), /conflict/);
  assert.throws(() => parseConvertArgs(['x', '--bogus']), /unknown option --bogus/);
  assert.throws(() => parseConvertArgs(['x', '--tolerance', '4=abc']), /--tolerance/);
  assert.throws(() => parseConvertArgs([]), /which model/);
  assert.equal(foldLines('a gated model.\nDo this:\n  one\n  two'), 'a gated model. Do this: one; two');
  // CRLF folds too, and a control character left (a carriage return the user typed) is escaped
  assert.equal(foldLines('not found.\r\ntry again'), 'not found. try again');
  assert.equal(foldLines("'a\rb' is not a known alias"), "'a\\u000db' is not a known alias");
});

test('CLI: summary table, then --json-progress events, help, exists', async (t) => {
  const out = tempDir(t);
  const human = await cli([tinyModel, '--bits', '4', '--out', out, '--name', 'tiny']);
  assert.equal(human.status, 0, human.stderr);
  assert.match(human.stdout, /model\.layers\.1\.mlp\.down_proj\.weight\s+4\s+\d+\.\d\d%/);
  assert.match(human.stdout, /accuracy: 16\/16 weights within tolerance, 5 tensors kept as float → PASS/);
  assert.deepEqual(outputs(out).sort(), [
    'tiny_accuracy_q4.json',
    'tiny_generation_config_q4.json',
    'tiny_manifest_q4.json',
    'tiny_quantized_q4.npz',
    'tiny_tokenizer_config_q4.json',
    'tiny_tokenizer_q4.json',
  ]);

  const json = await cli([tinyModel, '--bits', '4', '--out', out, '--name', 'tiny', '--force', '--json-progress']);
  assert.equal(json.status, 0, json.stderr);
  const ev = events(json);
  assert.equal(ev[0].type, 'start');
  const result = ev.find((e) => e.type === 'result');
  assert.ok(result && result.type === 'result' && result.pass && result.npz === join(out, 'tiny_quantized_q4.npz'));
  assert.deepEqual(ev.at(-1), { type: 'stage', stage: 'done' });
  const tensors = new Set(ev.flatMap((e) => (e.type === 'progress' && e.tensor !== undefined ? [e.tensor] : [])));
  assert.equal(tensors.size, 21);

  const exists = await cli([tinyModel, '--out', out, '--name', 'tiny', '--json-progress']);
  assert.equal(exists.status, 1);
  assert.deepEqual(events(exists).at(-1), {
    type: 'error',
    code: 'exists',
    message: `${join(out, 'tiny_quantized_q4.npz')} already exists; pass --force to replace it`,
  });
  assert.match(errorLine(exists), /already exists; pass --force/);

  const help = await cli(['--help']);
  assert.equal(help.status, 0);
  for (const f of [
    '--bits',
    '--group-size',
    '--symmetric',
    '--asymmetric',
    '--embeddings-bits',
    '--out',
    '--backend',
    '--threads',
    '--revision',
    '--token',
    '--force',
    '--json-progress',
  ]) {
    assert.ok(help.stdout.includes(f), f);
  }
  const bad = await cli([tinyModel, '--bits', '3']);
  assert.equal(bad.status, 2);
  assert.equal(errorLine(bad), 'apl-quant convert: --bits must be 1, 2, 4 or 8 (got 3)');
});

test('killed during quantization or during the write: no partial output, earlier result intact', async (t) => {
  const out = tempDir(t);
  const first = await cli([tinyModel, '--bits', '4', '--out', out, '--name', 'tiny']);
  assert.equal(first.status, 0, first.stderr);
  const before = snapshot(out);
  const args = [tinyModel, '--bits', '4', '--out', out, '--name', 'tiny', '--force', '--json-progress'];

  for (const fault of ['after-tensor:3:SIGTERM', 'during-write:SIGTERM']) {
    const k = await cli(args, { APL_TEST_FAULT: fault });
    assert.equal(k.status, 130, `${fault}: ${k.stderr}`);
    assert.equal((events(k).at(-1) as { code?: string }).code, 'cancelled');
    assert.deepEqual(temps(out), [], 'a cancelled run removes its temporaries');
    for (const [f, bytes] of before) assert.ok(readFileSync(join(out, f)).equals(bytes), `${fault}: ${f} changed`);
  }
  for (const fault of ['after-tensor:3', 'during-write']) {
    const k = await cli(args, { APL_TEST_FAULT: fault });
    assert.equal(k.signal, 'SIGKILL', `${fault}: ${k.stderr}`);
    assert.deepEqual(snapshot(out).size, before.size + temps(out).length);
    for (const [f, bytes] of before) assert.ok(readFileSync(join(out, f)).equals(bytes), `${fault}: ${f} changed`);
  }
  // SIGKILL left temporaries behind (nothing could remove them); the next run clears them.
  assert.ok(temps(out).length > 0);
  const again = await cli([tinyModel, '--bits', '4', '--out', out, '--name', 'tiny', '--force']);
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual(temps(out), []);
});

test('disk full while writing: one-line io error, nothing written', async (t) => {
  const out = tempDir(t);
  const r = await cli([tinyModel, '--out', out, '--json-progress'], { APL_TEST_FAULT: 'enospc-after-tensor:2' });
  assert.equal(r.status, 1);
  assert.match(errorLine(r), /^apl-quant convert: writing .*tiny-llama_quantized_q4\.npz: disk full \(ENOSPC\)$/);
  assert.equal((events(r).at(-1) as { code?: string }).code, 'io');
  assert.deepEqual(readdirSync(out), []);
});

test('Hub repo id through the loopback Hub; a gated repo without a token writes nothing', async (t) => {
  const dir = tempDir(t);
  const files: Record<string, Buffer> = {};
  for (const f of readdirSync(tinyModel)) files[f] = readFileSync(join(tinyModel, f));
  const hub = await startHubServer({
    repos: { 'apl-test/tiny-llama': { files }, 'apl-test/gated-llama': { files, gated: true } },
    token: 'hf_valid',
  });
  t.after(() => hub.close());
  const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: join(dir, 'cache'), HF_HOME: join(dir, 'hf'), HOME: dir };
  const out = join(dir, 'out');
  const ok = await cli(['apl-test/tiny-llama', '--bits', '4', '--out', out, '--json-progress'], env);
  assert.equal(ok.status, 0, ok.stderr);
  const ev = events(ok);
  assert.ok(ev.some((e) => e.type === 'progress' && e.stage === 'download'));
  const manifest = JSON.parse(readFileSync(join(out, 'tiny-llama_manifest_q4.json'), 'utf8'));
  assert.equal(manifest.model.source, 'apl-test/tiny-llama');
  assert.match(manifest.model.revision, /^[0-9a-f]{40}$/);
  assert.ok(hub.requests.every((r) => r.headers.authorization === undefined));

  // --offline: the same conversion from the Hugging Face cache, without a single request.
  const seen = hub.requests.length;
  const offline = await cli(['apl-test/tiny-llama', '--out', out, '--offline', '--force'], env);
  assert.equal(offline.status, 0, offline.stderr);
  assert.equal(hub.requests.length, seen);

  const gatedOut = join(dir, 'gated-out');
  const denied = await cli(['apl-test/gated-llama', '--out', gatedOut, '--json-progress'], env);
  assert.equal(denied.status, 1);
  assert.equal((events(denied).at(-1) as { code?: string }).code, 'auth');
  assert.match(errorLine(denied), /gated.*--token.*HF_TOKEN.*huggingface-cli login/);
  assert.ok(!existsSync(gatedOut) || readdirSync(gatedOut).length === 0);

  const withToken = await cli(['apl-test/gated-llama', '--out', gatedOut, '--token', 'hf_valid'], env);
  assert.equal(withToken.status, 0, withToken.stderr);
  assert.ok(existsSync(join(gatedOut, 'gated-llama_manifest_q4.json')));
});
