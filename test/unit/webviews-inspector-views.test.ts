// The inspector webview (headless Chromium) on issue 15's inspector items: a safetensors checkpoint, a 3-d tensor by
// slice (axis pickers, index sliders), comparisons (two members; shapes that differ refused), a quantized archive
// grouped by weight in a table that grows, and the error view's histogram and heat map.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { InspectorToHost } from '../../server/src/protocol';
import { numpyStatus, runPython } from '../helpers/numpy';
import { tempDir } from '../helpers/tmp';
import { RENDER_WAIT_MS, screenshot, skipReason } from '../webview-render/harness';
import { cellText, openInspector, text } from '../webview-render/inspector';
import { quantizedWithSource, renderSuite } from '../webview-render/suite';

const skip = skipReason();
const fixtures = join(__dirname, '..', 'fixtures', 'inspector');

describe('inspector webview: safetensors, slices, comparisons, grouping, error figures', { skip }, () => {
  const r = renderSuite();
  const dir = tempDir('apl-render-views-');

  const open = (file: string) => openInspector(r.browser, r.bundle, file, { ready: '#root[data-state="ready"]' });

  test('a sharded safetensors checkpoint lists its tensors with their shards; two members compare', async () => {
    const w = await open(join(fixtures, 'sharded', 'model.safetensors.index.json'));
    try {
      const { page } = w;
      assert.match(await text(page, '[data-testid="meta"]'), /SAFETENSORS .* 4 tensors/);
      assert.match(await text(page, 'tr[data-name="layers.1.weight"]'), /float16\s+\(4, 8\).*model-00002-of-00002/);
      await page.locator('tr[data-name="embed.weight"]').click();
      await page.waitForSelector('[data-testid="detail"][data-state="ready"]', { timeout: RENDER_WAIT_MS });
      assert.equal(await cellText(page, 'raw', 0, 0), '-1.5');
      assert.deepEqual(w.problems, []);
    } finally {
      await w.close();
    }
    const v = await open(join(fixtures, 'tiny.safetensors'));
    try {
      const { page } = v;
      await page.locator('tr[data-name="embed.weight_f32"]').click();
      await page.waitForSelector('[data-testid="compare-with"]', { timeout: RENDER_WAIT_MS });
      await page.selectOption('[data-testid="compare-with"]', 'embed.weight');
      await page.waitForSelector('[data-testid="compare-result"][data-state="ready"]', { timeout: RENDER_WAIT_MS });
      const figures = await text(page, '[data-testid="compare-figures"]');
      assert.match(figures, /max \|d\|\s+\S+/);
      assert.match(figures, /RMS\s+\S+/);
      assert.match(figures, /Relative error\s+0\.\d+ %/);
      assert.equal(await page.locator('[data-testid="compare-stats-histogram"] svg.histogram').count(), 1);
      assert.equal(await page.locator('[data-testid="compare-stats-heatmap"] canvas').count(), 1);
      // the difference grid: bf16(x) − x at [0, 1] (x = 1/7 − 1.5)
      const x = Math.fround(1 / 7 - 1.5);
      const want = (await v.session.page('embed.weight', 'raw', 0, 1, 1, 1)).values[0] as number;
      assert.equal(Number(await cellText(page, 'diff', 0, 1)).toPrecision(3), (want - x).toPrecision(3));
      await screenshot(page, 'inspector-compare-dark');
      await page.selectOption('[data-testid="compare-with"]', 'odd');
      await page.waitForSelector('[data-testid="compare-error"]', { timeout: RENDER_WAIT_MS });
      assert.equal(
        await text(page, '[data-testid="compare-error"]'),
        'cannot compare embed.weight_f32 (6, 4) with odd (3, 4): the shapes differ',
      );
      assert.deepEqual(v.problems, []);
    } finally {
      await v.close();
    }
  });

  test('a 3-d tensor is shown by slice: axis pickers and an index slider page only the slice', async () => {
    const w = await open(join(fixtures, 'cube.npy'));
    try {
      const { page } = w;
      await page.waitForSelector('[data-testid="slice-figures"][data-state="ready"]', { timeout: RENDER_WAIT_MS });
      assert.match(await text(page, '[data-testid="slice-text"]'), /\[0, :, :\]/);
      assert.equal(await cellText(page, 'raw', 1, 2), '12');
      await page.locator('[data-testid="slice-index-0"]').fill('2');
      await page.waitForFunction(
        () => document.querySelector('[data-testid="slice-text"]')?.textContent?.includes('[2, :, :]'),
        undefined,
        { timeout: RENDER_WAIT_MS },
      );
      assert.equal(await cellText(page, 'raw', 1, 2), '212');
      await page.waitForSelector('[data-testid="slice-figures"][data-state="ready"]', { timeout: RENDER_WAIT_MS });
      assert.match(await text(page, '[data-testid="slice-stats"]'), /Min\s+200\s+Max\s+245/);
      // rows: axis 0, columns: axis 2, an index on axis 1
      await page.selectOption('[data-testid="slice-rows"]', '0');
      await page.waitForSelector('[data-testid="slice-index-1"]', { timeout: RENDER_WAIT_MS });
      assert.match(await text(page, '[data-testid="slice-text"]'), /\[:, 0, :\]/);
      await page.locator('[data-testid="slice-index-1"]').fill('4');
      assert.equal(await cellText(page, 'raw', 3, 5), '345');
      const pages = w.posted.filter((m) => (m as InspectorToHost).type === 'page') as Extract<
        InspectorToHost,
        { type: 'page' }
      >[];
      assert.ok(pages.length > 0 && pages.every((p) => p.slice), 'every page asks for a slice');
      await screenshot(page, 'inspector-slice-3d-dark');
      assert.deepEqual(w.problems, []);
    } finally {
      await w.close();
    }
  });

  test('a quantized archive groups members by weight; the error view has its histogram and heat map', async () => {
    const w = await open((await quantizedWithSource(mkdtempSync(join(dir, 'q-')))).npz);
    try {
      const { page } = w;
      const group = page.locator('tr.group[data-weight="layers.0.q_proj.weight"]');
      assert.equal(await group.count(), 1);
      assert.match(
        await text(page, 'tr.group[data-weight="layers.0.q_proj.weight"]'),
        /4-bit, groups of 4\s+3 members/,
      );
      // the weight's members follow its row: q, scales, zero point
      const order = await page.evaluate(() =>
        Array.from(document.querySelectorAll('[data-testid="members"] tbody tr'), (tr) =>
          tr.classList.contains('group') ? `group:${tr.getAttribute('data-weight')}` : tr.getAttribute('data-name'),
        ),
      );
      const at = order.indexOf('group:layers.0.q_proj.weight');
      assert.deepEqual(order.slice(at + 1, at + 4), [
        'layers_0_q_proj_weight_q4.npy',
        'layers_0_q_proj_weight_q4_scales.npy',
        'layers_0_q_proj_weight_q4_zero_point.npy',
      ]);
      await group.click();
      await page.waitForSelector('[data-testid="error-figures"]', { timeout: RENDER_WAIT_MS });
      assert.equal(await page.locator('[data-testid="error-stats-histogram"] svg.histogram').count(), 1);
      assert.equal(await page.locator('[data-testid="error-stats-heatmap"] canvas').count(), 1);
      const dq = (await w.session.tensor('layers_0_q_proj_weight_q4.npy')).dequant!;
      const max = Number((await text(page, '[data-testid="error-stats"]')).match(/Max\s+(\S+)/)?.[1]);
      assert.ok(Math.abs(max - dq.source.error!.stats.max) <= 1e-3 * Math.abs(dq.source.error!.stats.max) + 1e-9);
      await screenshot(page, 'inspector-quantized-error-dark');
      assert.deepEqual(w.problems, []);
    } finally {
      await w.close();
    }
  });

  test('the member table grows past a dozen rows and scrolls', {
    skip: !numpyStatus().ok && 'numpy missing',
  }, async () => {
    const file = join(dir, 'many.npz');
    runPython(`np.savez(sys.argv[1], **{f'm{i:02d}': np.arange(i + 1, dtype=np.float32) for i in range(40)})`, [file]);
    const w = await open(file);
    try {
      const { page } = w;
      const shown = await page.evaluate(() => {
        const box = document.querySelector('[data-testid="members-scroll"]')!.getBoundingClientRect();
        return Array.from(document.querySelectorAll('[data-testid="members"] tbody tr')).filter((tr) => {
          const r = tr.getBoundingClientRect();
          return r.top >= box.top && r.bottom <= box.bottom;
        }).length;
      });
      assert.ok(shown > 12, `${shown} rows in view`);
      const scrolls = await page.evaluate(() => {
        const el = document.querySelector('[data-testid="members-scroll"]')!;
        return el.scrollHeight > el.clientHeight && getComputedStyle(el).resize === 'vertical';
      });
      assert.ok(scrolls, 'the rest scrolls, and the table can be resized');
      assert.deepEqual(w.problems, []);
    } finally {
      await w.close();
    }
  });
});
