// A conversion's outputs on disk: the refusal to replace an earlier result without --force, the temporary names
// every output is written under (`.<final name>.staged-<pid>` / `.tmp-<pid>`), the commit (three renames, the
// manifest last), and the cleanup: a failed or cancelled run removes its temporaries; temporaries of a killed run
// (its pid gone) are removed by the next run into the same folder. A large NPZ being replaced gets a second name
// first (`.<final name>.replaced-<pid>`, a hard link), so the commit's rename only drops a name and the file's
// blocks are freed after the commit, by a detached `rm`.
import { spawn } from 'node:child_process';
import { existsSync, linkSync, readdirSync, renameSync, statSync, unlink, unlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { mkdirpSync } from '../formats/mkdirp';
import { processAlive, tryPidLock } from '../formats/pid-lock';
import { ConvertError, ioError } from './errors';
import { type OutputPaths, outputsLockPath } from './names';

export function refuseExisting(paths: OutputPaths): void {
  const existing = Object.values(paths).filter((p) => existsSync(p));
  if (existing.length) {
    throw new ConvertError('exists', `${existing[0]} already exists; pass --force to replace it`);
  }
}

/**
 * This converter's temporaries: `.<stem>.staged-<pid>` / `.tmp-<pid>`, the npz writer's own beside them, and an
 * earlier NPZ's second name while it is replaced (`.replaced-<pid>`).
 */
const OUTPUT_TEMP = /^\.(.+?)\.(?:tmp|staged|replaced)-(\d+)(?:\.tmp-\d+(?:-[0-9a-f]+)?)?$/;

/**
 * An NPZ at least this large that a commit replaces is removed after the commit by a detached process: where the
 * file system discards freed blocks on unlink (ext4 mounted with `discard`, as on this project's VMs), removing a
 * 680 MB NPZ waits 70–190 ms, while starting `rm` costs ≈ 10 ms. Smaller ones are removed in the rename.
 */
export const REPLACE_IN_BACKGROUND_BYTES = 128 * 1024 * 1024;

/**
 * Removes a file without waiting for it: a detached `rm` (POSIX; this process may exit before it ends), or an
 * unlink on libuv's threads (Windows, or where `rm` cannot start). A file left behind is a temporary of a dead pid,
 * which the next run's sweep removes.
 */
export function removeDetached(path: string): void {
  const inProcess = () => unlink(path, () => {});
  if (process.platform === 'win32') {
    inProcess();
    return;
  }
  try {
    const child = spawn('rm', ['-f', '--', path], { detached: true, stdio: 'ignore' });
    child.on('error', inProcess);
    child.unref();
  } catch {
    inProcess();
  }
}

/**
 * Removes temporaries left by a run that was killed (their pid is gone): the files in outDir that `re` matches with
 * one of `stems` as its first group and the pid as its second.
 */
export function removeStale(outDir: string, stems: string[], re = OUTPUT_TEMP): void {
  let names: string[] = [];
  try {
    names = readdirSync(outDir);
  } catch {
    return;
  }
  for (const f of names) {
    const m = re.exec(f);
    if (!m || !stems.includes(m[1]) || Number(m[2]) === process.pid || processAlive(Number(m[2]))) continue;
    try {
      unlinkSync(join(outDir, f));
    } catch {}
  }
}

/** The temporary names of one run's outputs, and their commit or removal. */
export class StagedOutputs {
  /** How a replaced NPZ's second name is removed after the commit (tests record it). */
  static removeReplaced: (path: string) => void = removeDetached;
  private committed = false;
  private unlock: (() => void) | undefined;

  private constructor(
    readonly outDir: string,
    readonly paths: OutputPaths,
    /** Where each output is written until the commit. */
    readonly tmp: OutputPaths,
  ) {}

  /** Creates the output folder, clears a killed run's temporaries and names this run's. */
  static prepare(outDir: string, paths: OutputPaths): StagedOutputs {
    try {
      mkdirpSync(outDir);
      if (!statSync(outDir).isDirectory()) throw Object.assign(new Error('not a folder'), { code: 'ENOTDIR' });
    } catch (e) {
      throw ioError(e, `cannot create the output folder ${outDir}`);
    }
    const stems = [basename(paths.npz), basename(paths.manifest), basename(paths.report)];
    removeStale(outDir, stems);
    return new StagedOutputs(outDir, paths, {
      npz: join(outDir, `.${stems[0]}.staged-${process.pid}`),
      manifest: join(outDir, `.${stems[1]}.tmp-${process.pid}`),
      report: join(outDir, `.${stems[2]}.tmp-${process.pid}`),
    });
  }

  /**
   * Takes the lock of these outputs (`.<manifest name>.apl-lock` beside them, holding this pid), so that two
   * conversions into the same outputs at once (the extension and a CLI run, say) cannot interleave their commits and
   * leave a manifest beside another run's NPZ. A lock whose process is gone is taken over. discard() releases it.
   */
  lock(): void {
    let got: ReturnType<typeof tryPidLock>;
    try {
      got = tryPidLock(outputsLockPath(this.paths.manifest));
    } catch (e) {
      throw ioError(e, `cannot write in ${this.outDir}`);
    }
    if ('owner' in got) {
      throw new ConvertError(
        'io',
        `${this.paths.manifest}: another conversion or an evaluation storing its figures (process ${got.owner}) holds ` +
          'these outputs; wait for it to finish, or choose another --out',
      );
    }
    this.unlock = got.release;
  }

  /** Writes the report and the manifest (JSON, two-space indent) under their temporary names. */
  writeJson(report: unknown, manifest: unknown): void {
    try {
      writeFileSync(this.tmp.report, `${JSON.stringify(report, null, 2)}\n`);
      writeFileSync(this.tmp.manifest, `${JSON.stringify(manifest, null, 2)}\n`);
    } catch (e) {
      throw ioError(e, `writing ${this.paths.manifest}`);
    }
  }

  /** The commit point: three renames with no await between them, the manifest (the entry point) last. */
  commit(): void {
    const aside = this.replacedName();
    try {
      renameSync(this.tmp.npz, this.paths.npz);
      renameSync(this.tmp.report, this.paths.report);
      renameSync(this.tmp.manifest, this.paths.manifest);
    } catch (e) {
      if (aside) unlinkQuietly(aside); // the earlier NPZ keeps its own name
      throw ioError(e, `renaming into ${this.outDir}`);
    }
    this.committed = true;
    if (aside) StagedOutputs.removeReplaced(aside);
  }

  /**
   * A second name for a large earlier NPZ the commit replaces (`.<name>.replaced-<pid>`), or undefined: none, a
   * small one, or a file system without hard links (the rename then frees it, as it always did). At every moment
   * the final name holds the earlier NPZ or the new one.
   */
  private replacedName(): string | undefined {
    try {
      if (statSync(this.paths.npz).size < REPLACE_IN_BACKGROUND_BYTES) return undefined;
    } catch {
      return undefined;
    }
    const aside = join(this.outDir, `.${basename(this.paths.npz)}.replaced-${process.pid}`);
    unlinkQuietly(aside);
    try {
      linkSync(this.paths.npz, aside);
      return aside;
    } catch {
      return undefined;
    }
  }

  /** Removes the temporaries unless committed, and releases the lock; never throws. */
  discard(): void {
    try {
      this.unlock?.();
    } catch {}
    this.unlock = undefined;
    if (this.committed) return;
    for (const f of Object.values(this.tmp)) unlinkQuietly(f);
  }
}

function unlinkQuietly(f: string): void {
  try {
    unlinkSync(f);
  } catch {}
}
