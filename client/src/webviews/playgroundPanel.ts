// The playground panel ("APL: Try Model…"): one panel per manifest. Generation runs in child processes — the CLI,
// `dist/cli.js run <manifest> … --json`, under the extension host's own Node (ELECTRON_RUN_AS_NODE=1) — never in
// the extension host; their RunEvents (one JSON line each) are forwarded to the webview. Stop sends SIGINT (the CLI
// ends with a `done` event, stop "interrupted"); closing the panel kills what still runs.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import * as vscode from 'vscode';
import type {
  HostToPlayground,
  PlaygroundRequest,
  PlaygroundSide,
  PlaygroundToHost,
  RunEvent,
  WebviewRendered,
} from '../../../server/src/protocol';
import { WebviewViewTypes } from '../../../server/src/protocol';
import { loadTokenizer, readManifest, sourceCandidates } from '../../../server/src/run/load';
import { runArgs } from './playgroundArgs';
import { pageFor, webviewOptions } from './reportPanel';

function describe(manifest: string): Extract<HostToPlayground, { type: 'init' }> {
  const m = readManifest(manifest);
  let chatTemplate = false;
  try {
    chatTemplate = Boolean(loadTokenizer(manifest, m)?.chatTemplate);
  } catch {
    chatTemplate = false;
  }
  const floatAvailable = sourceCandidates(manifest, m).some((d) => existsSync(join(d, 'config.json')));
  return { type: 'init', title: basename(manifest), manifest, floatAvailable, chatTemplate };
}

export class PlaygroundPanels {
  private readonly panels = new Map<string, vscode.WebviewPanel>();

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly cli: string,
    private readonly log: vscode.OutputChannel,
    private readonly rendered: vscode.EventEmitter<WebviewRendered & { file: string }>,
  ) {}

  /** Opens (or reveals) the panel of `manifest`; with `request`, the webview fills it in and generates at once. */
  open(manifest: string, request?: Extract<HostToPlayground, { type: 'init' }>['request']): vscode.WebviewPanel {
    const existing = this.panels.get(manifest);
    if (existing) {
      existing.reveal();
      if (request) void existing.webview.postMessage({ ...describe(manifest), request } satisfies HostToPlayground);
      return existing;
    }
    const panel = vscode.window.createWebviewPanel(
      WebviewViewTypes.playground,
      `Try: ${basename(manifest)}`,
      vscode.ViewColumn.Active,
      { ...webviewOptions(this.extensionUri), retainContextWhenHidden: true },
    );
    this.panels.set(manifest, panel);
    panel.webview.html = pageFor(panel.webview, this.extensionUri, 'playground', `Try: ${basename(manifest)}`);
    const children = new Map<PlaygroundSide, ChildProcess>();
    const post = (m: HostToPlayground) => void panel.webview.postMessage(m);
    const stopAll = (signal: NodeJS.Signals) => {
      for (const c of children.values()) c.kill(signal);
    };
    const start = (r: PlaygroundRequest, side: PlaygroundSide) => {
      const argv = runArgs(this.cli, manifest, r, side);
      this.log.appendLine(`playground: ${process.execPath} ${argv.map((a) => JSON.stringify(a)).join(' ')}`);
      const env: NodeJS.ProcessEnv = { ...process.env, ELECTRON_RUN_AS_NODE: '1', APL_CLI_MAIN: '1' };
      const child = spawn(process.execPath, argv, { env, stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
      children.set(side, child);
      post({ type: 'started', side });
      let out = '';
      let err = '';
      child.stdout!.setEncoding('utf8');
      child.stdout!.on('data', (d: string) => {
        out += d;
        let nl = out.indexOf('\n');
        while (nl >= 0) {
          const line = out.slice(0, nl).trim();
          out = out.slice(nl + 1);
          nl = out.indexOf('\n');
          if (!line.startsWith('{')) continue;
          try {
            post({ type: 'event', side, event: JSON.parse(line) as RunEvent });
          } catch {
            this.log.appendLine(`playground (${side}): not JSON: ${line}`);
          }
        }
      });
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (d: string) => {
        err = (err + d).slice(-4000);
      });
      const finish = (code: number | null, error?: string) => {
        if (children.get(side) !== child) return;
        children.delete(side);
        const last = err.trim().split('\n').filter(Boolean).pop();
        if (code !== 0 && code !== 130) this.log.appendLine(`playground (${side}): exit ${code}: ${err.trim()}`);
        // a run that succeeded may still have said something (the GPU left for the CPU, and why)
        else if (err.trim()) this.log.appendLine(`playground (${side}): ${err.trim()}`);
        post({ type: 'exit', side, code, error: error ?? (code !== 0 && code !== 130 ? last : undefined) });
      };
      child.on('error', (e) => finish(null, e.message));
      child.on('close', (code) => finish(code));
    };
    const sub = panel.webview.onDidReceiveMessage((m: PlaygroundToHost) => {
      try {
        switch (m?.type) {
          case 'ready':
            post({ ...describe(manifest), request });
            break;
          case 'generate': {
            stopAll('SIGKILL');
            children.clear();
            const r: PlaygroundRequest = m;
            start(r, 'quantized');
            if (r.compare) start(r, 'float');
            break;
          }
          case 'stop':
            stopAll('SIGINT');
            break;
          case 'rendered':
            this.rendered.fire({ ...m, file: manifest });
            break;
        }
      } catch (e) {
        post({ type: 'error', message: (e as Error).message ?? String(e) });
      }
    });
    panel.onDidDispose(() => {
      sub.dispose();
      stopAll('SIGKILL');
      children.clear();
      if (this.panels.get(manifest) === panel) this.panels.delete(manifest);
    });
    return panel;
  }
}
