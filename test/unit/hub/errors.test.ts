// Hub failures as HubError codes with messages that say what to do: 401, 403, 404, pickle-only, network, io.
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { downloadModel, HubError } from '../../../server/src/hub';
import { type HubServer, startHubServer } from '../../helpers/hub-server';
import { shardedRepo, TOKEN, tempDir } from './fixtures';

const NO_ACCESS = 'hf_validButNotGranted';

describe('Hub errors', () => {
  let hub: HubServer;
  const tmp = tempDir();
  const cacheDir = join(tmp.dir, 'hub');
  const files = shardedRepo();

  before(async () => {
    hub = await startHubServer({
      repos: {
        'meta/gated-llama': { files, gated: true },
        'acme/private-model': { files, private: true },
        'public/model': { files, revisions: ['v1.0'] },
        'old/pickle-only': {
          files: { 'config.json': '{}', 'pytorch_model.bin': Buffer.alloc(100, 1), 'tokenizer.json': '{}' },
        },
        'odd/no-weights': { files: { 'config.json': '{}', 'model.gguf': Buffer.alloc(10) } },
        'bad/index': {
          files: {
            'config.json': '{}',
            'model.safetensors.index.json': JSON.stringify({ weight_map: { a: '../../etc/passwd.safetensors' } }),
          },
        },
        'bad/missing-shard': {
          files: {
            'config.json': '{}',
            'model.safetensors.index.json': JSON.stringify({ weight_map: { a: 'model-00001-of-00001.safetensors' } }),
          },
        },
      },
      token: TOKEN,
      tokensWithoutAccess: [NO_ACCESS],
    });
  });
  after(async () => {
    await hub.close();
    tmp.cleanup();
  });

  const get = (repo: string, extra: { token?: string; revision?: string } = {}) =>
    downloadModel(repo, { endpoint: hub.url, cacheDir, token: '', retryDelayMs: 0, ...extra });

  async function failure(p: Promise<unknown>): Promise<HubError> {
    try {
      await p;
    } catch (e) {
      assert.ok(e instanceof HubError, `a HubError, got ${e}`);
      assert.ok(!e.message.includes('\n'), `one-line message: ${e.message}`);
      return e;
    }
    assert.fail('expected a failure');
  }

  test('gated model without a token: auth, says how to authenticate and to accept the licence', async () => {
    const e = await failure(get('meta/gated-llama'));
    assert.equal(e.code, 'auth');
    assert.equal(e.status, 401);
    assert.match(e.message, /gated/);
    assert.match(e.message, /apl-quant convert meta\/gated-llama --token hf_/);
    assert.match(e.message, /export HF_TOKEN=hf_/);
    assert.match(e.message, /huggingface-cli login/);
    assert.match(e.message, /APL: Set Hugging Face Token/);
    assert.ok(e.message.includes(`accept its licence on its Hub page, ${hub.url}/meta/gated-llama`));
    // The model info and listing of a gated repo are public; the first file request was refused.
    assert.ok(hub.requests.some((r) => r.path.includes('/resolve/') && r.path.includes('gated-llama')));
    assert.ok(!existsSync(join(cacheDir, 'models--meta--gated-llama')), 'nothing written');
  });

  test('gated model with a token that was not granted access: auth (403), accept the licence', async () => {
    const e = await failure(get('meta/gated-llama', { token: NO_ACCESS }));
    assert.equal(e.code, 'auth');
    assert.equal(e.status, 403);
    assert.match(e.message, /not been granted access/);
    assert.match(e.message, /accept its licence/);
  });

  test('a bad token: auth (401), says the token was rejected', async () => {
    const e = await failure(get('public/model', { token: 'hf_expired' }));
    assert.equal(e.code, 'auth');
    assert.equal(e.status, 401);
    assert.match(e.message, /rejected your token/);
    assert.match(e.message, /export HF_TOKEN=hf_/);
  });

  test('private repo: without a token auth; with a good token it downloads', async () => {
    const e = await failure(get('acme/private-model'));
    assert.equal(e.code, 'auth');
    assert.match(e.message, /private, gated, or does not exist/);
    assert.match(e.message, /export HF_TOKEN=hf_/);
    assert.doesNotMatch(e.message, /licence/, 'not known to be gated');
    const e2 = await failure(get('acme/private-model', { token: NO_ACCESS }));
    assert.equal(e2.code, 'not-found');
    assert.equal(e2.status, 404);
    const m = await get('acme/private-model', { token: TOKEN });
    assert.equal(m.files.length, 9);
  });

  test('404s: missing repository, missing revision', async () => {
    const e = await failure(get('nobody/nothing'));
    assert.equal(e.code, 'not-found');
    assert.equal(e.status, 404);
    assert.match(e.message, /nobody\/nothing: repository not found/);
    const r = await failure(get('public/model', { revision: 'v9' }));
    assert.equal(r.code, 'not-found');
    assert.match(r.message, /revision "v9" not found/);
    // A named revision resolves (and is recorded under refs/).
    const m = await get('public/model', { revision: 'v1.0' });
    assert.ok(existsSync(join(cacheDir, 'models--public--model', 'refs', 'v1.0')));
    assert.equal(m.files.length, 9);
  });

  test('a pickle-only repo is refused: never loaded, safetensors alternative named, nothing fetched', async () => {
    const before = hub.dataRequests().length;
    const e = await failure(get('old/pickle-only'));
    assert.equal(e.code, 'unsupported');
    assert.match(e.message, /pytorch_model\.bin/);
    assert.match(e.message, /never loaded/);
    assert.match(e.message, /arbitrary code/);
    assert.match(e.message, /refs\/pr\//);
    assert.match(e.message, /safetensors/);
    assert.equal(hub.dataRequests().length, before);
    const e2 = await failure(get('odd/no-weights'));
    assert.equal(e2.code, 'unsupported');
    assert.match(e2.message, /no \*\.safetensors/);
  });

  test('a malicious or inconsistent index is refused', async () => {
    const e = await failure(get('bad/index'));
    assert.equal(e.code, 'unsupported');
    assert.match(e.message, /invalid shard/);
    const e2 = await failure(get('bad/missing-shard'));
    assert.equal(e2.code, 'not-found');
    assert.match(e2.message, /model-00001-of-00001\.safetensors/);
  });

  test('invalid repo ids and revisions are refused before any request', async () => {
    const before = hub.requests.length;
    for (const bad of ['../etc', 'a/b/c', 'org/..', '', 'with space/x']) {
      const e = await failure(get(bad));
      assert.equal(e.code, 'not-found', bad);
    }
    const e = await failure(get('public/model', { revision: '../../x' }));
    assert.equal(e.code, 'not-found');
    assert.equal(hub.requests.length, before);
  });

  test('unreachable endpoint with nothing cached: network', async () => {
    const e = await failure(
      downloadModel('public/other', { endpoint: 'http://127.0.0.1:9', cacheDir, token: '', retries: 0 }),
    );
    assert.equal(e.code, 'network');
    assert.match(e.message, /127\.0\.0\.1:9/);
  });

  test('a malformed JSON answer: network, one line (the parser quotes the body, line breaks and all)', async () => {
    // found by the hub fuzz target: the model info answered with a line break and a NUL before the JSON
    const garbled = (async (url: string | URL | Request, init?: RequestInit) => {
      const res = await fetch(url, init);
      if (!String(url).includes('/api/models/')) return res;
      const body = `\n\u0000${await res.text()}`;
      return new Response(body, { status: res.status, headers: res.headers });
    }) as typeof fetch;
    const e = await failure(
      downloadModel('public/model', { endpoint: hub.url, cacheDir, token: '', retries: 0, fetch: garbled }),
    );
    assert.equal(e.code, 'network');
    assert.match(e.message, /malformed answer .*\\u000a\\u0000/);
  });

  test('a listing that names a file by something other than a valid path: network, one line, nothing fetched', async () => {
    // found by the hub fuzz target: a path wrapped in an array passed the sub-folder filter and crashed selectFiles
    for (const [path, shown] of [
      [['config.json'], '["config.json"]'],
      [0, '0'],
      ['..', '".."'],
    ] as const) {
      const garbled = (async (url: string | URL | Request, init?: RequestInit) => {
        const res = await fetch(url, init);
        if (!String(url).includes('/tree/')) return res;
        const list = (await res.json()) as { path: unknown }[];
        list[0].path = path;
        return new Response(JSON.stringify(list), {
          status: res.status,
          headers: { 'content-type': 'application/json' },
        });
      }) as typeof fetch;
      const e = await failure(
        downloadModel('public/model', { endpoint: hub.url, cacheDir, token: '', retries: 0, fetch: garbled }),
      );
      assert.equal(e.code, 'network');
      assert.ok(e.message.endsWith(`the listing of public/model names a file ${shown}, not a valid path`), e.message);
    }
  });

  test('an already-aborted signal: cancelled, no request', async () => {
    const before = hub.requests.length;
    const ac = new AbortController();
    ac.abort();
    const e = await failure(downloadModel('public/model', { endpoint: hub.url, cacheDir, signal: ac.signal }));
    assert.equal(e.code, 'cancelled');
    assert.equal(hub.requests.length, before);
  });

  test('a cache folder that cannot be created: io, naming the path, no partial snapshot', async () => {
    const blocker = join(tmp.dir, 'a-file');
    writeFileSync(blocker, 'not a folder');
    const bad = join(blocker, 'hub');
    const e = await failure(downloadModel('public/model', { endpoint: hub.url, cacheDir: bad, token: '' }));
    assert.equal(e.code, 'io');
    assert.ok(e.message.includes(blocker), e.message);
    assert.match(e.message, /ENOTDIR/);
  });

  test('HTTP 503/429 on a file are retried; a file the listing names but resolve lacks is not-found', async () => {
    const tmp2 = tempDir();
    const flaky = await startHubServer({
      repos: { 'x/flaky': { files: { 'config.json': '{}', 'model.safetensors': Buffer.alloc(5000, 2) } } },
      failWith: { 'model.safetensors': [503, 429] },
    });
    try {
      const m = await downloadModel('x/flaky', { endpoint: flaky.url, cacheDir: tmp2.dir, token: '', retryDelayMs: 0 });
      assert.equal(flaky.dataRequests('model.safetensors').filter((r) => r.origin === 'hub').length, 3);
      assert.equal(m.files.length, 2);
    } finally {
      await flaky.close();
      tmp2.cleanup();
    }
    const tmp3 = tempDir();
    const gone = await startHubServer({
      repos: { 'x/gone': { files: { 'config.json': '{}', 'model.safetensors': Buffer.alloc(10, 2) } } },
      failWith: { 'model.safetensors': [404] },
    });
    try {
      const e = await failure(downloadModel('x/gone', { endpoint: gone.url, cacheDir: tmp3.dir, token: '' }));
      assert.equal(e.code, 'not-found');
      assert.equal(e.status, 404);
      assert.match(e.message, /file not found \(model\.safetensors\)/);
    } finally {
      await gone.close();
      tmp3.cleanup();
    }
  });
});
