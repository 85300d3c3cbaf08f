import * as vscode from 'vscode';
import { HF_TOKEN_SECRET } from '../constants';
import type { ClientContext } from '../context';

/** `apl.clearHuggingFaceToken`: removes the stored token. */
export default async function clearHfToken(ctx: ClientContext): Promise<boolean> {
  const had = (await ctx.extension.secrets.get(HF_TOKEN_SECRET)) !== undefined;
  await ctx.extension.secrets.delete(HF_TOKEN_SECRET);
  ctx.log.info(had ? 'Hugging Face token removed from SecretStorage' : 'no Hugging Face token was stored');
  void vscode.window.showInformationMessage(had ? 'APL: Hugging Face token cleared.' : 'APL: No token was stored.');
  return had;
}
