// The accuracy-report webview panel: one panel per report file, re-read when the file changes, restored after a
// reload by the serializer (the webview keeps the file in its state), buttons that open the manifest and archive.
import { basename, dirname } from 'node:path';
import * as vscode from 'vscode';
import { loadReport } from '../../../server/src/inspect/host';
import {
  CommandIds,
  type HostToReport,
  type ReportToHost,
  type ReportWebviewState,
  type WebviewRendered,
  WebviewViewTypes,
} from '../../../server/src/protocol';
import { normalizeReport, reportTitle } from '../../../server/src/report/read';
import { webviewPage } from './html';

type ReportMessage = Extract<HostToReport, { type: 'report' }>;

/** The tab title names the model and the bits (issue 15: every tab read "Accuracy: tiny-llama"). */
export function titled(msg: ReportMessage): ReportMessage {
  return { ...msg, title: reportTitle(normalizeReport(msg.report)) };
}

export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions {
  return {
    enableScripts: true,
    localResourceRoots: [
      vscode.Uri.joinPath(extensionUri, 'dist', 'webview'),
      vscode.Uri.joinPath(extensionUri, 'media'),
    ],
  };
}

export function pageFor(
  webview: vscode.Webview,
  extensionUri: vscode.Uri,
  script: 'report' | 'inspector' | 'playground',
  title: string,
) {
  const uri = (...p: string[]) => webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, ...p)).toString();
  return webviewPage({
    cspSource: webview.cspSource,
    styles: [uri('media', 'base.css'), uri('media', `${script}.css`)],
    script: uri('dist', 'webview', `${script}.js`),
    title,
  });
}

const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));

export class ReportPanels implements vscode.WebviewPanelSerializer<ReportWebviewState> {
  private readonly panels = new Map<string, vscode.WebviewPanel>();
  /** The manifest and archive found beside each panel's report, as of its last read (the buttons open them). */
  private readonly sidecars = new WeakMap<vscode.WebviewPanel, { manifest?: string | null; npz?: string | null }>();

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly log: vscode.OutputChannel,
    private readonly rendered: vscode.EventEmitter<WebviewRendered & { file: string }>,
    private readonly inspect: (uri: vscode.Uri) => Promise<void>,
  ) {}

  /** Shows the report in its panel (creating it, or revealing and refreshing the one already open). */
  async open(uri: vscode.Uri): Promise<void> {
    const file = uri.fsPath;
    const existing = this.panels.get(file);
    if (existing) {
      existing.reveal();
      await this.send(existing, file);
      return;
    }
    const panel = vscode.window.createWebviewPanel(
      WebviewViewTypes.accuracyReport,
      `Accuracy: ${basename(file)}`,
      vscode.ViewColumn.Active,
      webviewOptions(this.extensionUri),
    );
    this.attach(panel, file);
  }

  async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: ReportWebviewState | undefined): Promise<void> {
    if (state?.file) {
      this.attach(panel, state.file);
      return;
    }
    panel.webview.options = webviewOptions(this.extensionUri);
    panel.webview.html = pageFor(panel.webview, this.extensionUri, 'report', 'Accuracy report');
    const sub = panel.webview.onDidReceiveMessage((m: ReportToHost) => {
      if (m?.type === 'ready') {
        const msg: HostToReport = {
          type: 'error',
          message: 'This report panel has no file to restore; open the report again.',
        };
        void panel.webview.postMessage(msg);
      }
    });
    panel.onDidDispose(() => sub.dispose());
  }

  /** (Re-)reads the report into its panel, with the manifest and archive found beside it for the buttons. */
  private async send(panel: vscode.WebviewPanel, file: string): Promise<void> {
    let msg: HostToReport;
    try {
      msg = titled(await loadReport(file));
      panel.title = msg.title;
      this.sidecars.set(panel, { manifest: msg.manifest, npz: msg.npz });
    } catch (e) {
      msg = { type: 'error', message: errorMessage(e) };
      this.log.appendLine(`accuracy report: ${msg.message}`);
    }
    await panel.webview.postMessage(msg);
  }

  private attach(panel: vscode.WebviewPanel, file: string): void {
    this.panels.set(file, panel);
    panel.webview.options = webviewOptions(this.extensionUri);
    panel.webview.html = pageFor(panel.webview, this.extensionUri, 'report', `Accuracy: ${basename(file)}`);
    const sidecars = () => this.sidecars.get(panel) ?? {};
    const subs: vscode.Disposable[] = [];
    subs.push(
      panel.webview.onDidReceiveMessage(async (m: ReportToHost) => {
        try {
          switch (m?.type) {
            case 'ready':
              await this.send(panel, file);
              break;
            case 'openManifest': {
              const { manifest } = sidecars();
              if (manifest) await vscode.window.showTextDocument(vscode.Uri.file(manifest));
              break;
            }
            case 'openNpz': {
              const { npz } = sidecars();
              if (npz) await this.inspect(vscode.Uri.file(npz));
              break;
            }
            case 'evaluate': {
              // The command reports its own errors; the watcher below redraws this panel when the report changes.
              const { manifest } = sidecars();
              if (manifest) {
                const uri = vscode.Uri.file(manifest);
                await vscode.commands.executeCommand(CommandIds.evaluateModel, uri).then(undefined, () => {});
              }
              break;
            }
            case 'revealWeight': {
              const { manifest } = sidecars();
              if (manifest) await revealInManifest(manifest, m.name);
              break;
            }
            case 'rendered':
              this.rendered.fire({ ...m, file });
              break;
          }
        } catch (e) {
          this.log.appendLine(`accuracy report: ${errorMessage(e)}`);
          void vscode.window.showErrorMessage(errorMessage(e));
        }
      }),
    );
    // Re-read the report when the converter rewrites it.
    const watcher = vscode.workspace.createFileSystemWatcher(
      new vscode.RelativePattern(vscode.Uri.file(dirname(file)), basename(file)),
    );
    subs.push(
      watcher,
      watcher.onDidChange(() => this.send(panel, file)),
      watcher.onDidCreate(() => this.send(panel, file)),
    );
    panel.onDidDispose(() => {
      if (this.panels.get(file) === panel) this.panels.delete(file);
      for (const d of subs) d.dispose();
    });
  }
}

/** Opens the manifest with the cursor on the weight's `"name": "<name>"`. */
async function revealInManifest(manifest: string, name: string): Promise<void> {
  const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(manifest));
  const at = doc.getText().indexOf(`"name": ${JSON.stringify(name)}`);
  const editor = await vscode.window.showTextDocument(doc, { preview: true });
  if (at >= 0) {
    const pos = doc.positionAt(at);
    editor.selection = new vscode.Selection(pos, pos);
    editor.revealRange(new vscode.Range(pos, pos), vscode.TextEditorRevealType.InCenter);
  }
}
