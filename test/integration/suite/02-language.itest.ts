// The manifest language server, through the real client: planted errors get diagnostics on their lines, a weight
// gets a hover, and a screenshot shows the workbench with the manifest open.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import * as vscode from 'vscode';
import type { AplApi } from '../../../client/src/extension';
import { canDriveUi, extension, openFile, screenshot, test, waitForEvent } from './harness';

const FILE = 'planted_manifest_q4.json';
const PLANTED = ['"bit_width": 3', '"shape": "128x64"', '"type": "perrow_float"'];

function lineOf(doc: vscode.TextDocument, text: string): number {
  for (let i = 0; i < doc.lineCount; i++) if (doc.lineAt(i).text.includes(text)) return i;
  throw new Error(`${text} not found in ${doc.uri.fsPath}`);
}

test(
  'planted errors in a manifest get diagnostics on their lines',
  async () => {
    const editor = await openFile(FILE);
    const api = (await extension().activate()) as AplApi;
    assert.equal(await api.languageClientReady, true, 'the language client started');
    const uri = editor.document.uri;
    const lines = PLANTED.map((p) => lineOf(editor.document, p));
    const covered = () => {
      const diags = vscode.languages.getDiagnostics(uri).filter((d) => d.severity === vscode.DiagnosticSeverity.Error);
      return lines.every((l) => diags.some((d) => d.range.start.line <= l && d.range.end.line >= l));
    };
    if (!covered()) {
      await waitForEvent(vscode.languages.onDidChangeDiagnostics, 30_000, 'diagnostics on every planted line', (e) =>
        e.uris.some((u) => u.toString() === uri.toString()) ? covered() : false,
      );
    }
    const diags = vscode.languages.getDiagnostics(uri);
    const codeOf = (d: vscode.Diagnostic) => String(typeof d.code === 'object' ? d.code.value : d.code);
    const codesOn = (l: number) => diags.filter((d) => d.range.start.line <= l && d.range.end.line >= l).map(codeOf);
    // Stable codes, not wording: the three schema violations, and the cross-check of the missing NPZ.
    for (const l of lines) assert.ok(codesOn(l).includes('apl.schema'), `line ${l + 1}: ${codesOn(l).join(', ')}`);
    const npzLine = lineOf(editor.document, '"npz": "planted_quantized_q4.npz"');
    assert.ok(codesOn(npzLine).includes('apl.npz-missing'), `line ${npzLine + 1}: ${codesOn(npzLine).join(', ')}`);
    // The clean first weight's name line carries no error.
    const clean = lineOf(editor.document, '"name": "model.layers.0.mlp.down_proj.weight"');
    assert.ok(
      !diags.some((d) => d.severity === vscode.DiagnosticSeverity.Error && d.range.start.line === clean),
      'an error on a clean line',
    );
  },
  { timeout: 45_000 },
);

test('hovering a weight shows its details', async () => {
  const editor = await openFile(FILE);
  const line = lineOf(editor.document, '"name": "model.layers.0.mlp.down_proj.weight"');
  const col = editor.document.lineAt(line).text.indexOf('down_proj');
  const hovers = await vscode.commands.executeCommand<vscode.Hover[]>(
    'vscode.executeHoverProvider',
    editor.document.uri,
    new vscode.Position(line, col),
  );
  const text = hovers
    .flatMap((h) => h.contents)
    .map((c) => (typeof c === 'string' ? c : c.value))
    .join('\n');
  assert.match(text, /down_proj/, `hover text: ${text}`);
  assert.match(text, /4[- ]?bit|bits/i, `hover text: ${text}`);
});

test(
  'screenshot: the workbench with the manifest open',
  async () => {
    const editor = await openFile(FILE);
    await vscode.commands.executeCommand('workbench.actions.view.problems');
    // What the picture is meant to show: the manifest in front, with its errors listed.
    assert.equal(vscode.window.activeTextEditor?.document.uri.toString(), editor.document.uri.toString());
    const errors = vscode.languages
      .getDiagnostics(editor.document.uri)
      .filter((d) => d.severity === vscode.DiagnosticSeverity.Error);
    assert.ok(errors.length >= PLANTED.length, `${errors.length} errors on the planted manifest`);
    const png = await screenshot('manifest-with-diagnostics');
    assert.ok(png, 'the launcher took no screenshot');
    assert.ok(statSync(png).size > 1000, `${png} is a PNG of ${statSync(png).size} bytes`);
  },
  { skip: canDriveUi() ? false : 'only the offline (code-server) launcher takes screenshots' },
);
