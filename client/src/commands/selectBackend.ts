// `apl.selectBackend [backend]`: auto / cpu / gpu into the `apl.backend` setting (the status bar item runs it).
import type { ClientContext } from '../context';
import { BACKENDS, type Backend } from '../convert/options';
import { rawBackendSetting, setBackendSetting } from '../settings';
import { ui } from '../ui';

const DESCRIPTIONS: Record<Backend, string> = {
  auto: 'CUDA when an NVIDIA GPU is usable, else CPU SIMD',
  cpu: 'CPU: SIMD kernels on all cores',
  gpu: 'CUDA: fails when no GPU is usable',
};

export default async function selectBackend(ctx: ClientContext, given?: unknown): Promise<Backend | undefined> {
  let choice = BACKENDS.includes(given as Backend) ? (given as Backend) : undefined;
  if (!choice) {
    const current = rawBackendSetting();
    const picked = await ui.showQuickPick(
      BACKENDS.map((b) => ({ label: b, description: DESCRIPTIONS[b], picked: b === current, backend: b })),
      { title: 'APL: Quantization Backend', placeHolder: `Current: ${current}` },
    );
    choice = picked?.backend;
  }
  if (!choice) return undefined;
  await setBackendSetting(choice);
  ctx.log.info(`backend set to ${choice}`);
  ctx.refreshBackendStatus();
  return choice;
}
