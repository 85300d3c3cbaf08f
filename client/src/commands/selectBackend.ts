// `apl.selectBackend [backend]`: auto / cpu / gpu into the `apl.backend` setting (the status bar item runs it).
import * as vscode from 'vscode';
import type { ClientContext } from '../context';
import { BACKENDS, type Backend } from '../convert/options';
import { ui } from '../ui';

const DESCRIPTIONS: Record<Backend, string> = {
  auto: 'CUDA when an NVIDIA GPU is usable, else CPU SIMD',
  cpu: 'CPU: SIMD kernels on all cores',
  gpu: 'CUDA: fails when no GPU is usable',
};

export default async function selectBackend(ctx: ClientContext, given?: unknown): Promise<Backend | undefined> {
  const config = vscode.workspace.getConfiguration('apl');
  let choice = BACKENDS.includes(given as Backend) ? (given as Backend) : undefined;
  if (!choice) {
    const current = config.get<Backend>('backend', 'auto');
    const picked = await ui.showQuickPick(
      BACKENDS.map((b) => ({ label: b, description: DESCRIPTIONS[b], picked: b === current, backend: b })),
      { title: 'APL: Quantization Backend', placeHolder: `Current: ${current}` },
    );
    choice = picked?.backend;
  }
  if (!choice) return undefined;
  await config.update('backend', choice, vscode.ConfigurationTarget.Global);
  ctx.log.info(`backend set to ${choice}`);
  ctx.refreshBackendStatus();
  return choice;
}
