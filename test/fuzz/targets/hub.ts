// The Hub client's answers: the loopback Hub (test/helpers/hub-server.ts) serves a small sharded repository, and
// between it and downloadModel a fault layer rewrites chosen answers: status codes, malformed or edited JSON,
// bodies truncated (cleanly or by a cut connection), lying Content-Length and ETag headers, flipped bytes,
// endless redirects and redirects to nowhere. The download must end with exactly the repository's bytes in the
// snapshot, or with a HubError on one line; within the time limit; writing nothing outside the cache folder.
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { downloadModel, HubError } from '../../../server/src/hub';
import { type HubServer, startHubServer } from '../../helpers/hub-server';
import { tempDir } from '../../helpers/tmp';
import { applyByteOps, applyJsonOps, type ByteOp, byteOp, type JsonOp, jsonOp } from '../lib/mutate';
import { acceptedOrRefused, Finding, type Target } from '../lib/target';

const REPO = 'fuzz/tiny';
const TOKEN = 'hf_fuzzToken';
const blob = (n: number, k: number) => Buffer.from(Uint8Array.from({ length: n }, (_, i) => (i * k + 7) & 0xff));
const FILES: Record<string, Buffer> = {
  'config.json': Buffer.from(JSON.stringify({ architectures: ['LlamaForCausalLM'], hidden_size: 8 })),
  'tokenizer.json': Buffer.from('{"version": "1.0"}'),
  'tokenizer_config.json': Buffer.from('{}'),
  'model.safetensors.index.json': Buffer.from(
    JSON.stringify({ weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } }),
  ),
  'model-00001-of-00002.safetensors': blob(3000, 3),
  'model-00002-of-00002.safetensors': blob(1800, 5),
  'README.md': Buffer.from('# tiny'),
};

type Fault =
  | { k: 'status'; status: number }
  | { k: 'json'; ops: JsonOp[] }
  | { k: 'text'; body: string }
  | { k: 'truncate'; at: number; cut: boolean }
  | { k: 'bytes'; ops: ByteOp[] }
  | { k: 'header'; name: string; value: string }
  | { k: 'loop' }
  | { k: 'redirect'; location: string };

interface Input {
  /** Request number (in order, from 0) → the fault applied to its answer. */
  faults: [number, Fault][];
}

const fault: fc.Arbitrary<Fault> = fc.oneof(
  fc.record({
    k: fc.constant('status' as const),
    status: fc.constantFrom(200, 206, 301, 302, 307, 400, 401, 403, 404, 408, 410, 416, 429, 500, 502, 503),
  }),
  fc.record({ k: fc.constant('json' as const), ops: fc.array(jsonOp, { minLength: 1, maxLength: 3 }) }),
  fc.record({
    k: fc.constant('text' as const),
    body: fc.constantFrom(
      '',
      '{',
      '[',
      'null',
      '{"sha": 7}',
      '[{"type":"file"}]',
      '<html>',
      '{"sha":"0000000000000000000000000000000000000000"}',
    ),
  }),
  fc.record({ k: fc.constant('truncate' as const), at: fc.nat({ max: 4000 }), cut: fc.boolean() }),
  fc.record({ k: fc.constant('bytes' as const), ops: fc.array(byteOp, { minLength: 1, maxLength: 3 }) }),
  fc.record({
    k: fc.constant('header' as const),
    name: fc.constantFrom(
      'content-length',
      'etag',
      'x-repo-commit',
      'x-linked-size',
      'x-linked-etag',
      'content-range',
      'link',
      'location',
      'x-error-code',
      'content-type',
    ),
    value: fc.constantFrom(
      '0',
      '1',
      '-1',
      '99999999999',
      'abc',
      '"deadbeef"',
      '<http://127.0.0.1:9/x>; rel="next"',
      'bytes 0-0/1',
      'bytes */0',
      'GatedRepo',
      'RepoNotFound',
      'EntryNotFound',
      '',
    ),
  }),
  fc.record({ k: fc.constant('loop' as const) }),
  fc.record({
    k: fc.constant('redirect' as const),
    location: fc.constantFrom(
      '',
      '/',
      'http://[::1',
      'http://127.0.0.1:9/x',
      'file:///etc/passwd',
      '//evil.invalid/x',
      'data:,x',
      'javascript:1',
    ),
  }),
);
const input: fc.Arbitrary<Input> = fc.record({
  faults: fc.array(fc.tuple(fc.nat({ max: 14 }), fault), { minLength: 1, maxLength: 3 }),
});

const NULL_BODY = new Set([204, 205, 304]);

async function applyFault(res: Response, f: Fault, url: string): Promise<Response> {
  const headers = new Headers(res.headers);
  const body = Buffer.from(await res.arrayBuffer());
  const make = (b: Uint8Array | ReadableStream | null, status = res.status) =>
    new Response(NULL_BODY.has(status) ? null : (b as BodyInit | null), { status, headers });
  switch (f.k) {
    case 'status':
      return make(body, f.status);
    case 'json': {
      let v: unknown;
      try {
        v = JSON.parse(body.toString('utf8'));
      } catch {
        return make(body);
      }
      headers.delete('content-length');
      return make(Buffer.from(JSON.stringify(applyJsonOps(v, f.ops)) ?? ''));
    }
    case 'text':
      headers.delete('content-length');
      return make(Buffer.from(f.body));
    case 'truncate': {
      const part = body.subarray(0, Math.min(f.at, body.length));
      if (!f.cut) return make(part);
      return make(
        new ReadableStream({
          start(c) {
            if (part.length) c.enqueue(new Uint8Array(part));
            c.error(new TypeError('terminated'));
          },
        }),
      );
    }
    case 'bytes':
      return make(applyByteOps(body, f.ops));
    case 'header':
      headers.set(f.name, f.value);
      return make(body);
    case 'loop':
      headers.set('location', url);
      return make(null, 302);
    case 'redirect':
      headers.set('location', f.location);
      return make(null, 302);
  }
}

let hub: HubServer;
let root = '';
let n = 0;

export const target: Target<Input> = {
  name: 'hub',
  describe: "the Hub client's answers from the loopback Hub with faults injected: downloadModel end to end",
  arbitrary: () => input,
  async setup() {
    hub = await startHubServer({ repos: { [REPO]: { files: FILES } }, token: TOKEN, pageSize: 4 });
    root = tempDir('apl-fuzz-hub-');
  },
  async teardown() {
    await hub.close();
    rmSync(root, { recursive: true, force: true });
  },
  async check(x) {
    const cacheDir = join(root, `cache-${n++}`);
    mkdirSync(cacheDir);
    const faults = new Map(x.faults);
    let i = 0;
    const wrapped = (async (url: string | URL | Request, init?: RequestInit) => {
      const u = typeof url === 'string' ? url : url instanceof URL ? url.href : url.url;
      const res = await fetch(url, init);
      const f = faults.get(i++);
      return f ? applyFault(res, f, u) : res;
    }) as typeof fetch;
    try {
      await acceptedOrRefused(async () => {
        const m = await downloadModel(REPO, {
          endpoint: hub.url,
          token: TOKEN,
          cacheDir,
          fetch: wrapped,
          retries: 2,
          retryDelayMs: 1,
          offline: false,
        });
        for (const f of m.files) {
          const got = readFileSync(join(m.dir, f));
          if (!FILES[f] || !got.equals(FILES[f])) throw new Finding(`accepted a wrong ${f} (${got.length} bytes)`);
        }
      }, [HubError]);
      const stray = readdirSync(root).filter((e) => !e.startsWith('cache-'));
      if (stray.length) throw new Finding(`wrote outside the cache folder: ${stray.join(', ')}`);
    } finally {
      hub.requests.length = 0;
      rmSync(cacheDir, { recursive: true, force: true });
    }
  },
  serialize: (x) => JSON.stringify(x, (_, v) => (typeof v === 'bigint' ? `${v}n` : v)),
};
