// The extension's settings (package.json `contributes.configuration`), read and written here only. Values are
// checked: a wrong type or an unknown value reads as the default.
import * as vscode from 'vscode';
import { type BitWidth, QUANT_FORMATS, type QuantFormat, type RoundingMode } from '../../server/src/formats/manifest';
import type { Backend } from '../../server/src/protocol';
import { BACKENDS, type ConvertDefaults, groupSizeFromSetting, isBitWidth } from './convert/options';

const SECTION = 'apl';

export interface ConvertSettings {
  bits: BitWidth;
  groupSize: number | 'row';
  symmetric: boolean;
  /** `apl.convert.format` (kquant applies at 2 and 4 bits only). */
  format: QuantFormat;
  /** `apl.convert.outputFolder` as written (may hold ${workspaceFolder} or ~; expanded by the caller). */
  outputFolder: string;
  mode: RoundingMode;
  embeddingsBits: BitWidth;
  /** `apl.convert.tolerance` (the CLI's --tolerance spec), '' for the guide's. */
  tolerance: string;
  /** `apl.convert.eval`: run the end-to-end check after converting (the CLI's --eval). */
  eval: boolean;
  /** `apl.convert.evalText` as written ('' for the model folder's heldout.txt; ${workspaceFolder}/~ unexpanded). */
  evalText: string;
}

/** The request keys whose `apl.convert.*` setting the user wrote (user, workspace or folder): they win. */
export function explicitConvertSettings(): Set<keyof ConvertDefaults> {
  const c = vscode.workspace.getConfiguration(SECTION);
  const keys: [string, keyof ConvertDefaults][] = [
    ['convert.bits', 'bits'],
    ['convert.groupSize', 'groupSize'],
    ['convert.symmetric', 'symmetric'],
    ['convert.format', 'format'],
    ['convert.outputFolder', 'outDir'],
    ['convert.mode', 'mode'],
    ['convert.embeddingsBits', 'embeddingsBits'],
    ['convert.tolerance', 'tolerance'],
    ['convert.eval', 'eval'],
  ];
  const out = new Set<keyof ConvertDefaults>();
  for (const [setting, key] of keys) {
    const i = c.inspect(setting);
    if (i && (i.globalValue !== undefined || i.workspaceValue !== undefined || i.workspaceFolderValue !== undefined))
      out.add(key);
  }
  return out;
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
    format: QUANT_FORMATS.includes(c.get<string>('convert.format', 'kquant') as QuantFormat)
      ? c.get<QuantFormat>('convert.format', 'kquant')
      : 'kquant',
    outputFolder: c.get<string>('convert.outputFolder', ''),
    mode: c.get<string>('convert.mode', 'optimized') === 'minmax' ? 'minmax' : 'optimized',
    embeddingsBits: isBitWidth(c.get<number>('convert.embeddingsBits', 8))
      ? c.get<BitWidth>('convert.embeddingsBits', 8)
      : 8,
    tolerance: c.get<string>('convert.tolerance', ''),
    eval: c.get<boolean>('convert.eval', false) === true,
    evalText: c.get<string>('convert.evalText', ''),
  };
}

/** Calls `listener` when `apl.backend` changes. */
export function onBackendSettingChange(listener: () => void): vscode.Disposable {
  return vscode.workspace.onDidChangeConfiguration((e) => {
    if (e.affectsConfiguration(`${SECTION}.backend`)) listener();
  });
}
