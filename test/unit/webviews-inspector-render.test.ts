// The inspector webview in headless Chromium on what issue 15 found wrong: grid numbers cut mid-way (exponents
// lost), float16 shown with seven digits, a string member refusing the archive, packed bytes shown for a q member.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { numpyStatus, runPython } from '../helpers/numpy';
import { tempDir } from '../helpers/tmp';
import { RENDER_WAIT_MS, screenshot, skipReason } from '../webview-render/harness';
import { cellText, openInspector, text } from '../webview-render/inspector';
import { renderSuite } from '../webview-render/suite';

const skip = skipReason() ?? (numpyStatus().ok ? undefined : `numpy missing: ${numpyStatus().why}`);

describe('inspector webview: numbers, text members', { skip }, () => {
  const r = renderSuite();
  const dir = tempDir('apl-render-insp-');

  test('grid cells keep exponents whole, float16 shows four digits, a <U5 member shows its strings', async () => {
    const file = join(dir, 'mixed.npz');
    runPython(
      `np.savez(sys.argv[1], names=np.array(['alpha', 'beta', 'gamma']),
  small=np.array([[-1.52587890625e-05, 8.991360664367676e-10], [123456.789, -0.333333343267]], np.float32),
  half=np.array([0.1234567, 3.140625], np.float16), objs=np.array([None], dtype=object))`,
      [file],
    );
    const w = await openInspector(r.browser, r.bundle, file, { ready: '#root[data-state="ready"]' });
    try {
      const { page } = w;
      assert.equal(await page.locator('[data-testid="members"] tbody tr').count(), 4);
      assert.match(await text(page, '[data-testid="members"]'), /names\.npy\s+<U5\s+\(3,\)/);
      assert.match(await text(page, 'tr[data-name="objs.npy"]'), /pickled.*not shown/);

      await page.locator('tr[data-name="small.npy"]').click();
      await page.waitForSelector('[data-testid="detail"][data-state="ready"]', { timeout: RENDER_WAIT_MS });
      assert.equal(await cellText(page, 'raw', 0, 0), '-1.5259e-5');
      assert.equal(await cellText(page, 'raw', 0, 1), '8.9914e-10');
      assert.equal(await cellText(page, 'raw', 1, 1), '-0.3333333');
      // what the cell shows fits it: nothing is cut by the cell's width
      const cut = await page.evaluate(
        () =>
          Array.from(document.querySelectorAll('[data-testid="grid-raw"] .cell[data-value]')).filter(
            (c) => (c as HTMLElement).scrollWidth > (c as HTMLElement).clientWidth,
          ).length,
      );
      assert.equal(cut, 0, 'no cell overflows');

      await page.locator('tr[data-name="half.npy"]').click();
      assert.equal(await cellText(page, 'raw', 0, 0), '0.1235');

      await page.locator('tr[data-name="names.npy"]').click();
      await page.waitForSelector('[data-testid="detail"][data-state="ready"]', { timeout: RENDER_WAIT_MS });
      assert.match(await text(page, '[data-testid="stats"]'), /3 strings: shown as text/);
      assert.equal(await cellText(page, 'raw', 2, 0), 'gamma');
      assert.equal(await page.locator('svg.histogram').count(), 0);
      await screenshot(page, 'inspector-text-member-dark');
      assert.deepEqual(w.problems, []);
    } finally {
      await w.close();
    }
  });
  test("a q member shows its dequantized weight first, then its unpacked codes, never the packed bytes' comb", async () => {
    const fixtures = join(__dirname, 'inspect', 'fixtures');
    const qdir = mkdtempSync(join(dir, 'q-'));
    for (const f of ['tiny_quantized_q4.npz', 'tiny_manifest_q4.json']) copyFileSync(join(fixtures, f), join(qdir, f));
    const w = await openInspector(r.browser, r.bundle, join(qdir, 'tiny_quantized_q4.npz'), {
      ready: '#root[data-state="ready"]',
    });
    try {
      const { page } = w;
      await page.locator('tr[data-name="layers_0_q_proj_weight_q4.npy"]').click();
      await page.waitForSelector('[data-testid="detail"][data-state="ready"] [data-testid="codes"]', {
        timeout: RENDER_WAIT_MS,
      });
      const order = await page.evaluate(() =>
        Array.from(document.querySelectorAll('[data-testid="dequant"], [data-testid="codes"]'), (e) =>
          e.getAttribute('data-testid'),
        ),
      );
      assert.deepEqual(order, ['dequant', 'codes'], 'the dequantized weight comes first');
      assert.match(await text(page, '[data-testid="codes"] h3'), /0 … 15, 6 × 10/);
      const max = Number((await text(page, '[data-testid="codes"] [data-testid="stats"]')).match(/Max\s+(\S+)/)?.[1]);
      assert.ok(max <= 15, `codes max ${max}`);
      // the grid opens on the dequantized values; the codes tab pages codes 0…15
      assert.equal(await page.locator('.tabs button.active').getAttribute('data-view'), 'dequant');
      await cellText(page, 'dequant', 0, 0);
      await page.locator('.tabs button[data-view="codes"]').click();
      const want = (await w.session.page('layers_0_q_proj_weight_q4.npy', 'codes', 0, 1, 0, 1)).values[0];
      assert.equal(await cellText(page, 'codes', 0, 0), String(want));
      await screenshot(page, 'inspector-quantized-weight-dark');
      assert.deepEqual(w.problems, []);
    } finally {
      await w.close();
    }
  });
});
