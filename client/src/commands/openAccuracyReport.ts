import * as vscode from 'vscode';
import type { ClientContext } from '../context';

/** `apl.openAccuracyReport [uri]`: the report webview for a report file (asks for one when none is given). */
export default async function openAccuracyReport(ctx: ClientContext, uri?: unknown): Promise<void> {
  // The language server's code lenses pass the file's URI as a string.
  const target = uri instanceof vscode.Uri ? uri : typeof uri === 'string' ? vscode.Uri.parse(uri) : undefined;
  await ctx.webviews.openReport(target);
}
