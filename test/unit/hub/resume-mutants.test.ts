// fetchBlob (hub/resume.ts) driven directly through a scripted fetch: no server, no child process, so that the
// mutation group hub-resume runs in seconds per mutant. Each case asserts what a user gets: the blob in the cache
// (or none), the Range asked, the error code and message, the number of tries and the backoff between them.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterEach, beforeEach, test } from 'node:test';
import type { RemoteFile } from '../../../server/src/hub/api';
import { RepoCache } from '../../../server/src/hub/cache';
import type { HubError } from '../../../server/src/hub/errors';
import type { Ctx } from '../../../server/src/hub/http';
import { fetchBlob } from '../../../server/src/hub/resume';
import { bytes, tempDir } from './fixtures';

const COMMIT = 'c'.repeat(40);
const DATA = bytes(1000, 'resume-mutants');
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const gitSha1 = (b: Uint8Array) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

interface Call {
  url: string;
  range: string | null;
}
type Answer = (call: Call, n: number) => Response;

/** A Response whose body arrives in the given chunks. */
function body(chunks: Uint8Array[], status = 200, headers: Record<string, string> = {}): Response {
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (const ch of chunks) c.enqueue(ch);
      c.close();
    },
  });
  return new Response(stream, { status, headers });
}
/** The whole file from `from` on: 200 from zero, 206 with its Content-Range otherwise. */
function from(data: Uint8Array, start: number, chunk = 300): Response {
  const chunks: Uint8Array[] = [];
  for (let o = start; o < data.length; o += chunk) chunks.push(data.subarray(o, Math.min(o + chunk, data.length)));
  if (start === 0) return body(chunks);
  return body(chunks, 206, { 'content-range': `bytes ${start}-${data.length - 1}/${data.length}` });
}
/** Answers as a Range-honouring server does. */
const honest =
  (data: Uint8Array): Answer =>
  (c) =>
    from(data, c.range ? Number(/^bytes=(\d+)-$/.exec(c.range)?.[1]) : 0);

let tmp: { dir: string; cleanup: () => void };
let delays: number[];
const realSetTimeout = globalThis.setTimeout;
beforeEach(() => {
  tmp = tempDir('apl-resume-mut-');
  delays = [];
  // The backoff sleeps are recorded and cut to nothing (the schedule is what is asserted, never the time taken).
  globalThis.setTimeout = ((fn: () => void, ms?: number) => {
    delays.push(ms ?? 0);
    return realSetTimeout(fn, 0);
  }) as typeof setTimeout;
});
afterEach(() => {
  globalThis.setTimeout = realSetTimeout;
  tmp.cleanup();
});

function setup(
  answers: Answer[] | Answer,
  opts: { retries?: number; retryDelayMs?: number; signal?: AbortSignal } = {},
) {
  const calls: Call[] = [];
  const ctx: Ctx = {
    repo: 'org/m',
    endpoint: 'http://hub.test',
    origin: 'http://hub.test',
    token: '',
    retries: opts.retries ?? 3,
    retryDelayMs: opts.retryDelayMs ?? 1,
    stallMs: 0, // no stall timer among the backoff sleeps these tests record (resume.test.ts covers stalls)
    signal: opts.signal,
    fetch: (async (input: string | URL | Request, init?: RequestInit) => {
      const call = { url: String(input), range: new Headers(init?.headers).get('range') };
      calls.push(call);
      const n = calls.length - 1;
      const a = typeof answers === 'function' ? answers : answers[Math.min(n, answers.length - 1)];
      return a(call, n);
    }) as typeof fetch,
  };
  const cache = new RepoCache(tmp.dir, 'org/m');
  return { ctx, cache, calls };
}

const lfs = (data: Uint8Array, path = 'model.safetensors'): RemoteFile => ({
  path,
  size: data.length,
  etag: sha256(data),
  lfs: true,
  hash: 'sha256',
});

async function run(s: ReturnType<typeof setup>, f: RemoteFile) {
  const progress: number[] = [];
  await fetchBlob(s.ctx, s.cache, COMMIT, f, (n) => progress.push(n));
  return progress;
}
const blobOf = (s: ReturnType<typeof setup>, f: RemoteFile) => readFileSync(s.cache.blobPath(f.etag));
function part(s: ReturnType<typeof setup>, f: RemoteFile, data: Uint8Array): void {
  mkdirSync(dirname(s.cache.incompletePath(f.etag)), { recursive: true });
  writeFileSync(s.cache.incompletePath(f.etag), data);
}
async function rejects(p: Promise<unknown>, code: string, message: RegExp): Promise<HubError> {
  let got: HubError | undefined;
  await assert.rejects(p, (e: HubError) => {
    got = e;
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  });
  return got as HubError;
}

test('a fresh download: one request without Range to the resolve URL (each path segment encoded), blob verified', async () => {
  const f = lfs(DATA, 'sub dir/we#ights.bin');
  const s = setup(honest(DATA));
  const progress = await run(s, f);
  assert.deepEqual(s.calls, [{ url: `http://hub.test/org/m/resolve/${COMMIT}/sub%20dir/we%23ights.bin`, range: null }]);
  assert.deepEqual(blobOf(s, f), DATA);
  assert.ok(!existsSync(s.cache.incompletePath(f.etag)), 'no .incomplete left');
  assert.deepEqual(progress, [0, 300, 600, 900, 1000]);
  assert.deepEqual(delays, [], 'no backoff');
});

test('a git blob (non-LFS file) is checked by its git sha1, and one that does not match is refused', async () => {
  const ok: RemoteFile = { path: 'config.json', size: DATA.length, etag: gitSha1(DATA), lfs: false, hash: 'git-sha1' };
  const s = setup(honest(DATA));
  await run(s, ok);
  assert.deepEqual(blobOf(s, ok), DATA);
  const bad = { ...ok, etag: sha256(DATA) }; // the right data under another hash: never accepted
  const s2 = setup(honest(DATA));
  await rejects(run(s2, bad), 'network', /does not match the Hub's hash/);
});

test('a kept .incomplete is resumed with Range from its size; progress starts there; the result verifies', async () => {
  const f = lfs(DATA);
  const s = setup(honest(DATA));
  part(s, f, DATA.subarray(0, 400));
  const progress = await run(s, f);
  assert.deepEqual(
    s.calls.map((c) => c.range),
    ['bytes=400-'],
  );
  assert.deepEqual(progress, [400, 700, 1000]);
  assert.deepEqual(blobOf(s, f), DATA);
});

test('a kept .incomplete already complete is verified without any request', async () => {
  const f = lfs(DATA);
  const s = setup(() => assert.fail('no request expected'));
  part(s, f, DATA);
  assert.deepEqual(await run(s, f), [1000]);
  assert.deepEqual(blobOf(s, f), DATA);
});

test('a kept .incomplete longer than the file is discarded: the download starts from zero', async () => {
  const f = lfs(DATA);
  const s = setup(honest(DATA));
  part(s, f, Buffer.concat([DATA, Buffer.from('extra')]));
  const progress = await run(s, f);
  assert.deepEqual(
    s.calls.map((c) => c.range),
    [null],
  );
  assert.equal(progress[0], 0);
  assert.deepEqual(blobOf(s, f), DATA);
});

test('416 to a Range request: the partial data is dropped and the file restarts from zero after one backoff', async () => {
  const f = lfs(DATA);
  const s = setup([() => new Response(null, { status: 416 }), honest(DATA)]);
  part(s, f, DATA.subarray(0, 500));
  await run(s, f);
  assert.deepEqual(
    s.calls.map((c) => c.range),
    ['bytes=500-', null],
  );
  assert.deepEqual(delays, [1]);
  assert.deepEqual(blobOf(s, f), DATA);
});

test('416 on every try: "download failed after N tries" names the refused range', async () => {
  const f = lfs(DATA);
  const s = setup(() => new Response(null, { status: 416 }), { retries: 2 });
  part(s, f, DATA.subarray(0, 500));
  await rejects(
    run(s, f),
    'network',
    /^org\/m\/model\.safetensors: download failed after 3 tries: model\.safetensors: the server refused the range bytes=0-$/,
  );
  assert.equal(s.calls.length, 3);
});

/**
 * Half the blob cached, then a 206 for bytes=500- whose Content-Range is `cr` (none when ''), then an honest 200:
 * the 206 is not trusted, so the download restarts from zero and the blob is whole.
 */
async function restartsFromZero(cr: string): Promise<void> {
  const f = lfs(DATA);
  const s = setup([() => body([DATA.subarray(500)], 206, cr ? { 'content-range': cr } : {}), honest(DATA)]);
  part(s, f, DATA.subarray(0, 500));
  await run(s, f);
  assert.deepEqual(
    s.calls.map((c) => c.range),
    ['bytes=500-', null],
    cr,
  );
  assert.deepEqual(blobOf(s, f), DATA, cr);
  tmp.cleanup();
  tmp = tempDir('apl-resume-mut-');
}

test('a 206 that does not start where asked (or has no Content-Range) is not appended: restart from zero', async () => {
  for (const cr of ['bytes 0-999/1000', 'bytes 400-999', '', 'bytes 400-999/1000 ']) await restartsFromZero(cr);
});

test('a 206 with an unknown total (bytes 500-999/*) is appended', async () => {
  const f = lfs(DATA);
  const s = setup(() => body([DATA.subarray(500)], 206, { 'content-range': 'bytes 500-999/*' }));
  part(s, f, DATA.subarray(0, 500));
  await run(s, f);
  assert.equal(s.calls.length, 1);
  assert.deepEqual(blobOf(s, f), DATA);
});

test('a 206 every time at the wrong offset: the error says unexpected Content-Range', async () => {
  const f = lfs(DATA);
  const s = setup(() => body([DATA], 206, { 'content-range': 'bytes 7-999/1000' }), { retries: 1 });
  await rejects(run(s, f), 'network', /download failed after 2 tries: .*unexpected Content-Range bytes 7-999\/1000$/);
});

test('200 to a Range request: the whole file is taken from zero (progress goes back to 0), not appended', async () => {
  const f = lfs(DATA);
  const s = setup(() => from(DATA, 0, 1000));
  part(s, f, DATA.subarray(0, 300));
  const progress = await run(s, f);
  assert.deepEqual(s.calls.length, 1);
  assert.deepEqual(progress, [300, 0, 1000]);
  assert.deepEqual(blobOf(s, f), DATA);
});

test('a non-retryable status (404) fails at once with the Hub error, no retry, the partial data kept', async () => {
  const f = lfs(DATA);
  const s = setup(() => new Response('nope', { status: 404, headers: { 'x-error-code': 'EntryNotFound' } }));
  part(s, f, DATA.subarray(0, 100));
  await rejects(run(s, f), 'not-found', /file not found \(model\.safetensors\)/);
  assert.equal(s.calls.length, 1);
  assert.deepEqual(delays, []);
  assert.equal(readFileSync(s.cache.incompletePath(f.etag)).length, 100);
});

test('retryable statuses (503, 429, 408) are retried with exponential backoff capped at 10 s', async () => {
  const f = lfs(DATA);
  const statuses = [503, 429, 408, 500, 502];
  const s = setup([...statuses.map((st) => () => new Response(null, { status: st })), honest(DATA)], {
    retries: 5,
    retryDelayMs: 3000,
  });
  await run(s, f);
  assert.equal(s.calls.length, 6);
  assert.deepEqual(delays, [3000, 6000, 10_000, 10_000, 10_000]);
  assert.deepEqual(blobOf(s, f), DATA);
});

test('the backoff doubles from retryDelayMs: 100, 200, 400, 800 ms, then "failed after 5 tries" with the status', async () => {
  const f = lfs(DATA);
  const s = setup(() => new Response(null, { status: 503 }), { retries: 4, retryDelayMs: 100 });
  await rejects(run(s, f), 'network', /^org\/m\/model\.safetensors: download failed after 5 tries: .*HTTP 503/);
  assert.deepEqual(delays, [100, 200, 400, 800]);
  assert.equal(s.calls.length, 5);
});

test('a network error (fetch rejects) is retried; its cause is named when the tries run out', async () => {
  const f = lfs(DATA);
  const boom = () => {
    throw new TypeError('fetch failed', { cause: { code: 'ECONNRESET' } });
  };
  const s = setup([boom, honest(DATA)]);
  await run(s, f);
  assert.equal(s.calls.length, 2);
  const s2 = setup(boom, { retries: 0 });
  await rejects(run(s2, f), 'network', /download failed after 1 tries: fetch failed \(ECONNRESET\)$/);
});

test('a connection that ends early keeps what came and resumes from there', async () => {
  const f = lfs(DATA);
  const s = setup([() => body([DATA.subarray(0, 600)]), honest(DATA)]);
  await run(s, f);
  assert.deepEqual(
    s.calls.map((c) => c.range),
    [null, 'bytes=600-'],
  );
  assert.deepEqual(blobOf(s, f), DATA);
  const s2 = setup(() => body([DATA.subarray(0, 600)]), { retries: 0 });
  await rejects(run(s2, f), 'network', /connection ended after 600 of 1000 bytes$/);
  assert.equal(readFileSync(s2.cache.incompletePath(f.etag)).length, 600, 'the bytes received are kept');
});

test('a server that sends more than the listing says: the data is dropped and the file restarts from zero', async () => {
  const f = lfs(DATA);
  const extra = Buffer.concat([DATA, Buffer.from('!')]);
  const s = setup([() => body([extra.subarray(0, 900), extra.subarray(900)]), honest(DATA)]);
  await run(s, f);
  assert.deepEqual(
    s.calls.map((c) => c.range),
    [null, null],
  );
  assert.deepEqual(blobOf(s, f), DATA);
  const s2 = setup(() => body([extra.subarray(0, 900), extra.subarray(900)]), { retries: 0 });
  await rejects(run(s2, f), 'network', /sent more than the 1000 bytes the listing gives$/);
  assert.equal(readFileSync(s2.cache.incompletePath(f.etag)).length, 0);
});

test('exactly the size in one chunk is accepted (the bound is "more than", not "as much as")', async () => {
  const f = lfs(DATA);
  const s = setup(() => body([DATA]));
  await run(s, f);
  assert.equal(s.calls.length, 1);
  assert.deepEqual(blobOf(s, f), DATA);
});

test('data that does not match the hash: one retry from scratch, then a network error; never a blob', async () => {
  const bad = Buffer.from(DATA);
  bad[10] ^= 1;
  const f = lfs(DATA);
  const s = setup(() => from(bad, 0));
  await rejects(
    run(s, f),
    'network',
    new RegExp(
      `^org/m/model\\.safetensors: the downloaded data does not match the Hub's hash \\(${f.etag}, got ${sha256(bad)}\\)$`,
    ),
  );
  assert.deepEqual(
    s.calls.map((c) => c.range),
    [null, null],
  );
  assert.deepEqual(delays, [], 'a hash mismatch is not a network failure: no backoff');
  assert.ok(!existsSync(s.cache.blobPath(f.etag)));
  assert.ok(!existsSync(s.cache.incompletePath(f.etag)));
  // A mismatch once, then good data: accepted.
  const s2 = setup([() => from(bad, 0), honest(DATA)]);
  await run(s2, f);
  assert.deepEqual(blobOf(s2, f), DATA);
});

test('a resumed file whose kept prefix is wrong fails the hash, then downloads whole', async () => {
  const f = lfs(DATA);
  const s = setup(honest(DATA));
  part(s, f, Buffer.alloc(400, 7));
  await run(s, f);
  assert.deepEqual(
    s.calls.map((c) => c.range),
    ['bytes=400-', null],
  );
  assert.deepEqual(blobOf(s, f), DATA);
});

test('a file checked by size alone (hash none) is accepted whatever its content', async () => {
  const f: RemoteFile = { path: 'x.bin', size: DATA.length, etag: 'xet-id-1', lfs: true, hash: 'none' };
  const s = setup(() => from(DATA, 0));
  await run(s, f);
  assert.deepEqual(blobOf(s, f), DATA);
});

test('an empty file needs no request and becomes an empty blob (its hash checked)', async () => {
  const empty = new Uint8Array(0);
  const f = lfs(empty, 'empty.txt');
  const s = setup(() => assert.fail('no request expected'));
  assert.deepEqual(await run(s, f), [0]);
  assert.equal(blobOf(s, f).length, 0);
  const wrong = { ...f, etag: sha256(Buffer.from('x')) };
  const s2 = setup(() => assert.fail('no request expected'));
  await rejects(run(s2, wrong), 'network', /does not match the Hub's hash/);
});

test('a file-system error (a folder where the blob goes) fails at once with code io naming it, no retry', async () => {
  const f = lfs(DATA);
  const s = setup(honest(DATA));
  mkdirSync(`${s.cache.blobPath(f.etag)}/in-the-way`, { recursive: true });
  await rejects(run(s, f), 'io', new RegExp(`${f.etag}`));
  assert.equal(s.calls.length, 1);
  assert.deepEqual(delays, []);
});

test('cancelled while waiting to retry: code cancelled, at once', async () => {
  const f = lfs(DATA);
  const ac = new AbortController();
  const s = setup(
    () => {
      ac.abort();
      return new Response(null, { status: 503 });
    },
    { signal: ac.signal, retries: 5 },
  );
  await rejects(run(s, f), 'cancelled', /^org\/m: download cancelled$/);
  assert.equal(s.calls.length, 1);
});

test('cancelled mid-body: code cancelled, the bytes received kept in the .incomplete', async () => {
  const f = lfs(DATA);
  const ac = new AbortController();
  const s = setup(
    () =>
      new Response(
        new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(DATA.subarray(0, 300));
          },
          pull() {
            ac.abort();
            throw new DOMException('aborted', 'AbortError');
          },
        }),
      ),
    { signal: ac.signal },
  );
  await rejects(run(s, f), 'cancelled', /download cancelled/);
  assert.equal(s.calls.length, 1);
  assert.equal(readFileSync(s.cache.incompletePath(f.etag)).length, 300);
});

test('a Content-Range with text before or after the expected form is not trusted: restart from zero', async () => {
  for (const cr of ['xbytes 500-999/1000', 'bytes 500-999/1000x']) await restartsFromZero(cr);
});

test('an answer without a body: "empty answer" once the tries run out', async () => {
  const f = lfs(DATA);
  const s = setup(() => new Response(null, { status: 200 }), { retries: 0 });
  await rejects(run(s, f), 'network', /download failed after 1 tries: model\.safetensors: empty answer$/);
});

test('a socket error (syscall, no path) is retried, not reported as a file-system error; so is a bare throw', async () => {
  const f = lfs(DATA);
  const sock = () => {
    throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', syscall: 'read' });
  };
  const s = setup([sock, honest(DATA)]);
  await run(s, f);
  assert.equal(s.calls.length, 2);
  const s2 = setup(
    () => {
      throw null;
    },
    { retries: 0 },
  );
  await rejects(run(s2, f), 'network', /download failed after 1 tries: null$/);
});
