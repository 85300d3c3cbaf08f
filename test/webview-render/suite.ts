// What the render test files share around their tests: one bundle and one Chromium per describe(), the report
// webview opened on a report, and the quantized fixture archive beside a manifest whose source checkpoint holds numpy's float weight.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before } from 'node:test';
import type { Browser } from 'playwright-core';
import { readNpyArray } from '../../server/src/formats/npy';
import { writeSafetensors } from '../../server/src/formats/safetensors';
import { openFileSource } from '../../server/src/formats/source';
import { bundleWebviews, launch, openWebview, RENDER_WAIT_MS, type RenderedWebview } from './harness';
import type { ThemeName } from './themes';

/** Filled in by renderSuite's before(): the bundled webviews' folder and the browser. */
export interface RenderSuite {
  bundle: string;
  browser: Browser;
}

/** Call inside describe(): bundles the webviews and launches Chromium before its tests, closes it after them. */
export function renderSuite(): RenderSuite {
  const s = {} as RenderSuite;
  before(async () => {
    s.bundle = await bundleWebviews();
    s.browser = await launch();
  });
  after(async () => {
    await s.browser?.close();
  });
  return s;
}

/** The report webview sent `report` (title 'x') once it is ready, under `theme`; resolves when it has drawn it. */
export async function openReport(
  s: RenderSuite,
  report: unknown,
  theme: ThemeName = 'light',
): Promise<RenderedWebview> {
  const w = await openWebview(s.browser, 'report', theme, s.bundle, async (m, send) => {
    if ((m as { type: string }).type === 'ready') await send({ type: 'report', report, title: 'x' });
  });
  await w.page.waitForSelector('#root[data-state="ready"]', { timeout: RENDER_WAIT_MS });
  return w;
}

const QFIXTURES = join(__dirname, '..', 'unit', 'inspect', 'fixtures');

/**
 * Copies the fixture archive tiny_quantized_q4.npz into `dir` beside its manifest, whose model.source names
 * `dir`/source: a safetensors checkpoint holding numpy_single.npy as layers.0.q_proj.weight. Returns the archive's
 * path and that weight.
 */
export async function quantizedWithSource(dir: string): Promise<{ npz: string; weight: Float32Array }> {
  copyFileSync(join(QFIXTURES, 'tiny_quantized_q4.npz'), join(dir, 'tiny_quantized_q4.npz'));
  const manifest = JSON.parse(readFileSync(join(QFIXTURES, 'tiny_manifest_q4.json'), 'utf8'));
  manifest.model.source = join(dir, 'source');
  writeFileSync(join(dir, 'tiny_manifest_q4.json'), JSON.stringify(manifest));
  const src = await openFileSource(join(QFIXTURES, 'numpy_single.npy'));
  const weight = (await readNpyArray(src)).data as Float32Array;
  await src.close();
  mkdirSync(join(dir, 'source'));
  await writeSafetensors(join(dir, 'source', 'model.safetensors'), [
    { name: 'layers.0.q_proj.weight', dtype: 'F32', shape: [6, 10], data: new Uint8Array(weight.buffer) },
  ]);
  return { npz: join(dir, 'tiny_quantized_q4.npz'), weight };
}
