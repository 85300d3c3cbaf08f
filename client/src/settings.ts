// The extension's settings (package.json `contributes.configuration`), read and written here only. Values are
// checked: a wrong type or an unknown value reads as the default.
import * as vscode from 'vscode';
import type { BitWidth } from '../../server/src/formats/manifest';
import type { Backend } from '../../server/src/protocol';
import { BACKENDS, groupSizeFromSetting, isBitWidth } from './convert/options';

const SECTION = 'apl';

export interface ConvertSettings {
  bits: BitWidth;
  groupSize: number | 'row';
  symmetric: boolean;
  /** `apl.convert.outputFolder` as written (may hold ${workspaceFolder} or ~; expanded by the caller). */
  outputFolder: string;
}

/** `apl.backend`: where quantization runs. */
export function backendSetting(): Backend {
  const v = vscode.workspace.getConfiguration(SECTION).get<string>('backend', 'auto');
  return BACKENDS.includes(v as Backend) ? (v as Backend) : 'auto';
}

/** `apl.backend` as written, unchecked (the status bar shows what the user typed). */
export function rawBackendSetting(): string {
  return vscode.workspace.getConfiguration(SECTION).get<string>('backend', 'auto');
}

export async function setBackendSetting(backend: Backend): Promise<void> {
  await vscode.workspace.getConfiguration(SECTION).update('backend', backend, vscode.ConfigurationTarget.Global);
}

/** `apl.convert.*`: the first defaults of APL: Convert Model… and of `apl-convert` tasks. */
export function convertSettings(): ConvertSettings {
  const c = vscode.workspace.getConfiguration(SECTION);
  const bits = c.get<number>('convert.bits', 4);
  return {
    bits: isBitWidth(bits) ? bits : 4,
    groupSize: groupSizeFromSetting(c.get('convert.groupSize', 64)),
    symmetric: c.get<boolean>('convert.symmetric', false),
    outputFolder: c.get<string>('convert.outputFolder', ''),
  };
}

/** Calls `listener` when `apl.backend` changes. */
export function onBackendSettingChange(listener: () => void): vscode.Disposable {
  return vscode.workspace.onDidChangeConfiguration((e) => {
    if (e.affectsConfiguration(`${SECTION}.backend`)) listener();
  });
}
