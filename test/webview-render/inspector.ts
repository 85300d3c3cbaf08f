// What the render tests share to read a rendered webview and to open the tensor inspector on a file the way the
// extension does (an InspectorSession, its host function, the inspector webview wired to both).
import type { Browser, Page } from 'playwright-core';
import { inspectorHost } from '../../server/src/inspect/host';
import { InspectorSession } from '../../server/src/inspect/session';
import type { InspectorToHost } from '../../server/src/protocol';
import { openWebview, RENDER_WAIT_MS, type RenderedWebview } from './harness';
import type { ThemeName } from './themes';

/** The element's text as a user reads it (each block on its own line). */
// biome-ignore lint/performance/useDomNodeTextContent: the rendered text is what the tests assert
export const text = (page: Page, sel: string): Promise<string> => page.locator(sel).innerText();

/** The text of cell [r, c] of grid `grid` once it has loaded (not the '…' placeholder). */
export const cellText = (page: Page, grid: string, r: number, c: number): Promise<string> =>
  page
    .waitForFunction(
      ([g, t]) => {
        const el = document.querySelector(`[data-testid="grid-${g}"] .cell[title="${t}"]`);
        return el && el.textContent !== '…' ? el.textContent : null;
      },
      [grid, `[${r}, ${c}]`] as const,
      { timeout: RENDER_WAIT_MS },
    )
    .then((h) => h.jsonValue() as Promise<string>);

export interface RenderedInspector extends RenderedWebview {
  session: InspectorSession;
}

/**
 * Opens `file` in an inspector session and the inspector webview under `theme`; close() closes the page, the host
 * and the session. Waits for `ready` (a CSS selector) when given.
 */
export async function openInspector(
  browser: Browser,
  bundle: string,
  file: string,
  options: { theme?: ThemeName; ready?: string } = {},
): Promise<RenderedInspector> {
  const session = await InspectorSession.open(file);
  let send: (m: unknown) => Promise<void> = async () => {};
  const host = inspectorHost(session, (m) => send(m));
  let w: RenderedWebview;
  try {
    w = await openWebview(browser, 'inspector', options.theme ?? 'dark', bundle, (m, s) => {
      send = s;
      return host(m as InspectorToHost);
    });
  } catch (e) {
    await host.dispose();
    await session.close();
    throw e;
  }
  const close = async () => {
    await w.close();
    await host.dispose();
    await session.close();
  };
  if (options.ready) {
    try {
      await w.page.waitForSelector(options.ready, { timeout: RENDER_WAIT_MS });
    } catch (e) {
      await close();
      throw e;
    }
  }
  return { ...w, session, close };
}
