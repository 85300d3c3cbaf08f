import * as vscode from 'vscode';
import type { ClientContext } from '../context';

/** `apl.inspectNpz [uri]`: the NPZ inspector (from the explorer's context menu, or asks for a file). */
export default async function inspectNpz(ctx: ClientContext, uri?: unknown): Promise<void> {
  // The language server's code lenses pass the file's URI as a string.
  const target = uri instanceof vscode.Uri ? uri : typeof uri === 'string' ? vscode.Uri.parse(uri) : undefined;
  await ctx.webviews.inspect(target);
}
