// What every command handler gets: the extension context, the output channel and the other parts' APIs.
import type * as vscode from 'vscode';
import type { ConvertEvent } from '../../server/src/protocol';
import type { ConvertRequest } from './convert/options';

/** The webview engineer's API (client/src/webviews/index.ts `activateWebviews`). */
export interface WebviewsApi {
  openReport(uri?: vscode.Uri): Promise<void>;
  inspect(uri?: vscode.Uri): Promise<void>;
  /** `request` (from the command's second argument) fills the form and generates at once. */
  tryModel(uri?: vscode.Uri, request?: { prompt: string; temperature?: number; maxTokens?: number }): Promise<void>;
}

export type ConvertResultEvent = Extract<ConvertEvent, { type: 'result' }>;

export interface ConvertOutcome {
  status: 'ok' | 'failed' | 'cancelled';
  result?: ConvertResultEvent;
  /** The CLI's error (its `error` event, else the last lines it wrote to stderr). */
  error?: { code: string; message: string };
  exitCode: number | null;
}

/** Conversions as tasks (client/src/tasks/convertTask.ts `runConversion`), for the commands that start one. */
export interface ConversionsApi {
  /** Runs one conversion as a task with a progress notification; resolves when it has ended (never rejects). */
  run(req: ConvertRequest, token?: vscode.CancellationToken): Promise<ConvertOutcome>;
}

export interface ClientContext {
  extension: vscode.ExtensionContext;
  log: vscode.LogOutputChannel;
  webviews: WebviewsApi;
  conversions: ConversionsApi;
  /** Fires for every event of a running conversion (the tests listen to it). */
  convertEvents: vscode.EventEmitter<ConvertEvent>;
  /** Re-reads the engine info and the `apl.backend` setting into the status bar item. */
  refreshBackendStatus(): void;
}
