// Two downloaders of one blob: the second waits for the first's lock and then uses its blob without a request.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { processAlive } from '../../../server/src/formats/pid-lock';
import { downloadModel, type HubProgress } from '../../../server/src/hub';
import { sha256, startHubServer } from '../../helpers/hub-server';
import { bytes, tempDir } from './fixtures';

test('a blob locked by a live process is waited for, then linked with no data request', async () => {
  const tmp = tempDir();
  const weights = bytes(50_000, 'locked');
  const etag = sha256(weights);
  const hub = await startHubServer({
    repos: { 'org/locked': { files: { 'config.json': '{}', 'model.safetensors': weights } } },
  });
  const lockDir = join(tmp.dir, '.locks', 'models--org--locked');
  const lock = join(lockDir, `${etag}.apl-lock`);
  mkdirSync(lockDir, { recursive: true });
  writeFileSync(lock, `${process.pid}\n`); // held by a live process (this one, standing in for another)
  assert.ok(processAlive(process.pid));
  try {
    let release: () => void = () => {};
    const waiting = new Promise<void>((r) => {
      release = r;
    });
    const run = downloadModel('org/locked', {
      endpoint: hub.url,
      token: '',
      cacheDir: tmp.dir,
      onProgress: (p: HubProgress) => {
        if (p.file === 'model.safetensors' && p.fileBytesDone === 0) release();
      },
    });
    await waiting; // the downloader reached the locked blob
    assert.equal(hub.dataRequests('model.safetensors').length, 0, 'no request while the lock is held');
    // The "other process" finishes: the blob appears under its final name, then the lock goes.
    const blobs = join(tmp.dir, 'models--org--locked', 'blobs');
    mkdirSync(blobs, { recursive: true });
    writeFileSync(join(blobs, `${etag}.tmp`), weights);
    renameSync(join(blobs, `${etag}.tmp`), join(blobs, etag));
    rmSync(lock);
    const m = await run;
    assert.equal(hub.dataRequests('model.safetensors').length, 0);
    assert.deepEqual(readFileSync(join(m.dir, 'model.safetensors')), weights);
  } finally {
    await hub.close();
    tmp.cleanup();
  }
});

test('waiting for a lock is cancelled by the signal', async () => {
  const tmp = tempDir();
  const weights = bytes(1000, 'locked2');
  const hub = await startHubServer({
    repos: { 'org/locked': { files: { 'config.json': '{}', 'model.safetensors': weights } } },
  });
  const lockDir = join(tmp.dir, '.locks', 'models--org--locked');
  mkdirSync(lockDir, { recursive: true });
  writeFileSync(join(lockDir, `${sha256(weights)}.apl-lock`), `${process.pid}\n`);
  try {
    const ac = new AbortController();
    const run = downloadModel('org/locked', {
      endpoint: hub.url,
      token: '',
      cacheDir: tmp.dir,
      signal: ac.signal,
      onProgress: (p) => {
        if (p.file === 'model.safetensors' && p.fileBytesDone === 0) ac.abort();
      },
    });
    await assert.rejects(run, (e: Error & { code?: string }) => e.code === 'cancelled');
    assert.equal(hub.dataRequests('model.safetensors').length, 0);
  } finally {
    await hub.close();
    tmp.cleanup();
  }
});
