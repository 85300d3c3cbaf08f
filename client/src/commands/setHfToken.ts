// `apl.setHuggingFaceToken [token]`: stores the token in SecretStorage (the OS keychain), never in settings or
// logs. The conversion task hands it to the CLI child process as HF_TOKEN.
import * as vscode from 'vscode';
import { HF_TOKEN_SECRET } from '../constants';
import type { ClientContext } from '../context';
import { maskToken } from '../convert/progress';
import { ui } from '../ui';

export function checkToken(v: string): string | undefined {
  const t = v.trim();
  if (!t) return 'Enter a token (https://huggingface.co/settings/tokens)';
  if (/\s/.test(t)) return 'A token has no spaces';
  if (t.length < 8) return 'That is too short for a Hugging Face token';
  return undefined;
}

export default async function setHfToken(ctx: ClientContext, given?: unknown): Promise<boolean> {
  let token = typeof given === 'string' ? given : undefined;
  if (token === undefined) {
    token = await ui.showInputBox({
      title: 'APL: Hugging Face Token',
      prompt: 'A read token for gated or private models (kept in the OS keychain, never written to settings)',
      placeHolder: 'hf_…',
      password: true,
      ignoreFocusOut: true,
      validateInput: checkToken,
    });
    if (token === undefined) return false;
  }
  const problem = checkToken(token);
  if (problem) throw new Error(problem);
  await ctx.extension.secrets.store(HF_TOKEN_SECRET, token.trim());
  ctx.log.info('Hugging Face token saved in SecretStorage');
  void vscode.window.showInformationMessage(`APL: Hugging Face token saved (${maskToken(token.trim())}).`);
  return true;
}
