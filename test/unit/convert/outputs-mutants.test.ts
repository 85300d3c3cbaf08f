// The outputs of a conversion on disk, in process (so mutation testing reaches them): the temporaries' names, the
// commit that renames them into place, the cleanup after a failure, the refusal to replace an earlier result, and
// the sweep of a killed run's temporaries (which names it removes and which it must leave alone).
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConvertError } from '../../../server/src/convert/errors';
import { outputPaths } from '../../../server/src/convert/names';
import {
  REPLACE_IN_BACKGROUND_BYTES,
  refuseExisting,
  removeDetached,
  StagedOutputs,
} from '../../../server/src/convert/outputs';
import { tempDir } from './helpers';

const DEAD = 99999999; // above Linux's pid_max: no such process
const pid = process.pid;

function ls(dir: string): string[] {
  return readdirSync(dir).sort();
}

/** Stages the three outputs of `m` at q4 in `dir` and writes all three temporaries. */
function stageAll(dir: string, tag: string): StagedOutputs {
  const s = StagedOutputs.prepare(dir, outputPaths(dir, 'm', 4));
  writeFileSync(s.tmp.npz, `npz ${tag}`);
  s.writeJson({ report: tag }, { manifest: tag });
  return s;
}

test('prepare names the temporaries after the final names and this pid, and creates the folder', (t) => {
  const dir = join(tempDir(t), 'a', 'b');
  const s = StagedOutputs.prepare(dir, outputPaths(dir, 'm', 4));
  assert.deepEqual(s.tmp, {
    npz: join(dir, `.m_quantized_q4.npz.staged-${pid}`),
    manifest: join(dir, `.m_manifest_q4.json.tmp-${pid}`),
    report: join(dir, `.m_accuracy_q4.json.tmp-${pid}`),
  });
  assert.deepEqual(ls(dir), []);
});

test('prepare: an output folder that is a file is an io error naming it', (t) => {
  const file = join(tempDir(t), 'out');
  writeFileSync(file, 'x');
  assert.throws(
    () => StagedOutputs.prepare(file, outputPaths(file, 'm', 4)),
    (e: unknown) => e instanceof ConvertError && e.code === 'io' && e.message.includes(`output folder ${file}`),
  );
});

test('writeJson writes two-space JSON; commit renames all three into place and leaves nothing else', (t) => {
  const dir = tempDir(t);
  const s = stageAll(dir, 'one');
  assert.deepEqual(ls(dir), [
    `.m_accuracy_q4.json.tmp-${pid}`,
    `.m_manifest_q4.json.tmp-${pid}`,
    `.m_quantized_q4.npz.staged-${pid}`,
  ]);
  s.commit();
  assert.deepEqual(ls(dir), ['m_accuracy_q4.json', 'm_manifest_q4.json', 'm_quantized_q4.npz']);
  assert.equal(readFileSync(join(dir, 'm_manifest_q4.json'), 'utf8'), '{\n  "manifest": "one"\n}\n');
  assert.equal(readFileSync(join(dir, 'm_accuracy_q4.json'), 'utf8'), '{\n  "report": "one"\n}\n');
  assert.equal(readFileSync(join(dir, 'm_quantized_q4.npz'), 'utf8'), 'npz one');
  // After the commit, discard is a no-op: it must not remove a file that now has a temporary's name.
  writeFileSync(s.tmp.npz, 'a later run');
  writeFileSync(s.tmp.manifest, 'a later run');
  s.discard();
  assert.equal(readFileSync(s.tmp.npz, 'utf8'), 'a later run');
  assert.equal(readFileSync(s.tmp.manifest, 'utf8'), 'a later run');
});

test('a failed run (discard) removes its temporaries and keeps the earlier result', (t) => {
  const dir = tempDir(t);
  stageAll(dir, 'one').commit();
  const s = stageAll(dir, 'two');
  s.discard();
  assert.deepEqual(ls(dir), ['m_accuracy_q4.json', 'm_manifest_q4.json', 'm_quantized_q4.npz']);
  assert.equal(readFileSync(join(dir, 'm_quantized_q4.npz'), 'utf8'), 'npz one');
  // Discard with some temporaries never written does not throw.
  const partial = StagedOutputs.prepare(dir, outputPaths(dir, 'm', 4));
  writeFileSync(partial.tmp.npz, 'x');
  partial.discard();
  assert.deepEqual(ls(dir), ['m_accuracy_q4.json', 'm_manifest_q4.json', 'm_quantized_q4.npz']);
});

test('commit with a temporary missing is an io error naming the folder', (t) => {
  const dir = tempDir(t);
  const s = StagedOutputs.prepare(dir, outputPaths(dir, 'm', 4));
  s.writeJson({}, {}); // the NPZ was never written
  assert.throws(
    () => s.commit(),
    (e: unknown) => e instanceof ConvertError && e.code === 'io' && e.message.startsWith(`renaming into ${dir}: `),
  );
  s.discard(); // not committed: the temporaries go
  assert.deepEqual(ls(dir), []);
});

test('refuseExisting names the existing output; without outputs it passes', (t) => {
  const dir = tempDir(t);
  const paths = outputPaths(dir, 'm', 4);
  refuseExisting(paths);
  writeFileSync(paths.report, '{}');
  assert.throws(
    () => refuseExisting(paths),
    (e: unknown) =>
      e instanceof ConvertError &&
      e.code === 'exists' &&
      e.message === `${paths.report} already exists; pass --force to replace it`,
  );
  // --force: the caller skips the refusal; the commit replaces the earlier outputs.
  stageAll(dir, 'one').commit();
  stageAll(dir, 'two').commit();
  assert.deepEqual(ls(dir), ['m_accuracy_q4.json', 'm_manifest_q4.json', 'm_quantized_q4.npz']);
  assert.equal(readFileSync(paths.npz, 'utf8'), 'npz two');
});

test('prepare sweeps temporaries of a killed run of these outputs, and only those', (t) => {
  const dir = tempDir(t);
  const removed = [
    `.m_quantized_q4.npz.staged-${DEAD}`,
    `.m_manifest_q4.json.tmp-${DEAD}`,
    `.m_accuracy_q4.json.tmp-${DEAD}`,
    `.m_quantized_q4.npz.staged-${DEAD}.tmp-12345-0a9f3c`, // the NPZ writer's own temporary
    `.m_quantized_q4.npz.staged-${DEAD}.tmp-12345-01234567`,
    `.m_manifest_q4.json.tmp-${DEAD}.tmp-77-ff`,
    `.m_quantized_q4.npz.staged-${DEAD}.tmp-12345`, // no hex suffix: the stem is still the NPZ's (a lazy stem)
    `.m_quantized_q4.npz.replaced-${DEAD}`, // an earlier NPZ's second name, its removal not done
  ];
  const kept = [
    `.m_quantized_q4.npz.staged-${pid}`, // this process
    `.m_quantized_q4.npz.staged-1`, // alive (init)
    `.m_manifest_q4.json.tmp-${process.ppid}`, // alive (the parent)
    `m_quantized_q4.npz.staged-${DEAD}`, // no leading dot
    `x.m_quantized_q4.npz.staged-${DEAD}`, // text before
    `#m_quantized_q4.npz.staged-${DEAD}`, // another first character
    `.m_quantized_q4.npz_staged-${DEAD}`,
    `.m_quantized_q4.npz.staged-${DEAD}_tmp-12-ab`,
    `.m_quantized_q4.npz.staged-${DEAD}.bak`, // text after
    `.m_quantized_q4.npz.staged-${DEAD}x`,
    `.m_quantized_q4.npz.staged-${DEAD}.tmp-12345-0a9g`, // not hex
    `.m_quantized_q4.npz.staged-${DEAD}.tmp-`, // no digits
    `.m_quantized_q4.npz.staged-${DEAD}.tmp-12-`,
    `.m_quantized_q4.npz.staged-`, // no pid
    `.m_quantized_q4.npz.staged-abc`,
    `.m_quantized_q4.npz.old-${DEAD}`,
    `.m_quantized_q4.npz.tmp${DEAD}`,
    `.m_quantized_q4.npzstaged-${DEAD}`,
    `..staged-${DEAD}`,
    `.other_quantized_q4.npz.staged-${DEAD}`, // another model's outputs
    `.m_quantized_q8.npz.staged-${DEAD}`, // another bit width
    'm_quantized_q4.npz',
  ];
  for (const f of [...removed, ...kept]) writeFileSync(join(dir, f), f);
  StagedOutputs.prepare(dir, outputPaths(dir, 'm', 4));
  assert.deepEqual(ls(dir), [...kept].sort());
});

test('the sweep handles pids of every length', (t) => {
  const dir = tempDir(t);
  for (const p of [7, 4194305, 123456789]) {
    // 7 may be alive: only the dead ones are asserted removed
    writeFileSync(join(dir, `.m_manifest_q4.json.tmp-${p}`), '');
  }
  StagedOutputs.prepare(dir, outputPaths(dir, 'm', 4));
  const left = ls(dir);
  assert.ok(!left.includes('.m_manifest_q4.json.tmp-4194305'));
  assert.ok(!left.includes('.m_manifest_q4.json.tmp-123456789'));
});

test('writeJson into a folder that went away is an io error naming the manifest', (t) => {
  const dir = join(tempDir(t), 'out');
  const paths = outputPaths(dir, 'm', 4);
  const s = StagedOutputs.prepare(dir, paths);
  rmSync(dir, { recursive: true });
  assert.throws(
    () => s.writeJson({}, {}),
    (e: unknown) => e instanceof ConvertError && e.code === 'io' && e.message.startsWith(`writing ${paths.manifest}: `),
  );
});

test("the sweep keeps another user's run (EPERM: alive, not ours to signal) and removes a dead one's", (t) => {
  // As root every process may be signalled, so EPERM is simulated: pid OTHER belongs to another user.
  const OTHER = 99999998;
  const kill = process.kill;
  const asked: number[] = [];
  process.kill = ((p: number, sig?: string | number) => {
    if (p === OTHER) throw Object.assign(new Error('kill EPERM'), { code: 'EPERM' });
    if (p === DEAD) throw Object.assign(new Error('kill ESRCH'), { code: 'ESRCH' });
    asked.push(p);
    return kill.call(process, p, sig);
  }) as typeof process.kill;
  t.after(() => {
    process.kill = kill;
  });
  const dir = tempDir(t);
  for (const p of [OTHER, DEAD]) writeFileSync(join(dir, `.m_quantized_q4.npz.staged-${p}`), '');
  StagedOutputs.prepare(dir, outputPaths(dir, 'm', 4));
  process.kill = kill;
  assert.deepEqual(ls(dir), [`.m_quantized_q4.npz.staged-${OTHER}`]);
  assert.deepEqual(asked, []);
});

/** A sparse earlier NPZ of `bytes` (its first bytes `head`), as a large result the commit replaces. */
function earlierNpz(dir: string, head: string, bytes: number): string {
  const p = join(dir, 'm_quantized_q4.npz');
  writeFileSync(p, head);
  truncateSync(p, bytes);
  return p;
}

function recordRemovals(t: { after(f: () => void): void }): string[] {
  const got: string[] = [];
  const real = StagedOutputs.removeReplaced;
  StagedOutputs.removeReplaced = (p) => got.push(p);
  t.after(() => {
    StagedOutputs.removeReplaced = real;
  });
  return got;
}

test('commit over a large earlier NPZ: a second name first, removed after the commit; the final name always whole', (t) => {
  const dir = tempDir(t);
  const npz = earlierNpz(dir, 'npz old', REPLACE_IN_BACKGROUND_BYTES);
  const removed = recordRemovals(t);
  const s = stageAll(dir, 'new');
  s.commit();
  const aside = join(dir, `.m_quantized_q4.npz.replaced-${pid}`);
  assert.deepEqual(removed, [aside]);
  assert.equal(readFileSync(npz, 'utf8'), 'npz new');
  assert.equal(statSync(aside).size, REPLACE_IN_BACKGROUND_BYTES, 'the earlier NPZ, under its second name');
  assert.equal(readFileSync(aside).subarray(0, 7).toString(), 'npz old');
});

test('commit over a smaller earlier NPZ, or none: the rename replaces it, nothing removed later', (t) => {
  const dir = tempDir(t);
  const removed = recordRemovals(t);
  earlierNpz(dir, 'npz old', REPLACE_IN_BACKGROUND_BYTES - 1);
  stageAll(dir, 'new').commit();
  stageAll(dir, 'newer').commit();
  assert.deepEqual(removed, []);
  assert.deepEqual(ls(dir), ['m_accuracy_q4.json', 'm_manifest_q4.json', 'm_quantized_q4.npz']);
  assert.equal(readFileSync(join(dir, 'm_quantized_q4.npz'), 'utf8'), 'npz newer');
});

test('a failed commit over a large earlier NPZ keeps it under its own name and drops the second name', (t) => {
  const dir = tempDir(t);
  const npz = earlierNpz(dir, 'npz old', REPLACE_IN_BACKGROUND_BYTES);
  const removed = recordRemovals(t);
  const s = stageAll(dir, 'new');
  rmSync(s.tmp.npz);
  assert.throws(
    () => s.commit(),
    (e: unknown) => e instanceof ConvertError && e.code === 'io',
  );
  assert.deepEqual(removed, []);
  assert.equal(readFileSync(npz).subarray(0, 7).toString(), 'npz old');
  assert.ok(!existsSync(join(dir, `.m_quantized_q4.npz.replaced-${pid}`)));
});

test('removeDetached removes the file without waiting (a detached rm), and a missing file is no error', async (t) => {
  const dir = tempDir(t);
  const f = join(dir, 'x');
  writeFileSync(f, 'x');
  removeDetached(f);
  removeDetached(join(dir, 'missing'));
  for (let i = 0; i < 200 && existsSync(f); i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(!existsSync(f), 'removed within 5 s');
});
