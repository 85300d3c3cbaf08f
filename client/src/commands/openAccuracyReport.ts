import * as vscode from 'vscode';
import type { ClientContext } from '../context';

/** `apl.openAccuracyReport [uri]`: the report webview for a report file (asks for one when none is given). */
export default async function openAccuracyReport(ctx: ClientContext, uri?: unknown): Promise<void> {
  await ctx.webviews.openReport(uri instanceof vscode.Uri ? uri : undefined);
}
