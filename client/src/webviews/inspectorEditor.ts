// The read-only custom editor `apl.npzInspector` for *.npz and *.npy. Opening reads only the zip central
// directory and the member headers (InspectorSession), so multi-GB archives open at once; tensor data is read
// when the webview asks for statistics or a page of values.
import { basename } from 'node:path';
import type * as vscode from 'vscode';
import { inspectorHost } from '../../../server/src/inspect/host';
import { InspectorSession } from '../../../server/src/inspect/session';
import type { HostToInspector, InspectorToHost, WebviewRendered } from '../../../server/src/protocol';
import { pageFor, webviewOptions } from './reportPanel';

const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));

class InspectorDocument implements vscode.CustomDocument {
  constructor(
    readonly uri: vscode.Uri,
    /** Null when the file could not be opened; `error` says why, and the webview shows it. */
    readonly session: InspectorSession | null,
    readonly error?: string,
  ) {}

  dispose(): void {
    void this.session?.close();
  }
}

export class NpzInspectorProvider implements vscode.CustomReadonlyEditorProvider<InspectorDocument> {
  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly log: vscode.OutputChannel,
    private readonly rendered: vscode.EventEmitter<WebviewRendered & { file: string }>,
  ) {}

  async openCustomDocument(uri: vscode.Uri): Promise<InspectorDocument> {
    if (uri.scheme !== 'file') {
      return new InspectorDocument(uri, null, `${uri.toString()}: the inspector reads local files only`);
    }
    try {
      const t0 = performance.now();
      const session = await InspectorSession.open(uri.fsPath);
      this.log.appendLine(`inspector: opened ${uri.fsPath} in ${(performance.now() - t0).toFixed(1)} ms`);
      return new InspectorDocument(uri, session);
    } catch (e) {
      this.log.appendLine(`inspector: ${errorMessage(e)}`);
      return new InspectorDocument(uri, null, errorMessage(e));
    }
  }

  async resolveCustomEditor(document: InspectorDocument, panel: vscode.WebviewPanel): Promise<void> {
    const file = document.uri.fsPath;
    panel.webview.options = webviewOptions(this.extensionUri);
    panel.webview.html = pageFor(panel.webview, this.extensionUri, 'inspector', basename(file));
    const post = (m: HostToInspector) => panel.webview.postMessage(m);
    const host = document.session ? inspectorHost(document.session, post) : null;
    const sub = panel.webview.onDidReceiveMessage(async (m: InspectorToHost) => {
      if (m?.type === 'rendered') {
        this.rendered.fire({ ...m, file });
        return;
      }
      if (!host) {
        if (m?.type === 'ready') await post({ type: 'error', message: document.error ?? `${file}: cannot be opened` });
        return;
      }
      try {
        await host(m);
      } catch (e) {
        this.log.appendLine(`inspector: ${errorMessage(e)}`);
      }
    });
    panel.onDidDispose(() => sub.dispose());
  }
}
