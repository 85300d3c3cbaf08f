// The webviews' entry: registers the accuracy-report panel serializer (panels come back after a reload) and the
// read-only custom editor `apl.npzInspector` (*.npz, *.npy, *.safetensors, *.safetensors.index.json), and returns what the commands call.
import { extname, join } from 'node:path';
import * as vscode from 'vscode';
import { type HostToPlayground, type WebviewRendered, WebviewViewTypes } from '../../../server/src/protocol';
import { manifestTarget } from '../manifestTarget';

type PlaygroundAutorun = Extract<HostToPlayground, { type: 'init' }>['request'];

import { NpzInspectorProvider } from './inspectorEditor';
import { PlaygroundPanels } from './playgroundPanel';
import { ReportPanels } from './reportPanel';

export type WebviewRenderedEvent = WebviewRendered & { file: string };

export interface Webviews {
  /** Opens the accuracy report `uri` (default: the active editor's .json, else a file picker). */
  openReport(uri?: vscode.Uri): Promise<void>;
  /** Opens `uri` (default: a file picker) in the NPZ inspector. */
  inspect(uri?: vscode.Uri): Promise<void>;
  /** Opens the playground for a manifest, or the NPZ of one (default: the active manifest, else a file picker). */
  tryModel(uri?: vscode.Uri, request?: PlaygroundAutorun): Promise<void>;
  /** Fires when a webview has drawn its content (what it shows, read from its DOM). */
  onDidRender: vscode.Event<WebviewRenderedEvent>;
}

/**
 * The same events, for the real-VS-Code tests (bundled apart from the extension, in the same extension host):
 * `globalThis[Symbol.for('apl.webviews.rendered')]` is the list of events so far plus a way to listen.
 */
export const RENDERED_PROBE = Symbol.for('apl.webviews.rendered');
export interface RenderedProbe {
  events: WebviewRenderedEvent[];
  listeners: Set<(e: WebviewRenderedEvent) => void>;
}

function probe(): RenderedProbe {
  const g = globalThis as unknown as Record<symbol, RenderedProbe | undefined>;
  g[RENDERED_PROBE] ??= { events: [], listeners: new Set() };
  return g[RENDERED_PROBE]!;
}

export function activateWebviews(context: vscode.ExtensionContext, log: vscode.OutputChannel): Webviews {
  const rendered = new vscode.EventEmitter<WebviewRenderedEvent>();
  const p = probe();
  context.subscriptions.push(
    rendered,
    rendered.event((e) => {
      p.events.push(e);
      if (p.events.length > 100) p.events.shift();
      for (const l of p.listeners) l(e);
    }),
  );

  const pick = async (filters: Record<string, string[]>) =>
    (await vscode.window.showOpenDialog({ canSelectMany: false, filters }))?.[0];

  const inspect = async (uri?: vscode.Uri) => {
    const target = uri ?? (await pick({ 'Tensor files': ['npz', 'npy', 'safetensors', 'json'] }));
    if (!target) return;
    await vscode.commands.executeCommand('vscode.openWith', target, WebviewViewTypes.npzInspector);
  };
  const reports = new ReportPanels(context.extensionUri, log, rendered, inspect);
  const playgrounds = new PlaygroundPanels(
    context.extensionUri,
    context.asAbsolutePath(join('dist', 'cli.js')),
    log,
    rendered,
  );
  const inspector = new NpzInspectorProvider(context.extensionUri, log, rendered);
  context.subscriptions.push(
    vscode.window.registerWebviewPanelSerializer(WebviewViewTypes.accuracyReport, reports),
    vscode.window.registerCustomEditorProvider(WebviewViewTypes.npzInspector, inspector, {
      supportsMultipleEditorsPerDocument: true,
    }),
  );

  return {
    async openReport(uri) {
      let target = uri;
      const active = vscode.window.activeTextEditor?.document.uri;
      if (!target && active?.scheme === 'file' && extname(active.fsPath) === '.json') target = active;
      target ??= await pick({ 'Accuracy report': ['json'] });
      if (target) await reports.open(target);
    },
    inspect,
    async tryModel(uri, request) {
      const manifest = await manifestTarget(uri, 'Try');
      if (manifest) playgrounds.open(manifest, request);
    },
    onDidRender: rendered.event,
  };
}
