// The read-only custom editor `apl.npzInspector` for *.npz, *.npy, *.safetensors and sharded checkpoints' indexes
// (*.safetensors.index.json). Opening reads only the zip central directory / safetensors headers and the member
// headers (InspectorSession), so multi-GB files open at once; tensor data is read when the webview asks for
// statistics or a page of values. The file is watched: when it changes on disk it is reopened and every panel
// reloads, keeping its selection. Go to definition on a manifest member selects it (inspectorReveal.ts).
import { basename, dirname } from 'node:path';
import * as vscode from 'vscode';
import { isSafetensorsIndex } from '../../../server/src/inspect/backing-safetensors';
import { inspectorHost } from '../../../server/src/inspect/host';
import { InspectorSession } from '../../../server/src/inspect/session';
import type { HostToInspector, InspectorToHost, WebviewRendered } from '../../../server/src/protocol';
import { ui } from '../ui';
import { setMemberRevealer } from './inspectorReveal';
import { pageFor, webviewOptions } from './reportPanel';

const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));
/** Changes closer together than this reopen the file once (a writer's temp file + rename fires several events). */
const RELOAD_DELAY_MS = 150;

class InspectorDocument implements vscode.CustomDocument {
  private readonly reloaded = new vscode.EventEmitter<{ session: InspectorSession | null; error?: string }>();
  readonly onDidReload = this.reloaded.event;
  private readonly watcher: vscode.FileSystemWatcher;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly uri: vscode.Uri,
    /** Null when the file could not be opened; `error` says why, and the webview shows it. */
    public session: InspectorSession | null,
    public error: string | undefined,
    private readonly log: vscode.OutputChannel,
  ) {
    const file = uri.fsPath;
    // A sharded checkpoint changes through its shards as well as its index.
    const glob = isSafetensorsIndex(file) ? `{${basename(file)},*.safetensors}` : basename(file);
    this.watcher = vscode.workspace.createFileSystemWatcher(
      new vscode.RelativePattern(vscode.Uri.file(dirname(file)), glob),
    );
    const schedule = () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.reload(), RELOAD_DELAY_MS);
    };
    this.watcher.onDidChange(schedule);
    this.watcher.onDidCreate(schedule);
    this.watcher.onDidDelete(schedule);
  }

  private async reload(): Promise<void> {
    const old = this.session;
    try {
      this.session = await InspectorSession.open(this.uri.fsPath);
      this.error = undefined;
      this.log.appendLine(`inspector: reloaded ${this.uri.fsPath} (changed on disk)`);
    } catch (e) {
      this.session = null;
      this.error = errorMessage(e);
      this.log.appendLine(`inspector: ${this.error}`);
    }
    this.reloaded.fire({ session: this.session, error: this.error });
    // Requests still in flight on the old session finish (or fail) before it closes.
    setTimeout(() => void old?.close(), 5_000);
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.watcher.dispose();
    this.reloaded.dispose();
    void this.session?.close();
  }
}

export class NpzInspectorProvider implements vscode.CustomReadonlyEditorProvider<InspectorDocument> {
  /** Open panels by file, and members to select in a panel that has not opened yet. */
  private readonly panels = new Map<string, Set<(m: HostToInspector) => unknown>>();
  private readonly toSelect = new Map<string, string>();

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly log: vscode.OutputChannel,
    private readonly rendered: vscode.EventEmitter<WebviewRendered & { file: string }>,
  ) {
    setMemberRevealer((uri, member) => {
      const open = this.panels.get(uri.fsPath);
      if (open?.size) for (const post of open) post({ type: 'select', name: member });
      else this.toSelect.set(uri.fsPath, member);
    });
  }

  async openCustomDocument(uri: vscode.Uri): Promise<InspectorDocument> {
    if (uri.scheme !== 'file') {
      return new InspectorDocument(uri, null, `${uri.toString()}: the inspector reads local files only`, this.log);
    }
    try {
      const t0 = performance.now();
      const session = await InspectorSession.open(uri.fsPath);
      this.log.appendLine(`inspector: opened ${uri.fsPath} in ${(performance.now() - t0).toFixed(1)} ms`);
      return new InspectorDocument(uri, session, undefined, this.log);
    } catch (e) {
      this.log.appendLine(`inspector: ${errorMessage(e)}`);
      return new InspectorDocument(uri, null, errorMessage(e), this.log);
    }
  }

  async resolveCustomEditor(document: InspectorDocument, panel: vscode.WebviewPanel): Promise<void> {
    const file = document.uri.fsPath;
    panel.webview.options = webviewOptions(this.extensionUri);
    panel.webview.html = pageFor(panel.webview, this.extensionUri, 'inspector', basename(file));
    const post = (m: HostToInspector) => panel.webview.postMessage(m);
    const pickFile = async () =>
      (
        await ui.showOpenDialog({
          canSelectMany: false,
          title: 'Compare with the same tensor in…',
          filters: { 'Tensor files': ['npz', 'npy', 'safetensors', 'json'] },
        })
      )?.[0]?.fsPath;
    const hostFor = (s: InspectorSession | null) => (s ? inspectorHost(s, post, { pickFile }) : null);
    let host = hostFor(document.session);
    const announce = async () => {
      if (!host) {
        await post({ type: 'error', message: document.error ?? `${file}: cannot be opened` });
        return;
      }
      await host({ type: 'ready' });
      const member = this.toSelect.get(file);
      if (member) {
        this.toSelect.delete(file);
        await post({ type: 'select', name: member });
      }
    };
    const set = this.panels.get(file) ?? new Set();
    this.panels.set(file, set);
    set.add(post);
    const subs = [
      panel.webview.onDidReceiveMessage(async (m: InspectorToHost) => {
        if (m?.type === 'rendered') {
          this.rendered.fire({ ...m, file });
          return;
        }
        try {
          if (m?.type === 'ready') await announce();
          else await host?.(m);
        } catch (e) {
          this.log.appendLine(`inspector: ${errorMessage(e)}`);
        }
      }),
      document.onDidReload(async ({ session }) => {
        // Files opened for comparisons stay; the webview asks again and keeps its selection.
        if (session && host) host.setSession(session);
        else {
          void host?.dispose();
          host = hostFor(session);
        }
        await announce();
      }),
    ];
    panel.onDidDispose(() => {
      for (const s of subs) s.dispose();
      void host?.dispose();
      set.delete(post);
      if (!set.size) this.panels.delete(file);
    });
  }
}
