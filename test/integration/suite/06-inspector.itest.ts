// The tensor inspector in a real VS Code (issue 15's inspector items): a .safetensors file and a sharded checkpoint
// open in it, a 3-d tensor is shown by slice, a tensor is compared with the same tensor in another file, go to
// definition on a manifest member selects it, and an open inspector reloads when its file changes, keeping the
// selection. What the webview shows is read back from its DOM (its `rendered` messages, RENDERED_PROBE); clicks
// inside the webview are the offline launcher's webview steps. Fixtures: test/fixtures/inspector (made by
// scripts/make-inspector-fixtures.mjs) and test/unit/inspect/fixtures.
import assert from 'node:assert/strict';
import { copyFileSync, cpSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { AplApi } from '../../../client/src/extension';
import { canDriveUi, extension, nextRendered, openRendered, screenshot, test, ui, workspaceDir } from './harness';

const NO_UI = !canDriveUi() && 'needs the offline launcher to click inside the webview';

/** test/fixtures/inspector copied into the workspace (once per test: each test gets its own folder). */
function fixtures(sub: string): string {
  const dir = join(workspaceDir(), sub);
  cpSync(join(extension().extensionPath, 'test', 'fixtures', 'inspector'), dir, { recursive: true });
  return dir;
}

const activeViewType = () => {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  return input instanceof vscode.TabInputCustom ? input.viewType : undefined;
};

test(
  'tensor inspector: a .safetensors file and a sharded checkpoint open and list their tensors',
  async () => {
    await extension().activate();
    const dir = fixtures('st-open');
    const file = join(dir, 'tiny.safetensors');
    let e = await openRendered(file, 'members', 'the safetensors tensors'); // the default editor
    assert.equal(activeViewType(), 'apl.npzInspector');
    assert.deepEqual(e.names, ['embed.weight', 'embed.weight_f32', 'norm.weight', 'positions', 'mask', 'odd']);
    const index = join(dir, 'sharded', 'model.safetensors.index.json');
    e = await openRendered(index, 'members', 'the sharded tensors', 'apl.inspectNpz'); // the explorer's menu command
    assert.deepEqual(e.names, ['layers.0.weight', 'embed.weight', 'layers.1.weight', 'norm.weight']);
    await screenshot('inspector-safetensors-sharded');
  },
  { timeout: 90_000 },
);

test(
  'tensor inspector: a 3-d tensor is shown by slice, the index slider moves it',
  async () => {
    await extension().activate();
    const file = join(fixtures('st-slice'), 'cube.npy');
    const e = await openRendered(file, 'slice', 'the first slice');
    assert.match(e.detail ?? '', /^\[0, :, :\].*Min\s*0.*Max\s*45/s);
    if (canDriveUi()) {
      const next = nextRendered(
        (x) => x.what === 'slice' && x.file === file && !!x.detail?.startsWith('[3, :, :]'),
        30_000,
        'slice [3, :, :]',
      );
      await ui([{ webviewFill: '[data-testid="slice-index-0"]', value: '3' }]);
      assert.match((await next).detail ?? '', /^\[3, :, :\].*Min\s*300.*Max\s*345/s);
    }
    await screenshot('inspector-slice-3d');
  },
  { timeout: 90_000 },
);

test(
  'tensor inspector: a tensor compared with the same tensor in another file (before vs after)',
  async () => {
    const api = (await extension().activate()) as AplApi;
    const dir = fixtures('st-compare');
    const file = join(dir, 'tiny.safetensors');
    await openRendered(file, 'members', 'the tensors');
    const selected = nextRendered((e) => e.what === 'tensor' && e.file === file, 30_000, 'embed.weight_f32');
    await ui([{ webviewClick: 'tr[data-name="embed.weight_f32"]' }]);
    await selected;
    const dialog = api.testing.ui.showOpenDialog;
    api.testing.ui.showOpenDialog = async () => [vscode.Uri.file(join(dir, 'after.safetensors'))];
    try {
      const compared = nextRendered((e) => e.what === 'comparison' && e.file === file, 30_000, 'the comparison');
      await ui([{ webviewClick: '[data-testid="compare-file"]' }]);
      const c = await compared;
      assert.deepEqual(c.names, ['embed.weight_f32', 'embed.weight_f32']);
      assert.match(c.detail ?? '', /max \|d\|\s*0\.5/);
    } finally {
      api.testing.ui.showOpenDialog = dialog;
    }
    await ui([{ webviewWaitFor: '[data-testid="compare-stats-heatmap"] canvas' }]);
    await screenshot('inspector-compare');
  },
  { timeout: 90_000, skip: NO_UI },
);

test(
  'tensor inspector: go to definition on a manifest member selects it in the inspector',
  async () => {
    const api = (await extension().activate()) as AplApi;
    const dir = join(workspaceDir(), 'st-definition');
    mkdirSync(dir, { recursive: true });
    const src = join(extension().extensionPath, 'test', 'unit', 'inspect', 'fixtures');
    for (const f of ['tiny_quantized_q4.npz', 'tiny_manifest_q4.json']) copyFileSync(join(src, f), join(dir, f));
    const doc = await vscode.workspace.openTextDocument(join(dir, 'tiny_manifest_q4.json'));
    const editor = await vscode.window.showTextDocument(doc);
    assert.equal(await api.languageClientReady, true, 'the language client started');
    const member = 'layers_0_q_proj_weight_q4.npy'; // the q member: the inspector on a quantized weight
    const at = doc.positionAt(doc.getText().indexOf(`"${member}"`) + 3);
    editor.selection = new vscode.Selection(at, at);
    const npz = join(dir, 'tiny_quantized_q4.npz');
    const selected = nextRendered(
      (e) => e.what === 'tensor' && e.file === npz && e.names[0] === member,
      45_000,
      `${member} selected`,
    );
    // Asked once, right after the document opened: the server reads the manifest's files for it (a race it lost
    // once, when definitions did not load them).
    const locs = await vscode.commands.executeCommand<vscode.Location[]>(
      'vscode.executeDefinitionProvider',
      doc.uri,
      at,
    );
    assert.ok(
      locs?.some((l) => l.uri.fsPath === npz),
      `the member’s definition is the archive (got ${JSON.stringify(locs?.map((l) => l.uri.fsPath))})`,
    );
    await vscode.commands.executeCommand('editor.action.revealDefinition');
    await selected;
    assert.equal(activeViewType(), 'apl.npzInspector');
    if (canDriveUi()) await ui([{ webviewWaitFor: '[data-testid="dequant"] canvas' }]);
    await screenshot('inspector-quantized-weight-by-definition');
  },
  { timeout: 90_000 },
);

test(
  'tensor inspector: an open inspector reloads when its file changes on disk, keeping the selection',
  async () => {
    await extension().activate();
    const dir = fixtures('st-reload');
    const file = join(dir, 'tiny.safetensors');
    await openRendered(file, 'members', 'the tensors');
    const selected = nextRendered((e) => e.what === 'tensor' && e.file === file, 30_000, 'embed.weight_f32');
    await ui([{ webviewClick: 'tr[data-name="embed.weight_f32"]' }]);
    const before = await selected;
    const reloaded = nextRendered((e) => e.what === 'members' && e.file === file, 30_000, 'the reload');
    const again = nextRendered((e) => e.what === 'tensor' && e.file === file, 30_000, 'the selection kept');
    // Replace the file as a writer does (temp file, then rename): after.safetensors holds embed.weight_f32 only.
    writeFileSync(`${file}.tmp`, readFileSync(join(dir, 'after.safetensors')));
    renameSync(`${file}.tmp`, file);
    assert.deepEqual((await reloaded).names, ['embed.weight_f32']);
    const after = await again;
    assert.deepEqual(after.names, ['embed.weight_f32']);
    assert.notEqual(after.detail, before.detail, 'the statistics are the new file’s');
  },
  { timeout: 90_000, skip: NO_UI },
);
