import * as vscode from 'vscode';
import type { ClientContext } from '../context';

/** `apl.tryModel [uri] [{ prompt, temperature?, maxTokens?, chat?, compare? }]`: the playground for a manifest or its
 *  NPZ (asks for one when none is given); with a prompt it generates at once. */
export default async function tryModel(ctx: ClientContext, uri?: unknown, request?: unknown): Promise<void> {
  // The language server's code lens passes the NPZ's URI as a string.
  const target = uri instanceof vscode.Uri ? uri : typeof uri === 'string' ? vscode.Uri.parse(uri) : undefined;
  const r = request as { prompt?: unknown } | undefined;
  await ctx.webviews.tryModel(target, typeof r?.prompt === 'string' ? (r as { prompt: string }) : undefined);
}
