// The report and inspector webviews rendered in headless Chromium in light, dark and high-contrast themes: DOM
// content asserted, no CSP violations or script errors, screenshots under test-output/webview-render/.
// Skips (with the reason) where /usr/bin/chromium is missing, unless CI=true.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { writeNpyFile } from '../../server/src/formats/npy';
import { loadReport } from '../../server/src/inspect/host';
import type { HostToPlayground, InspectorToHost } from '../../server/src/protocol';
import { tempDir } from '../helpers/tmp';
import { openWebview, RENDER_WAIT_MS, screenshot, setTheme, skipReason } from '../webview-render/harness';
import { cellText, openInspector, text } from '../webview-render/inspector';
import { openReport, quantizedWithSource, renderSuite } from '../webview-render/suite';
import type { ThemeName } from '../webview-render/themes';

const skip = skipReason();
const fixtures = join(__dirname, 'inspect', 'fixtures');
const THEMES: ThemeName[] = ['light', 'dark', 'high-contrast'];
const BACKGROUNDS: Record<ThemeName, string> = {
  light: 'rgb(255, 255, 255)',
  dark: 'rgb(30, 30, 30)',
  'high-contrast': 'rgb(0, 0, 0)',
};
const PROJ = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

/** A report shaped like the converter's, for a 2-layer model, with one weight over its tolerance. */
function sampleReport() {
  const weights: Record<string, unknown>[] = [
    {
      name: 'model.embed_tokens.weight',
      bits: 8,
      group_size: 64,
      layer: null,
      rel_error: 0.006,
      snr_db: 44.1,
      cosine: 0.99998,
      max_abs_error: 0.004,
      output_rel_error: 0.006,
      tolerance: 0.02,
      pass: true,
    },
  ];
  for (let l = 0; l < 2; l++) {
    PROJ.forEach((p, j) => {
      const rel = 0.05 + 0.004 * j + 0.01 * l;
      const mlp = p.startsWith('gate') || p.startsWith('up') || p.startsWith('down');
      weights.push({
        name: `model.layers.${l}.${mlp ? 'mlp' : 'self_attn'}.${p}.weight`,
        bits: 4,
        group_size: 64,
        layer: l,
        rel_error: l === 1 && p === 'down_proj' ? 0.131 : rel,
        snr_db: 25 - j,
        cosine: 0.998,
        max_abs_error: 0.02,
        output_rel_error: rel * 1.02,
        tolerance: 0.1,
        pass: !(l === 1 && p === 'down_proj'),
      });
    });
  }
  weights.push({
    name: 'lm_head.weight',
    bits: 8,
    group_size: 64,
    layer: null,
    rel_error: 0.007,
    tolerance: 0.02,
    pass: true,
  });
  return {
    model: 'tiny-llama',
    source: 'test/fixtures/tiny-llama',
    revision: null,
    bits: 4,
    group_size: 64,
    symmetric: false,
    mode: 'optimized',
    embeddings_bits: 8,
    tool_version: '0.1.0',
    backend: 'cpu-avx2',
    seconds: 0.42,
    sizes: { source_bytes: 4_194_304, output_bytes: 1_179_648, bits_per_weight: 4.5, params: 2_097_152 },
    tolerance: { 1: 0.5, 2: 0.2, 4: 0.1, 8: 0.02 },
    pass: false,
    weights,
    layers: [],
  };
}

describe('webviews rendered in Chromium', { skip }, () => {
  const s = renderSuite();
  let reportFile: string;
  before(async () => {
    const dir = tempDir('apl-render-');
    reportFile = join(dir, 'tiny-llama_accuracy_q4.json');
    writeFileSync(reportFile, JSON.stringify(sampleReport()));
    writeFileSync(
      join(dir, 'tiny-llama_manifest_q4.json'),
      JSON.stringify({
        weights: [],
        metadata: { npz: 'tiny-llama_quantized_q4.npz', accuracy_report: 'tiny-llama_accuracy_q4.json' },
      }),
    );
  });

  test('accuracy report: summary, chart, heat map, sortable and filterable table, in every theme', async () => {
    const msg = await loadReport(reportFile);
    assert.match(msg.manifest ?? '', /tiny-llama_manifest_q4\.json$/);
    const w = await openWebview(s.browser, 'report', 'light', s.bundle, async (m, send) => {
      if ((m as { type: string }).type === 'ready') await send(msg);
    });
    try {
      const { page } = w;
      await page.waitForSelector('#root[data-state="ready"]', { timeout: RENDER_WAIT_MS });
      const summary = await text(page, '[data-testid="summary"]');
      assert.match(summary, /tiny-llama/);
      assert.match(summary, /4\.00 MiB → 1\.13 MiB/);
      assert.match(summary, /cpu-avx2/);
      assert.match(summary, /15 of 16 weights within tolerance/);
      assert.equal(await text(page, 'h1 [data-testid="verdict"]'), 'FAIL');
      // chart: one bar per weight, one over its tolerance, and the tolerance line
      assert.equal(await page.locator('svg.chart rect.bar').count(), 16);
      assert.equal(await page.locator('svg.chart rect.bar.over').count(), 1);
      assert.equal(await page.locator('svg.chart path.tolerance').count(), 1);
      // round ticks and an axis label; the chart fills the panel (issue 15 item 8)
      assert.deepEqual(await page.locator('svg.chart text.tick').allTextContents(), ['0%', '5%', '10%', '15%']);
      assert.equal(await page.locator('svg.chart text.axis').textContent(), 'relative error');
      assert.equal(await page.locator('svg.chart').getAttribute('width'), '100%');
      // heat map: 2 layers × 7 projections, the failing cell marked
      assert.equal(await page.locator('[data-testid="heatmap"] tbody tr').count(), 2);
      assert.equal(await page.locator('[data-testid="heatmap"] tbody td').count(), 14);
      assert.equal(await page.locator('[data-testid="heatmap"] td.over').textContent(), '13.1');
      // the table: all weights, sortable, filterable
      const rows = page.locator('[data-testid="weights"] tbody tr');
      assert.equal(await rows.count(), 16);
      await page.locator('th[data-key="rel_error"]').click(); // numbers sort descending first
      assert.equal(await rows.first().getAttribute('data-name'), 'model.layers.1.mlp.down_proj.weight');
      assert.equal(await page.locator('th[data-key="rel_error"]').getAttribute('aria-sort'), 'descending');
      await page.locator('th[data-key="rel_error"]').click();
      assert.equal(await rows.first().getAttribute('data-name'), 'model.embed_tokens.weight');
      await page.fill('#filter input', 'layer:1 mlp');
      assert.equal(await rows.count(), 3);
      assert.equal(await text(page, '[data-testid="count"]'), '3 of 16 weights');
      await page.fill('#filter input', 'fail');
      assert.equal(await rows.count(), 1);
      await page.fill('#filter input', '');
      // picking a heat-map cell or a chart bar shows that weight in the table
      await page.locator('[data-testid="heatmap"] td.over').click();
      assert.equal(await rows.count(), 1);
      assert.equal(await rows.first().getAttribute('data-name'), 'model.layers.1.mlp.down_proj.weight');
      await page.locator('svg.chart rect[data-name="lm_head.weight"]').click();
      assert.equal(await rows.first().getAttribute('data-name'), 'lm_head.weight');
      await page.fill('#filter input', '');
      await page.locator('#open-manifest').click();
      assert.ok(w.posted.some((m) => (m as { type: string }).type === 'openManifest'));
      // No end-to-end figures yet, and the model is beside the report: the button offers to add them.
      assert.equal(await text(page, '#evaluate'), 'Evaluate End to End');
      await page.locator('#evaluate').click();
      assert.ok(w.posted.some((m) => (m as { type: string }).type === 'evaluate'));
      for (const theme of THEMES) {
        await setTheme(page, theme);
        const bg = await page.evaluate('getComputedStyle(document.body).backgroundColor');
        assert.equal(bg, BACKGROUNDS[theme], `${theme} background`);
        const fill = (sel: string) => page.evaluate(`getComputedStyle(document.querySelector('${sel}')).fill`);
        const ok = await fill('svg.chart rect.bar:not(.over)');
        const over = await fill('svg.chart rect.bar.over');
        assert.notEqual(ok, over, 'bars over the tolerance stand out');
        await screenshot(page, `report-${theme}`);
      }
      assert.deepEqual(w.problems, []);
    } finally {
      await w.close();
    }
  });

  test('a 2-bit report that fails by design says so and what to try instead', async () => {
    const r = sampleReport();
    const report = {
      ...r,
      bits: 2,
      pass: false,
      weights: r.weights.map((w) => ({ ...w, bits: 2, rel_error: 0.33, tolerance: 0.2, pass: false })),
    };
    const w = await openReport(s, report);
    try {
      assert.match(await text(w.page, '[data-testid="advice"]'), /fails by design\. Try 4 bits/);
      assert.deepEqual(w.problems, []);
    } finally {
      await w.close();
    }
  });

  test('a malformed report shows what is wrong instead of crashing', async () => {
    const w = await openReport(s, { weights: [{ bits: 4 }, 7] }, 'dark');
    try {
      assert.match(await text(w.page, '.warnings'), /weights\[0\] has no name/);
      assert.match(await text(w.page, '[data-testid="summary"]'), /unknown model/);
      assert.deepEqual(w.problems, []);
    } finally {
      await w.close();
    }
  });

  test('NPZ inspector on a numpy-written archive, in every theme', async () => {
    const w = await openInspector(s.browser, s.bundle, join(fixtures, 'numpy_deflated.npz'), { theme: 'light' });
    try {
      const { page } = w;
      await page.waitForSelector('#root[data-state="ready"]', { timeout: RENDER_WAIT_MS });
      const rows = page.locator('[data-testid="members"] tbody tr');
      assert.equal(await rows.count(), 8);
      assert.match(await text(page, '[data-testid="members"]'), /weight\.npy\s+float32\s+\(6, 10\)/);
      assert.match(await text(page, '[data-testid="members"]'), /deflated/);
      assert.match(await text(page, '[data-testid="meta"]'), /NPZ · .* · 8 members/);
      await page.locator('tr[data-name="weight.npy"]').click();
      await page.waitForSelector('[data-testid="detail"][data-state="ready"]', { timeout: RENDER_WAIT_MS });
      assert.match(await text(page, '[data-testid="stats"]'), /Count\s+60/);
      assert.equal(await page.locator('svg.histogram rect.bar').count(), 64);
      assert.equal(await page.locator('canvas.preview').count(), 1);
      // the grid pages values in from the host: cell [0, 0] equals numpy's value
      const first = (await w.session.page('weight.npy', 'raw', 0, 1, 0, 1)).values[0] as number;
      const cell = page.locator('[data-testid="grid-raw"] .cell[title="[0, 0]"]');
      await page.waitForFunction(
        () => document.querySelector('[data-testid="grid-raw"] .cell[title="[0, 0]"]')?.textContent !== '…',
        undefined,
        { timeout: RENDER_WAIT_MS },
      );
      assert.ok(Math.abs(Number(await cell.textContent()) - first) < 1e-5 * Math.max(1, Math.abs(first)));
      assert.ok(w.posted.some((m) => (m as InspectorToHost).type === 'page'));
      // non-finite values show as such
      await page.locator('tr[data-name="half.npy"]').click();
      await page.waitForFunction(
        () => document.querySelector('[data-testid="grid-raw"] .cell[title="[3, 0]"]')?.textContent === 'NaN',
        undefined,
        { timeout: RENDER_WAIT_MS },
      );
      assert.match(await text(page, '[data-testid="stats"]'), /NaN\s+1/);
      for (const theme of THEMES) {
        await setTheme(page, theme);
        await page.locator('tr[data-name="weight.npy"]').click(); // redraws the canvas in the theme's colours
        await page.waitForSelector('[data-testid="detail"][data-state="ready"] canvas.preview', {
          timeout: RENDER_WAIT_MS,
        });
        const bg = await page.evaluate('getComputedStyle(document.body).backgroundColor');
        assert.equal(bg, BACKGROUNDS[theme], `${theme} background`);
        await screenshot(page, `inspector-${theme}`);
      }
      assert.deepEqual(w.problems, []);
    } finally {
      await w.close();
    }
  });

  test('inspector: the value grid pages through a large tensor and jumps to a cell', async () => {
    const dir = tempDir('apl-render-big-');
    const rows = 2100;
    const cols = 512;
    const data = new Float32Array(rows * cols);
    for (let i = 0; i < data.length; i++) data[i] = Math.floor(i / cols) + (i % cols) / 1000; // row.col
    const file = join(dir, 'big.npy');
    await writeNpyFile(file, 'float32', [rows, cols], data);
    const w = await openInspector(s.browser, s.bundle, file);
    try {
      const { page } = w;
      // a single member is selected at once
      await page.waitForSelector('[data-testid="detail"][data-state="ready"]', { timeout: RENDER_WAIT_MS });
      assert.match(await text(page, '[data-testid="stats"]'), /\(sampled\)/);
      await page.fill('#goto input', '1500, 300');
      await page.press('#goto input', 'Enter');
      await page.waitForFunction(
        () => document.querySelector('[data-testid="grid-raw"] .cell[title="[1500, 300]"]')?.textContent === '1500.3',
        undefined,
        { timeout: RENDER_WAIT_MS },
      );
      // only the pages in view were asked for, never the whole tensor
      const pages = w.posted.filter((m) => (m as InspectorToHost).type === 'page') as Extract<
        InspectorToHost,
        { type: 'page' }
      >[];
      assert.ok(pages.length > 0 && pages.length < 20, `${pages.length} page requests`);
      assert.ok(pages.every((p) => p.rowCount * p.colCount <= 64 * 16));
      assert.deepEqual(w.problems, []);
    } finally {
      await w.close();
    }
  });

  test('inspector: a quantized member shows its dequantized values, recorded and measured error', async () => {
    // The fixture archive beside a manifest that names a source checkpoint holding numpy's float weight.
    const { npz, weight } = await quantizedWithSource(tempDir('apl-render-q-'));
    const w = await openInspector(s.browser, s.bundle, npz);
    try {
      const { page } = w;
      await page.waitForSelector('#root[data-state="ready"]', { timeout: RENDER_WAIT_MS });
      assert.match(await text(page, '[data-testid="meta"]'), /manifest: tiny_manifest_q4\.json/);
      // grouped by weight: the weight's row, then its q member
      assert.match(
        await text(page, '[data-testid="members"]'),
        /layers\.0\.q_proj\.weight\t4-bit.*quantized weight\nlayers_0_q_proj_weight_q4\.npy\t.*\tq\n/,
      );
      await page.locator('tr[data-name="layers_0_q_proj_weight_q4.npy"]').click();
      await page.waitForSelector('[data-testid="dequant"]', { timeout: RENDER_WAIT_MS });
      assert.match(await text(page, '[data-testid="accuracy"]'), /relative error 7\.12 %.*pass/);
      assert.match(await text(page, '[data-testid="dequant"] h3'), /4-bit, groups of 4, 6 × 10/);
      await page.locator('.tabs button[data-view="dequant"]').click();
      const want = (await w.session.page('layers_0_q_proj_weight_q4.npy', 'dequant', 0, 1, 1, 1)).values[0] as number;
      const got = Number(await cellText(page, 'dequant', 0, 1));
      assert.ok(Math.abs(got - want) < 1e-5, `${got} vs ${want}`);
      assert.match(
        await text(page, '[data-testid="measured"]'),
        /Measured against the source weights: relative error \d+\.\d\d %/,
      );
      await page.locator('.tabs button[data-view="error"]').click();
      const err = Number(await cellText(page, 'error', 0, 1));
      assert.ok(Math.abs(err - (want - weight[1])) < 1e-5, `${err} vs ${want - weight[1]}`);
      await screenshot(page, 'inspector-dequant-dark');
      assert.deepEqual(w.problems, []);
    } finally {
      await w.close();
    }
  });

  test('playground: prompt, streamed output beside the float model, tokens/s, stop, in light and dark', async () => {
    const w = await openWebview(s.browser, 'playground', 'light', s.bundle, async (m, send) => {
      if ((m as { type: string }).type === 'ready')
        await send({
          type: 'init',
          title: 'tiny-llama_manifest_q4.json',
          manifest: '/m/tiny-llama_manifest_q4.json',
          floatAvailable: true,
          chatTemplate: true,
        } satisfies HostToPlayground);
    });
    try {
      const { page } = w;
      await page.waitForSelector('#root[data-state="ready"]', { timeout: RENDER_WAIT_MS });
      assert.equal(await page.locator('#compare').isChecked(), true, 'the float model runs beside when at hand');
      await page.locator('#generate').click();
      assert.match(await text(page, '[data-testid="error"]'), /Write a prompt first/);
      await page.fill('#prompt', 'The capital of France is');
      await page.fill('#temperature', '0');
      await page.fill('#max-tokens', '3');
      await page.locator('#chat').check();
      await page.fill('#system', 'Be brief.');
      await page.locator('#generate').click();
      const gen = w.posted.find((m) => (m as { type: string }).type === 'generate');
      assert.deepEqual(gen, {
        type: 'generate',
        prompt: 'The capital of France is',
        temperature: 0,
        maxTokens: 3,
        chat: true,
        system: 'Be brief.',
        compare: true,
      });
      assert.equal(await page.locator('#generate').isDisabled(), true);
      const send = (m: HostToPlayground) => page.evaluate((x) => window.postMessage(x, '*'), m);
      for (const side of ['quantized', 'float'] as const) {
        await send({ type: 'started', side });
        await send({ type: 'event', side, event: { type: 'prompt', ids: [1, 450, 7483] } });
        for (const [id, t] of [
          [338, ' Paris'],
          [29889, side === 'float' ? '.' : ','],
          [13, ''],
        ] as const)
          await send({ type: 'event', side, event: { type: 'token', id, text: t } });
      }
      await page.waitForFunction(
        () => document.querySelector('[data-testid="output-float"]')?.textContent === ' Paris.',
      );
      assert.equal(await text(page, '[data-testid="output-quantized"]'), ' Paris,');
      assert.match(await text(page, '[data-testid="stats-quantized"]'), /^3 tokens · /);
      await page.locator('#stop').click();
      assert.ok(w.posted.some((m) => (m as { type: string }).type === 'stop'));
      for (const side of ['quantized', 'float'] as const) {
        await send({
          type: 'event',
          side,
          event: {
            type: 'done',
            prompt_tokens: 3,
            generated_tokens: 3,
            prefill_tokens_per_s: 41.2,
            decode_tokens_per_s: side === 'float' ? 9.5 : 12.5,
            peak_rss_bytes: 64 * 1024 * 1024,
            stop: 'interrupted',
            backend: 'cpu-avx2',
          },
        });
        await send({ type: 'exit', side, code: 130 });
      }
      // window.postMessage delivers asynchronously: wait until both sides have taken their last messages.
      await page.waitForFunction(
        () =>
          /stopped/.test(document.querySelector('[data-testid="stats-float"]')?.textContent ?? '') &&
          !(document.querySelector('#generate') as HTMLButtonElement | null)?.disabled,
      );
      assert.match(
        await text(page, '[data-testid="stats-quantized"]'),
        /3 tokens · 12\.5 tokens\/s .*cpu-avx2.*stopped: interrupted/,
      );
      assert.match(await text(page, '[data-testid="stats-float"]'), /9\.5 tokens\/s/);
      assert.equal(await page.locator('#generate').isDisabled(), false);
      const rendered = w.posted.find((m) => (m as { type: string }).type === 'rendered');
      assert.deepEqual(rendered, {
        type: 'rendered',
        what: 'playground',
        names: ['quantized', 'float'],
        detail: ' Paris,',
      });
      for (const theme of ['light', 'dark'] as const) {
        await setTheme(page, theme);
        assert.equal(await page.evaluate('getComputedStyle(document.body).backgroundColor'), BACKGROUNDS[theme]);
        await screenshot(page, `playground-${theme}`);
      }
      assert.deepEqual(w.problems, []);
    } finally {
      await w.close();
    }
  });
});
