// What every command handler gets: the extension context, the output channel and the other parts' APIs.
import type * as vscode from 'vscode';
import type { ConvertEvent } from '../../server/src/protocol';

/** The webview engineer's API (client/src/webviews/index.ts `activateWebviews`). */
export interface WebviewsApi {
  openReport(uri?: vscode.Uri): Promise<void>;
  inspect(uri?: vscode.Uri): Promise<void>;
}

export interface ClientContext {
  extension: vscode.ExtensionContext;
  log: vscode.LogOutputChannel;
  webviews: WebviewsApi;
  /** Fires for every event of a running conversion (the tests listen to it). */
  convertEvents: vscode.EventEmitter<ConvertEvent>;
  /** Re-reads the engine info and the `apl.backend` setting into the status bar item. */
  refreshBackendStatus(): void;
}
