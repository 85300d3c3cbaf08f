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
  { id: CommandIds.inspectNpz, title: 'Inspect Tensors', category: 'APL' },
  { id: CommandIds.selectBackend, title: 'Select Quantization Backend', category: 'APL' },
  { id: CommandIds.showOutput, title: 'Show Output', category: 'APL' },
  { id: CommandIds.tryModel, title: 'Try Model…', category: 'APL' },
  { id: CommandIds.evaluateModel, title: 'Evaluate Model…', category: 'APL' },
];
