// The manifest a model command (Try Model…, Evaluate Model…) acts on: its argument — a manifest or a converter's NPZ,
// as a Uri (explorer menu) or a URI string (the language server's code lens) — else the manifest in the active
// editor, else one the user picks. Undefined when the user cancels the picker.
import { extname } from 'node:path';
import * as vscode from 'vscode';
import { manifestOfOutput } from '../../server/src/convert/names';

export async function manifestTarget(arg: unknown, openLabel: string): Promise<string | undefined> {
  let target = arg instanceof vscode.Uri ? arg : typeof arg === 'string' ? vscode.Uri.parse(arg) : undefined;
  const active = vscode.window.activeTextEditor?.document.uri;
  if (!target && active?.scheme === 'file' && extname(active.fsPath) === '.json') target = active;
  target ??= (
    await vscode.window.showOpenDialog({
      canSelectMany: false,
      openLabel,
      filters: { 'Manifest or NPZ': ['json', 'npz'] },
    })
  )?.[0];
  return target && manifestOfOutput(target.fsPath);
}
