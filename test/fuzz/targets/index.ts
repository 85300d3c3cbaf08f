// The fuzz targets, one per input surface, loaded on demand by name.
import type { Target } from '../lib/target';

type Loader = () => Promise<Target<unknown>>;

const t =
  // biome-ignore lint/suspicious/noExplicitAny: each target has its own input type
    (load: () => Promise<{ target: Target<any> }>): Loader =>
    async () =>
      (await load()).target as unknown as Target<unknown>;

export const TARGETS: Record<string, Loader> = {
  npy: t(() => import('./npy')),
  npz: t(() => import('./npz')),
  safetensors: t(() => import('./safetensors')),
  'shard-index': t(() => import('./shard-index')),
  manifest: t(() => import('./manifest')),
  report: t(() => import('./report')),
  validate: t(() => import('./validate')),
  cli: t(() => import('./cli')),
  hub: t(() => import('./hub')),
  webview: t(() => import('./webview')),
  'hf-config': t(() => import('./hf-config')),
};
