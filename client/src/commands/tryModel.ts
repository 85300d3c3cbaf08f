import * as vscode from 'vscode';
import type { ClientContext } from '../context';

/** `apl.tryModel [uri]`: the playground for a manifest or its NPZ (asks for one when none is given). */
export default async function tryModel(ctx: ClientContext, uri?: unknown): Promise<void> {
  // The language server's code lens passes the NPZ's URI as a string.
  const target = uri instanceof vscode.Uri ? uri : typeof uri === 'string' ? vscode.Uri.parse(uri) : undefined;
  await ctx.webviews.tryModel(target);
}
