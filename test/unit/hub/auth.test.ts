// Token, endpoint and cache-folder resolution, and the pure file selection.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { downloadModel, resolveToken, selectFiles, shardsFromIndex } from '../../../server/src/hub';
import { offlineFromEnv, resolveEndpoint, tokenFilePath } from '../../../server/src/hub/auth';
import { defaultCacheDir, invalidRepoId } from '../../../server/src/hub/cache';
import { startHubServer } from '../../helpers/hub-server';
import { TOKEN, tempDir } from './fixtures';

describe('resolveToken', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  test('explicit, then HF_TOKEN, then HF_TOKEN_PATH / HF_HOME/token / XDG / ~/.cache file', () => {
    const home = join(tmp.dir, 'hfhome');
    mkdirSync(home);
    writeFileSync(join(home, 'token'), 'hf_fromFile\n');
    const custom = join(tmp.dir, 'custom-token');
    writeFileSync(custom, '  hf_fromCustomPath  \n');
    const xdg = join(tmp.dir, 'xdg');
    mkdirSync(join(xdg, 'huggingface'), { recursive: true });
    writeFileSync(join(xdg, 'huggingface', 'token'), 'hf_fromXdg');

    assert.equal(resolveToken('hf_explicit', { HF_TOKEN: 'hf_env', HF_HOME: home }), 'hf_explicit');
    assert.equal(resolveToken(undefined, { HF_TOKEN: 'hf_env', HF_HOME: home }), 'hf_env');
    assert.equal(resolveToken('', { HF_TOKEN: ' hf_env ', HF_HOME: home }), 'hf_env');
    assert.equal(resolveToken(undefined, { HUGGING_FACE_HUB_TOKEN: 'hf_legacy', HF_HOME: home }), 'hf_legacy');
    assert.equal(resolveToken(undefined, { HF_HOME: home }), 'hf_fromFile');
    assert.equal(resolveToken(undefined, { HF_HOME: home, HF_TOKEN_PATH: custom }), 'hf_fromCustomPath');
    assert.equal(resolveToken(undefined, { XDG_CACHE_HOME: xdg }), 'hf_fromXdg');
    assert.equal(resolveToken(undefined, { HF_HOME: join(tmp.dir, 'missing') }), undefined);
    writeFileSync(join(home, 'token'), '\n');
    assert.equal(resolveToken(undefined, { HF_HOME: home }), undefined, 'an empty file is no token');
  });

  test('token file path defaults', () => {
    assert.equal(tokenFilePath({}), join(homedir(), '.cache', 'huggingface', 'token'));
    assert.equal(tokenFilePath({ HF_HOME: '/h' }), join('/h', 'token'));
    assert.equal(tokenFilePath({ HF_HOME: '/h', HF_TOKEN_PATH: '/t' }), '/t');
  });
});

describe('endpoint and cache folder', () => {
  test('resolveEndpoint: explicit, HF_ENDPOINT, default; trailing slash dropped; bad URLs refused', () => {
    assert.equal(resolveEndpoint(undefined, {}), 'https://huggingface.co');
    assert.equal(resolveEndpoint(undefined, { HF_ENDPOINT: 'https://hf-mirror.com/' }), 'https://hf-mirror.com');
    assert.equal(resolveEndpoint('http://127.0.0.1:8080', { HF_ENDPOINT: 'https://x' }), 'http://127.0.0.1:8080');
    assert.throws(() => resolveEndpoint('not a url', {}), /invalid Hugging Face endpoint/);
    assert.throws(() => resolveEndpoint('file:///etc', {}), /only http and https/);
  });

  test('HF_HUB_OFFLINE', () => {
    for (const v of ['1', 'true', 'ON', 'yes']) assert.equal(offlineFromEnv({ HF_HUB_OFFLINE: v }), true, v);
    for (const v of [undefined, '', '0', 'false']) assert.equal(offlineFromEnv({ HF_HUB_OFFLINE: v }), false, v);
  });

  test('defaultCacheDir: HF_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub', () => {
    assert.equal(defaultCacheDir({ HF_HUB_CACHE: '/c', HF_HOME: '/h' }), '/c');
    assert.equal(defaultCacheDir({ HF_HOME: '/h', XDG_CACHE_HOME: '/x' }), join('/h', 'hub'));
    assert.equal(defaultCacheDir({ XDG_CACHE_HOME: '/x' }), join('/x', 'huggingface', 'hub'));
    assert.equal(defaultCacheDir({}), join(homedir(), '.cache', 'huggingface', 'hub'));
  });

  test('downloadModel reads HF_ENDPOINT, HF_TOKEN and HF_HUB_CACHE from the environment', async () => {
    const tmp = tempDir();
    const hub = await startHubServer({
      repos: { 'env/gated': { files: { 'config.json': '{}', 'model.safetensors': Buffer.alloc(64, 3) }, gated: true } },
      token: TOKEN,
    });
    const saved = { ...process.env };
    try {
      process.env.HF_ENDPOINT = hub.url;
      process.env.HF_TOKEN = TOKEN;
      process.env.HF_HUB_CACHE = join(tmp.dir, 'envcache');
      const m = await downloadModel('env/gated', {});
      assert.ok(m.dir.startsWith(join(tmp.dir, 'envcache', 'models--env--gated')));
      assert.ok(hub.requests.every((r) => r.origin === 'lfs' || r.headers.authorization === `Bearer ${TOKEN}`));
      // The token file is used when HF_TOKEN is absent.
      delete process.env.HF_TOKEN;
      process.env.HF_TOKEN_PATH = join(tmp.dir, 'tok');
      writeFileSync(process.env.HF_TOKEN_PATH, TOKEN);
      process.env.HF_HUB_CACHE = join(tmp.dir, 'envcache2');
      const before = hub.requests.length;
      await downloadModel('env/gated', {});
      assert.equal(hub.requests[before].headers.authorization, `Bearer ${TOKEN}`);
    } finally {
      for (const k of ['HF_ENDPOINT', 'HF_TOKEN', 'HF_HUB_CACHE', 'HF_TOKEN_PATH']) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
      await hub.close();
      tmp.cleanup();
    }
  });
});

describe('file selection', () => {
  test('sharded: the index (shards come from it), config, tokenizer; never pickle or sub-folders', () => {
    const s = selectFiles([
      'config.json',
      'model.safetensors.index.json',
      'model-00001-of-00002.safetensors',
      'pytorch_model.bin',
      'tokenizer.model',
      'original/consolidated.00.pth',
      'onnx/model.safetensors',
      'README.md',
    ]);
    assert.deepEqual(s.files, ['config.json', 'tokenizer.model', 'model.safetensors.index.json']);
    assert.equal(s.index, 'model.safetensors.index.json');
    assert.deepEqual(s.pickle, ['pytorch_model.bin']);
  });

  test('single file; else every top-level safetensors', () => {
    assert.deepEqual(selectFiles(['model.safetensors', 'consolidated.safetensors']).files, ['model.safetensors']);
    assert.deepEqual(selectFiles(['b.safetensors', 'a.safetensors']).files, ['a.safetensors', 'b.safetensors']);
  });

  test('shardsFromIndex: unique sorted shard names; bad JSON, bad names refused with the file named', () => {
    const idx = JSON.stringify({ weight_map: { x: 'b.safetensors', y: 'a.safetensors', z: 'a.safetensors' } });
    assert.deepEqual(shardsFromIndex(idx, 'idx.json'), ['a.safetensors', 'b.safetensors']);
    assert.throws(
      () => shardsFromIndex('{', 'idx.json'),
      /^Error: idx\.json: not valid JSON|idx\.json: not valid JSON/,
    );
    assert.throws(() => shardsFromIndex('{}', 'idx.json'), /idx\.json: has no "weight_map"/);
    // Same pattern as the fuzzer's report finding: the JSON parser's excerpt must not break the line.
    assert.throws(
      () => shardsFromIndex('{\n "weight_map":,\n}', 'idx.json'),
      (e: Error) => !/[\r\n]/.test(e.message),
    );
    assert.throws(() => shardsFromIndex('{"weight_map":{"a":"/abs.safetensors"}}', 'i'), /invalid shard/);
    assert.throws(() => shardsFromIndex('{"weight_map":{"a":"x.bin"}}', 'i'), /invalid shard/);
    assert.throws(() => shardsFromIndex('{"weight_map":{}}', 'i'), /empty/);
  });

  test('repo ids', () => {
    assert.equal(invalidRepoId('TinyLlama/TinyLlama-1.1B-Chat-v1.0'), undefined);
    assert.equal(invalidRepoId('gpt2'), undefined);
    assert.ok(invalidRepoId('a/b/c'));
    assert.ok(invalidRepoId('a/../b'));
    assert.ok(invalidRepoId('a--b/c'));
  });
});
