// The extension activates lazily on a manifest, registers every contributed command, and its simple commands work.
import assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { AplApi } from '../../../client/src/extension';
import { canDriveUi, extension, openFile, out, test, ui, waitFor, waitForEvent } from './harness';

test('the extension is not active before a manifest opens (lazy activation)', () => {
  assert.equal(extension().isActive, false);
});

test('opening a manifest activates the extension', async () => {
  const editor = await openFile('planted_manifest_q4.json');
  assert.equal(editor.document.languageId, 'apl-manifest');
  const ext = extension();
  await waitFor(() => ext.isActive, 20_000, 'the extension to activate');
  const api = (await ext.activate()) as AplApi;
  assert.equal(typeof api.activationMs, 'number');
  out(`  activation took ${api.activationMs.toFixed(1)} ms`);
});

test('every contributed command is registered', async () => {
  await extension().activate();
  const contributed = (extension().packageJSON.contributes.commands as { command: string }[]).map((c) => c.command);
  assert.ok(contributed.length >= 7);
  const registered = new Set(await vscode.commands.getCommands(true));
  const missing = contributed.filter((c) => !registered.has(c));
  assert.deepEqual(missing, []);
});

test('APL: Select Quantization Backend writes apl.backend', async () => {
  const config = () => vscode.workspace.getConfiguration('apl');
  const changed = new Promise<void>((resolve) => {
    const sub = vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('apl.backend')) {
        sub.dispose();
        resolve();
      }
    });
  });
  assert.equal(await vscode.commands.executeCommand('apl.selectBackend', 'cpu'), 'cpu');
  await changed;
  assert.equal(config().get('backend'), 'cpu');
  await vscode.commands.executeCommand('apl.selectBackend', 'auto');
  assert.equal(config().get('backend'), 'auto');
});

test(
  'the command palette runs APL: Select Quantization Backend and its quick pick sets the backend',
  async () => {
    const changed = waitForEvent(vscode.workspace.onDidChangeConfiguration, 45_000, 'apl.backend to change', (e) =>
      e.affectsConfiguration('apl.backend'),
    );
    await ui([
      { press: 'F1' },
      { waitFor: '.quick-input-widget input' },
      { type: 'APL: Select Quantization Backend' },
      { waitFor: '.quick-input-list .monaco-list-row[aria-label*="Select Quantization Backend"]' },
      { press: 'Enter' },
      { waitForText: 'APL: Quantization Backend' },
      { type: 'gpu' },
      { waitFor: '.quick-input-list .monaco-list-row[aria-label*="CUDA: fails"]' },
      { press: 'Enter' },
      { waitFor: '.quick-input-widget', state: 'hidden' },
    ]);
    await changed;
    assert.equal(vscode.workspace.getConfiguration('apl').get('backend'), 'gpu');
    await vscode.commands.executeCommand('apl.selectBackend', 'auto');
  },
  { timeout: 60_000, skip: !canDriveUi() && 'needs the offline launcher (it drives the page)' },
);

test(
  'clicking the backend status bar item opens the backend quick pick',
  async () => {
    await extension().activate();
    const changed = waitForEvent(vscode.workspace.onDidChangeConfiguration, 45_000, 'apl.backend to change', (e) =>
      e.affectsConfiguration('apl.backend'),
    );
    await ui([
      // The item's element id is `<extension id>.<item id>` (createStatusBarItem('apl.backend', …)).
      { click: '[id="apl.apl-quantizer.apl.backend"] a' },
      { waitForText: 'APL: Quantization Backend' },
      { type: 'cpu' },
      { waitFor: '.quick-input-list .monaco-list-row[aria-label*="CPU: SIMD"]' },
      { press: 'Enter' },
      { waitFor: '.quick-input-widget', state: 'hidden' },
    ]);
    await changed;
    assert.equal(vscode.workspace.getConfiguration('apl').get('backend'), 'cpu');
    await vscode.commands.executeCommand('apl.selectBackend', 'auto');
  },
  { timeout: 60_000, skip: !canDriveUi() && 'needs the offline launcher (it drives the page)' },
);

test('APL: Set / Clear Hugging Face Token use SecretStorage', async () => {
  await vscode.commands.executeCommand('apl.clearHuggingFaceToken');
  assert.equal(await vscode.commands.executeCommand('apl.setHuggingFaceToken', 'hf_integrationTestToken'), true);
  assert.equal(await vscode.commands.executeCommand('apl.clearHuggingFaceToken'), true, 'the token was stored');
  assert.equal(await vscode.commands.executeCommand('apl.clearHuggingFaceToken'), false, 'the token was removed');
  await assert.rejects(Promise.resolve(vscode.commands.executeCommand('apl.setHuggingFaceToken', 'has space')));
});
