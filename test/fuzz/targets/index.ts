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
  'run-inputs': t(() => import('./run-inputs')),
};

/** The modules each target's coverage is measured over (`npm run fuzz -- --coverage`): path prefixes from the root. */
export const COVERS: Record<string, readonly string[]> = {
  npy: ['server/src/formats/npy.ts', 'server/src/formats/inspect.ts', 'server/src/formats/source.ts'],
  npz: ['server/src/formats/npz.ts', 'server/src/formats/zip.ts', 'server/src/formats/inspect.ts'],
  safetensors: ['server/src/formats/safetensors.ts', 'server/src/formats/dtypes.ts', 'server/src/formats/inspect.ts'],
  'shard-index': ['server/src/formats/safetensors.ts', 'server/src/hub/files.ts'],
  manifest: ['server/src/manifest/'],
  report: ['server/src/report/', 'server/src/manifest/files.ts', 'server/src/manifest/report.ts'],
  validate: ['server/src/cli/validate.ts', 'server/src/manifest/'],
  cli: ['server/src/cli.ts', 'server/src/cli/'],
  hub: ['server/src/hub/'],
  webview: ['server/src/inspect/'],
  'hf-config': [
    'server/src/convert/source.ts',
    'server/src/run/config.ts',
    'server/src/run/load.ts',
    'server/src/run/tokenizer.ts',
  ],
  'run-inputs': [
    'server/src/cli/matmul.ts',
    'server/src/cli/run.ts',
    'server/src/cli/eval.ts',
    'server/src/eval/chunks.ts',
    'server/src/run/tokenizer.ts',
  ],
  'lsp-load': ['server/src/server.ts', 'server/src/lsp/', 'server/src/manifest/'],
};
