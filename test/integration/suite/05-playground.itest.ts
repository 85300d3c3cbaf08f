// APL: Try Model… in a real VS Code: converts the bundled tiny model, opens the playground through the command with
// a prompt (the webview fills its form and generates at once), and waits for the webview to report the generated
// text, produced by `apl-quant run --json` child processes (quantized and float side), then screenshots it.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { AplApi } from '../../../client/src/extension';
import type { RenderedProbe, WebviewRenderedEvent } from '../../../client/src/webviews/index';
import { extension, screenshot, test, withTimeout, workspaceDir } from './harness';

function nextRendered(accept: (e: WebviewRenderedEvent) => boolean, ms: number): Promise<WebviewRenderedEvent> {
  const p = (globalThis as unknown as Record<symbol, RenderedProbe | undefined>)[Symbol.for('apl.webviews.rendered')];
  if (!p) return Promise.reject(new Error('the extension has not published its webview probe'));
  let listener: ((e: WebviewRenderedEvent) => void) | undefined;
  const got = new Promise<WebviewRenderedEvent>((resolve) => {
    listener = (e) => {
      if (accept(e)) resolve(e);
    };
    p.listeners.add(listener);
  });
  return withTimeout(got, ms, 'the playground to finish generating').finally(() => p.listeners.delete(listener!));
}

test(
  'Try Model… runs a few tokens of the converted tiny model beside the float model, in child processes',
  async () => {
    const api = (await extension().activate()) as AplApi;
    const outDir = join(workspaceDir(), 'models-playground');
    const model = join(extension().extensionPath, 'test', 'fixtures', 'tiny-llama');
    const outcome = await api.convert({ model, bits: 4, groupSize: 32, outDir });
    assert.equal(outcome.status, 'ok', JSON.stringify(outcome.error));
    const manifest = outcome.result!.manifest;
    const done = nextRendered((e) => e.what === 'playground' && e.file === manifest, 120_000);
    await vscode.commands.executeCommand('apl.tryModel', vscode.Uri.file(manifest), {
      prompt: 'The quick brown fox',
      temperature: 0,
      maxTokens: 6,
      compare: true,
    });
    const e = await done;
    assert.deepEqual(e.names, ['quantized', 'float'], 'both models ran');
    assert.equal(typeof e.detail, 'string');
    const tab = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
    assert.ok(tab instanceof vscode.TabInputWebview && tab.viewType.endsWith('apl.playground'), 'the playground tab');
    await screenshot('playground');
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
  },
  { timeout: 240_000 },
);
