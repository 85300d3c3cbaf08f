// Where the model comes from: a local folder in the Hugging Face layout, an alias, or a Hub repo id (downloaded
// into the HF cache, with progress); then its config.json and the check that it has safetensors weights.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { oneLine } from '../formats/errors';
import type { ModelInfo } from '../formats/manifest';
import { readRegularFileSync } from '../formats/source';
import { downloadModel, resolveToken } from '../hub';
import type { ConvertEvent } from '../protocol';
import { findAlias, isRepoId, slugify } from './aliases';
import { runConfigFields } from './carry';
import { ConvertError } from './errors';
import { modelInfoFromConfig } from './families';
import type { ConvertOptions } from './options';

export interface Resolved {
  /** The folder holding config.json and the safetensors files. */
  dir: string;
  /** The output name stem. */
  name: string;
  /** What the report and manifest record as the source: the folder, or the repo id. */
  source: string;
  /** The commit a Hub revision resolved to; null for a local folder. */
  revision: string | null;
}

export async function resolveSource(
  o: ConvertOptions,
  emit: (e: ConvertEvent) => void,
  beforeDownload: (name: string) => void,
  signal?: AbortSignal,
): Promise<Resolved> {
  const src = o.source.trim();
  if (!src) throw new ConvertError('invalid-input', 'no model given: pass an alias, a Hub repo id or a local folder');
  let isDir = false;
  try {
    isDir = statSync(src).isDirectory();
  } catch {}
  if (isDir) {
    const dir = resolve(src);
    return { dir, name: o.name ?? slugify(dir), source: dir, revision: null };
  }
  const alias = findAlias(src);
  const repo = alias?.repo ?? (isRepoId(src) ? src : undefined);
  if (!repo) {
    const looksLikePath = /^[./~]|[\\]/.test(src) || src.split('/').length > 2;
    const shown = oneLine(src); // what the user typed, control characters escaped: the message stays one line
    throw new ConvertError(
      'not-found',
      looksLikePath
        ? `${shown}: no such folder`
        : `'${shown}' is not a known alias (tinyllama, mistral-7b, mistral-7b-instruct, gemma-2b, llama2-7b), a Hub repo id (owner/name) or a local folder`,
    );
  }
  const name = o.name ?? alias?.alias ?? slugify(repo);
  beforeDownload(name);
  emit({ type: 'stage', stage: 'download', message: `${repo}${o.revision ? `@${o.revision}` : ''}` });
  const token = resolveToken(o.token);
  const dl = await downloadModel(repo, {
    ...o.hub,
    token: token ?? '',
    revision: o.revision,
    offline: o.offline,
    signal,
    onProgress: (p) =>
      emit({ type: 'progress', stage: 'download', name: p.file, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal }),
  });
  return { dir: dl.dir, name, source: repo, revision: dl.revision };
}

function readConfig(dir: string): unknown {
  const file = join(dir, 'config.json');
  if (!existsSync(file)) {
    throw new ConvertError(
      'invalid-input',
      `${dir}: not a Hugging Face model folder (config.json missing; expected config.json and *.safetensors)`,
    );
  }
  let text: string;
  try {
    // A FIFO or device there would block a plain read forever.
    text = readRegularFileSync(file).toString('utf8');
  } catch (e) {
    throw new ConvertError('invalid-input', (e as Error).message);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ConvertError('invalid-input', oneLine(`${file}: not valid JSON (${(e as Error).message})`));
  }
}

function checkSafetensors(dir: string): void {
  const files = readdirSync(dir);
  if (files.some((f) => f.endsWith('.safetensors'))) return;
  const pickles = files.filter((f) => /\.(bin|pt|pth|ckpt)$/.test(f));
  if (pickles.length) {
    throw new ConvertError(
      'unsupported',
      `${dir}: only PyTorch pickle weights (${pickles.join(', ')}); pickle files can run code and are never loaded. ` +
        'Use a revision or a copy of the model with .safetensors weights (many repos have one under refs/pr/…, or convert ' +
        'with `safetensors` convert.py in a sandbox).',
    );
  }
  throw new ConvertError('invalid-input', `${dir}: no .safetensors weights found`);
}

/**
 * The manifest's model block for a resolved source, from its config.json (read once): the description, the source,
 * then the values the forward pass needs (carry.ts runConfigFields). Refuses a folder without safetensors.
 */
export function describeSource(res: Resolved): ModelInfo {
  const config = readConfig(res.dir);
  const model = modelInfoFromConfig(config, res.name, join(res.dir, 'config.json'));
  model.source = res.source;
  if (res.revision) model.revision = res.revision;
  checkSafetensors(res.dir);
  return Object.assign(model, runConfigFields(config, model.family));
}
