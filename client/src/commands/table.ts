// The command table: every command the extension contributes, once. Plain data (no `vscode` import), so a unit
// test can check that package.json contributes exactly these commands and that each has a handler.
import { type CommandId, CommandIds } from '../../../server/src/protocol';

export interface CommandMeta {
  id: CommandId;
  /** Title without the category; the palette shows "APL: <title>". */
  title: string;
  category: 'APL';
}

export const COMMANDS: readonly CommandMeta[] = [
  { id: CommandIds.convertModel, title: 'Convert Model…', category: 'APL' },
  { id: CommandIds.setHfToken, title: 'Set Hugging Face Token', category: 'APL' },
  { id: CommandIds.clearHfToken, title: 'Clear Hugging Face Token', category: 'APL' },
  { id: CommandIds.openAccuracyReport, title: 'Open Accuracy Report', category: 'APL' },
  { id: CommandIds.inspectNpz, title: 'Inspect NPZ Tensors', category: 'APL' },
  { id: CommandIds.selectBackend, title: 'Select Quantization Backend', category: 'APL' },
  { id: CommandIds.showOutput, title: 'Show Output', category: 'APL' },
];

/** The name of the extension's output channel. */
export const OUTPUT_CHANNEL = 'APL Quantizer';
/** The SecretStorage key of the Hugging Face token. */
export const HF_TOKEN_SECRET = 'apl.huggingFaceToken';
/** The task type of conversions (contributed in package.json taskDefinitions). */
export const CONVERT_TASK_TYPE = 'apl-convert';
