// A loopback Hugging Face Hub for tests: two node:http servers on 127.0.0.1 (port 0). The hub origin speaks the
// API the way @huggingface/hub calls it (model info, tree listing paged by Link, paths-info, resolve with Range);
// LFS files answer the resolve with a 302 to a second origin (a different port, like the real CDN) that serves the
// bytes. It checks tokens (gated / private repos, 401 / 403 / 404 with X-Error-Code), records every request, and
// injects faults: cut a file's connection after N bytes (once), stall after N bytes, ignore Range, or answer a Range
// from the wrong offset.
import { createHash } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HubRepoSpec {
  files: Record<string, Buffer | string>;
  gated?: boolean;
  private?: boolean;
  /** 40 hex digits; default: derived from the repo id. */
  commit?: string;
  /** Extra branch or tag names that resolve to the commit (`main` and `HEAD` always do). */
  revisions?: string[];
  /** Paths stored with LFS (served from the LFS origin). Default: *.safetensors, *.bin, *.pt, *.model, *.gguf. */
  lfs?: string[];
  /** Non-LFS paths the tree listing describes by a Xet hash alone (no lfs block): clients can check only the size. */
  xetOnly?: string[];
}

export interface HubServerOptions {
  repos: Record<string, HubRepoSpec>;
  /** The valid token with access to every repo. */
  token?: string;
  /** Valid tokens that gated repos refuse with 403 (and private ones hide with 404). */
  tokensWithoutAccess?: string[];
  /**
   * File path → write this many body bytes, then end the connection (once per path). How much of it the client
   * receives before it sees the close depends on timing; for an exact resume point use stallAfterBytes + breakStalled.
   */
  cutAfterBytes?: Record<string, number>;
  /**
   * File path → send this many body bytes, then hold the connection open (once per path; emits 'stall' with the
   * path) until breakStalled(path) or close().
   */
  stallAfterBytes?: Record<string, number>;
  /** File paths whose first data request gets no answer at all (no status, no headers), held until close(). */
  silentOnce?: string[];
  /** Answer Range requests for data with 200 and the whole file (true, or the paths it applies to). */
  ignoreRange?: boolean | string[];
  /**
   * Paths whose first Range request is answered 206 with as many bytes as asked for but taken from the start of the
   * file, and a Content-Range that says so (`bytes 0-…`): a proxy that loses the offset.
   */
  rangeFromZero?: string[];
  /** File path → HTTP statuses to answer its next `resolve` requests with, one per request (404 = EntryNotFound). */
  failWith?: Record<string, number[]>;
  /** File path → serve data with one byte flipped this many times (then the true bytes). */
  corrupt?: Record<string, number>;
  /** Tree listing page size (default 1000). */
  pageSize?: number;
}

export interface RecordedRequest {
  origin: 'hub' | 'lfs';
  method: string;
  /** Path and query as requested. */
  path: string;
  headers: IncomingHttpHeaders;
}

export interface HubServer {
  /** The hub origin, e.g. http://127.0.0.1:41234 (use as endpoint). */
  url: string;
  /** The LFS origin the hub redirects weights to. */
  lfsUrl: string;
  requests: RecordedRequest[];
  /** Emits 'stall' (path) and 'cut' (path) when a fault fires. */
  events: EventEmitter;
  /** Resolves when the stall for `path` fires (rejects after timeoutMs, default 10 s). */
  stalled(path: string, timeoutMs?: number): Promise<void>;
  /** Breaks the stalled connection of `path` (a cut the test times itself, e.g. once the client saw the bytes). */
  breakStalled(path: string): void;
  /** Data requests (resolve on the hub origin or blob fetches on the LFS origin) whose path ends with `file`. */
  dataRequests(file?: string): RecordedRequest[];
  close(): Promise<void>;
}

interface FileEntry {
  path: string;
  data: Buffer;
  sha256: string;
  gitOid: string;
  lfs: boolean;
  xetOnly: boolean;
}

interface RepoState {
  id: string;
  spec: HubRepoSpec;
  commit: string;
  revisions: Set<string>;
  files: Map<string, FileEntry>;
}

const DEFAULT_LFS = /\.(safetensors|bin|pt|pth|model|gguf)$/;

export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Git's blob id: sha1("blob <size>\0" + data). */
export function gitBlobOid(data: Buffer): string {
  return createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
}

export async function startHubServer(opts: HubServerOptions): Promise<HubServer> {
  const requests: RecordedRequest[] = [];
  const events = new EventEmitter();
  const cutDone = new Set<string>();
  const stallDone = new Set<string>();
  const fromZeroDone = new Set<string>();
  const stallFired = new Set<string>();
  const stalledRes = new Map<string, ServerResponse>();
  const silentDone = new Set<string>();
  const corruptLeft = new Map(Object.entries(opts.corrupt ?? {}));
  const pageSize = opts.pageSize ?? 1000;
  const repos = new Map<string, RepoState>();
  const byBlob = new Map<string, FileEntry>();
  for (const [id, spec] of Object.entries(opts.repos)) {
    const commit = spec.commit ?? createHash('sha1').update(`commit:${id}`).digest('hex');
    const files = new Map<string, FileEntry>();
    for (const [path, content] of Object.entries(spec.files)) {
      const data = Buffer.isBuffer(content) ? content : Buffer.from(content);
      const lfs = spec.lfs ? spec.lfs.includes(path) : DEFAULT_LFS.test(path);
      const xetOnly = !lfs && !!spec.xetOnly?.includes(path);
      const entry = { path, data, sha256: sha256(data), gitOid: gitBlobOid(data), lfs, xetOnly };
      files.set(path, entry);
      if (lfs) byBlob.set(entry.sha256, entry);
    }
    repos.set(id, { id, spec, commit, revisions: new Set(['main', 'HEAD', commit, ...(spec.revisions ?? [])]), files });
  }

  const hub = createServer((req, res) => {
    requests.push({ origin: 'hub', method: req.method ?? 'GET', path: req.url ?? '', headers: req.headers });
    handleHub(req, res).catch((e) => sendError(res, 500, undefined, String(e)));
  });
  const lfs = createServer((req, res) => {
    requests.push({ origin: 'lfs', method: req.method ?? 'GET', path: req.url ?? '', headers: req.headers });
    const m = /^\/blobs\/([0-9a-f]{64})(\?.*)?$/.exec(req.url ?? '');
    const entry = m ? byBlob.get(m[1]) : undefined;
    if (!entry) return sendError(res, 404, undefined, 'no such blob');
    serveData(req, res, entry, { ETag: `"${entry.sha256}"` });
  });
  hub.listen(0, '127.0.0.1');
  lfs.listen(0, '127.0.0.1');
  await Promise.all([once(hub, 'listening'), once(lfs, 'listening')]);
  const url = `http://127.0.0.1:${(hub.address() as AddressInfo).port}`;
  const lfsUrl = `http://127.0.0.1:${(lfs.address() as AddressInfo).port}`;

  function sendError(res: ServerResponse, status: number, code: string | undefined, message: string): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = JSON.stringify({ error: message });
    res.writeHead(status, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(body),
      ...(code ? { 'X-Error-Code': code, 'X-Error-Message': message } : {}),
    });
    res.end(body);
  }

  function sendJson(res: ServerResponse, value: unknown, headers: Record<string, string> = {}): void {
    const body = JSON.stringify(value);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers });
    res.end(body);
  }

  /**
   * Checks the Authorization header for this repo; answers the error and returns false when refused. As on the real
   * Hub, a bad token is refused everywhere, a private repo's metadata needs access too, but a gated repo's metadata
   * (model info, listing) is public and only its files (`resolve`) need access.
   */
  function authorize(req: IncomingMessage, res: ServerResponse, repo: RepoState | undefined, data: boolean): boolean {
    const auth = req.headers.authorization;
    const tok = auth?.startsWith('Bearer ') ? auth.slice(7) : undefined;
    const known = tok !== undefined && (tok === opts.token || (opts.tokensWithoutAccess ?? []).includes(tok));
    if (auth !== undefined && !known) {
      sendError(res, 401, undefined, 'Invalid credentials in Authorization header');
      return false;
    }
    if (!repo || (!repo.spec.gated && !repo.spec.private) || (repo.spec.gated && !data)) return true;
    if (!tok) {
      if (repo.spec.gated) {
        sendError(res, 401, 'GatedRepo', `Access to model ${repo.id} is restricted. You must be authenticated.`);
      } else sendError(res, 401, 'RepoNotFound', 'Repository not found');
      return false;
    }
    if (tok !== opts.token) {
      if (repo.spec.gated) {
        sendError(
          res,
          403,
          'GatedRepo',
          `Access to model ${repo.id} is restricted and you are not in the authorized list.`,
        );
      } else sendError(res, 404, 'RepoNotFound', 'Repository not found');
      return false;
    }
    return true;
  }

  /** Splits "<repo>/<rest>" against the known repo ids (longest first). */
  function findRepo(p: string): { repo: RepoState; rest: string } | undefined {
    const ids = [...repos.keys()].sort((a, b) => b.length - a.length);
    for (const id of ids)
      if (p.startsWith(`${id}/`)) return { repo: repos.get(id) as RepoState, rest: p.slice(id.length + 1) };
    return undefined;
  }

  /** Splits "<rev>[/<path>]" where the revision may contain "/" (refs/pr/1) or be percent-encoded. */
  function splitRev(repo: RepoState, rest: string): { rev?: string; path: string; bad: string } {
    const decoded = decodeURIComponent(rest);
    const revs = [...repo.revisions].sort((a, b) => b.length - a.length);
    for (const r of revs) {
      if (decoded === r) return { rev: r, path: '', bad: r };
      if (decoded.startsWith(`${r}/`)) return { rev: r, path: decoded.slice(r.length + 1), bad: r };
    }
    return { path: '', bad: decodeURIComponent(rest.split('/')[0]) };
  }

  function treeEntry(f: FileEntry): Record<string, unknown> {
    return {
      type: 'file',
      oid: f.gitOid,
      size: f.data.length,
      path: f.path,
      ...(f.lfs ? { lfs: { oid: f.sha256, size: f.data.length, pointerSize: 134 } } : {}),
      ...(f.xetOnly ? { xetHash: sha256(Buffer.concat([Buffer.from('xet:'), f.data])) } : {}),
    };
  }

  async function readBody(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of req) {
      n += (c as Buffer).length;
      if (n > 1 << 20) throw new Error('body too large');
      chunks.push(c as Buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  async function handleHub(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', url);
    const api = /^\/api\/models\/(.+)$/.exec(u.pathname);
    const target = findRepo(api ? api[1] : u.pathname.slice(1));
    if (!authorize(req, res, target?.repo, !api)) return;
    if (!target) return sendError(res, 404, 'RepoNotFound', 'Repository not found');
    const { repo, rest } = target;
    if (api) {
      const m = /^(revision|tree|paths-info)\/(.+)$/.exec(rest);
      if (!m) return sendError(res, 404, undefined, 'Not found');
      const { rev, path, bad } = splitRev(repo, m[2]);
      if (!rev) return sendError(res, 404, 'RevisionNotFound', `Invalid rev id: ${bad}`);
      if (m[1] === 'revision') {
        return sendJson(res, {
          _id: `id-${repo.id}`,
          id: repo.id,
          sha: repo.commit,
          private: !!repo.spec.private,
          gated: repo.spec.gated ? 'manual' : false,
          downloads: 0,
          likes: 0,
          lastModified: '2024-01-01T00:00:00.000Z',
          siblings: [...repo.files.keys()].map((rfilename) => ({ rfilename })),
        });
      }
      if (m[1] === 'paths-info') {
        if (req.method !== 'POST') return sendError(res, 405, undefined, 'POST only');
        const body = JSON.parse((await readBody(req)) || '{}') as { paths?: string[]; expand?: boolean };
        const out = (body.paths ?? [])
          .map((p) => repo.files.get(p))
          .filter((f): f is FileEntry => !!f)
          .map((f) => ({
            ...treeEntry(f),
            ...(body.expand
              ? { lastCommit: { id: repo.commit, title: 'init', date: '2024-01-01T00:00:00.000Z' } }
              : {}),
          }));
        return sendJson(res, out);
      }
      // tree
      const recursive = u.searchParams.get('recursive') === 'true';
      const prefix = path ? `${path}/` : '';
      const entries: Record<string, unknown>[] = [];
      const dirs = new Set<string>();
      for (const f of [...repo.files.values()].sort((a, b) => a.path.localeCompare(b.path))) {
        if (!f.path.startsWith(prefix)) continue;
        const sub = f.path.slice(prefix.length);
        const parts = sub.split('/');
        for (let i = 1; i < parts.length; i++) {
          const d = prefix + parts.slice(0, i).join('/');
          if ((recursive || i === 1) && !dirs.has(d)) {
            dirs.add(d);
            entries.push({ type: 'directory', oid: sha256(d).slice(0, 40), size: 0, path: d });
          }
        }
        if (recursive || parts.length === 1) entries.push(treeEntry(f));
      }
      const cursor = Number(u.searchParams.get('cursor') ?? 0);
      const page = entries.slice(cursor, cursor + pageSize);
      const headers: Record<string, string> = {};
      if (cursor + pageSize < entries.length) {
        const next = new URL(u.href);
        next.searchParams.set('cursor', String(cursor + pageSize));
        headers.Link = `<${next.href}>; rel="next"`;
      }
      return sendJson(res, page, headers);
    }
    const m = /^resolve\/(.+)$/.exec(rest);
    if (!m) return sendError(res, 404, undefined, 'Not found');
    const { rev, path, bad } = splitRev(repo, m[1]);
    if (!rev) return sendError(res, 404, 'RevisionNotFound', `Invalid rev id: ${bad}`);
    const f = repo.files.get(path);
    const fail = opts.failWith?.[path]?.shift();
    if (!f || fail === 404) return sendError(res, 404, 'EntryNotFound', `${path} does not exist on "${rev}"`);
    if (fail !== undefined) return sendError(res, fail, undefined, `injected HTTP ${fail}`);
    const common = { 'X-Repo-Commit': repo.commit };
    if (f.lfs) {
      res.writeHead(302, {
        ...common,
        Location: `${lfsUrl}/blobs/${f.sha256}?repo=${encodeURIComponent(repo.id)}&sig=test`,
        ETag: `"${f.gitOid}"`,
        'X-Linked-Etag': `"${f.sha256}"`,
        'X-Linked-Size': String(f.data.length),
        'Content-Length': '0',
      });
      res.end();
      return;
    }
    serveData(req, res, f, { ...common, ETag: `"${f.gitOid}"` });
  }

  function serveData(req: IncomingMessage, res: ServerResponse, f: FileEntry, headers: Record<string, string>): void {
    const size = f.data.length;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const ignore = opts.ignoreRange === true || (Array.isArray(opts.ignoreRange) && opts.ignoreRange.includes(f.path));
    let status = 200;
    let start = 0;
    let end = size - 1;
    if (range && !ignore) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
      if (start >= size || end < start) {
        res.writeHead(416, { ...headers, 'Content-Range': `bytes */${size}`, 'Content-Length': '0' });
        res.end();
        return;
      }
      status = 206;
      if (opts.rangeFromZero?.includes(f.path) && !fromZeroDone.has(f.path) && start > 0) {
        fromZeroDone.add(f.path);
        end -= start;
        start = 0;
      }
      headers = { ...headers, 'Content-Range': `bytes ${start}-${end}/${size}` };
    }
    let body = f.data.subarray(start, end + 1);
    if (body.length > 1 && (corruptLeft.get(f.path) ?? 0) > 0) {
      corruptLeft.set(f.path, (corruptLeft.get(f.path) ?? 0) - 1);
      body = Buffer.from(body);
      body[body.length >> 1] ^= 0xff;
    }
    if (req.method !== 'HEAD' && body.length > 1 && opts.silentOnce?.includes(f.path) && !silentDone.has(f.path)) {
      silentDone.add(f.path);
      return; // the request is left unanswered
    }
    res.writeHead(status, {
      ...headers,
      'Content-Type': 'application/octet-stream',
      'Content-Length': String(body.length),
      'Accept-Ranges': 'bytes',
    });
    if (req.method === 'HEAD') return void res.end();
    const isData = body.length > 1; // the library's `Range: bytes=0-0` probe is not the data transfer
    const cut = opts.cutAfterBytes?.[f.path];
    if (isData && cut !== undefined && !cutDone.has(f.path) && cut < body.length) {
      cutDone.add(f.path);
      res.write(body.subarray(0, cut), () => {
        events.emit('cut', f.path);
        res.socket?.end();
        res.socket?.destroySoon();
      });
      return;
    }
    const stall = opts.stallAfterBytes?.[f.path];
    if (isData && stall !== undefined && !stallDone.has(f.path) && stall < body.length) {
      stallDone.add(f.path);
      stalledRes.set(f.path, res);
      res.write(body.subarray(0, stall), () => {
        stallFired.add(f.path);
        events.emit('stall', f.path);
      });
      return;
    }
    res.end(body);
  }

  return {
    url,
    lfsUrl,
    requests,
    events,
    stalled(path: string, timeoutMs = 10_000): Promise<void> {
      if (stallFired.has(path)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          events.off('stall', on);
          reject(new Error(`no stall on ${path} within ${timeoutMs} ms`));
        }, timeoutMs);
        const on = (p: string) => {
          if (p !== path) return;
          clearTimeout(t);
          events.off('stall', on);
          resolve();
        };
        events.on('stall', on);
      });
    },
    breakStalled(path: string): void {
      const res = stalledRes.get(path);
      if (!res) throw new Error(`no stalled response for ${path}`);
      stalledRes.delete(path);
      res.socket?.destroy();
    },
    dataRequests(file?: string): RecordedRequest[] {
      return requests.filter((r) => {
        const p = r.path.split('?')[0];
        const isData = r.origin === 'lfs' || p.includes('/resolve/');
        if (!isData) return false;
        if (!file) return true;
        if (r.origin === 'hub') return decodeURIComponent(p).endsWith(`/${file}`);
        const blob = p.split('/').pop() ?? '';
        return byBlob.get(blob)?.path === file;
      });
    },
    async close(): Promise<void> {
      for (const s of [hub, lfs]) {
        s.closeAllConnections();
        await new Promise<void>((r) => s.close(() => r()));
      }
    },
  };
}
