// The webviews in a real VS Code: the NPZ inspector opens numpy-written archives (from the explorer command and as
// the default editor) and its webview lists the members; the accuracy report webview shows the weights. What a
// webview shows is read back from its own DOM: it posts a `rendered` message that the extension republishes
// (client/src/webviews/index.ts, RENDERED_PROBE).
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { extension, nextRendered, openRendered, screenshot, test, workspaceDir } from './harness';

/** Copies the numpy-written fixtures (test/unit/inspect/fixtures) into the test workspace. */
function fixture(name: string): string {
  const dir = join(workspaceDir(), 'inspect');
  mkdirSync(dir, { recursive: true });
  const target = join(dir, name);
  copyFileSync(join(extension().extensionPath, 'test', 'unit', 'inspect', 'fixtures', name), target);
  return target;
}

const NUMPY_MEMBERS = [
  'weight.npy',
  'half.npy',
  'flags.npy',
  'ids.npy',
  'big_endian.npy',
  'fortran.npy',
  'cube.npy',
  'scalar.npy',
];

function activeCustomEditor(): vscode.TabInputCustom | undefined {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  return input instanceof vscode.TabInputCustom ? input : undefined;
}

test(
  'Inspect NPZ Tensors opens a numpy-written archive and its webview lists the members',
  async () => {
    await extension().activate();
    const file = fixture('numpy_deflated.npz');
    const e = await openRendered(file, 'members', 'the inspector to list members', 'apl.inspectNpz');
    assert.deepEqual(e.names, NUMPY_MEMBERS);
    assert.equal(activeCustomEditor()?.viewType, 'apl.npzInspector');
    await screenshot('webviews-inspector');
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
  },
  { timeout: 60_000 },
);

test(
  'a .npy opens in the inspector webview as its default editor',
  async () => {
    await extension().activate();
    const file = fixture('numpy_single.npy');
    // a single member is selected at once: its statistics are drawn
    const e = await openRendered(file, 'tensor', 'the inspector to show the tensor');
    assert.deepEqual(e.names, ['numpy_single.npy']);
    assert.match(e.detail ?? '', /Count\s*60/);
    assert.equal(activeCustomEditor()?.viewType, 'apl.npzInspector');
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
  },
  { timeout: 60_000 },
);

test(
  'APL: Open Accuracy Report shows the weights in the report webview',
  async () => {
    await extension().activate();
    const dir = join(workspaceDir(), 'report');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'itest_accuracy_q4.json');
    const weights = ['q_proj', 'k_proj', 'v_proj', 'o_proj'].map((p, i) => ({
      name: `model.layers.0.self_attn.${p}.weight`,
      bits: 4,
      rel_error: 0.05 + i / 100,
      tolerance: 0.1,
      pass: true,
    }));
    writeFileSync(
      file,
      JSON.stringify({ model: 'itest', bits: 4, group_size: 64, tolerance: { 4: 0.1 }, pass: true, weights }),
    );
    const e = await openRendered(file, 'report', 'the report to render', 'apl.openAccuracyReport');
    assert.deepEqual([...e.names].sort(), weights.map((w) => w.name).sort());
    assert.equal(e.detail, 'PASS');
    const tab = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
    assert.ok(tab instanceof vscode.TabInputWebview && tab.viewType.endsWith('apl.accuracyReport'));
    await screenshot('webviews-report');
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
  },
  { timeout: 60_000 },
);

test(
  'a broken archive opens in the inspector webview with an error naming the file',
  async () => {
    await extension().activate();
    const dir = join(workspaceDir(), 'inspect');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'broken.npz');
    writeFileSync(file, 'not a zip archive at all');
    const shown = nextRendered((e) => e.what === 'error' && e.file === file, 45_000, 'the inspector to show the error');
    await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(file), 'apl.npzInspector');
    const e = await shown;
    assert.match(e.detail ?? '', /broken\.npz/);
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
  },
  { timeout: 60_000 },
);
