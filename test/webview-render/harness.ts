// Renders the webviews in headless Chromium (playwright-core, the system's /usr/bin/chromium) the way VS Code
// does: the same HTML shell and CSP (client/src/webviews/html.ts), VS Code's theme variables on <html>, the body's
// theme class, and an `acquireVsCodeApi` whose messages go to a host function running in this process.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { build } from 'esbuild';
import { type Browser, chromium, type Page } from 'playwright-core';
import { webviewPage } from '../../client/src/webviews/html';
/** Chromium's flags for tests (offline, no sandbox, no GPU); test/integration/launch.mjs reads the same file. */
import FLAGS from './chromium-flags.json';
import { THEMES, type ThemeName } from './themes';

export const CHROMIUM = '/usr/bin/chromium';
export const ROOT = join(__dirname, '..', '..');
export const OUT = join(ROOT, 'test-output', 'webview-render');
/**
 * How long a test waits for a webview to draw: a hang guard, not a speed test. 10 s was too short once, with the
 * unit tests running two at a time beside Chromium (a report drawn in 10.3 s; alone it takes under 3 s).
 */
export const RENDER_WAIT_MS = 60_000;
const ORIGIN = 'https://webview.test';

/** Why the render tests cannot run here (no Chromium outside CI), or undefined when they can. */
export function skipReason(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  if (process.env.CI === 'true') return undefined; // in CI a missing browser is a failure, not a skip
  return `${CHROMIUM} is missing (install it with: apt-get install -y chromium); set CI=true to make this a failure`;
}

/** Bundles client/webview/<name>.ts into test-output (the same esbuild options as scripts/build.mjs). */
export async function bundleWebviews(): Promise<string> {
  const dir = join(OUT, 'bundle');
  mkdirSync(dir, { recursive: true });
  await build({
    entryPoints: ['report', 'inspector', 'playground'].map((n) => join(ROOT, `client/webview/${n}.ts`)),
    outdir: dir,
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    logLevel: 'silent',
  });
  return dir;
}

export async function launch(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  return chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
}

const TYPES: Record<string, string> = { '.js': 'text/javascript', '.css': 'text/css', '.html': 'text/html' };

export interface RenderedWebview {
  page: Page;
  /** Messages the webview posted, in order. */
  posted: unknown[];
  /** Console errors, page errors and CSP violations seen so far. */
  problems: string[];
  /** Sends a host → webview message. */
  send(msg: unknown): Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens webview `script` ('report' | 'inspector' | 'playground') under `theme`; `onMessage` plays the extension host (it may
 * call `send`). The page is served from a fake origin by request interception: nothing touches the network.
 */
export async function openWebview(
  browser: Browser,
  script: 'report' | 'inspector' | 'playground',
  theme: ThemeName,
  bundleDir: string,
  onMessage: (msg: unknown, send: (m: unknown) => Promise<void>) => void | Promise<void>,
): Promise<RenderedWebview> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  const posted: unknown[] = [];
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  const html = webviewPage({
    cspSource: ORIGIN,
    styles: [`${ORIGIN}/media/base.css`, `${ORIGIN}/media/${script}.css`],
    script: `${ORIGIN}/bundle/${script}.js`,
    title: script,
  });
  await page.route('**/*', async (route) => {
    const url = new URL(route.request().url());
    if (url.origin !== ORIGIN) return route.abort();
    if (url.pathname === '/index.html') return route.fulfill({ status: 200, contentType: 'text/html', body: html });
    const file = url.pathname.startsWith('/media/')
      ? join(ROOT, 'media', url.pathname.slice(7))
      : url.pathname.startsWith('/bundle/')
        ? join(bundleDir, url.pathname.slice(8))
        : '';
    if (!file || !existsSync(file)) return route.fulfill({ status: 404, body: 'not found' });
    return route.fulfill({
      status: 200,
      contentType: TYPES[extname(file)] ?? 'application/octet-stream',
      body: readFileSync(file),
    });
  });
  const send = async (m: unknown) => {
    await page.evaluate(`window.postMessage(${JSON.stringify(m)}, '*')`);
  };
  await page.exposeFunction('__aplHostReceive', async (m: unknown) => {
    posted.push(m);
    await onMessage(m, send);
  });
  const t = THEMES[theme];
  // A string, not a function: tsx's transform would add helpers (__name) that do not exist in the page.
  await page.addInitScript(`(() => {
    let state;
    window.acquireVsCodeApi = () => ({
      postMessage: (m) => window.__aplHostReceive(m),
      getState: () => state,
      setState: (s) => { state = s; },
    });
    const vars = ${JSON.stringify(t.vars)};
    document.addEventListener('DOMContentLoaded', () => {
      for (const [k, v] of Object.entries(vars)) document.documentElement.style.setProperty(k, v);
      document.body.classList.add(${JSON.stringify(t.bodyClass)});
    });
    document.addEventListener('securitypolicyviolation', (e) =>
      console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));
  })()`);
  await page.goto(`${ORIGIN}/index.html`);
  return { page, posted, problems, send, close: () => context.close() };
}

/** Switches a rendered page to another theme in place (as VS Code does when the user changes theme). */
export async function setTheme(page: Page, theme: ThemeName): Promise<void> {
  const t = THEMES[theme];
  await page.evaluate(`(() => {
    const vars = ${JSON.stringify(t.vars)};
    for (const [k, v] of Object.entries(vars)) document.documentElement.style.setProperty(k, v);
    document.body.classList.remove('vscode-light', 'vscode-dark', 'vscode-high-contrast');
    document.body.classList.add(${JSON.stringify(t.bodyClass)});
  })()`);
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(OUT, { recursive: true });
  const path = join(OUT, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
