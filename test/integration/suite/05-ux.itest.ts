// Issue 15 (a new user's first hour): converting the same model and bits again asks and replaces; a 1-/2-bit
// conversion that fails by design ends as a warning, not a green tick; "gpu" with no usable GPU offers auto.
import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { AplApi } from '../../../client/src/extension';
import type { ConvertOutcome } from '../../../client/src/tasks/convertTask';
import { extension, test, workspaceDir } from './harness';

function tinyModel(): string {
  return join(extension().extensionPath, 'test', 'fixtures', 'tiny-llama');
}

/** Answers the next warning messages with `answer`, recording what was asked. */
function answerWarnings(api: AplApi, answer: string | undefined): { asked: string[]; restore(): void } {
  const ui = api.testing.ui;
  const original = ui.showWarningMessage;
  const asked: string[] = [];
  ui.showWarningMessage = (async (message: string) => {
    asked.push(message);
    return answer;
  }) as unknown as typeof ui.showWarningMessage;
  return { asked, restore: () => (ui.showWarningMessage = original) };
}

/** Runs apl.convertModel with `req`, answering its warnings with `answer`: the outcome and what was asked. */
async function convertAnswering(
  api: AplApi,
  answer: string | undefined,
  req: object,
): Promise<{ o: ConvertOutcome; asked: string[] }> {
  const w = answerWarnings(api, answer);
  try {
    return { o: (await vscode.commands.executeCommand('apl.convertModel', req)) as ConvertOutcome, asked: w.asked };
  } finally {
    w.restore();
  }
}

test(
  'converting the same model and bits again asks, then replaces the earlier result',
  async () => {
    const api = (await extension().activate()) as AplApi;
    const outDir = join(workspaceDir(), 'models-again');
    const req = { model: tinyModel(), bits: 8, groupSize: 32, outDir, noReport: true };
    const first = (await vscode.commands.executeCommand('apl.convertModel', req)) as ConvertOutcome;
    assert.equal(first.status, 'ok', JSON.stringify(first.error));
    const no = await convertAnswering(api, undefined, req);
    const declined = no.o;
    assert.equal(no.asked.length, 1, 'asked once');
    assert.match(no.asked[0], /already exists.*Replace it\?/);
    assert.equal(declined.status, 'cancelled');
    const yes = await convertAnswering(api, 'Replace', req);
    const again = yes.o;
    assert.equal(yes.asked.length, 1);
    assert.equal(again.status, 'ok', JSON.stringify(again.error));
    assert.equal(again.result?.manifest, first.result?.manifest);
  },
  { timeout: 120_000 },
);

test(
  'a 2-bit conversion that fails by design ends with a warning that says what to try instead',
  async () => {
    const api = (await extension().activate()) as AplApi;
    const outDir = join(workspaceDir(), 'models-2bit');
    const w = await convertAnswering(api, undefined, {
      model: tinyModel(),
      bits: 2,
      groupSize: 64,
      outDir,
      noReport: true,
      force: true,
    });
    const o = w.o;
    assert.equal(o.status, 'ok', JSON.stringify(o.error));
    assert.equal(o.result?.pass, false, 'the tiny model at 2 bits fails the 20 % tolerance');
    assert.equal(w.asked.length, 1, 'a warning, not an info toast');
    assert.match(w.asked[0], /accuracy FAIL.*fails by design\. Try 4 bits/);
  },
  { timeout: 120_000 },
);

test(
  '"gpu" with no usable GPU: the command offers auto instead of failing',
  async () => {
    const api = (await extension().activate()) as AplApi;
    const outDir = join(workspaceDir(), 'models-gpu');
    const w = await convertAnswering(api, 'Use auto', {
      model: tinyModel(),
      bits: 8,
      groupSize: 32,
      backend: 'gpu',
      outDir,
      noReport: true,
      force: true,
    });
    const o = w.o;
    // Where a GPU is usable nothing is asked and the GPU converts; elsewhere the question comes first.
    if (w.asked.length) assert.match(w.asked[0], /GPU backend cannot run here.*"auto" instead\?/);
    assert.equal(o.status, 'ok', JSON.stringify(o.error));
  },
  { timeout: 120_000 },
);

test(
  'model pick: workspace model folders offered first, aliases last; bits in order 1, 2, 4, 8; explorer entry',
  async () => {
    const api = (await extension().activate()) as AplApi;
    const folder = join(workspaceDir(), 'my-model');
    cpSync(tinyModel(), folder, { recursive: true });
    const ui = api.testing.ui;
    const original = ui.showQuickPick;
    const seen: { title: string; labels: string[] }[] = [];
    ui.showQuickPick = (async (items: unknown, options?: vscode.QuickPickOptions) => {
      const list = (await items) as vscode.QuickPickItem[];
      seen.push({ title: options?.title ?? '', labels: list.map((i) => i.label) });
      if (seen.length === 1) return list.find((i) => i.label.includes('my-model'));
      if (seen.length === 2) return list.find((i) => i.label === '8-bit');
      return undefined; // Escape at the options step: nothing is converted
    }) as unknown as typeof ui.showQuickPick;
    try {
      await vscode.commands.executeCommand('apl.convertModel');
    } finally {
      ui.showQuickPick = original;
    }
    const [model, bits] = seen;
    const mine = model.labels.findIndex((l) => l.includes('my-model'));
    const alias = model.labels.findIndex((l) => /TinyLlama/i.test(l));
    assert.ok(mine >= 0, `the workspace model folder is offered: ${model.labels.join(' | ')}`);
    assert.ok(alias < 0 || mine < alias, 'before the downloads');
    assert.deepEqual(bits.labels, ['1-bit', '2-bit', '4-bit', '8-bit']);
    const menus = (extension().packageJSON.contributes.menus['explorer/context'] ?? []) as { command: string }[];
    assert.ok(menus.some((m) => m.command === 'apl.convertModel'));
  },
  { timeout: 60_000 },
);
