// APL: Evaluate Model… in a real VS Code: converts the bundled trained model, runs the end-to-end check from the
// command (the CLI `eval --update-report --json-progress` in a child process, with a progress notification), and
// checks that the accuracy report on disk gained its end_to_end section and that the report webview shows it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { AplApi } from '../../../client/src/extension';
import type { EvalEvent } from '../../../server/src/protocol';
import { extension, openRendered, screenshot, test, workspaceDir } from './harness';

test(
  'Evaluate Model… stores the end-to-end figures in the accuracy report and the report shows them',
  async () => {
    const api = (await extension().activate()) as AplApi;
    const outDir = join(workspaceDir(), 'models-evaluate');
    // brown-tiny ships heldout.txt: the command takes it from the source folder without asking.
    const model = join(extension().extensionPath, 'test', 'fixtures', 'brown-tiny');
    const outcome = await api.convert({ model, bits: 4, outDir });
    assert.equal(outcome.status, 'ok', JSON.stringify(outcome.error));
    const { manifest, report } = outcome.result!;
    assert.equal(JSON.parse(readFileSync(report, 'utf8')).end_to_end, undefined, 'no figures before');
    // The NPZ's URI, as the manifest's code lens and the explorer's menu pass it.
    const npz = outcome.result!.npz;
    const r = (await vscode.commands.executeCommand('apl.evaluateModel', vscode.Uri.file(npz), {
      ctx: 64,
      chunks: 2,
    })) as Extract<EvalEvent, { type: 'result' }> | undefined;
    assert.equal(r?.type, 'result');
    assert.equal(r.report, report);
    assert.equal(r.result.manifest, manifest);
    assert.equal(r.result.tokens_scored, 2 * 31);
    const stored = JSON.parse(readFileSync(report, 'utf8'));
    assert.equal(stored.end_to_end.tokens_scored, 62);
    assert.equal(stored.end_to_end.text.name, 'heldout.txt');
    assert.equal(stored.pass, r.pass);
    assert.match(stored.verdict_basis, /end to end \(62 tokens of heldout\.txt, ctx 64, 2 chunks\)/);
    const e = await openRendered(report, 'report', 'the report to render', 'apl.openAccuracyReport');
    assert.equal(e.detail, r.pass ? 'PASS' : 'FAIL');
    await screenshot('evaluate-report');
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
  },
  { timeout: 240_000 },
);
