// The suite's tiny test API, shared by every *.itest.ts file (each is bundled separately, so the registry lives on
// globalThis). Tests run in the extension host with the real `vscode` API, under either launcher.
//
//   import { test, waitFor, screenshot } from './harness';
//   test('the report lists the weights', async () => { ... }, { timeout: 60_000 });
//
// No sleeps: wait for events (waitForEvent), for files (waitForFile) or, where VS Code has no event for a state
// (an extension becoming active), for a condition checked on a short interval with a bounded timeout (waitFor).

import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, watch } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import * as vscode from 'vscode';
import type { RenderedProbe, WebviewRenderedEvent } from '../../../client/src/webviews/index';

/** Lines with this prefix are the suite's own output (test/integration/prepare.mjs has the same constant). */
export const SUITE_PREFIX = '[apl-itest] ';
export const EXTENSION_ID = 'apl.apl-quantizer';
export const DEFAULT_TIMEOUT_MS = 30_000;

export interface TestCase {
  name: string;
  fn: () => unknown;
  timeoutMs: number;
  skip?: string;
}

const REGISTRY = Symbol.for('apl.itest.registry');
export function registry(): TestCase[] {
  const g = globalThis as unknown as Record<symbol, TestCase[]>;
  g[REGISTRY] ??= [];
  return g[REGISTRY];
}

/** Registers a test. `skip` (a reason) reports it as skipped. */
export function test(name: string, fn: () => unknown, opts: { timeout?: number; skip?: string | false } = {}): void {
  registry().push({ name, fn, timeoutMs: opts.timeout ?? DEFAULT_TIMEOUT_MS, skip: opts.skip || undefined });
}

/** One line of suite output (both launchers show these). */
export function out(line: string): void {
  for (const l of line.split('\n')) console.log(`${SUITE_PREFIX}${l}`);
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const PROBE = Symbol.for('apl.webviews.rendered');

/** The next `rendered` event a webview posts (RENDERED_PROBE) that `accept` takes; subscribe before causing it. */
export function nextRendered(
  accept: (e: WebviewRenderedEvent) => boolean,
  ms: number,
  what: string,
): Promise<WebviewRenderedEvent> {
  const p = (globalThis as unknown as Record<symbol, RenderedProbe | undefined>)[PROBE];
  if (!p) throw new Error('the extension has not published its webview probe (is it active?)');
  let listener: ((e: WebviewRenderedEvent) => void) | undefined;
  const got = new Promise<WebviewRenderedEvent>((resolve) => {
    listener = (e) => {
      if (accept(e)) resolve(e);
    };
    p.listeners.add(listener);
  });
  return withTimeout(got, ms, what).finally(() => p.listeners.delete(listener!));
}

/**
 * Runs `command` on `file` (by default vscode.open: its default editor) and waits up to 45 s for the file's first
 * `what` render (`label` names it in the timeout's message).
 */
export async function openRendered(
  file: string,
  what: string,
  label: string,
  command = 'vscode.open',
): Promise<WebviewRenderedEvent> {
  const shown = nextRendered((e) => e.what === what && e.file === file, 45_000, label);
  await vscode.commands.executeCommand(command, vscode.Uri.file(file));
  return shown;
}

/** The first event (matching `accept`) that fires within `ms`. Subscribe before causing the event. */
export function waitForEvent<T>(
  event: vscode.Event<T>,
  ms: number,
  what: string,
  accept: (e: T) => boolean = () => true,
): Promise<T> {
  let sub: vscode.Disposable | undefined;
  const p = new Promise<T>((resolve) => {
    sub = event((e) => {
      if (accept(e)) resolve(e);
    });
  });
  return withTimeout(p, ms, what).finally(() => sub?.dispose());
}

/** A condition with no event of its own, checked every 25 ms up to `ms`. */
export function waitFor<T>(check: () => T | undefined | false, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = () => {
      let v: T | undefined | false;
      try {
        v = check();
      } catch (e) {
        reject(e);
        return;
      }
      if (v) resolve(v);
      else if (Date.now() - t0 > ms) reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      else setTimeout(tick, 25);
    };
    tick();
  });
}

/** Resolves when `path` exists (a file-system watch on its folder, bounded by `ms`). */
export function waitForFile(path: string, ms: number): Promise<string> {
  if (existsSync(path)) return Promise.resolve(path);
  return new Promise((resolve, reject) => {
    const dir = dirname(path);
    const w = watch(dir, (_kind, name) => {
      if ((name === null || String(name) === basename(path)) && existsSync(path)) done();
    });
    const timer = setTimeout(() => {
      w.close();
      reject(new Error(`timed out after ${ms} ms waiting for ${path}`));
    }, ms);
    const done = () => {
      clearTimeout(timer);
      w.close();
      resolve(path);
    };
    if (existsSync(path)) done();
  });
}

/**
 * Asks the launcher for a PNG screenshot of the workbench and waits for it. Only the offline (code-server)
 * launcher takes screenshots; under the Electron launcher this returns undefined.
 */
export async function screenshot(name: string, ms = 20_000): Promise<string | undefined> {
  const dir = process.env.APL_ITEST_SCREENSHOTS;
  if (!dir) return undefined;
  const safe = name.replace(/[^\w.-]+/g, '_').slice(0, 80);
  out(`screenshot ${safe}`);
  const file = await waitForFile(join(dir, `${safe}.png`), ms);
  const sig = readFileSync(file).subarray(0, 8);
  if (!sig.equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])))
    throw new Error(`${file} is not a PNG`);
  return file;
}

/** One keyboard or DOM step the offline launcher performs in the workbench page (playwright). */
export type UiStep =
  | { press: string } // a key, e.g. 'F1', 'Enter', 'ArrowDown'
  | { type: string } // text typed into the focused element
  | { click: string } // a CSS selector
  | { waitFor: string; state?: 'visible' | 'hidden' | 'attached' } // a CSS selector
  | { waitForText: string }
  // The same inside the extension's webviews (the first frame showing the selector)
  | { webviewClick: string }
  | { webviewSelect: string; value: string }
  | { webviewFill: string; value: string }
  | { webviewWaitFor: string };

/** True where the launcher can drive the workbench page (the offline launcher); tests skip UI steps elsewhere. */
export const canDriveUi = (): boolean => !!process.env.APL_ITEST_SCREENSHOTS;

/**
 * Asks the offline launcher to perform `steps` in the workbench page, as a user would, and waits until it has.
 * Throws with the launcher's message when a step fails (e.g. a selector never appeared).
 */
export async function ui(steps: UiStep[], ms = 120_000): Promise<void> {
  const dir = process.env.APL_ITEST_SCREENSHOTS;
  if (!dir) throw new Error('ui(): only the offline launcher can drive the page (check canDriveUi())');
  const id = randomUUID().replace(/-/g, '');
  const uiDir = join(dirname(dir), 'ui');
  mkdirSync(uiDir, { recursive: true });
  out(`ui ${id} ${JSON.stringify(steps)}`);
  const result = readFileSync(await waitForFile(join(uiDir, `${id}.done`), ms), 'utf8');
  if (result !== 'ok') throw new Error(`ui steps failed: ${result}`);
}

export function extension(): vscode.Extension<unknown> {
  const ext = vscode.extensions.getExtension(EXTENSION_ID);
  if (!ext) throw new Error(`extension ${EXTENSION_ID} is not installed in this VS Code`);
  return ext;
}

/** The test workspace folder (a fresh copy of test/integration/workspace). */
export function workspaceDir(): string {
  const f = vscode.workspace.workspaceFolders?.[0];
  if (!f) throw new Error('no workspace folder open: the launcher opens test-output/integration/workspace');
  return f.uri.fsPath;
}

/** Opens a workspace file in an editor. */
export async function openFile(rel: string): Promise<vscode.TextEditor> {
  const doc = await vscode.workspace.openTextDocument(join(workspaceDir(), rel));
  return vscode.window.showTextDocument(doc);
}
