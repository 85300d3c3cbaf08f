import { homedir } from 'node:os';
import { join } from 'node:path';
import { readRegularFileSync } from '../formats/source';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

type Env = Record<string, string | undefined>;

/** HF_HOME, else XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface (as huggingface_hub computes it). */
export function hfHome(env: Env = process.env): string {
  if (env.HF_HOME) return env.HF_HOME;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'huggingface');
}

/** The file `huggingface-cli login` writes: HF_TOKEN_PATH, else HF_HOME/token, else ~/.cache/huggingface/token. */
export function tokenFilePath(env: Env = process.env): string {
  return env.HF_TOKEN_PATH || join(hfHome(env), 'token');
}

/**
 * The token to use: the explicit one (--token), else HF_TOKEN (or the older HUGGING_FACE_HUB_TOKEN), else the token
 * file. Empty values count as absent. A token file that cannot be read is treated as absent (no token).
 */
export function resolveToken(explicit?: string, env: Env = process.env): string | undefined {
  for (const t of [explicit, env.HF_TOKEN, env.HUGGING_FACE_HUB_TOKEN]) {
    const v = t?.trim();
    if (v) return v;
  }
  try {
    const path = tokenFilePath(env);
    // A FIFO, a device or a huge file is no token file (reading one would block, or never end).
    const text = readRegularFileSync(path, 65536).toString('utf8');
    // The file holds the token alone; tolerate a trailing newline and a stray BOM.
    const v = text.replace(/^\uFEFF/, '').trim();
    return v.length > 0 && v.length < 4096 ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The Hub endpoint: the explicit one, else HF_ENDPOINT, else https://huggingface.co; no trailing slash. */
export function resolveEndpoint(explicit?: string, env: Env = process.env): string {
  const raw = (explicit?.trim() || env.HF_ENDPOINT?.trim() || DEFAULT_ENDPOINT).replace(/\/+$/, '');
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new TypeError(`invalid Hugging Face endpoint "${raw}": expected a URL such as ${DEFAULT_ENDPOINT}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new TypeError(`invalid Hugging Face endpoint "${raw}": only http and https are supported`);
  }
  return raw;
}

/** True when HF_HUB_OFFLINE asks for no network (1, true, yes, on). */
export function offlineFromEnv(env: Env = process.env): boolean {
  return /^(1|true|yes|on)$/i.test(env.HF_HUB_OFFLINE?.trim() ?? '');
}

/**
 * How to authenticate, as the guide's Troubleshooting says it; appended to auth error messages. One line, so that
 * callers that print only an error's first line still show it.
 */
export function authHelp(repo: string, endpoint: string, gated: boolean): string {
  let text =
    'Authenticate with a Hugging Face access token (https://huggingface.co/settings/tokens): ' +
    `\`apl-quant convert ${repo} --token hf_…\`, or \`export HF_TOKEN=hf_…\`, or \`huggingface-cli login\`, ` +
    'or in VS Code run "APL: Set Hugging Face Token".';
  if (gated) {
    text += ` This model is gated: also accept its licence on its Hub page, ${endpoint}/${repo}, with the same account.`;
  }
  return text;
}
