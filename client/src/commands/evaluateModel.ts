// "APL: Evaluate Model…" (`apl.evaluateModel [uri] [{ text?, ctx?, chunks? }]`): the end-to-end check of an existing
// conversion — the quantized model beside its float source over a text, llama.cpp's protocol — stored in its
// accuracy report as `convert --eval` stores it. It runs in a child process (`dist/cli.js eval … --update-report
// --json-progress` under the extension host's own Node), with a cancellable progress notification; Cancel sends
// SIGTERM (the CLI then leaves the report as it was). Resolves to the result event, or undefined when cancelled.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename } from 'node:path';
import * as vscode from 'vscode';
import type { EvalEvent } from '../../../server/src/protocol';
import { readManifest, sourceCandidates } from '../../../server/src/run/load';
import type { ClientContext } from '../context';
import { expandFolder } from '../convert/options';
import { describeEvalResult, type EvaluateRequest, evalArgs, parseEvalLine, textFor } from '../evaluate/args';
import { manifestTarget } from '../manifestTarget';
import { backendSetting, convertSettings } from '../settings';

type EvalResultEvent = Extract<EvalEvent, { type: 'result' }>;

const KILL_AFTER_MS = 10_000;

async function textToUse(manifest: string, request: EvaluateRequest | undefined): Promise<string | undefined> {
  const workspace = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const setting = convertSettings().evalText;
  const expanded = setting.trim() ? expandFolder(setting, workspace, homedir()) : undefined;
  const found = textFor(request, expanded, sourceCandidates(manifest, readManifest(manifest)), existsSync);
  if (found) return found;
  const picked = await vscode.window.showOpenDialog({
    canSelectMany: false,
    openLabel: 'Evaluate on this text',
    title: `A plain text to run ${basename(manifest)} and its float model over (the setting apl.convert.evalText sets a default)`,
    filters: { Text: ['txt', 'md', 'raw'], 'All files': ['*'] },
  });
  return picked?.[0]?.fsPath;
}

export default async function evaluateModel(
  ctx: ClientContext,
  uri?: unknown,
  request?: unknown,
): Promise<EvalResultEvent | undefined> {
  const req = request && typeof request === 'object' ? (request as EvaluateRequest) : undefined;
  const manifest = await manifestTarget(uri, 'Evaluate');
  if (!manifest) return undefined;
  const text = await textToUse(manifest, req);
  if (!text) return undefined;
  const argv = evalArgs(ctx.extension.asAbsolutePath('dist/cli.js'), manifest, text, backendSetting(), req);
  ctx.log.info(`apl-quant ${argv.slice(1).join(' ')}`);

  const outcome = await vscode.window.withProgress(
    {
      location: vscode.ProgressLocation.Notification,
      title: `APL: evaluating ${basename(manifest)} end to end`,
      cancellable: true,
    },
    (progress, token) =>
      new Promise<{ result?: EvalResultEvent; error?: string; cancelled: boolean }>((resolve) => {
        const env: NodeJS.ProcessEnv = { ...process.env, ELECTRON_RUN_AS_NODE: '1', APL_CLI_MAIN: '1' };
        let child: ChildProcess;
        try {
          child = spawn(process.execPath, argv, { env, stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
        } catch (e) {
          resolve({ error: `could not start apl-quant eval: ${(e as Error).message}`, cancelled: false });
          return;
        }
        let result: EvalResultEvent | undefined;
        let out = '';
        let err = '';
        let shown = 0;
        let killTimer: NodeJS.Timeout | undefined;
        progress.report({ message: `loading both models; text ${basename(text)}` });
        const cancel = token.onCancellationRequested(() => {
          child.kill('SIGTERM');
          killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
        });
        child.stdout!.setEncoding('utf8');
        child.stdout!.on('data', (d: string) => {
          out += d;
          for (let nl = out.indexOf('\n'); nl >= 0; nl = out.indexOf('\n')) {
            const e = parseEvalLine(out.slice(0, nl));
            out = out.slice(nl + 1);
            if (e?.type === 'progress') {
              const pct = (100 * e.done) / e.total;
              progress.report({ message: `chunk ${e.done} of ${e.total}`, increment: pct - shown });
              shown = pct;
            } else if (e?.type === 'result') result = e;
          }
        });
        child.stderr!.setEncoding('utf8');
        child.stderr!.on('data', (d: string) => {
          err = (err + d).slice(-4000);
        });
        const finish = (code: number | null, error?: string) => {
          cancel.dispose();
          clearTimeout(killTimer);
          const last = err.trim().split('\n').filter(Boolean).pop();
          if (token.isCancellationRequested) resolve({ cancelled: true });
          else if (code === 0 && result) resolve({ result, cancelled: false });
          else resolve({ error: error ?? last ?? `apl-quant eval ended with status ${code}`, cancelled: false });
        };
        child.on('error', (e) => finish(null, e.message));
        child.on('close', (code) => finish(code));
      }),
  );

  if (outcome.cancelled) {
    ctx.log.info(`evaluation of ${manifest} cancelled; the report is as it was`);
    void vscode.window.showInformationMessage('APL: evaluation cancelled; the accuracy report is as it was.');
    return undefined;
  }
  if (!outcome.result) throw new Error(outcome.error?.replace(/^apl-quant eval: /, '') ?? 'the evaluation failed');
  const r = outcome.result;
  const sentence = describeEvalResult(r);
  ctx.log.info(sentence);
  const report = r.report;
  const show = r.pass === false ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
  void show(`APL: ${sentence}`, ...(report ? ['Open Report'] : [])).then((choice) => {
    if (choice === 'Open Report' && report) void ctx.webviews.openReport(vscode.Uri.file(report));
  });
  return r;
}
