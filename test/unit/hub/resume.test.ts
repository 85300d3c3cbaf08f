// Interrupted downloads: a cut connection resumed with Range, a server that ignores Range, an abort mid-file, and a
// process killed mid-file. The cache never holds a blob with wrong content nor a link to an incomplete blob.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { downloadModel, type HubOptions, type HubProgress } from '../../../server/src/hub';
import { gitBlobOid, type HubServer, type HubServerOptions, sha256, startHubServer } from '../../helpers/hub-server';
import { bytes, tempDir } from './fixtures';

const REPO = 'org/resumable';
const SHARD = 'model.safetensors';
const files = () => ({
  'config.json': '{"architectures":["LlamaForCausalLM"]}',
  'tokenizer.json': JSON.stringify({ vocab: bytes(40_000, 'vocab').toString('base64') }),
  [SHARD]: bytes(300_000, 'weights'),
});

/** Every blob's name is the hash of its content; every snapshot entry leads to a complete blob. */
function assertCacheSound(cacheDir: string, repo: string): void {
  const folder = join(cacheDir, `models--${repo.replace('/', '--')}`);
  const blobDir = join(folder, 'blobs');
  for (const b of existsSync(blobDir) ? readdirSync(blobDir) : []) {
    if (b.endsWith('.incomplete')) continue;
    const data = readFileSync(join(blobDir, b));
    const h = b.length === 64 ? createHash('sha256').update(data).digest('hex') : gitBlobOid(data);
    assert.equal(h, b, `blob ${b} holds content with hash ${h}`);
  }
  const snaps = join(folder, 'snapshots');
  for (const c of existsSync(snaps) ? readdirSync(snaps) : []) {
    for (const f of readdirSync(join(snaps, c))) {
      const p = join(snaps, c, f);
      assert.ok(lstatSync(p).isSymbolicLink(), `${f} is a link`);
      const real = realpathSync(p);
      assert.ok(!real.endsWith('.incomplete') && statSync(real).isFile(), `${f} leads to a complete blob`);
    }
  }
}

/** Waits (bounded) for a predicate over values pushed by a callback. */
function waitFor<T>(subscribe: (cb: (v: T) => void) => void, pred: (v: T) => boolean, ms = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`condition not met within ${ms} ms`)), ms);
    subscribe((v) => {
      if (pred(v)) {
        clearTimeout(t);
        resolve(v);
      }
    });
  });
}

type Files = Record<string, Buffer | string>;

interface HubRun {
  hub: HubServer;
  tmp: { dir: string };
  f: Files;
  /** downloadModel of REPO from this hub into this cache (no token), with `extra`. */
  download: (extra?: HubOptions) => ReturnType<typeof downloadModel>;
  /** The file as downloaded into the snapshot `dir` has the content served (by its SHA-256). */
  sameFile: (dir: string, file: string) => void;
}

/**
 * A hub serving REPO's files `f` (files() by default; with `xetOnly`) under `opts`, and a fresh cache folder: `body`
 * runs with them, and both are closed after it, whatever it throws.
 */
async function withHub(
  opts: Omit<HubServerOptions, 'repos'> & { f?: Files; xetOnly?: string[] },
  body: (h: HubRun) => Promise<void>,
): Promise<void> {
  const { f: given, xetOnly, ...rest } = opts;
  const f: Files = given ?? files();
  const tmp = tempDir();
  const hub = await startHubServer({ repos: { [REPO]: { files: f, ...(xetOnly ? { xetOnly } : {}) } }, ...rest });
  try {
    await body({
      hub,
      tmp,
      f,
      download: (extra = {}) => downloadModel(REPO, { endpoint: hub.url, token: '', cacheDir: tmp.dir, ...extra }),
      sameFile: (dir, file) => assert.equal(sha256(readFileSync(join(dir, file))), sha256(f[file])),
    });
  } finally {
    await hub.close();
    tmp.cleanup();
  }
}

describe('interrupted downloads', () => {
  test('a server that never answers a data request (no headers) is given up after stallMs and asked again', {
    timeout: 30_000,
  }, async () => {
    await withHub({ silentOnce: [SHARD] }, async ({ hub, f, download }) => {
      const m = await download({ retryDelayMs: 0, stallMs: 300 });
      const lfs = hub.dataRequests(SHARD).filter((r) => r.origin === 'lfs');
      assert.deepEqual(
        lfs.map((r) => r.headers.range),
        [undefined, undefined],
        'unanswered once, then fetched whole',
      );
      assert.equal(sha256(readFileSync(realpathSync(join(m.dir, SHARD)))), sha256(f[SHARD]));
    });
  });

  test('a connection that stalls (open, no data) is dropped after stallMs and resumed from the bytes kept', {
    timeout: 30_000,
  }, async () => {
    await withHub({ stallAfterBytes: { [SHARD]: 120_000 } }, async ({ hub, f, download }) => {
      const t0 = Date.now();
      const m = await download({ retryDelayMs: 0, stallMs: 300 });
      assert.ok(Date.now() - t0 < 10_000, 'not left waiting for the server');
      const lfs = hub.dataRequests(SHARD).filter((r) => r.origin === 'lfs');
      assert.deepEqual(
        lfs.map((r) => r.headers.range),
        [undefined, 'bytes=120000-'],
        'dropped once, resumed where it stopped',
      );
      assert.equal(sha256(readFileSync(realpathSync(join(m.dir, SHARD)))), sha256(f[SHARD]));
    });
  });

  test('a connection cut mid-file is resumed with a Range request from the bytes kept; the blob verifies', async () => {
    const stallAt: Record<string, number> = { [SHARD]: 100_000, 'tokenizer.json': 10_000 };
    await withHub({ stallAfterBytes: stallAt }, async ({ hub, tmp, f, download }) => {
      // Cut each stalled connection once the client reports it holds the bytes sent so far.
      const broken = new Set<string>();
      const onProgress = (p: HubProgress) => {
        if (stallAt[p.file] !== undefined && !broken.has(p.file) && p.fileBytesDone >= stallAt[p.file]) {
          broken.add(p.file);
          hub.breakStalled(p.file);
        }
      };
      const m = await download({ retryDelayMs: 0, onProgress });
      assert.deepEqual([...broken].sort(), Object.keys(stallAt).sort());
      // LFS file: two requests to the LFS origin, the second resuming exactly where the first stopped.
      const lfs = hub.dataRequests(SHARD).filter((r) => r.origin === 'lfs');
      assert.equal(lfs.length, 2);
      assert.equal(lfs[0].headers.range, undefined);
      assert.equal(lfs[1].headers.range, 'bytes=100000-');
      // The resumed resolve went back through the Hub (a fresh redirect), carrying the Range.
      const resolves = hub.dataRequests(SHARD).filter((r) => r.origin === 'hub');
      assert.equal(resolves.length, 2);
      assert.equal(resolves[1].headers.range, 'bytes=100000-');
      // Non-LFS file served by the Hub origin itself.
      const tok = hub.dataRequests('tokenizer.json');
      assert.equal(tok.length, 2);
      assert.equal(tok[1].headers.range, 'bytes=10000-');
      const blob = realpathSync(join(m.dir, SHARD));
      assert.equal(blob.split('/').pop(), sha256(f[SHARD]));
      assert.equal(sha256(readFileSync(blob)), sha256(f[SHARD]));
      assert.equal(readFileSync(join(m.dir, 'tokenizer.json'), 'utf8'), f['tokenizer.json']);
      assertCacheSound(tmp.dir, REPO);
    });
  });

  test('connections ended abruptly mid-body (whatever the client kept) still give verified files', async () => {
    const cutAt = { [SHARD]: 100_000, 'tokenizer.json': 10_000 };
    await withHub({ cutAfterBytes: cutAt }, async ({ hub, tmp, download, sameFile }) => {
      const cuts: string[] = [];
      hub.events.on('cut', (p: string) => cuts.push(p));
      const m = await download({ retryDelayMs: 0 });
      assert.deepEqual(cuts.sort(), [SHARD, 'tokenizer.json'].sort());
      for (const [file, cut] of Object.entries(cutAt)) {
        const reqs = hub.dataRequests(file).filter((r) => r.origin === (file === SHARD ? 'lfs' : 'hub'));
        assert.equal(reqs.length, 2, file);
        const range = reqs[1].headers.range;
        if (range !== undefined) {
          const start = Number(/^bytes=(\d+)-$/.exec(range)?.[1]);
          assert.ok(start > 0 && start <= cut, `${file} resumed from ${range}`);
        }
        sameFile(m.dir, file);
      }
      assertCacheSound(tmp.dir, REPO);
    });
  });

  test('a server that answers a Range request with 200 makes the download restart, still correct', async () => {
    await withHub(
      { cutAfterBytes: { [SHARD]: 123_457 }, ignoreRange: [SHARD] },
      async ({ hub, tmp, download, sameFile }) => {
        const m = await download({ retryDelayMs: 0 });
        const lfs = hub.dataRequests(SHARD).filter((r) => r.origin === 'lfs');
        assert.equal(lfs.length, 2);
        assert.ok(lfs[1].headers.range, 'asked for a range');
        sameFile(m.dir, SHARD);
        assertCacheSound(tmp.dir, REPO);
      },
    );
  });

  test('a 206 whose Content-Range does not start where asked is not appended: the file restarts from zero', async () => {
    // A file listed by a Xet hash alone is checked by size only, so the Content-Range check is all that stands
    // between a proxy that loses the offset and a wrong file of the right size in the cache.
    const TOK = 'tokenizer.json';
    await withHub(
      { xetOnly: [TOK], stallAfterBytes: { [TOK]: 10_000 }, rangeFromZero: [TOK] },
      async ({ hub, f, download }) => {
        let broken = false;
        const onProgress = (p: HubProgress) => {
          if (p.file === TOK && !broken && p.fileBytesDone >= 10_000) {
            broken = true;
            hub.breakStalled(TOK);
          }
        };
        const m = await download({ retryDelayMs: 0, onProgress });
        assert.ok(broken);
        const reqs = hub.dataRequests(TOK);
        assert.deepEqual(
          reqs.map((r) => r.headers.range),
          [undefined, 'bytes=10000-', undefined],
          'cut, resumed (answered from offset 0), then fetched whole',
        );
        assert.equal(readFileSync(join(m.dir, TOK), 'utf8'), f[TOK]);
      },
    );
  });

  test('bounded retries: a file cut on every try fails with code network, leaving the partial data', async () => {
    await withHub({ cutAfterBytes: { [SHARD]: 1000 } }, async ({ hub, tmp, download }) => {
      // The server cuts only once; a fetch that fails every time stands in for a dead network afterwards.
      let calls = 0;
      const flaky: typeof fetch = (input, init) => {
        const u = String(input instanceof Request ? input.url : input);
        if (u.startsWith(hub.lfsUrl) && ++calls > 1) return Promise.reject(new TypeError('fetch failed'));
        return fetch(input, init);
      };
      await assert.rejects(
        download({ retryDelayMs: 0, retries: 3, fetch: flaky }),
        (e: Error & { code?: string }) =>
          e.code === 'network' && e.message.includes(SHARD) && /4 tries/.test(e.message),
      );
      assert.equal(calls, 4);
      assertCacheSound(tmp.dir, REPO);
    });
  });

  test('abort mid-file rejects promptly with cancelled and leaves the .incomplete, which the next run resumes', async () => {
    await withHub({ stallAfterBytes: { [SHARD]: 64_000 } }, async ({ hub, tmp, f, download, sameFile }) => {
      const ac = new AbortController();
      let onP: (p: HubProgress) => void = () => {};
      const run = download({ signal: ac.signal, onProgress: (p) => onP(p) });
      await waitFor<HubProgress>(
        (cb) => {
          onP = cb;
        },
        (p) => p.file === SHARD && p.fileBytesDone >= 64_000,
      );
      const t0 = Date.now();
      ac.abort();
      await assert.rejects(run, (e: Error & { code?: string }) => e.code === 'cancelled');
      assert.ok(Date.now() - t0 < 2000, 'cancelled promptly');
      const folder = join(tmp.dir, 'models--org--resumable');
      const part = join(folder, 'blobs', `${sha256(f[SHARD])}.incomplete`);
      assert.equal(statSync(part).size, 64_000);
      assert.ok(!existsSync(join(folder, 'blobs', sha256(f[SHARD]))));
      assertCacheSound(tmp.dir, REPO);

      const m = await download();
      const lfs = hub.dataRequests(SHARD).filter((r) => r.origin === 'lfs');
      assert.equal(lfs[lfs.length - 1].headers.range, 'bytes=64000-');
      sameFile(m.dir, SHARD);
      assert.ok(!existsSync(part));
      assertCacheSound(tmp.dir, REPO);
    });
  });

  test('a download process killed (SIGKILL) mid-file leaves the cache sound, and a rerun completes it', async () => {
    await withHub({ stallAfterBytes: { [SHARD]: 50_000 } }, async ({ hub, tmp, f, download, sameFile }) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', join(__dirname, 'download-child.ts'), hub.url, tmp.dir, REPO],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stderr = '';
      child.stderr.on('data', (d) => {
        stderr += d;
      });
      try {
        const lines = createInterface({ input: child.stdout });
        await waitFor<string>(
          (cb) => lines.on('line', cb),
          (line) => {
            const p = JSON.parse(line) as HubProgress;
            return p.file === SHARD && p.fileBytesDone >= 50_000;
          },
          20_000,
        ).catch((e) => {
          throw new Error(`${e.message}; child stderr: ${stderr}`);
        });
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
        assertCacheSound(tmp.dir, REPO);
        const folder = join(tmp.dir, 'models--org--resumable');
        assert.ok(existsSync(join(folder, 'blobs', `${sha256(f[SHARD])}.incomplete`)));
        assert.ok(!existsSync(join(folder, 'refs', 'main')), 'no ref for an unfinished download');
        // The killed process's lock is left behind, names a dead pid, and is taken over by the rerun.
        const lock = join(tmp.dir, '.locks', 'models--org--resumable', `${sha256(f[SHARD])}.apl-lock`);
        assert.equal(Number(readFileSync(lock, 'utf8')), child.pid);

        const m = await download();
        const lfs = hub.dataRequests(SHARD).filter((r) => r.origin === 'lfs');
        assert.match(String(lfs[lfs.length - 1].headers.range), /^bytes=[1-9]\d*-$/);
        assert.ok(!existsSync(lock), 'lock released');
        sameFile(m.dir, SHARD);
        assertCacheSound(tmp.dir, REPO);
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
    });
  });

  test('data that does not match the Hub hash never becomes a blob: one retry from scratch, then network', async () => {
    const f = { ...files(), 'tokenizer_config.json': '' }; // an empty file too
    await withHub({ f, corrupt: { [SHARD]: 1 } }, async ({ hub, tmp, download, sameFile }) => {
      const m = await download({ retryDelayMs: 0 });
      assert.equal(hub.dataRequests(SHARD).filter((r) => r.origin === 'lfs').length, 2);
      assert.equal(hub.dataRequests(SHARD).filter((r) => r.origin === 'lfs')[1].headers.range, undefined);
      sameFile(m.dir, SHARD);
      assert.equal(readFileSync(join(m.dir, 'tokenizer_config.json'), 'utf8'), '');
      assertCacheSound(tmp.dir, REPO);
    });
    await withHub({ corrupt: { [SHARD]: 5 } }, async ({ tmp, download }) => {
      await assert.rejects(
        download({ retryDelayMs: 0 }),
        (e: Error & { code?: string }) => e.code === 'network' && /does not match the Hub's hash/.test(e.message),
      );
      const blobs = join(tmp.dir, 'models--org--resumable', 'blobs');
      assert.ok(!existsSync(join(blobs, sha256(files()[SHARD]))));
      assert.ok(!existsSync(join(blobs, `${sha256(files()[SHARD])}.incomplete`)));
      assertCacheSound(tmp.dir, REPO);
    });
  });
});
