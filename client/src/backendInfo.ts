// Pure: the engine info JSON (`apl-quant info --json`, native/index.ts EngineInfo) → the status bar text.
export interface EngineInfoLike {
  native: boolean;
  reason?: string;
  simd: string;
  threads: number;
  gpu: { available: boolean; name?: string; reason?: string };
}

/** Finds the EngineInfo object in the CLI's output (the whole output, or under an `engine` key). */
export function parseEngineInfo(stdout: string): EngineInfoLike | undefined {
  let v: unknown;
  try {
    v = JSON.parse(stdout.trim());
  } catch {
    return undefined;
  }
  const o = (v && typeof v === 'object' && 'engine' in v ? (v as { engine: unknown }).engine : v) as Record<
    string,
    unknown
  >;
  if (!o || typeof o !== 'object' || typeof o.simd !== 'string' || typeof o.gpu !== 'object' || !o.gpu)
    return undefined;
  return o as unknown as EngineInfoLike;
}

export function backendLabel(
  setting: string,
  info: EngineInfoLike | undefined,
): { text: string; tooltip: string; warning: boolean } {
  if (!info)
    return { text: `APL: ${setting}`, tooltip: `Quantization backend: ${setting} (engine not probed)`, warning: false };
  const cpu = info.native ? `CPU ${info.simd}` : 'CPU (TypeScript reference)';
  const cpuTip = `${cpu}, ${info.threads} threads${info.native ? '' : ` — native addon not loaded: ${info.reason ?? 'unknown'}`}`;
  const gpuTip = info.gpu.available
    ? `GPU: ${info.gpu.name ?? 'CUDA'}`
    : `GPU: none (${info.gpu.reason ?? 'not available'})`;
  const tooltip = `Quantization backend: ${setting}\n${cpuTip}\n${gpuTip}`;
  if (setting === 'gpu' && !info.gpu.available) return { text: 'APL: GPU unavailable', tooltip, warning: true };
  if (setting !== 'cpu' && info.gpu.available)
    return { text: `APL: CUDA ${info.gpu.name ?? ''}`.trim(), tooltip, warning: false };
  return { text: `APL: ${cpu}`, tooltip, warning: !info.native };
}

/** Why the GPU backend cannot run here (the engine says no GPU), or undefined when it can or nobody knows. */
export function gpuUnusable(backend: string, info: EngineInfoLike | undefined): string | undefined {
  if (backend !== 'gpu' || !info || info.gpu.available) return undefined;
  return info.gpu.reason ?? 'no usable GPU';
}

/** The native addon's locations under the extension root (native/index.ts `addonCandidates`). */
export const ADDON_PATHS = ['native/build/Release/apl_quant.node', 'native/build/Debug/apl_quant.node'];

/**
 * A `node -e` script that loads the first addon that exists among `paths` and prints its engineInfo() as JSON, or
 * the TypeScript reference's info with the reason when none loads. Runs in a child process, never in the host.
 */
export function addonProbeScript(paths: string[]): string {
  return `
const fs = require('fs');
const paths = ${JSON.stringify(paths)};
let reason = 'the native addon is not built (npm run build:native)';
for (const p of paths) {
  if (!fs.existsSync(p)) continue;
  try { process.stdout.write(JSON.stringify(require(p).engineInfo())); process.exit(0); }
  catch (e) { reason = 'the native addon failed to load: ' + String(e && e.message).split('\\n')[0]; }
}
process.stdout.write(JSON.stringify({ native: false, reason, simd: 'none', threads: 1,
  gpu: { available: false, reason: 'the native addon is not loaded' } }));
`;
}
