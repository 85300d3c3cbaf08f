import * as vscode from 'vscode';
import type { ClientContext } from '../context';

/** `apl.inspectNpz [uri]`: the NPZ inspector (from the explorer's context menu, or asks for a file). */
export default async function inspectNpz(ctx: ClientContext, uri?: unknown): Promise<void> {
  await ctx.webviews.inspect(uri instanceof vscode.Uri ? uri : undefined);
}
