// The report webview's end-to-end section (convert --eval, issue 12) and its "what these numbers mean", rendered in
// headless Chromium: figures, the KLD histogram, the verdict's basis, the absent and failed cases, the filter in
// percent (issue 15 item 8). Screenshots under test-output/webview-render/. Skips where /usr/bin/chromium is missing.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { kldHistogram } from '../../server/src/eval/stats';
import { screenshot, setTheme, skipReason } from '../webview-render/harness';
import { text } from '../webview-render/inspector';
import { openReport, renderSuite } from '../webview-render/suite';

const skip = skipReason();

/** A 4-bit report of two weights with an end-to-end section (1,000 tokens, KLDs spread over three decades). */
const KLDS = Array.from({ length: 1000 }, (_, i) => 10 ** (-5 + (3 * i) / 999));

function report(endToEnd?: unknown) {
  const klds = KLDS;
  const mean = klds.reduce((a, b) => a + b, 0) / klds.length;
  const e2e = endToEnd ?? {
    tokens_scored: 1000,
    ppl: 310.5,
    ppl_se: 5,
    ppl_float: 307.8,
    ppl_float_se: 5,
    ppl_ratio: 1.0088,
    ln_ppl_ratio: 0.0087,
    ln_ppl_ratio_se: 0.001,
    kld_mean: mean,
    kld_se: 0.0004,
    kld_median: 0.00031,
    kld_p90: 0.005,
    kld_p99: 0.0093,
    kld_p999: 0.0099,
    kld_max: 0.01,
    dp_mean: -0.001,
    dp_se: 0.0002,
    rms_dp: 0.012,
    same_top: 0.9731,
    same_top_se: 0.0051,
    kld_histogram: kldHistogram(klds),
    ctx: 256,
    chunks: 8,
    chunks_available: 60,
    text: { name: 'heldout.txt', sha256: 'a'.repeat(64), tokens: 15400 },
    backend: 'cpu-avx2',
    backend_float: 'cpu-avx2',
    seconds: 12.5,
    thresholds: { kld_mean: 0.05, same_top: 0.9 },
    pass: true,
  };
  const w = (name: string, rel: number) => ({
    name,
    bits: 4,
    group_size: 64,
    rel_error: rel,
    output_rel_error: rel,
    snr_db: 21,
    cosine: 0.997,
    max_abs_error: 0.01,
    tolerance: 0.1,
    pass: true,
  });
  return {
    model: 'brown-tiny',
    bits: 4,
    group_size: 64,
    tolerance: { 1: 0.5, 2: 0.2, 4: 0.1, 8: 0.02 },
    pass: true,
    verdict_basis:
      'per weight: 2 of 2 weights have relative error and output error within tolerance (10 % at 4 bits) — pass; end to end (1000 tokens of heldout.txt, ctx 256, 8 chunks): mean KLD 0.00145 (threshold ≤ 0.05) and same top 97.31 % (threshold ≥ 90 %) — pass',
    weights: [w('model.layers.0.mlp.up_proj.weight', 0.0835), w('model.layers.0.mlp.down_proj.weight', 0.07)],
    ...(endToEnd === null ? {} : { end_to_end: e2e }),
  };
}

describe('report webview: end-to-end section', { skip }, () => {
  const s = renderSuite();

  const open = (r: unknown, theme: 'light' | 'dark' = 'light') => openReport(s, r, theme);

  test('figures, histogram, thresholds and the verdict basis; the filter in percent', async () => {
    const w = await open(report());
    try {
      const { page } = w;
      const figures = await text(page, '[data-testid="end-to-end-figures"]');
      assert.match(figures, /Perplexity\s+310\.5 quantized vs 307\.8 float \(ratio 1\.0088\)/);
      assert.match(figures, /Same top token\s+97\.31 % ± 0\.51 %/);
      assert.match(figures, /KLD \(nats\)\s+mean 0\.00145 ± 0\.0004, median 0\.00031/);
      assert.match(figures, /1000 tokens of heldout\.txt \(ctx 256, 8 chunks/);
      assert.match(figures, /pass mean KLD ≤ 0\.05 and same top ≥ 90\.00 %/);
      // 1,000 KLDs over three decades at 4 bins a decade: the filled bins, padded by one empty bin at each end.
      const counts = kldHistogram(KLDS).counts;
      const last = counts.length - 1 - [...counts].reverse().findIndex((c) => c > 0);
      const filled = last - counts.findIndex((c) => c > 0) + 1;
      assert.ok(filled >= 12 && filled <= 14, String(filled));
      const bars = page.locator('[data-testid="kld-histogram"] rect.bar');
      assert.equal(await bars.count(), filled + 2);
      const titles = await page.locator('[data-testid="kld-histogram"] rect.bar title').allTextContents();
      const total = titles.reduce((a, t) => a + Number(/^(\d+) tokens/.exec(t)?.[1] ?? 0), 0);
      assert.equal(total, 1000);
      assert.deepEqual(await page.locator('[data-testid="kld-histogram"] text.tick').allTextContents(), [
        String(Math.max(...counts)),
        '0',
        '10⁻⁵',
        '10⁻⁴',
        '10⁻³',
        '10⁻²',
      ]);
      assert.equal(await page.locator('[data-testid="kld-histogram"] line.mean').count(), 1);
      assert.match(await text(page, '[data-testid="verdict-basis"]'), /^per weight: 2 of 2 .* end to end .* — pass$/);
      assert.match(
        (await page.locator('[data-testid="explain"]').textContent()) ?? '',
        /a weight passes when both its relative error and its output relative error are within the tolerance of its bit width \(50\.00 % at 1 bits, 20\.00 % at 2 bits, 10\.00 % at 4 bits, 2\.00 % at 8 bits\)/,
      );
      const rows = page.locator('[data-testid="weights"] tbody tr');
      for (const q of ['err>8', 'err>8%', 'err>0.08']) {
        await page.fill('#filter input', q);
        assert.equal(await rows.count(), 1, q);
        assert.equal(await rows.first().getAttribute('data-name'), 'model.layers.0.mlp.up_proj.weight');
      }
      await page.fill('#filter input', '');
      await page.locator('[data-testid="explain"] summary').click();
      await page.locator('[data-testid="end-to-end"]').scrollIntoViewIfNeeded();
      for (const theme of ['light', 'dark', 'high-contrast'] as const) {
        await setTheme(page, theme);
        await screenshot(page, `report-end-to-end-${theme}`);
      }
      assert.deepEqual(w.problems, []);
    } finally {
      await w.close();
    }
  });

  test('no section: a line saying how to get one; a failed check: its error', async () => {
    const none = await open(report(null), 'dark');
    try {
      assert.match(
        await text(none.page, '[data-testid="end-to-end-missing"]'),
        /run APL: Evaluate Model… \(or apl-quant eval <manifest> --text FILE --update-report\)/,
      );
      assert.match(await text(none.page, '[data-testid="verdict-basis"]'), /per weight/);
      assert.deepEqual(none.problems, []);
    } finally {
      await none.close();
    }
    const failed = await open(report({ error: 'short.txt: the text is 16 tokens, shorter than one chunk of 256' }));
    try {
      assert.match(
        await text(failed.page, '[data-testid="end-to-end-error"]'),
        /failed to run: short\.txt: the text is 16 tokens.*rests on the weights alone/,
      );
      assert.equal(await failed.page.locator('[data-testid="kld-histogram"]').count(), 0);
      assert.deepEqual(failed.problems, []);
    } finally {
      await failed.close();
    }
  });
});
