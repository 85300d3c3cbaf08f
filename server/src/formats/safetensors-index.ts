import { FormatError } from './errors';
import { readRegularFile } from './source';

/** Largest index file accepted (a real one is a few hundred KiB for thousands of tensors). */
export const MAX_SAFETENSORS_INDEX_BYTES = 64 << 20;

/**
 * Reads a safetensors index: the tensor → shard file map (shard names are plain file names in the index's folder)
 * and the shard files in sorted order. Throws a FormatError naming the index on any problem.
 */
export async function readSafetensorsIndex(
  indexPath: string,
): Promise<{ weightMap: Map<string, string>; files: string[] }> {
  const text = (await readRegularFile(indexPath, MAX_SAFETENSORS_INDEX_BYTES)).toString('utf8');
  let idx: unknown;
  try {
    idx = JSON.parse(text);
  } catch (e) {
    throw new FormatError(indexPath, `not valid JSON (${(e as Error).message})`);
  }
  const wm = (idx as { weight_map?: unknown })?.weight_map;
  if (!wm || typeof wm !== 'object' || Array.isArray(wm)) throw new FormatError(indexPath, 'has no weight_map object');
  const weightMap = new Map<string, string>();
  for (const [t, f] of Object.entries(wm as Record<string, unknown>)) {
    if (
      typeof f !== 'string' ||
      !f.endsWith('.safetensors') ||
      f.includes('/') ||
      f.includes('\\') ||
      f.startsWith('.')
    ) {
      throw new FormatError(indexPath, `weight_map entry '${t}' names an invalid file ${JSON.stringify(f)}`);
    }
    weightMap.set(t, f);
  }
  return { weightMap, files: [...new Set(weightMap.values())].sort() };
}
