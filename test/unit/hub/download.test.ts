// downloadModel against the loopback Hub: listing, selection, cache layout, token placement, second run from cache.
import assert from 'node:assert/strict';
import { lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { downloadModel, type HubProgress } from '../../../server/src/hub';
import { gitBlobOid, type HubServer, sha256, startHubServer } from '../../helpers/hub-server';
import { SHARDED_NEEDED, shardedRepo, TOKEN, tempDir } from './fixtures';

const REPO = 'tiny-org/tiny-llama';

describe('downloadModel from the loopback Hub', () => {
  let hub: HubServer;
  const files = shardedRepo();
  const tmp = tempDir();
  const cacheDir = join(tmp.dir, 'hub');

  before(async () => {
    hub = await startHubServer({ repos: { [REPO]: { files } }, token: TOKEN, pageSize: 3 });
  });
  after(async () => {
    await hub.close();
    tmp.cleanup();
  });

  test('first run downloads exactly the needed files into the HF cache layout', async () => {
    const progress: HubProgress[] = [];
    const m = await downloadModel(REPO, {
      endpoint: hub.url,
      token: TOKEN,
      cacheDir,
      onProgress: (p) => progress.push(p),
    });
    assert.deepEqual(m.files, SHARDED_NEEDED);
    assert.equal(m.repo, REPO);
    assert.match(m.revision, /^[0-9a-f]{40}$/);
    assert.equal(m.fromCache, false);
    const total = SHARDED_NEEDED.reduce((a, f) => a + Buffer.from(files[f]).length, 0);
    assert.equal(m.bytes, total);

    // The listing was paged (page size 3) and the Link header followed to the end.
    const treeCalls = hub.requests.filter((r) => r.path.includes('/tree/'));
    assert.ok(treeCalls.length >= 4, `expected several tree pages, got ${treeCalls.length}`);
    assert.ok(treeCalls.slice(1).every((r) => r.path.includes('cursor=')));

    // Layout: snapshots/<commit>/<file> are relative links to blobs named by sha256 (LFS) or the git oid.
    const folder = join(cacheDir, 'models--tiny-org--tiny-llama');
    assert.equal(m.dir, join(folder, 'snapshots', m.revision));
    assert.equal(readFileSync(join(folder, 'refs', 'main'), 'utf8'), m.revision);
    for (const f of SHARDED_NEEDED) {
      const p = join(m.dir, f);
      assert.ok(lstatSync(p).isSymbolicLink(), `${f} is a link`);
      const target = readlinkSync(p);
      assert.ok(target.startsWith('../../blobs/'), `${f} links relatively: ${target}`);
      const data = Buffer.from(files[f]);
      const lfs = f.endsWith('.safetensors') || f.endsWith('.model');
      assert.equal(target, `../../blobs/${lfs ? sha256(data) : gitBlobOid(data)}`);
      assert.deepEqual(readFileSync(realpathSync(p)), data, `${f} content`);
    }
    // Nothing unneeded, nothing left incomplete.
    assert.deepEqual(readdirSync(m.dir).sort(), SHARDED_NEEDED);
    const blobs = readdirSync(join(folder, 'blobs'));
    // Files with equal content (tokenizer_config.json and special_tokens_map.json are both "{}") share one blob.
    assert.equal(blobs.length, new Set(SHARDED_NEEDED.map((f) => readlinkSync(join(m.dir, f)))).size);
    assert.equal(blobs.length, SHARDED_NEEDED.length - 1);
    assert.ok(blobs.every((b) => !b.endsWith('.incomplete')));
    for (const skipped of ['pytorch_model.bin', 'consolidated.safetensors', 'README.md', 'onnx/model.onnx']) {
      assert.equal(hub.dataRequests(skipped).length, 0, `${skipped} not requested`);
    }

    // Progress: monotonic, ends at the total with every file done.
    assert.ok(progress.length > 0);
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i].bytesDone >= progress[i - 1].bytesDone);
    const last = progress[progress.length - 1];
    assert.equal(last.bytesDone, total);
    assert.equal(last.bytesTotal, total);
    assert.equal(last.filesDone, SHARDED_NEEDED.length);
    assert.equal(last.filesTotal, SHARDED_NEEDED.length);
  });

  test('the token goes to the Hub origin only, never to the LFS origin', () => {
    const lfsReqs = hub.requests.filter((r) => r.origin === 'lfs');
    assert.ok(lfsReqs.length >= 3, 'weights came from the LFS origin');
    for (const r of lfsReqs) assert.equal(r.headers.authorization, undefined, `no token sent to ${r.path}`);
    const hubReqs = hub.requests.filter((r) => r.origin === 'hub');
    for (const r of hubReqs) assert.equal(r.headers.authorization, `Bearer ${TOKEN}`, `token sent to ${r.path}`);
    // LFS files were fetched through a redirect from resolve.
    const resolves = hub.requests.filter((r) => r.path.includes('/resolve/') && r.path.endsWith('.safetensors'));
    assert.equal(resolves.length, 2);
  });

  test('second run is served from the cache with no data requests', async () => {
    const before = hub.requests.length;
    const m = await downloadModel(REPO, { endpoint: hub.url, token: TOKEN, cacheDir });
    assert.equal(m.fromCache, true);
    assert.deepEqual(m.files, SHARDED_NEEDED);
    const newReqs = hub.requests.slice(before);
    assert.equal(newReqs.filter((r) => r.origin === 'lfs' || r.path.includes('/resolve/')).length, 0);
    assert.ok(
      newReqs.every((r) => r.path.startsWith('/api/')),
      'only metadata calls',
    );
  });

  test('offline (HF_HUB_OFFLINE or unreachable Hub) resolves refs/ and the snapshot with no request', async () => {
    const before = hub.requests.length;
    const m = await downloadModel(REPO, { endpoint: hub.url, token: TOKEN, cacheDir, offline: true });
    assert.equal(hub.requests.length, before);
    assert.deepEqual(m.files, SHARDED_NEEDED);
    assert.equal(m.fromCache, true);
    // An unreachable endpoint falls back to the cache too.
    const m2 = await downloadModel(REPO, { endpoint: 'http://127.0.0.1:9', token: TOKEN, cacheDir, retries: 0 });
    assert.equal(m2.revision, m.revision);
    // But not for a revision that was never downloaded.
    await assert.rejects(
      downloadModel(REPO, { cacheDir, offline: true, revision: 'v2' }),
      (e: Error & { code?: string }) => e.code === 'network' && /not in the cache/.test(e.message),
    );
  });

  test('a commit id revision needs no model-info call', async () => {
    const first = await downloadModel(REPO, { endpoint: hub.url, token: TOKEN, cacheDir, offline: true });
    const before = hub.requests.length;
    const m = await downloadModel(REPO, { endpoint: hub.url, token: TOKEN, cacheDir, revision: first.revision });
    assert.equal(m.revision, first.revision);
    const newReqs = hub.requests.slice(before);
    assert.equal(newReqs.filter((r) => r.path.includes('/revision/')).length, 0);
    assert.ok(newReqs.every((r) => r.path.includes('/tree/')));
  });

  test('a blob already in the cache is linked, not downloaded again, for a new commit', async () => {
    const files2 = { ...files, 'config.json': JSON.stringify({ architectures: ['LlamaForCausalLM'], v: 2 }) };
    const hub2 = await startHubServer({ repos: { [REPO]: { files: files2, commit: 'c'.repeat(40) } } });
    try {
      const m = await downloadModel(REPO, { endpoint: hub2.url, token: '', cacheDir });
      assert.equal(m.revision, 'c'.repeat(40));
      assert.equal(m.fromCache, false);
      const data = hub2.dataRequests();
      assert.deepEqual(
        data.map((r) => r.path.split('/').pop()),
        ['config.json'],
        'only the changed file was fetched',
      );
      assert.equal(readFileSync(join(m.dir, 'config.json'), 'utf8'), files2['config.json']);
      assert.ok(
        hub2.requests.every((r) => r.headers.authorization === undefined),
        "token '' sends none",
      );
    } finally {
      await hub2.close();
    }
  });
});

describe('repo shapes', () => {
  test('a single model.safetensors repo, no tokenizer.model', async () => {
    const tmp = tempDir();
    const hub = await startHubServer({
      repos: {
        solo: {
          files: {
            'config.json': '{}',
            'model.safetensors': Buffer.alloc(1000, 7),
            'other.safetensors': Buffer.alloc(10, 1),
          },
        },
      },
    });
    try {
      const m = await downloadModel('solo', { endpoint: hub.url, token: '', cacheDir: tmp.dir });
      assert.deepEqual(m.files, ['config.json', 'model.safetensors']);
      assert.ok(
        lstatSync(join(tmp.dir, 'models--solo', 'snapshots', m.revision, 'model.safetensors')).isSymbolicLink(),
      );
    } finally {
      await hub.close();
      tmp.cleanup();
    }
  });

  test('progress is throttled: a file gives its first and last update, not one per network chunk', async () => {
    const tmp = tempDir();
    const big = Buffer.alloc(4 << 20, 9);
    const hub = await startHubServer({
      repos: { 'big/one': { files: { 'config.json': '{}', 'model.safetensors': big } } },
    });
    try {
      const seen: HubProgress[] = [];
      await downloadModel('big/one', {
        endpoint: hub.url,
        token: '',
        cacheDir: tmp.dir,
        progressIntervalMs: 60_000,
        onProgress: (p) => seen.push(p),
      });
      const forShard = seen.filter((p) => p.file === 'model.safetensors');
      assert.deepEqual(
        forShard.map((p) => p.fileBytesDone),
        [0, big.length],
      );
      assert.equal(seen[seen.length - 1].bytesDone, big.length + 2);
    } finally {
      await hub.close();
      tmp.cleanup();
    }
  });
});
