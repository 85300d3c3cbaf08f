// Client engineer's stand-in until client/src/webviews/index.ts (the webview engineer's `activateWebviews`)
// lands: opens a report as JSON text and an archive with the default editor. Delete when the real one is in.
import * as vscode from 'vscode';
import type { WebviewsApi } from './context';

export function activateWebviewsFallback(_context: vscode.ExtensionContext, log: vscode.OutputChannel): WebviewsApi {
  const ask = async (filters: Record<string, string[]>) =>
    (await vscode.window.showOpenDialog({ canSelectMany: false, filters }))?.[0];
  return {
    async openReport(uri) {
      const u = uri ?? (await ask({ 'Accuracy report': ['json'] }));
      if (!u) return;
      log.appendLine(`report (fallback viewer): ${u.fsPath}`);
      await vscode.window.showTextDocument(u, { preview: true });
    },
    async inspect(uri) {
      const u = uri ?? (await ask({ 'NumPy archives': ['npz', 'npy'] }));
      if (!u) return;
      await vscode.commands.executeCommand('vscode.open', u);
    },
  };
}
