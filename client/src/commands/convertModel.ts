// `apl.convertModel [options]`: APL: Convert Model…. With no argument it asks through quick picks; with a
// ConvertRequest-like object (tests, other extensions) it skips them. Returns the ConvertOutcome.
import * as vscode from 'vscode';
import { failureAdvice } from '../../../server/src/common/advice';
import { formatBitsPerWeight } from '../../../server/src/common/format';
import { CommandIds } from '../../../server/src/protocol';
import { gpuUnusable } from '../backendInfo';
import type { ClientContext, ConvertOutcome } from '../context';
import {
  type ConvertRequest,
  checkRequest,
  requestFields,
  requestFormat,
  requestFromOptions,
  tolerancesOf,
} from '../convert/options';
import { currentDefaults, pickRequest, remember } from '../convert/picks';
import { fixForError } from '../convert/progress';
import { setBackendSetting } from '../settings';
import { engineInfo } from '../statusBar';
import { ui } from '../ui';

export const USE_AUTO = 'Use auto';
export const USE_AUTO_ALWAYS = 'Use auto and set apl.backend';
/** The button of the question asked when the output exists already. */
export const REPLACE = 'Replace';

export interface ConvertCommandOptions extends Partial<ConvertRequest> {
  /** Tests: cancels the run when this token fires. */
  cancellation?: vscode.CancellationToken;
  /** Tests: do not open the report afterwards. */
  noReport?: boolean;
}

export default async function convertModel(ctx: ClientContext, arg?: unknown): Promise<ConvertOutcome | undefined> {
  let req: ConvertRequest | undefined;
  const opts =
    arg && typeof arg === 'object' && !(arg instanceof vscode.Uri) ? (arg as ConvertCommandOptions) : undefined;
  if (arg instanceof vscode.Uri) {
    // From the explorer on a model folder.
    const d = currentDefaults(ctx);
    if (!d.outDir) throw new Error('set apl.convert.outputFolder or open a folder first');
    req = { model: arg.fsPath, ...requestFields(d), ...requestFormat(d.format, d.bits), outDir: d.outDir };
  } else if (opts?.model) {
    const d = currentDefaults(ctx);
    const merged = requestFromOptions(
      d,
      Object.fromEntries(
        Object.entries(opts).filter(([k, v]) => v !== undefined && k !== 'cancellation' && k !== 'noReport'),
      ),
    );
    const problem = checkRequest(merged);
    if (problem) throw new Error(`invalid options: ${problem}`);
    req = merged as ConvertRequest;
  } else {
    req = await pickRequest(ctx);
  }
  if (!req) return undefined;
  // "gpu" with no usable GPU would fail after the download: offer auto first.
  const noGpu = req.backend === 'gpu' ? gpuUnusable('gpu', await engineInfo()) : undefined;
  if (noGpu) {
    const choice = await ui.showWarningMessage(
      `APL: the GPU backend cannot run here (${noGpu}). Convert with backend "auto" instead?`,
      { modal: true },
      USE_AUTO,
      USE_AUTO_ALWAYS,
    );
    if (choice !== USE_AUTO && choice !== USE_AUTO_ALWAYS) return undefined;
    if (choice === USE_AUTO_ALWAYS) await setBackendSetting('auto');
    req = { ...req, backend: 'auto' };
  }
  await remember(ctx, req);

  let outcome = await ctx.conversions.run(req, opts?.cancellation);
  if (outcome.status === 'failed' && outcome.error?.code === 'exists' && !req.force) {
    // The same model and bits converted before: ask, then replace (the CLI's --force).
    const choice = await ui.showWarningMessage(
      `APL: a ${req.bits}-bit conversion of ${req.model} already exists in ${req.outDir}. Replace it?`,
      { modal: true, detail: outcome.error.message },
      REPLACE,
    );
    if (choice !== REPLACE) return { status: 'cancelled', exitCode: outcome.exitCode };
    req = { ...req, force: true };
    outcome = await ctx.conversions.run(req, opts?.cancellation);
  }
  if (outcome.status === 'ok' && outcome.result) {
    const r = outcome.result;
    if (!opts?.noReport) await ctx.webviews.openReport(vscode.Uri.file(r.report));
    const text = `APL: ${req.model} converted to ${req.bits}-bit (${formatBitsPerWeight(r.bitsPerWeight)} bits/weight, accuracy ${r.pass ? 'pass' : 'FAIL'}).`;
    const advice = failureAdvice({
      bits: req.bits,
      pass: r.pass,
      group_size: req.groupSize,
      tolerance: tolerancesOf(req.tolerance)[req.bits],
    });
    // A failed verdict is a warning (with what to try instead), not an info toast.
    void (
      r.pass
        ? vscode.window.showInformationMessage(text, 'Open Manifest', 'Reveal in Explorer')
        : ui.showWarningMessage(`${text} ${advice ?? ''}`.trim(), 'Open Manifest', 'Reveal in Explorer')
    ).then(async (choice) => {
      if (choice === 'Open Manifest') await vscode.window.showTextDocument(vscode.Uri.file(r.manifest));
      if (choice === 'Reveal in Explorer')
        await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(r.manifest));
    });
  } else if (outcome.status === 'failed' && outcome.error) {
    const fix = fixForError(outcome.error.code);
    const actions = fix ? [fix.label, 'Show Output'] : ['Show Output'];
    void vscode.window
      .showErrorMessage(`APL: conversion failed: ${outcome.error.message}`, ...actions)
      .then((choice) => {
        if (fix && choice === fix.label) void vscode.commands.executeCommand(fix.command);
        else if (choice === 'Show Output') void vscode.commands.executeCommand(CommandIds.showOutput);
      });
  } else if (outcome.status === 'cancelled') {
    void vscode.window.showInformationMessage('APL: conversion cancelled; nothing was written.');
  }
  return outcome;
}
